"""The header line: where we are connected, whether the link is up, and what is running."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from jobcore.display import duration, printable

from .base import console_of

SEP = (" │ ", "dim")
MIN_URL = 20  # the URL keeps at least this much of the line


class StatusBar(Static):
    """One line; redrawn only when one of the app states it shows changes."""

    def on_mount(self) -> None:
        for attr in ("link", "snapshot", "server_version", "evicting", "paused", "poll_wait"):
            self.watch(self.app, attr, self._redraw, init=False)
        self._redraw()

    def _redraw(self, *_: Any) -> None:
        app = console_of(self)
        link, snap = app.link, app.snapshot
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" jobconsole", "bold")
        if app.settings.read_only:
            t.append(" ")
            t.append(" READ-ONLY ", "bold black on yellow")
        t.append(*SEP)
        if link.state == "connected":
            t.append("● connected", "bold green")
        elif link.state == "connecting":
            t.append("◌ connecting…", "bold yellow")
        else:
            t.append("✖ disconnected, retrying", "bold white on red")
            t.append(f" (attempt {link.failures}, every {duration(link.retry_in)})", "red")
        if app.paused:
            t.append("  ⏸ frozen (p)", "bold yellow")
        if app.poll_wait:
            t.append(f"  waiting for server {app.poll_wait:.0f}s", "bold yellow")
        t.append(*SEP)
        rest = Text()
        if app.settings.origin:  # no URL was given: say which server was picked, and why
            rest.append(f" ({printable(app.settings.origin)})", "dim")
        if app.server_version:
            rest.append(*SEP)
            rest.append(printable(app.server_version))
        if app.evicting:
            rest.append(*SEP)
            rest.append(f"⚠ maxmemory-policy {printable(app.evicting)} may evict jobs", "bold white on red")
        if snap is not None and snap.topology and snap.topology != "memory":
            rest.append(*SEP)
            rest.append(printable(snap.topology))
        if snap is not None:
            rest.append(*SEP)
            n = snap.stats.workers
            rest.append(f"{n} worker{'s' if n != 1 else ''}", "bold" if n else "bold yellow")
            if snap.latency >= 0.25:  # only worth a glance when the server is slow
                rest.append(f" · slow: {snap.latency * 1000:,.0f} ms", "bold yellow")
        if link.state == "disconnected" and link.error:
            rest.append(*SEP)
            rest.append(printable(link.error), "red")
        every = Text.assemble(SEP, (f"every {app.settings.refresh:g}s", "dim")) if snap is not None else Text()
        # A long URL (several Sentinels or seeds) gives way to what follows it,
        # and the refresh period, the least of it, goes first.
        url = printable(app.display_url)
        width = self.size.width
        room = width - t.cell_len - rest.cell_len - every.cell_len
        if width and len(url) > room and room < MIN_URL:
            room += every.cell_len
            every = Text()
        if width and len(url) > room:
            url = url[: max(room, MIN_URL) - 1] + "…"
        t.append(url, "cyan")
        t.append_text(rest)
        t.append_text(every)
        self.update(t, layout=False)  # one line, fixed size: no layout pass per poll

    def on_resize(self) -> None:
        self._redraw()
