"""The main screen's live panels: queues, in-flight jobs, workers, the embedded worker's log."""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from rich.console import RenderableType
from rich.text import Text
from textual.events import Resize
from textual.widgets import RichLog

from jobcore import InFlightJob, TypeStats, WorkerInfo
from jobcore.display import FIELD_CHARS, clipped, duration, field_text, preview, printable
from jobcore.limits import IN_FLIGHT_ALL

from ..embedded import EmbeddedStatus, LogLine
from ..format import clock, count, per_minute, rate, short_id, sparkline
from ..scope import in_flight_matches
from ..snapshot import Snapshot
from .base import console_of
from .tables import Cells, LiveTable

LOG_LINES = 2000  # lines the worker log keeps
TOTAL_KEY = "\x00total"  # no job type can contain a NUL... and it sorts nowhere: we place it


def _num(n: int, style: str = "") -> Text:
    return Text(count(n), style=style, justify="right")


def _right(text: str, style: str = "") -> Text:
    return Text(text, style=style, justify="right")


class QueuesTable(LiveTable):
    """One row per job type, and a total row."""

    COLUMNS = (
        ("type", "type"),
        ("pending", "pending"),
        ("in flight", "in_flight"),
        ("processed", "processed"),
        ("failed", "failed"),
        ("dead", "dead"),
        ("oldest", "oldest"),
        ("proc/s", "rate"),
        ("last 1h", "trend"),
    )

    def __init__(self, *, id: str | None = None) -> None:
        right = ("pending", "in_flight", "processed", "failed", "dead", "oldest", "rate")
        super().__init__(self.COLUMNS, right=right, id=id)
        self.trend_width = 12  # 0: no room for the chart, its column left out
        self.name_width: int | None = None  # type names cut to this when even that is not enough

    def on_mount(self) -> None:
        self.border_title = "Queues"
        self.watch(self.app, "snapshot", self.show, init=True)
        self.watch(self.app, "history", lambda _: self.show(console_of(self).snapshot), init=False)

    def on_resize(self, event: Resize) -> None:
        self.show(console_of(self).snapshot)

    def _fit(self, rows: list[Cells]) -> tuple[int, int | None]:
        """The chart's width and the type names' room so that no column header is cut:
        the chart narrows, then leaves; then long type names are cut (never below 8)."""
        want = 24 if self.app.size.width >= 110 else 12
        room = self.scrollable_content_region.width
        if not room:
            return want, None
        # Each cell gets a one-space pad (tables._pad); the chart's column is the last.
        widths = [len(label) + 1 for label, _ in self.COLUMNS[:-1]]
        for cells in rows:
            for i, c in enumerate(cells[:-1]):
                widths[i] = max(widths[i], (c.cell_len if isinstance(c, Text) else len(str(c))) + 1)
        left = room - sum(widths) - 1
        if left >= len("last 1h"):
            return min(want, left), None
        if left >= 0:
            return 0, None  # no chart: "last 1h" is not cut in half (h shows the history)
        return 0, max(8, widths[0] - 1 + left)

    def _row(self, t: TypeStats, snap: Snapshot, name_width: int | None = None) -> Cells:
        app = console_of(self)
        name = Text(printable(t.job_type), style="bold")
        if t.partitions > 1:
            name.append(f" ×{t.partitions}", style="dim")  # noqa: RUF001 - partitions: spread over that many streams
        if t.pending > 0 and t.served_by == 0:
            name.append(" ⚠", style="yellow")
        if t.problem:
            name.append(" ✖", style="bold red")  # corrupt data where its keys are; the subtitle says so
        if t.schema_versions > 1:
            name.append(" ≠", style="bold yellow")  # its live workers disagree on the args schema
        if t.paused:
            name.append(" paused", style="bold black on yellow")
        if t.fair:
            name.append(" fair", style="cyan")  # in turn across accounts (a: who waits, the limits)
        if name_width is not None and name.cell_len > name_width:  # cut the name, keep its marks
            plain = printable(t.job_type)
            marks = name[len(plain) :]
            name = Text(clipped(t.job_type, max(8, name_width - marks.cell_len)), style="bold") + marks
        failed = _num(t.failed, "yellow" if t.failed else "dim")
        if t.failed_kept != t.failed:
            failed = _right(f"{count(t.failed)} ({count(t.failed_kept)} kept)", "yellow")
        age = t.oldest_pending_age
        age_style = "bold red" if age and age >= 300 else "yellow" if age and age >= 60 else ""
        # The last hour from the history kept in Redis: there from the first read, whoever restarted.
        trend = per_minute(app.history, t.job_type, 60, self.trend_width) if self.trend_width else []
        return (
            name,
            _num(t.pending, "bold" if t.pending else "dim"),
            _num(t.in_flight, "cyan" if t.in_flight else "dim"),
            _num(t.processed, "green" if t.processed else "dim"),
            failed,
            _num(t.dead, "bold red" if t.dead else "dim"),
            _right(duration(age) if age is not None else "-", age_style),
            _right(rate(app.rates.rate(t.job_type))),
            Text(sparkline(trend), style="green"),
        )

    def show(self, snap: Snapshot | None) -> None:
        if snap is None:
            return
        types = sorted(snap.stats.types.values(), key=lambda t: t.job_type)
        s = snap.stats
        oldest = max((t.oldest_pending_age or 0.0 for t in types), default=0.0)
        total: Cells = (
            Text(f"total ({len(types)})", style="bold italic"),
            _num(s.pending, "bold"),
            _num(s.in_flight, "bold"),
            _num(s.processed, "bold"),
            _num(s.failed, "bold"),
            _num(s.dead, "bold"),
            _right(duration(oldest) if any(t.pending for t in types) else "-", "bold"),
            _right(rate(_sum(console_of(self).rates.rate(t.job_type) for t in types)), "bold"),
            Text(""),
        )
        fit = self._fit([*(self._row(t, snap) for t in types), total])
        if fit != (self.trend_width, self.name_width):
            self.trend_width, self.name_width = fit
            self._column_spec[-1] = ("last 1h" if self.trend_width else "", "trend")
            self.reset()  # auto-width columns only grow: start over
        rows = [(f"type:{t.job_type}", self._row(t, snap, self.name_width)) for t in types]
        self.sync([*rows, (TOTAL_KEY, total)])
        unserved = s.unserved
        corrupt = sorted(t.job_type for t in types if t.problem)
        skewed = sorted(t.job_type for t in types if t.schema_versions > 1)
        paused = sorted(t.job_type for t in types if t.paused)
        # Text, not a str: a border title would read a type named "report[/]" as markup.
        if corrupt:
            subtitle = f"✖ not what jobcore wrote in the keys of: {', '.join(printable(n) for n in corrupt)}"
        elif skewed:
            subtitle = f"≠ live workers disagree on the args schema of: {', '.join(printable(n) for n in skewed)}"
        elif paused:
            subtitle = f"paused (workers take none of their jobs; P resumes): {', '.join(printable(n) for n in paused)}"
        elif unserved:
            subtitle = f"⚠ no live worker serves: {', '.join(printable(n) for n in sorted(unserved))}"
        else:
            subtitle = f"as of {clock(snap.taken_at)}Z"
        self.border_subtitle = Text(subtitle)

    def job_type_at_cursor(self) -> str | None:
        key = self.selected_key
        return key[5:] if key and key.startswith("type:") else None


