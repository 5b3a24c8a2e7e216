"""``u``: the operator actions recorded in Redis (jobcore audit), newest first."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from jobcore import AuditRecord
from jobcore.display import printable

from ..format import clock
from ..keys import AUDIT, bindings, hint
from .base import Keyed, console_of

AUDIT_SHOWN = 100  # the newest records read for the dialog


class AuditScreen(Keyed, ModalScreen[None]):
    KEYS = AUDIT
    BINDINGS = bindings(AUDIT)

    def __init__(self, records: Sequence[AuditRecord]) -> None:
        super().__init__()
        self.records = list(records)

    def compose(self) -> ComposeResult:
        title = Text.assemble(("Operator actions  ", "bold"), (f"newest {len(self.records)}", "dim"))
        body = Text()
        for i, r in enumerate(self.records):
            body.append("\n" if i else "")
            body.append(f"{clock(r.at)}Z ", "dim")
            body.append(printable(r.actor), "bold cyan")
            body.append(f" {printable(r.action)}", "bold")
            if r.job_type:
                body.append(f" {printable(r.job_type)}")
            if r.target:
                body.append(f" {printable(r.target)}", "dim")
            if r.count is not None:
                body.append(f" ({r.count:,})")
            ok = r.outcome == "ok"
            body.append(f": {printable(r.outcome)}", "green" if ok else "bold yellow")
        with Vertical(id="dialog", classes="why"):
            yield Static(title, classes="title")
            with VerticalScroll(id="why-body"):
                yield Static(body or Text("no operator action recorded yet", style="dim"), id="records")
            keys = hint(AUDIT, console_of(self).settings.read_only, ["close"])
            yield Static(Text(f"{keys} · the same from the shell: jobcore audit", style="dim"), classes="hint")

    def action_close(self) -> None:
        self.dismiss(None)
