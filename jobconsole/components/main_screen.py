"""The main screen: queues on top, in-flight jobs, then workers beside the worker log."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer

from ..keys import MAIN, bindings
from .base import Keyed, console_of
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
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(InFlightTable).focus()
        app = console_of(self)
        self.watch(app, "link", self._mark_stale, init=True)
        self.watch(app, "poll_wait", self._mark_stale, init=False)

    def _mark_stale(self) -> None:
        # Last known numbers stay visible but dimmed: nobody should trust them as live.
        app = console_of(self)
        self.query_one("#body").set_class(app.link.state == "disconnected" or app.poll_wait > 0, "-stale")

    # ---- actions ----------------------------------------------------------

    def action_help(self) -> None:
        from .help import HelpScreen

        self.app.push_screen(HelpScreen(console_of(self).settings.read_only))

    def action_enqueue(self) -> None:
        queues = self.query_one(QueuesTable)
        console_of(self).open_enqueue(queues.job_type_at_cursor() if queues.has_focus else None)

    async def action_worker(self) -> None:
        await console_of(self).toggle_worker()

    def action_bad(self, which: str) -> None:
        console_of(self).open_bad(which)

    def action_refresh(self) -> None:
        console_of(self).poll_now()

    def action_pause(self) -> None:
        console_of(self).toggle_pause()

    def action_quit(self) -> None:
        console_of(self).request_quit()

    def action_page(self, step: int) -> None:
        table = self.query_one(InFlightTable)
        page = max(0, min(table.page + step, table.pages() - 1))
        if page != table.page:
            table.page = page
            console_of(self).set_in_flight_page(page)

    def action_concurrency(self, step: int) -> None:
        console_of(self).change_concurrency(step)

    @on(DataTable.RowSelected, "#in-flight")
    def _open_in_flight(self) -> None:
        job = self.query_one(InFlightTable).selected_job()
        if job is not None:
            from .detail import JobDetailScreen

            self.app.push_screen(JobDetailScreen(job))

    @on(DataTable.RowSelected, "#queues")
    def _queue_selected(self) -> None:
        job_type = self.query_one(QueuesTable).job_type_at_cursor()
        if job_type is not None:
            console_of(self).open_enqueue(job_type)
