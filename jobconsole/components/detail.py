"""One job in full: every field, args as pretty JSON, and for dead/failed jobs the reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import RenderableType
from rich.highlighter import JSONHighlighter
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from jobcore import BadJob, FoundJob, InFlightJob
from jobcore.display import clipped, duration, field_text, preview

from ..format import pretty_json, stamp, whole_command
from ..keys import DETAIL, bindings, hint
from ..snapshot import Snapshot
from .badtext import last_line
from .base import Keyed, console_of

FIELD = 1000  # characters of one field shown (an org_id of 1 MB is cut)


def _grid(rows: list[tuple[str, Any]]) -> Table:
    """Field names and values; a value not already Text is data from Redis, shown as plain text."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column()
    for name, v in rows:
        grid.add_row(name, v if isinstance(v, Text) else Text(field_text(v, FIELD)))
    return grid


def _json(data: Any, whole: str) -> RenderableType:
    # Highlighted here, not by rich's JSON: that decodes the text again, escapes and all.
    return JSONHighlighter()(Text(pretty_json(data, whole)))


class JobDetailScreen(Keyed, ModalScreen[str | None]):
    """Dismisses with "requeue" or "purge" when asked from a dead/failed job, else None."""

    KEYS = DETAIL
    BINDINGS = bindings(DETAIL)

    def __init__(self, job: InFlightJob | BadJob | FoundJob, which: str = "") -> None:
        super().__init__()
        self.job = job
        self.which = which  # "dead" or "failed" for a BadJob

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="detail"):
            yield Static(self._title(), classes="title")
            with VerticalScroll(id="detail-body"):
                yield Static(id="fields")
                yield Static(Text("args", style="bold underline"), classes="section")
                yield Static(self._args(), id="args")
                if isinstance(self.job, BadJob):
                    yield Static(Text("reason", style="bold underline"), classes="section")
                    whole = whole_command(self.job.job_id)
                    reason = "(none given)"
                    if self.job.reason:
                        reason = preview(self.job.reason, multiline=True, whole=whole)
                    yield Static(Text(reason, style="red"), id="reason")
            yield Static(self._hint(), classes="hint")

    def on_mount(self) -> None:
        self.query_one("#detail-body").focus()
        if isinstance(self.job, InFlightJob):
            self.watch(self.app, "snapshot", self._follow, init=True)
        elif isinstance(self.job, FoundJob):
            self.query_one("#fields", Static).update(_grid(self._found_rows(self.job)))
        else:
            self.query_one("#fields", Static).update(_grid(self._bad_rows(self.job)))

    def _title(self) -> Text:
        job = self.job
        name = clipped(job.job_type or "?", 200)
        if isinstance(job, InFlightJob):
            return Text.assemble(("In-flight job  ", "bold"), (name, "bold cyan"), f"  {job.job_id or '?'}")
        if isinstance(job, FoundJob):
            where = {"in_flight": "In-flight", "pending": "Pending", "dead": "Dead", "failed": "Failed"}
            return Text.assemble(
                (f"{where.get(job.where, 'Found')} job  ", "bold"),
                (clipped(job.job_type or "?", 200), "bold cyan"),
                f"  {job.job_id or '?'}",
            )
        return Text.assemble(
            (f"{self.which.capitalize()} job  ", "bold"), (name, "bold cyan"), f"  {job.job_id or '?'}"
        )

    def _hint(self) -> Text:
        actions = ["act('requeue')", "act('purge')", "close"] if isinstance(self.job, BadJob) else ["close"]
        return Text(f"{hint(DETAIL, console_of(self).settings.read_only, actions)} · ↑/↓: scroll", style="dim")

    def _args(self) -> RenderableType:
        job = self.job
        whole = whole_command(job.job_id)
        if isinstance(job, FoundJob):
            return _json(job.args, whole)
        if isinstance(job, InFlightJob):
            if job.error:
                return Text(f"cannot decode the payload: {preview(job.error)}", style="red")
            return _json(job.args, whole)
        if job.envelope is None:
            why = f" ({preview(job.payload_error)})" if job.payload_error else ""
            return Text.assemble(
                (f"undecodable payload{why}; first bytes as hex:\n", "red"), job.raw[:256].hex(" ", 4) or "(empty)"
            )
        return _json(job.envelope.args_json(), whole)

    def _follow(self, snap: Snapshot | None) -> None:
        """Keep 'running for' live while the job runs; say so when it no longer does."""
        job = self.job
        assert isinstance(job, InFlightJob)
        state = Text("running", style="green")
        if snap is not None:
            current = next(
                (j for j in snap.in_flight if j.entry_id == job.entry_id and j.job_type == job.job_type), None
            )
            if current is not None:
                self.job = job = current
            elif snap.stats.in_flight <= len(snap.in_flight):
                state = Text("no longer in flight (done, failed or handed back)", style="bold yellow")
        self.query_one("#fields", Static).update(_grid(self._in_flight_rows(job, state)))

    @staticmethod
    def _in_flight_rows(job: InFlightJob, state: Text) -> list[tuple[str, Any]]:
        return [
            ("state", state),
            ("job_type", job.job_type),
            ("job_id", job.job_id),
            ("account_id", job.account_id),
            ("account_number", job.account_number),
            ("org_id", job.org_id),
            ("reservation_id", job.reservation_id),
            ("worker", job.worker),
            ("started", stamp(job.started_at)),
            ("running for", duration(job.running_for)),
            ("attempt", job.attempt),
            ("entry id", job.entry_id),
            *([("error", Text(preview(job.error), style="red"))] if job.error else []),
        ]

    @staticmethod
    def _found_rows(job: FoundJob) -> list[tuple[str, Any]]:
        """Where find found it, with its six log fields."""
        at = {"in_flight": "started", "pending": "enqueued at"}.get(job.where, f"{job.where} at")
        reason = last_line(job.reason) if job.reason else None
        return [
            ("where", Text(preview(job.describe()), style="bold")),
            *[(name, value) for name, value in job.log_fields().items()],
            ("worker", job.worker),
            ("attempt", job.attempt),
            (at, stamp(job.at) if job.at else None),
            *([("reason", Text(preview(reason), style="red"))] if reason else []),
        ]

    def _bad_rows(self, job: BadJob) -> list[tuple[str, Any]]:
        env = job.envelope
        args = env.args_json() if env else None
        reservation = args.get("reservation_id") if isinstance(args, dict) else None
        last = last_line(job.reason)
        return [
            ("job_type", job.job_type),
            ("job_id", job.job_id),
            ("account_id", env.account_id if env else None),
            ("account_number", env.identity.account_number if env else None),
            ("org_id", env.identity.org_id if env else None),
            ("reservation_id", reservation),
            (f"{self.which} at", stamp(job.at)),
            ("enqueued at", stamp_ms(env.enqueued_at_ms) if env else None),
            ("attempt", job.attempt),
            ("worker", job.worker),
            (f"{self.which} id", job.id),
            ("reason", Text(preview(last), style="red")),
            *([("other fields", self._other_fields(job))] if job.fields else []),
        ]

    @staticmethod
    def _other_fields(job: BadJob) -> Text:
        shown = " ".join(f"{field_text(k, 64)}={field_text(v, 200)}" for k, v in list(job.fields.items())[:10])
        return Text(shown)

    def action_close(self) -> None:
        self.dismiss(None)

    def action_act(self, what: str) -> None:
        if isinstance(self.job, BadJob):
            self.dismiss(what)


def stamp_ms(ms: int) -> str:
    return stamp(datetime.fromtimestamp(ms / 1000, tz=UTC))
