"""``j``: where is this job? An id copied from a worker's log line (whole or its
first 8+ hex characters), or a tenant's words (``account:42 type:launch``), answered
by jobcore's find: pending, in flight on worker W, dead, failed, or not found."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Static

from jobcore import BadQuery, FoundJob, parse_query
from jobcore.display import FIELD_CHARS, clipped, field_text, preview, printable

from ..format import count, short_id
from ..keys import FIND, bindings, hint
from ..messages import CancelJob, OpenWhy
from .badtext import last_line
from .base import Keyed, console_of
from .detail import JobDetailScreen
from .panels import LOG_FIELD_COLUMNS
from .tables import Cells, LiveTable

PLACEHOLDER = "a job id from a log line (or its first 8+ hex), or account:42 org:… acct:… res:… type:…"
WHERE_STYLE = {"pending": "bold", "in_flight": "cyan", "dead": "bold red", "failed": "yellow", "not_found": "dim"}


def where_text(job: FoundJob) -> Text:
    """Where a job is, short enough for a column (describe() has it in full)."""
    if job.where == "in_flight":
        label = f"in flight on {clipped(job.worker or '?', 40)}"
    elif job.where == "not_found":
        label = "not found"
    else:
        label = job.where
    return Text(clipped(label, 30), style=WHERE_STYLE[job.where])


class FoundTable(LiveTable):
    COLUMNS = (("where", "where"), *LOG_FIELD_COLUMNS)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(self.COLUMNS, right=("account_id",), id=id)


class FindScreen(Keyed, ModalScreen[None]):
    KEYS = FIND
    BINDINGS = bindings(FIND)

    def __init__(self, text: str = "") -> None:
        super().__init__()
        self.text = text
        self.found: dict[str, FoundJob] = {}

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="find"):
            yield Static(Text("Find a job", style="bold"), classes="title")
            yield Input(self.text, placeholder=PLACEHOLDER, id="find-input")
            yield Static(Text("enter: find", style="dim"), id="find-status")
            yield FoundTable(id="found")
            yield Static(id="found-where")
            yield Static(self._hint(), classes="hint")

    def on_mount(self) -> None:
        self.query_one("#find-input", Input).focus()
        if self.text:
            self.search(self.text)

    def _hint(self) -> Text:
        keys = hint(FIND, console_of(self).settings.read_only, ["why", "cancel", "close"])
        return Text(f"enter on a result: details · {keys} · the same from the shell: jobcore find WORD...", style="dim")

    def _status(self, text: str, style: str = "dim") -> None:
        self.query_one("#find-status", Static).update(Text(text, style=style))

    @on(Input.Submitted, "#find-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.search(event.value)

    def search(self, text: str) -> None:
        try:
            parse_query([text])  # said here, inline: a bad word is not an error dialog
        except BadQuery as exc:
            self._status(f"✖ {printable(exc)}", "bold red")
            return
        self._status("searching in flight, dead, failed (and pending, for a whole id)…")
        self._search(text)

    @work(exclusive=True, group="find", exit_on_error=False)
    async def _search(self, text: str) -> None:
        try:
            found = await console_of(self).find(text)
        except Exception as exc:
            self._status(f"✖ find failed: {printable(exc)}", "bold red")
            return
        self.found = {f"{i}": job for i, job in enumerate(found)}
        rows: list[tuple[str, Cells]] = [(key, self._row(job)) for key, job in self.found.items()]
        table = self.query_one(FoundTable)
        table.sync(rows)
        jobs = [j for j in found if j.where != "not_found"]
        if not jobs:
            self._status("nothing found", "bold yellow")
        else:
            self._status(f"{count(len(jobs))} job(s) found · enter: details", "green")
        if found:
            table.focus()
            table.move_cursor(row=0)
            self._show_where()
        if len(jobs) == 1:
            self.app.push_screen(JobDetailScreen(jobs[0]))

    @staticmethod
    def _row(job: FoundJob) -> Cells:
        return (
            where_text(job),
            Text(clipped(job.job_type or "?", FIELD_CHARS), style="bold"),
            Text(short_id(job.job_id)),
            Text(field_text(job.account_id, FIELD_CHARS), justify="right"),
            Text(field_text(job.account_number, FIELD_CHARS)),
            Text(field_text(job.org_id, FIELD_CHARS)),
            Text(field_text(job.reservation_id, FIELD_CHARS)),
        )

    def selected(self) -> FoundJob | None:
        key = self.query_one(FoundTable).selected_key
        return self.found.get(key) if key else None

    @on(DataTable.RowHighlighted, "#found")
    def _show_where(self) -> None:
        job = self.selected()
        pane = self.query_one("#found-where", Static)
        if job is None:
            pane.update("")
            return
        t = Text(preview(job.describe(), 500), style=WHERE_STYLE[job.where])
        if job.where == "in_flight" and job.at is not None:
            t.append(f" · started {job.at:%H:%M:%S}Z · attempt {job.attempt}", "dim")
        # The six log fields in full (the table above may be cut at 80 columns).
        for i, (name, value) in enumerate(job.log_fields().items()):
            t.append("\n" if i % 3 == 0 else " · ")
            t.append(f"{name} ", "dim")
            t.append(field_text(value, 200), "bold")
        if job.reason and job.where in ("dead", "failed"):
            t.append(f"\n{clipped(last_line(job.reason), 200)}", "red")
        pane.update(t)

    @on(DataTable.RowSelected, "#found")
    def _open(self) -> None:
        job = self.selected()
        if job is not None and job.where != "not_found":
            self.app.push_screen(JobDetailScreen(job))

    def action_why(self) -> None:
        job = self.selected()
        if job is None or job.job_type is None:
            self.notify("why: find a job first, and select it", severity="warning")
        elif job.where == "in_flight":
            self.post_message(OpenWhy(job.job_type, job.job_id))
        elif job.where == "pending":
            self.post_message(OpenWhy(job.job_type))
        else:
            self.notify(f"it is {job.where}: not waiting to run (requeue it from the {job.where} list)", markup=False)

    def action_cancel(self) -> None:
        job = self.selected()
        if job is None or job.where != "in_flight" or not job.job_id:
            self.notify("cancel: only a job in flight can be cancelled", severity="warning")
            return
        about = (
            f"  {clipped(job.job_type or '?', FIELD_CHARS)} job {job.job_id}\n"
            f"  account_id {field_text(job.account_id)} · worker {clipped(job.worker or '?', FIELD_CHARS)}"
        )
        self.post_message(CancelJob(job.job_id, about))

    def action_close(self) -> None:
        self.dismiss(None)
