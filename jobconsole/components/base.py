"""Typed access to the console app from widgets and screens."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.dom import DOMNode

if TYPE_CHECKING:
    from ..app import JobConsole


def console_of(node: DOMNode) -> JobConsole:
    return cast("JobConsole", node.app)
