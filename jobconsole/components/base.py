"""What every widget and screen shares: the console as a ConsoleContext (never the
concrete app), and the read-only rule for screens whose keys come from keys.py."""

from __future__ import annotations

from typing import ClassVar, cast

from textual.dom import DOMNode
from textual.events import Resize
from textual.widgets import Footer

from ..context import ConsoleContext
from ..keys import Key, mutating_actions


def console_of(node: DOMNode) -> ConsoleContext:
    return cast(ConsoleContext, node.app)


class ConsoleFooter(Footer):
    """The footer; below 100 columns it leaves out "^p palette" so q Quit keeps its place
    (ctrl+p still opens the palette, and ? says so)."""

    def on_resize(self, event: Resize) -> None:
        self.show_command_palette = event.size.width >= 100


class Keyed:
    """A screen whose BINDINGS come from a table in keys.py: with --read-only its
    mutating actions are disabled, which hides them from the footer (and lets the
    refusing twin binding answer the key)."""

    KEYS: ClassVar[tuple[Key, ...]] = ()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        assert isinstance(self, DOMNode)
        return not (action in mutating_actions(self.KEYS) and console_of(self).settings.read_only)
