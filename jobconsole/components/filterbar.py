"""The filter line (``/``): jobcore's find words, applied as you type to the list below.

One filter for the console (the app holds it, the in-flight poll and the dead and
failed lists use it), so ``account:42`` narrows every list view at once.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Static

from jobcore.display import printable

from ..messages import SetFilter
from ..scope import Scope
from .base import console_of

PLACEHOLDER = "account:42  org:org-9  acct:000123  res:777  type:launch  or a job id (8+ hex)"


class FilterBar(Vertical):
    """Hidden until ``/``; escape clears it, enter goes back to the list. A word that does
    not read is said in full on a line of its own below (wrapped), not cut at the edge."""

    # Priority: the app runs them as the key arrives, so the focus is back on the list
    # before the next key is read (a key typed right after enter acts on the list).
    BINDINGS = [
        Binding("escape", "clear", "Clear filter", show=False, priority=True),
        Binding("enter", "submit", "To the list", show=False, priority=True),
    ]

    def __init__(self, target: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.target = target  # the list it filters: where enter and escape send the focus

    def compose(self) -> ComposeResult:
        with Horizontal(classes="filter-row"):
            yield Static(Text("/ ", style="bold"), classes="filter-label")
            yield Input(placeholder=PLACEHOLDER, id="filter-input", compact=True)
            yield Static(id="filter-status")
        yield Static(id="filter-error")

    def on_mount(self) -> None:
        scope = console_of(self).scope
        self.query_one(Input).value = scope.text
        self.display = bool(scope.text)
        self.watch(self.app, "scope", self._show, init=True)

    def _show(self, scope: Scope) -> None:
        status = self.query_one("#filter-status", Static)
        error = self.query_one("#filter-error", Static)
        error.display = bool(scope.error)
        if scope.error:
            kept = f"still showing {printable(scope.label)}" if scope.query else "showing everything"
            status.update(Text("✖ does not read: see below", style="bold red", no_wrap=True, overflow="ellipsis"))
            error.update(Text.assemble(("✖ ", "bold red"), (printable(scope.error), "bold red"), f" ({kept})"))
        elif scope.query:
            status.update(Text(f"✓ {printable(scope.label)}", style="green", no_wrap=True, overflow="ellipsis"))
        else:
            status.update(Text("type to filter · enter: to the list · escape: clear", style="dim"))
        if scope.text and not self.display:
            self.display = True
        inp = self.query_one(Input)
        if inp.value != scope.text and not inp.has_focus:
            # Changed on another screen's filter line. Never while typing here: the answer to an
            # earlier keystroke would overwrite the later ones.
            inp.value = scope.text

    def open(self) -> None:
        self.display = True
        self.query_one(Input).focus()

    @property
    def editing(self) -> bool:
        return self.display and self.query_one(Input).has_focus

    @on(Input.Changed, "#filter-input")
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        # Only what the operator types: a value set from the shared filter (``_show``,
        # on another screen's line) said nothing new, and would echo back stale text
        # while the two lines' changes cross (a loop that froze the console).
        if event.input.has_focus:
            self.post_message(SetFilter(event.value))

    def action_submit(self) -> None:
        if not self.query_one(Input).value.strip():
            self.display = False
        self._back()

    def action_clear(self) -> None:
        self.query_one(Input).value = ""
        self.post_message(SetFilter(""))
        self.display = False
        self._back()

    def _back(self) -> None:
        self.screen.query_one(self.target).focus()