def _sum(values: Any) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


# The six log fields every job line carries, as columns (job_type first: it reads best).
LOG_FIELD_COLUMNS = (
    ("job_type", "job_type"),
    ("job_id", "job_id"),
    ("account_id", "account_id"),
    ("account_number", "account_number"),
    ("org_id", "org_id"),
    ("reservation_id", "reservation_id"),
)


class InFlightTable(LiveTable):
    """The jobs being processed now, longest running first, one page at a time.
    How long, which attempt and where come right after the job: at 80 columns they
    are on screen, and the identity fields that follow scroll into view (left/right)."""

    COLUMNS = (
        ("job_type", "job_type"),
        ("job_id", "job_id"),
        ("running", "running"),
        ("attempt", "attempt"),
        ("worker", "worker"),
        *LOG_FIELD_COLUMNS[2:],
        ("started", "started"),
    )

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(self.COLUMNS, right=("account_id", "running", "attempt"), id=id)
        self.page = 0
        self.jobs: dict[str, InFlightJob] = {}
        self.total = 0

    def on_mount(self) -> None:
        self.border_title = "In flight"
        self.watch(self.app, "snapshot", self.show, init=True)
        self.watch(self.app, "scope", lambda _: self.show(console_of(self).snapshot), init=False)

    @staticmethod
    def key_of(job: InFlightJob) -> str:
        return f"{job.job_type}\x1f{job.entry_id}"

    @staticmethod
    def _row(job: InFlightJob) -> Cells:
        attempt_style = "bold yellow" if job.attempt > 1 else ""
        return (
            Text(clipped(job.job_type, FIELD_CHARS), style="bold"),
            Text(short_id(job.job_id), style="red" if job.error else ""),
            _right(duration(job.running_for), "bold red" if job.running_for >= 300 else "cyan"),
            _right(str(job.attempt), attempt_style),
            Text(clipped(job.worker, 32)),
            _right(field_text(job.account_id, FIELD_CHARS)),
            Text(field_text(job.account_number, FIELD_CHARS)),
            Text(field_text(job.org_id, FIELD_CHARS)),
            Text(field_text(job.reservation_id, FIELD_CHARS)),
            Text(clock(job.started_at)),
        )

    def pages(self) -> int:
        size = console_of(self).settings.in_flight_page
        return max(1, -(-self.total // size))

    def show(self, snap: Snapshot | None) -> None:
        if snap is None:
            return
        app = console_of(self)
        size = app.settings.in_flight_page
        query = app.scope.query
        rows = snap.in_flight
        self.total = snap.stats.in_flight
        if query is not None:
            # The poll matched every in-flight job against the filter it was taken with; narrow
            # to the one in force now, at once, while the next poll reads with it.
            rows = tuple(j for j in rows if in_flight_matches(query, j))
            self.total = snap.in_flight_matches if snap.query == query else len(rows)
        self.page = min(self.page, self.pages() - 1)
        page_jobs = rows[self.page * size : (self.page + 1) * size]
        self.jobs = {self.key_of(j): j for j in page_jobs}
        self.sync([(self.key_of(j), self._row(j)) for j in page_jobs])
        if query is not None:
            title = Text(f"In flight {count(self.total)} of {count(snap.stats.in_flight)} · ")
            title.append(printable(str(query)), "bold yellow")
            if snap.stats.in_flight > IN_FLIGHT_ALL:
                title.append(f" (the first {count(IN_FLIGHT_ALL)} searched)")
            self.border_title = title
        else:
            self.border_title = f"In flight {count(self.total)}"
        if not page_jobs:
            self.border_subtitle = "no in-flight job matches the filter" if query is not None else "nothing in flight"
        else:
            first = self.page * size + 1
            pages = f"page {self.page + 1}/{self.pages()}  [ ] to page  · " if self.pages() > 1 else ""
            self.border_subtitle = (
                f"{pages}{count(first)}-{count(first + len(page_jobs) - 1)} longest running first · enter: details"
            )

    def selected_job(self) -> InFlightJob | None:
        key = self.selected_key
        return self.jobs.get(key) if key else None


class WorkersTable(LiveTable):
    COLUMNS = (
        ("worker", "id"),
        ("state", "state"),
        ("busy", "busy"),
        ("heartbeat", "heartbeat"),
        ("processed", "processed"),
        ("failed", "failed"),
        ("host", "host"),
        ("pid", "pid"),
        ("types", "types"),
    )

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(self.COLUMNS, right=("busy", "heartbeat", "processed", "failed", "pid"), id=id)

    def on_mount(self) -> None:
        self.border_title = "Workers"
        app = console_of(self)
        self.watch(self.app, "snapshot", self.show, init=True)
        self.watch(self.app, "embedded_status", lambda _: self.show(app.snapshot), init=False)

    @staticmethod
    def _row(w: WorkerInfo, snap: Snapshot, own: str) -> Cells:
        state_style = {"alive": "green", "stale": "bold yellow", "lost": "bold red"}[w.state]
        row_style = {"alive": "", "stale": "yellow", "lost": "red dim"}[w.state]
        name = Text(clipped(w.id, 26), style=row_style or "bold")
        if w.id == own:
            name.append(" ◆", style="magenta")
        busy_style = "bold" if w.busy >= w.concurrency and w.concurrency else row_style
        return (
            name,
            Text(w.state, style=state_style),
            _right(f"{w.busy}/{w.concurrency}", busy_style),
            _right(f"{duration(snap.heartbeat_age(w))} ago", state_style if w.state != "alive" else ""),
            _right(count(w.processed), row_style),
            _right(count(w.failed), row_style),
            Text(clipped(w.host, FIELD_CHARS), style=row_style),
            _right(str(w.pid), row_style),
            Text(clipped(",".join(w.types), 200), style=row_style or "dim"),
        )

    @staticmethod
    def live(w: WorkerInfo, status: EmbeddedStatus) -> WorkerInfo:
        """The console's own worker as it is now, not as of its last heartbeat (which
        is seconds old: 10/10 busy there while it sits idle here)."""
        if not status.worker_id or w.id != status.worker_id or status.state == "stopped":
            return w
        return replace(w, busy=status.busy, processed=status.processed, failed=status.failed)

    def show(self, snap: Snapshot | None) -> None:
        if snap is None:
            return
        status = console_of(self).embedded_now()  # the reactive copy is up to a tick old
        own = status.worker_id
        workers = [self.live(w, status) for w in snap.workers]
        self.sync([(w.id, self._row(w, snap, own)) for w in workers])
        alive = sum(1 for w in snap.workers if w.state == "alive")
        stale = sum(1 for w in snap.workers if w.state != "alive")
        self.border_title = f"Workers {alive}" + (f" · {stale} not heartbeating" if stale else "")
        self.border_subtitle = "◆ this console" if own else ("no workers" if not snap.workers else "")


LEVEL_STYLES = {"DEBUG": "dim", "INFO": "green", "WARNING": "yellow", "ERROR": "bold red", "CRITICAL": "bold red"}


class WorkerLog(RichLog):
    """The embedded worker's log lines, each with its job's six fields.

    RichLog wraps a line once, when written; the lines are kept (as many as the log
    holds) and written again when the width changes, so a resize re-wraps them."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            id=id, max_lines=LOG_LINES, min_width=20, wrap=True, markup=False, highlight=False, auto_scroll=True
        )
        self._kept: deque[RenderableType] = deque(maxlen=LOG_LINES)
        self._placeholder: Text | None = None
        self._wrapped_at = 0

    def on_mount(self) -> None:
        app = console_of(self)
        self.watch(self.app, "embedded_status", self.show_status, init=True)
        if app.settings.read_only:
            self._put(Text("read-only: the embedded worker is disabled", style="dim"))
        else:
            self._placeholder = Text(
                f"press s to run a worker in this console ({app.settings.handlers}); its log lines appear here",
                style="dim",
            )
            self._put(self._placeholder)

    def _put(self, line: RenderableType) -> None:
        self._kept.append(line)
        self._write(line)

    def _write(self, line: RenderableType, scroll_end: bool | None = None) -> None:
        # At the width of the panel: left to measure itself, RichLog wraps at the
        # console's width, which is not the panel's.
        width = self.scrollable_content_region.width if self._size_known else None
        self.write(line, width=max(self.min_width, width) if width else None, scroll_end=scroll_end)

    def on_resize(self, event: Resize) -> None:
        # After RichLog's own handler has laid out the first size: re-wrap for the new one.
        self.call_after_refresh(self._rewrap)

    def _rewrap(self) -> None:
        width = self.scrollable_content_region.width
        if not self._size_known or width == self._wrapped_at:
            return
        self._wrapped_at = width
        self._rewrite()

    def _rewrite(self) -> None:
        at_end = self.is_vertical_scroll_end
        self.clear()
        for line in self._kept:
            self._write(line, scroll_end=False)
        if at_end:
            self.scroll_end(animate=False, immediate=True)

    def show_status(self, status: EmbeddedStatus) -> None:
        app = console_of(self)
        if status.state != "stopped" and self._placeholder is not None:
            # The hint to press s is done with once the worker runs.
            self._kept.remove(self._placeholder)
            self._placeholder = None
            self._rewrite()
        if status.state == "stopped":
            self.border_title = "Embedded worker ■ stopped"
            hint = "" if app.settings.read_only else " · s: start"
            error = f"last run: {printable(status.error)} · " if status.error else ""
            self.border_subtitle = Text(f"{error}concurrency {status.concurrency}{hint}")
        else:
            self.border_title = f"Embedded worker ▶ {status.state} · {status.busy}/{status.concurrency} busy"
            tail = "s: stop" if status.state != "stopping" else "finishing running jobs…"
            # Counted as this run settles jobs, so not the queues' dead column (what the
            # dead list holds now: a requeued or purged job leaves it, a job can die twice).
            self.border_subtitle = (
                f"this run: {count(status.processed)} done · {count(status.failed)} failed · "
                f"{count(status.dead)} dead-lettered · {tail}"
            )

    def add(self, lines: list[LogLine], dropped: int) -> None:
        if dropped:
            self._put(Text(f"… {count(dropped)} log lines dropped (too many to show)", style="bold yellow"))
        for line in lines:
            self._put(render_line(line))

    @property
    def kept(self) -> list[RenderableType]:
        """The lines as written, oldest first (what a re-wrap writes again)."""
        return list(self._kept)


def render_line(line: LogLine) -> RenderableType:
    t = Text()
    t.append(datetime.fromtimestamp(line.created, tz=UTC).strftime("%H:%M:%S "), "dim")
    t.append(f"{line.levelname:<7} ", LEVEL_STYLES.get(line.levelname, ""))
    t.append(preview(line.message))
    for key, v in line.fields:
        t.append(f" {key}=", "dim")
        t.append(field_text(v, FIELD_CHARS), "cyan")
    if line.exc:
        t.append("\n" + preview(line.exc, multiline=True), "red")
    return t
