"""Typed access to the console app from widgets and screens, and what every screen shares."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual.dom import DOMNode

from ..keys import Key, mutating_actions

if TYPE_CHECKING:
    from ..app import JobConsole


def console_of(node: DOMNode) -> JobConsole:
    return cast("JobConsole", node.app)


class Keyed:
    """A screen whose BINDINGS come from a table in keys.py: with --read-only its
    mutating actions are disabled, which hides them from the footer (and lets the
    refusing twin binding answer the key)."""

    KEYS: ClassVar[tuple[Key, ...]] = ()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        assert isinstance(self, DOMNode)
        return not (action in mutating_actions(self.KEYS) and console_of(self).settings.read_only)
