"""``a``: a type's fairness across accounts (jobcore fair): its settings, who waits
and who runs; ``l`` sets the limit per account, ``t`` turns it on or off, each
after a question (never in --read-only)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from jobcore import FairInfo
from jobcore.display import printable
from jobcore.fair import fair_lines

from ..keys import FAIR, bindings, hint
from ..messages import SetFair, SetLimit
from .base import Keyed, console_of


class FairScreen(Keyed, ModalScreen[None]):
    KEYS = FAIR
    BINDINGS = bindings(FAIR)

    def __init__(self, info: FairInfo, pending: int) -> None:
        super().__init__()
        self.info = info
        self.pending = pending

    def compose(self) -> ComposeResult:
        name = printable(self.info.job_type)
        title = Text.assemble(("Fair across accounts  ", "bold"), (name, "bold cyan"))
        with Vertical(id="dialog", classes="why"):
            yield Static(title, classes="title")
            with VerticalScroll(id="why-body"):
                yield Static(self._body(), id="fair-lines")
            keys = hint(FAIR, console_of(self).settings.read_only, ["close", "limit", "switch_fair"])
            yield Static(Text(f"{keys} · the same from the shell: jobcore fair {name}", style="dim"), classes="hint")

    def _body(self) -> Text:
        body = Text()
        for i, line in enumerate(fair_lines(self.info, self.pending)):
            body.append("\n" if i else "")
            body.append(line)  # Text, never markup: names come from Redis
        return body

    def show(self, info: FairInfo, pending: int) -> None:
        """Read again after a change."""
        self.info, self.pending = info, pending
        self.query_one("#fair-lines", Static).update(self._body())

    def action_close(self) -> None:
        self.dismiss(None)

    def action_switch_fair(self) -> None:
        self.post_message(SetFair(self.info.job_type, not self.info.settings.on))

    def action_limit(self) -> None:
        if not self.info.settings.on:
            self.notify("limits apply to fair types: t turns fairness on first", severity="warning")
            return

        def chosen(n: int | None) -> None:
            if n is not None:
                self.post_message(SetLimit(self.info.job_type, n))

        self.app.push_screen(LimitScreen(self.info.job_type, self.info.settings.per_account), chosen)


class LimitScreen(ModalScreen[int | None]):
    """The new limit per account, typed in (enter) or not (escape)."""

    BINDINGS = [("escape", "cancel", "Cancel")]

    def __init__(self, job_type: str, current: int) -> None:
        super().__init__()
        self.job_type = job_type
        self.current = current

    def compose(self) -> ComposeResult:
        now = f"now {self.current:,}" if self.current else "now none"
        question = Text(
            f"How many of one account's {printable(self.job_type)} jobs may run at once? ({now}; 0: no limit)"
        )
        with Vertical(id="dialog", classes="confirm"):
            yield Static(question, id="question")
            with Horizontal(classes="buttons"):
                yield Input(value=str(self.current or ""), placeholder="N", type="integer", id="limit")
            yield Static(Text("enter: set it (asks first) · escape: leave it", style="dim"), classes="hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text.isdigit():
            self.notify("a whole number, 0 or more", severity="warning")
            return
        self.dismiss(int(text))

    def action_cancel(self) -> None:
        self.dismiss(None)
