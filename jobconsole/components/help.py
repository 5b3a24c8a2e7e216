"""``?``: every key, and what the numbers mean."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

SECTIONS: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "Main screen",
        [
            ("e", "enqueue test jobs (enter on a queue row: that type)"),
            ("s", "start / stop the embedded worker (stop lets running jobs finish)"),
            ("+ / -", "embedded worker concurrency (applies on start)"),
            ("d / f", "dead jobs / failed jobs"),
            ("enter", "details of the selected in-flight job"),
            ("[ / ]", "previous / next page of in-flight jobs"),
            ("tab", "move between panels"),
            ("z", "zoom the focused panel (escape to restore)"),
            ("r", "refresh now"),
            ("p", "pause / resume live updates"),
            ("q / ctrl+q", "quit (a running embedded worker hands its jobs back)"),
        ],
    ),
    (
        "Dead and failed jobs",
        [
            ("tab", "switch between dead and failed"),
            ("t", "filter by job type"),
            ("enter", "details: reason, traceback, args"),
            ("r / R", "requeue the selected job / all listed types' jobs"),
            ("x / X", "purge the selected job / all (asks first)"),
            ("escape", "back"),
        ],
    ),
    (
        "Enqueue",
        [
            ("tab", "next field; args are checked against the type's schema as you type"),
            ("ctrl+s", "send (one enqueue_many round trip)"),
            ("escape", "cancel"),
        ],
    ),
]

NOTES = (
    "pending: jobs waiting (stream length minus in flight). in flight: taken by a worker, not settled. "
    "processed / failed: counters since the type's keys were created. dead: jobs in the dead list now "
    "(requeue and purge take them out; the embedded worker's 'dead-lettered' counts every one its run sent there). "
    "oldest: age of the oldest pending job. proc/s: processed per second over the last 5 s; "
    "the sparkline shows the last 2 minutes. ⚠ after a type: jobs pending and no live worker serves it. "
    "Workers turn 'stale' when heartbeats stop and 'lost' when their lease lapses. Times are UTC."
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="help"):
            yield Static(Text("jobconsole keys", style="bold"), classes="title")
            with VerticalScroll():
                for title, keys in SECTIONS:
                    table = Table(box=None, show_header=False, padding=(0, 2, 0, 0), title_justify="left")
                    table.add_column(style="bold cyan", no_wrap=True, min_width=11)
                    table.add_column()
                    for key, what in keys:
                        table.add_row(key, what)
                    yield Static(Text(title, style="bold underline"), classes="section")
                    yield Static(table)
                yield Static(Text(NOTES, style="dim"), classes="notes")
            yield Static(Text("escape to close", style="dim"), classes="hint")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
