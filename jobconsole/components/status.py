"""The header line: where we are connected, whether the link is up, and what is running."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static

from ..format import duration
from .base import console_of

SEP = (" │ ", "dim")


class StatusBar(Static):
    """One line; redrawn only when one of the app states it shows changes."""

    def on_mount(self) -> None:
        app = console_of(self)
        for attr in ("link", "snapshot", "server_version", "paused", "poll_wait"):
            self.watch(app, attr, self._redraw, init=False)
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
            t.append("  ⏸ paused (p)", "bold yellow")
        if app.poll_wait:
            t.append(f"  waiting for server {app.poll_wait:.0f}s", "bold yellow")
        t.append(*SEP)
        t.append(app.display_url, "cyan")
        if app.server_version:
            t.append(*SEP)
            t.append(app.server_version)
        if snap is not None and snap.topology and snap.topology != "memory":
            t.append(*SEP)
            t.append(snap.topology)
        if snap is not None:
            t.append(*SEP)
            n = snap.stats.workers
            t.append(f"{n} worker{'s' if n != 1 else ''}", "bold" if n else "bold yellow")
            t.append(*SEP)
            t.append(f"every {app.settings.refresh:g}s", "dim")
            if snap.latency >= 0.25:  # only worth a glance when the server is slow
                t.append(f" · slow: {snap.latency * 1000:,.0f} ms", "bold yellow")
        if link.state == "disconnected" and link.error:
            t.append(*SEP)
            t.append(link.error, "red")
        self.update(t, layout=False)  # one line, fixed size: no layout pass per poll
