"""``v`` on a queue row: its waiting jobs, oldest first, a page at a time (jobcore
pending), narrowed by the console's filter (``/``); enter shows one, ``D``
deletes it and ``X`` every one the filter matches, each after a question."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from jobcore import FoundJob, JobQuery, PendingPage
from jobcore.display import FIELD_CHARS, clipped, field_text, printable

from ..format import clock, count, short_id
from ..keys import WAITING, bindings, hint
from .base import Keyed, console_of
from .confirm import ConfirmScreen
from .detail import JobDetailScreen
from .filterbar import FilterBar
from .panels import LOG_FIELD_COLUMNS
from .tables import Cells, LiveTable

WAITING_PAGE = 100  # waiting jobs read per page
COUNT_PAGE = 1_000  # waiting jobs read per call when counting the ones a filter matches


class WaitingTable(LiveTable):
    COLUMNS = (("entry", "entry"), ("enqueued", "enqueued"), *LOG_FIELD_COLUMNS[1:])

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(self.COLUMNS, right=("account_id",), id=id)


class WaitingScreen(Keyed, ModalScreen[None]):
    KEYS = WAITING
    BINDINGS = bindings(WAITING)
    AUTO_FOCUS = "#waiting"  # the list, not the filter line (hidden until /)

    def __init__(self, job_type: str) -> None:
        super().__init__()
        self.job_type = job_type
        self.jobs: dict[str, FoundJob] = {}
        self.page = PendingPage(job_type)
        self.pages: list[str | None] = [None]  # where each page shown so far started
        self.matching: JobQuery | None = None  # the console's filter, as this list last read it

    def compose(self) -> ComposeResult:
        title = Text.assemble(("Waiting jobs  ", "bold"), (printable(self.job_type), "bold cyan"))
        with Vertical(id="dialog", classes="find"):
            yield Static(title, classes="title")
            yield Static(Text("reading…", style="dim"), id="waiting-status")
            yield FilterBar("#waiting", id="waiting-filter")
            yield WaitingTable(id="waiting")
            keys = hint(WAITING, console_of(self).settings.read_only, ["page", "first", "filter", "delete", "close"])
            cli = f"jobcore pending {printable(self.job_type)}"
            yield Static(Text(f"enter: details · {keys} · the same from the shell: {cli}", style="dim"), classes="hint")

    def on_mount(self) -> None:
        self.matching = console_of(self).scope.query
        self.watch(self.app, "scope", self._filtered, init=False)
        self.load()

    def _filtered(self) -> None:
        query = console_of(self).scope.query
        if query != self.matching:
            self.matching, self.pages = query, [None]
            self.load()

    def _status(self, text: str, style: str = "dim") -> None:
        self.query_one("#waiting-status", Static).update(Text(text, style=style))

    @work(exclusive=True, group="waiting", exit_on_error=False)
    async def load(self) -> None:
        try:
            page = await console_of(self).pending(self.job_type, self.pages[-1], self.matching)
        except Exception as exc:
            self._status(f"✖ {printable(exc)}", "bold red")
            return
        self.page = page
        self.jobs = {job.ref or str(i): job for i, job in enumerate(page.jobs)}
        rows: list[tuple[str, Cells]] = [(key, self._row(job)) for key, job in self.jobs.items()]
        table = self.query_one(WaitingTable)
        table.sync(rows)
        n = len(self.pages)
        more = " · ] for more" if page.after else ""
        which = ""
        if self.matching:
            which = f" matching {printable(str(self.matching))} (looked at {count(page.looked_at)})"
        self._status(
            f"page {n}: {count(len(page.jobs))} waiting{which}, oldest first{more}"
            if page.jobs
            else f"none waits{which}"
        )
        if page.jobs and not self.query_one(FilterBar).editing:  # never from under the operator's typing
            table.focus()

    @staticmethod
    def _row(job: FoundJob) -> Cells:
        return (
            Text(printable(job.ref or "?")),
            Text(f"{clock(job.at)}Z" if job.at else "?"),
            Text(short_id(job.job_id) if job.job_id else clipped(job.reason or "undecodable", 30), style="bold"),
            Text(field_text(job.account_id, FIELD_CHARS), justify="right"),
            Text(field_text(job.account_number, FIELD_CHARS)),
            Text(field_text(job.org_id, FIELD_CHARS)),
            Text(field_text(job.reservation_id, FIELD_CHARS)),
        )

    def selected(self) -> FoundJob | None:
        key = self.query_one(WaitingTable).selected_key
        return self.jobs.get(key) if key else None

    @on(DataTable.RowSelected, "#waiting")
    def _open(self) -> None:
        job = self.selected()
        if job is not None:
            self.app.push_screen(JobDetailScreen(job))

    def action_page(self) -> None:
        if self.page.after:
            self.pages.append(self.page.after)
            self.load()

    def action_first(self) -> None:
        self.pages = [None]
        self.load()

    def action_filter(self) -> None:
        self.query_one(FilterBar).open()

    def action_delete_matching(self) -> None:
        if self.matching is None:
            self.notify("delete matching: set a filter first (/), or delete one job with D", severity="warning")
            return
        self._count_then_ask(self.matching)

    @work(group="waiting-delete", exit_on_error=False)
    async def _count_then_ask(self, query: JobQuery) -> None:
        self._status(f"counting the waiting jobs matching {printable(str(query))}…")
        try:
            n = await console_of(self).count_pending(self.job_type, query)
        except Exception as exc:
            self._status(f"✖ {printable(exc)}", "bold red")
            return
        self.load()
        if not n:
            self.notify(f"no waiting job of {printable(self.job_type)} matches {printable(str(query))}", markup=False)
            return
        question = (
            f"Delete the {count(n)} waiting job(s) of {printable(self.job_type)} matching {printable(str(query))}?\n"
            "They never run. A job a worker takes meanwhile runs; one that comes and matches meanwhile goes too."
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self._delete_matching(query)

        self.app.push_screen(ConfirmScreen(question, yes=f"Yes, delete {count(n)}", no="Keep them"), answered)

    @work(group="waiting-delete", exit_on_error=False)
    async def _delete_matching(self, query: JobQuery) -> None:
        try:
            n = await console_of(self).delete_pending(self.job_type, query=query)
        except Exception as exc:
            self.notify(f"delete: {printable(exc)}", severity="error", markup=False)
            return
        self.notify(f"deleted {count(n)} waiting job(s) of {printable(self.job_type)}", markup=False)
        self.load()

    def action_delete(self) -> None:
        job = self.selected()
        if job is None or job.job_id is None:
            self.notify("delete: select a waiting job first", severity="warning")
            return
        question = (
            f"Delete waiting job {job.job_id} of {self.job_type}?\n"
            f"  account_id {field_text(job.account_id)} · enqueued {clock(job.at) + 'Z' if job.at else '?'}\n"
            "It never runs. If a worker takes it meanwhile, it runs and is not deleted."
        )

        def answered(yes: bool | None) -> None:
            if yes and job.job_id is not None:
                self._delete(job.job_id)

        self.app.push_screen(ConfirmScreen(question, yes="Yes, delete it", no="Keep it"), answered)

    @work(group="waiting-delete", exit_on_error=False)
    async def _delete(self, job_id: str) -> None:
        try:
            n = await console_of(self).delete_pending(self.job_type, [job_id])
        except Exception as exc:
            self.notify(f"delete: {printable(exc)}", severity="error", markup=False)
            return
        said = f"deleted waiting job {job_id}" if n else f"job {job_id} was not waiting any more (taken, or gone)"
        self.notify(said, markup=False)
        self.load()

    def action_close(self) -> None:
        self.dismiss(None)
