"""The header line: where we are connected, whether the link is up, and what is running.

Every value carries its label ("Redis 7.2.4", "3 workers", "refresh 1s"), and none is cut
in the middle: when the line is too narrow the least useful parts shorten or go first, in
a fixed order, and the server's version and the worker count stay to the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.widgets import Static

from jobcore.display import duration, printable

from .base import console_of

SEP = (" │ ", "dim")
MIN_URL = 12  # a URL is cut no shorter than this ("redis://ho…" still says where)
ROOMY_URL = 20  # from step CLIP_FROM on, a URL cut to this is better than shorter values
CLIP_FROM = 3  # after refresh, the name and the scheme; before why this server

SLOW_SERVER_S = 0.25  # a poll this long shows in the header: only then worth a glance


@dataclass(frozen=True, slots=True)
class Part:
    """One value of the header. ``short`` replaces it from step ``shorten`` on; it is
    left out from step ``drop`` on (0: never). ``clip``: cut to the room left (the URL)."""

    text: Text
    short: Text | None = None
    shorten: int = 0
    drop: int = 0
    clip: bool = False
    glue: str = ""  # joined by this instead of the separator (the URL's origin)

    def at(self, step: int) -> Text | None:
        if self.drop and step >= self.drop:
            return None
        if self.short is not None and self.shorten and step >= self.shorten:
            return self.short
        return self.text


def _join(parts: list[tuple[Part, Text]], clip_to: int | None = None) -> Text:
    line = Text(" ", no_wrap=True, overflow="ellipsis")
    for i, (part, text) in enumerate(parts):
        if i:
            line.append(part.glue) if part.glue else line.append(*SEP)
        if part.clip and clip_to is not None and text.cell_len > clip_to:
            text = text[: max(clip_to, MIN_URL) - 1]
            text.append("…")
        line.append_text(text)
    return line


def fit(parts: list[Part], width: int, tail: Text | None = None) -> Text:
    """The parts on one line of ``width`` cells: each step shortens or leaves out more;
    from step ``CLIP_FROM`` the URL is cut (to ``ROOMY_URL`` at least) before the next step,
    and last to ``MIN_URL``. ``tail`` (an error) takes what room is left."""
    last = max((max(p.shorten, p.drop) for p in parts), default=0)
    for step in range(last + 1):
        shown = [(p, t) for p in parts if (t := p.at(step)) is not None]
        line = _join(shown)
        if not width or line.cell_len <= width:
            break
        url = next((t for p, t in shown if p.clip), None)
        if step >= CLIP_FROM and url is not None:
            room = url.cell_len - (line.cell_len - width)
            if room >= ROOMY_URL:
                line = _join(shown, clip_to=room)
                break
    if width and line.cell_len > width:
        url = next((t for p, t in shown if p.clip), None)
        if url is not None:
            line = _join(shown, clip_to=url.cell_len - (line.cell_len - width))
    if tail is not None and tail.cell_len:
        line.append(*SEP)
        line.append_text(tail)
    return line


def _short_topology(topology: str) -> str:
    """ "cluster, 3 masters" -> "cluster", "sentinel svc → host:port" -> "sentinel svc"."""
    return topology.split(",", 1)[0].split(" → ", 1)[0].split(" (", 1)[0]


class StatusBar(Static):
    """One line; redrawn only when one of the app states it shows changes."""

    def on_mount(self) -> None:
        for attr in ("link", "snapshot", "server_version", "evicting", "paused", "poll_wait"):
            self.watch(self.app, attr, self._redraw, init=False)
        self._redraw()

    def parts(self) -> tuple[list[Part], Text | None]:
        app = console_of(self)
        link, snap = app.link, app.snapshot
        parts = [Part(Text("jobconsole", "bold"), drop=2)]
        if app.settings.read_only:
            parts.append(Part(Text(" READ-ONLY ", "bold black on yellow")))
        if link.state == "connected":
            parts.append(Part(Text("● connected", "bold green"), Text("● up", "bold green"), shorten=7))
        elif link.state == "connecting":
            parts.append(Part(Text("◌ connecting…", "bold yellow")))
        else:
            state = Text("✖ disconnected, retrying", "bold white on red")
            state.append(f" (attempt {link.failures}, every {duration(link.retry_in)})", "red")
            short = Text("✖ disconnected", "bold white on red")
            short.append(f" (attempt {link.failures})", "red")
            parts.append(Part(state, short, shorten=6))
        if app.paused:
            parts.append(Part(Text("⏸ frozen (p)", "bold yellow")))
        if app.poll_wait:
            parts.append(Part(Text(f"waiting for server {app.poll_wait:.0f}s", "bold yellow")))
        url = printable(app.display_url)
        bare = url.removeprefix("redis://")  # the scheme everyone assumes; rediss:// (TLS) stays
        parts.append(Part(Text(url, "cyan"), Text(bare, "cyan"), shorten=3, clip=True))
        if app.settings.origin:  # no URL was given: say which server was picked, and why
            parts.append(Part(Text(f"({printable(app.settings.origin)})", "dim"), drop=4, glue=" "))
        if app.server_version:
            parts.append(Part(Text(printable(app.server_version))))
        if snap is not None:  # before what may be cut at the end of the line
            n = snap.stats.workers
            workers = Text(f"{n} worker{'s' if n != 1 else ''}", "bold" if n else "bold yellow")
            short = workers.copy()
            if snap.latency >= SLOW_SERVER_S:
                workers.append(f" · slow: {snap.latency * 1000:,.0f} ms", "bold yellow")
                short.append(" · slow", "bold yellow")
            parts.append(Part(workers, short, shorten=5))
        if app.evicting:
            policy = printable(app.evicting)
            warning = Text(f"⚠ maxmemory-policy {policy} may evict jobs", "bold white on red")
            parts.append(Part(warning, Text(f"⚠ evicts: {policy}", "bold white on red"), shorten=6))
        if snap is not None and snap.topology and snap.topology != "memory":
            topology = printable(snap.topology)
            if topology.startswith("standalone"):  # the usual case: the first to give way
                parts.append(Part(Text(topology), drop=5))
            else:
                parts.append(Part(Text(topology), Text(_short_topology(topology)), shorten=6))
        if snap is not None:
            parts.append(Part(Text(f"refresh {app.settings.refresh:g}s", "dim"), drop=1))
        tail = Text(printable(link.error), "red") if link.state == "disconnected" and link.error else None
        return parts, tail

    def _redraw(self, *_: Any) -> None:
        parts, tail = self.parts()
        self.update(fit(parts, self.size.width, tail), layout=False)  # one line: no layout pass per poll

    def on_resize(self) -> None:
        self._redraw()
