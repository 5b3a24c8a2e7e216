"""``?``: every key, and what the numbers mean, written from the same table as the footer."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..keys import EVERYWHERE, SECTIONS, visible

NOTES = (
    "pending: jobs waiting (stream length minus in flight). in flight: taken by a worker, not settled. "
    "processed / failed: counters since the type's keys were created. dead: jobs in the dead list now "
    "(requeue and purge take them out; the embedded worker's 'dead-lettered' counts every one its run sent there). "
    "oldest: age of the oldest pending job. proc/s: processed per second over the last 5 s; "
    "last 1h: jobs settled per slice of the last hour, from the history workers keep in Redis. "
    "⚠ after a type: jobs pending and no live worker serves it. "
    "Workers turn 'stale' when heartbeats stop and 'lost' when their lease lapses. Times are UTC."
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close")]

    def __init__(self, read_only: bool = False) -> None:
        super().__init__()
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="help"):
            title = "jobconsole keys" + (" (read-only: keys that change the queue are off)" if self.read_only else "")
            yield Static(Text(title, style="bold"), classes="title")
            with VerticalScroll():
                for name, keys in SECTIONS:
                    shown = [k for k in visible(keys, self.read_only) if keys is EVERYWHERE or k.action != "help"]
                    if not shown:
                        continue
                    table = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
                    table.add_column(style="bold cyan", no_wrap=True, min_width=11)
                    table.add_column()
                    for k in shown:
                        table.add_row(
                            k.shown_keys, k.help + (" · asks first" if k.confirms and "ask" not in k.help else "")
                        )
                    yield Static(Text(name, style="bold underline"), classes="section")
                    yield Static(table)
                yield Static(Text(NOTES, style="dim"), classes="notes")
            yield Static(Text("escape to close", style="dim"), classes="hint")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
