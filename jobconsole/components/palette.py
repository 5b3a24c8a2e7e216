"""The command palette (ctrl+p): every action of the screen it was opened on, by name,
from the same table as the footer and the help."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from ..keys import Key, visible
from .base import console_of


class ScreenActions(Provider):
    def _keys(self) -> list[Key]:
        table: tuple[Key, ...] = getattr(self.screen, "KEYS", ())
        return [k for k in visible(table, console_of(self.screen).settings.read_only) if k.action]

    def _hit_help(self, key: Key) -> str:
        return f"{key.help} · key {key.shown_keys}"

    async def discover(self) -> Hits:
        for key in self._keys():
            yield DiscoveryHit(key.label, partial(self.screen.run_action, key.action or ""), help=self._hit_help(key))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for key in self._keys():
            text = f"{key.label}: {key.help}"
            score = matcher.match(text)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(text),
                    partial(self.screen.run_action, key.action or ""),
                    help=f"key {key.shown_keys}",
                )
