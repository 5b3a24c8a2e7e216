"""The main screen: queues on top, in-flight jobs, then workers beside the worker log."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable

from jobcore.display import FIELD_CHARS, clipped, duration, field_text

from ..keys import MAIN, bindings
from ..messages import (
    CancelJob,
    ChangeConcurrency,
    InFlightPage,
    OpenAudit,
    OpenBad,
    OpenEnqueue,
    OpenFair,
    OpenFind,
    OpenHistory,
    OpenWhy,
    PauseType,
    PollNow,
    QuitRequested,
    TogglePause,
    ToggleWorker,
)
from .base import ConsoleFooter, Keyed, console_of
from .detail import JobDetailScreen
from .filterbar import FilterBar
from .help import HelpScreen
from .panels import InFlightTable, QueuesTable, WorkerLog, WorkersTable
from .status import StatusBar
from .waiting import WaitingScreen


class MainScreen(Keyed, Screen[None]):
    KEYS = MAIN
    BINDINGS = bindings(MAIN)

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Vertical(id="body"):
            yield QueuesTable(id="queues")
            yield FilterBar("#in-flight", id="filter")
            yield InFlightTable(id="in-flight")
            with Horizontal(id="bottom"):
                yield WorkersTable(id="workers")
                yield WorkerLog(id="log")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.query_one(InFlightTable).focus()
        self.watch(self.app, "link", self._mark_stale, init=True)
        self.watch(self.app, "poll_wait", self._mark_stale, init=False)

    def _mark_stale(self) -> None:
        # Last known numbers stay visible but dimmed: nobody should trust them as live.
        app = console_of(self)
        self.query_one("#body").set_class(app.link.state == "disconnected" or app.poll_wait > 0, "-stale")

    # ---- actions ----------------------------------------------------------

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(console_of(self).settings.read_only))

    def action_enqueue(self) -> None:
        queues = self.query_one(QueuesTable)
        self.post_message(OpenEnqueue(queues.job_type_at_cursor() if queues.has_focus else None))

    def action_worker(self) -> None:
        self.post_message(ToggleWorker())

    def action_bad(self, which: str) -> None:
        self.post_message(OpenBad(which))

    def action_refresh(self) -> None:
        self.post_message(PollNow())

    def action_freeze(self) -> None:
        self.post_message(TogglePause())

    def action_filter(self) -> None:
        self.query_one(FilterBar).open()

    def action_find(self) -> None:
        self.post_message(OpenFind())

    def action_history(self) -> None:
        self.post_message(OpenHistory())

    def action_audit(self) -> None:
        self.post_message(OpenAudit())

    def action_waiting(self) -> None:
        row = self._focused_row("waiting")
        if row is not None:
            self.app.push_screen(WaitingScreen(row[0]))

    def _focused_row(self, what: str) -> tuple[str, str | None] | None:
        """(type, job id) of the row the user sees the cursor on: a queue row when the queues
        table has focus, an in-flight job's when that table has; never an unfocused table's
        cursor (an invisible row). None after saying how to pick one."""
        queues, flight = self.query_one(QueuesTable), self.query_one(InFlightTable)
        if queues.has_focus and (job_type := queues.job_type_at_cursor()) is not None:
            return job_type, None
        if flight.has_focus and (job := flight.selected_job()) is not None:
            return job.job_type, job.job_id
        self.notify(f"{what}: select a queue row or an in-flight job first (tab to it)", severity="warning")
        return None

    def action_why(self) -> None:
        row = self._focused_row("why")
        if row is not None:
            self.post_message(OpenWhy(*row))

    def action_accounts(self) -> None:
        row = self._focused_row("accounts")
        if row is not None:
            self.post_message(OpenFair(row[0]))

    def action_pause_type(self) -> None:
        row = self._focused_row("pause")
        snap = console_of(self).snapshot
        if row is None or snap is None:
            return
        job_type = row[0]
        stats = snap.stats.types.get(job_type)
        self.post_message(PauseType(job_type, pause=not (stats is not None and stats.paused)))

    def action_cancel(self) -> None:
        flight = self.query_one(InFlightTable)
        job = flight.selected_job() if flight.has_focus else None  # never a row whose cursor is hidden
        if job is None or not job.job_id:
            self.notify("cancel: select a running job in the in-flight table first", severity="warning")
            return
        about = (
            f"  {clipped(job.job_type, FIELD_CHARS)} job {job.job_id}\n"
            f"  account_id {field_text(job.account_id)} · worker {clipped(job.worker, FIELD_CHARS)}\n"
            f"  running {duration(job.running_for)} · attempt {job.attempt}"
        )
        self.post_message(CancelJob(job.job_id, about))

    def action_quit(self) -> None:
        self.post_message(QuitRequested())

    def action_page(self, step: int) -> None:
        table = self.query_one(InFlightTable)
        page = max(0, min(table.page + step, table.pages() - 1))
        if page != table.page:
            table.page = page
            self.post_message(InFlightPage(page))

    def action_concurrency(self, step: int) -> None:
        self.post_message(ChangeConcurrency(step))

    @on(DataTable.RowSelected, "#in-flight")
    def _open_in_flight(self) -> None:
        job = self.query_one(InFlightTable).selected_job()
        if job is not None:
            self.app.push_screen(JobDetailScreen(job))

    @on(DataTable.RowSelected, "#queues")
    def _queue_selected(self) -> None:
        job_type = self.query_one(QueuesTable).job_type_at_cursor()
        if job_type is not None:
            self.post_message(OpenEnqueue(job_type))
