"""``w``: why a type's jobs (or one job) wait, in jobcore's own sentences."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from jobcore import Explanation
from jobcore.display import printable

from ..format import clock
from ..keys import WHY, bindings, hint
from .base import Keyed, console_of


class WhyScreen(Keyed, ModalScreen[None]):
    KEYS = WHY
    BINDINGS = bindings(WHY)

    def __init__(self, explanation: Explanation) -> None:
        super().__init__()
        self.explanation = explanation

    def compose(self) -> ComposeResult:
        e = self.explanation
        about = f"job {e.job_id} ({printable(e.job_type)})" if e.job_id else printable(e.job_type)
        title = Text.assemble(("Why is it waiting?  ", "bold"), (about, "bold cyan"))
        if e.taken_at is not None:
            title.append(f"  as of {clock(e.taken_at)}Z", "dim")
        body = Text()
        for i, sentence in enumerate(e.sentences):
            body.append("\n" if i else "")
            body.append("• ", "bold yellow")
            body.append(printable(sentence))
        with Vertical(id="dialog", classes="why"):
            yield Static(title, classes="title")
            with VerticalScroll(id="why-body"):
                yield Static(body or Text("nothing to say", style="dim"), id="sentences")
            cli = f"jobcore why --job {e.job_id}" if e.job_id else f"jobcore why {printable(e.job_type)}"
            keys = hint(WHY, console_of(self).settings.read_only, ["close"])
            yield Static(Text(f"{keys} · the same from the shell: {cli}", style="dim"), classes="hint")

    def action_close(self) -> None:
        self.dismiss(None)
