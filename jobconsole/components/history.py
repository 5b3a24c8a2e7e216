"""``h``: the per-minute history workers keep in Redis, as a chart per type, with
the window's totals and run-time p50/p95 beside it. There the moment the console
opens (the app reads it at start and every ``history_refresh`` seconds)."""

from __future__ import annotations

import itertools
from datetime import timedelta

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from jobcore import History, TypeHistory
from jobcore.display import printable

from ..format import bars, count, millis, per_minute
from ..keys import HISTORY, bindings, hint
from ..messages import SetHistorySpan
from .base import ConsoleFooter, Keyed, console_of
from .status import StatusBar

DAY = 1440
HOUR = 60
CHART_ROWS = 3
SIDE = 34  # columns of totals beside each chart


def _span(minutes: int) -> str:
    return "the last hour" if minutes == HOUR else "the last 24 hours"


class HistoryChart(Static):
    """Every type's history, redrawn when a new read arrives or the width changes."""

    def on_mount(self) -> None:
        self.watch(self.app, "history", lambda _: self.redraw(), init=True)

    def on_resize(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        app = console_of(self)
        history, minutes = app.history, app.history_minutes
        if history is None or history.minutes < minutes:
            self.update(Text(f"reading {_span(minutes)} of history from the server…", style="dim"))
            return
        room = max(10, self.size.width - SIDE - 1 if self.size.width else HOUR)
        # Whole minutes per column: the widest chart that divides the span evenly.
        width = max(w for w in range(1, min(minutes, room) + 1) if minutes % w == 0)
        if not history.types:
            self.update(Text("no job type has any history yet: workers add to it as they settle jobs", style="dim"))
            return
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True, width=width)
        grid.add_column(no_wrap=True)
        for name in sorted(history.types):
            th = history.types[name]
            values = per_minute(history, name, minutes, width)
            chart = Text()
            for line in bars(values, CHART_ROWS):
                # Blanks unstyled, bars green: each run is its own span (an SVG export places each at its cell).
                for blank, run in itertools.groupby(line, key=lambda ch: ch == " "):
                    chart.append("".join(run), "" if blank else "green")
                chart.append("\n")
            chart.append_text(_failures(th, minutes, width))
            grid.add_row(chart, _side(name, th, minutes, max((v or 0.0 for v in values), default=0.0), width))
        grid.add_row(_axis(history, minutes, width), Text(""))
        self.update(grid)


def _failures(th: TypeHistory, minutes: int, width: int) -> Text:
    """One row under the chart: ✖ where jobs failed or died in that slice."""
    per = [r.failed + r.dead for r in th.rows[-minutes:]]
    per = [0] * (minutes - len(per)) + per
    t = Text()
    for i in range(width):
        bad = sum(per[i * minutes // width : (i + 1) * minutes // width])
        t.append("✖" if bad else "·", "bold red" if bad else "dim")
    return t


def _side(name: str, th: TypeHistory, minutes: int, top: float, width: int) -> Text:
    per = "min" if minutes == width else f"{minutes // width} min"
    t = Text()
    t.append(printable(name), "bold")
    t.append(f"  top {count(int(top))}/{per}\n", "dim")
    t.append(f"{count(th.processed)} processed", "green")
    t.append(" · ")
    t.append(f"{count(th.failed)} failed", "yellow" if th.failed else "dim")
    t.append(" · ")
    t.append(f"{count(th.dead)} dead\n", "bold red" if th.dead else "dim")
    t.append("run time p50 ", "dim")
    t.append(millis(th.p50_ms), "bold cyan")
    t.append(" · p95 ", "dim")
    t.append(millis(th.p95_ms), "bold cyan")
    t.append("\n")
    return t


def _axis(history: History, minutes: int, width: int) -> Text:
    start = history.until - timedelta(minutes=minutes - 1)
    fmt = "%H:%M"
    left, right = start.strftime(fmt), history.until.strftime(fmt) + " UTC"
    return Text(left + " " * max(1, width - len(left) - len(right)) + right, style="dim")


class HistoryScreen(Keyed, Screen[None]):
    KEYS = HISTORY
    BINDINGS = bindings(HISTORY)

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with VerticalScroll(id="history-body"):
            yield HistoryChart(id="history-chart")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.watch(self.app, "history_minutes", self._titles, init=True)
        self.watch(self.app, "history", lambda _: self._titles(console_of(self).history_minutes), init=False)
        self.query_one("#history-body").focus()

    def _titles(self, minutes: int) -> None:
        body = self.query_one("#history-body")
        body.border_title = f"History · jobs settled over {_span(minutes)} (kept in Redis)"
        keys = hint(HISTORY, console_of(self).settings.read_only, ["span", "close"])
        body.border_subtitle = f"✖ failed or dead in that slice · {keys} · jobcore stats --history"
        self.query_one(HistoryChart).redraw()

    def action_span(self) -> None:
        self.post_message(SetHistorySpan(HOUR if console_of(self).history_minutes == DAY else DAY))

    def action_close(self) -> None:
        self.post_message(SetHistorySpan(HOUR))
        self.dismiss()
