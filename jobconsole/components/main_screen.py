"""The main screen: queues on top, in-flight jobs, then workers beside the worker log."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable

from ..keys import MAIN, bindings
from ..messages import (
    ChangeConcurrency,
    InFlightPage,
    OpenBad,
    OpenEnqueue,
    PollNow,
    QuitRequested,
    TogglePause,
    ToggleWorker,
)
from .base import ConsoleFooter, Keyed, console_of
from .detail import JobDetailScreen
from .help import HelpScreen
from .panels import InFlightTable, QueuesTable, WorkerLog, WorkersTable
from .status import StatusBar


class MainScreen(Keyed, Screen[None]):
    KEYS = MAIN
    BINDINGS = bindings(MAIN)

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Vertical(id="body"):
            yield QueuesTable(id="queues")
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

    def action_pause(self) -> None:
        self.post_message(TogglePause())

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
