"""The jobconsole App, and ``make_app`` shared by the CLI, the tests and the screenshot script.

Data flow: the poller (poller.py) asks the runner for a Snapshot; the runner does the
queue I/O off the UI's loop (Redis) and the poller posts the result as a message,
which the app keeps in reactives that widgets watch. Widgets ask for changes with
Actions (messages.py), which one handler here runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from typing import Any

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.reactive import reactive
from textual.worker import Worker

import jobcore
from jobcore import BadJob, FoundJob, History, Job, JobQuery
from jobcore.display import printable
from jobcore.limits import chunked

from .components.audit import AUDIT_SHOWN, AuditScreen
from .components.badjobs import BadJobsScreen
from .components.confirm import ConfirmScreen
from .components.enqueue import EnqueueScreen
from .components.find import FindScreen
from .components.history import HistoryScreen
from .components.main_screen import MainScreen
from .components.palette import ScreenActions
from .components.panels import WorkerLog
from .components.waiting import COUNT_PAGE, WAITING_PAGE
from .components.why import WhyScreen
from .context import ConsoleContext, EnqueueDraft, Which
from .embedded import EmbeddedStatus, EmbeddedWorker, LogBridge
from .fair_actions import FairActions
from .messages import Action, ConsoleActions, HistoryRead, Link, PollFailed, SnapshotReady
from .poller import Poller, PollHost, describe_error
from .runner import Runner, runner_for
from .scope import Scope, Triage, triage_bad
from .settings import Settings, load_handlers
from .snapshot import RateHistory, Snapshot

LOG_DRAIN_EVERY = 0.1
QUIT_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # kill / a supervisor; the terminal window closed
LOG_LINES_PER_DRAIN = 200  # at most 2,000 lines/s reach the screen; the rest are counted as dropped


redact = jobcore.redacted_url


class JobConsole(FairActions, App[None]):
    """Live queues, in-flight jobs, workers; enqueue, an embedded worker, dead and failed jobs."""

    CSS_PATH = "app.tcss"
    TITLE = "jobconsole"
    COMMANDS = App.COMMANDS | {ScreenActions}
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (160, "-wide")]
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", show=False, priority=True)]

    snapshot: reactive[Snapshot | None] = reactive(None, always_update=True)
    link: reactive[Link] = reactive(Link())
    server_version: reactive[str] = reactive("")
    evicting: reactive[str] = reactive("")  # maxmemory policies that may evict jobs
    paused: reactive[bool] = reactive(False)
    poll_wait: reactive[float] = reactive(0.0)
    embedded_status: reactive[EmbeddedStatus] = reactive(EmbeddedStatus())
    scope: reactive[Scope] = reactive(Scope())  # the filter (/), shared by every list view
    history: reactive[History | None] = reactive(None)
    history_minutes: reactive[int] = reactive(60)  # 60, or 1440 while the history view shows a day

    def __init__(self, settings: Settings, queue: jobcore.Queue, handlers: jobcore.Handlers) -> None:
        super().__init__()
        self.settings = settings
        self.queue = queue
        self.handlers = handlers
        self.display_url = redact(settings.url)
        self.runner: Runner = runner_for(queue, in_process=settings.is_memory)
        self.embedded = EmbeddedWorker(
            queue,
            handlers,
            in_process=settings.is_memory,
            concurrency=settings.concurrency,
            grace=settings.grace,
        )
        self.embedded_status = self.embedded.status()
        self.rates = RateHistory()
        self.log_bridge = LogBridge()
        self.in_flight_limit = settings.in_flight_page
        self.enqueue_draft = EnqueueDraft()
        self.poller = Poller(self)
        self._root_level: int | None = None
        self._shutting_down = False

    def get_default_screen(self) -> MainScreen:
        return MainScreen()

    # ---- lifecycle --------------------------------------------------------

    def on_mount(self) -> None:
        self.runner.start()
        root = logging.getLogger()
        root.addHandler(self.log_bridge)
        if root.level == logging.NOTSET or root.level > logging.INFO:
            self._root_level = root.level
            root.setLevel(logging.INFO)
        self.set_interval(LOG_DRAIN_EVERY, self._drain_logs)
        self.set_interval(0.5, self._tick)
        self.poll_now()
        self.read_history()
        if not self.is_headless:  # on a terminal (tests run headless)
            with contextlib.suppress(NotImplementedError, AttributeError):  # Windows: no such signals
                for sig in QUIT_SIGNALS:  # exit 128 + the signal, as shells report a process it ended
                    asyncio.get_running_loop().add_signal_handler(sig, self._quit, 128 + sig)
        if self.settings.origin_note:
            self.notify(self.settings.origin_note, title="Server", markup=False, timeout=10)

    async def on_unmount(self) -> None:
        await self.close_resources()

    async def close_resources(self) -> None:
        """Stop the embedded worker (handing its jobs back), then close the connection."""
        if self._shutting_down:
            return
        self._shutting_down = True
        self.poller.stop()
        if self.embedded.running:
            # Unreachable server: nothing can be handed back, so do not wait to try.
            await self.embedded.stop(hard=True, abandon=self.link.state == "disconnected", timeout=5)
        root = logging.getLogger()
        root.removeHandler(self.log_bridge)
        if self._root_level is not None:
            root.setLevel(self._root_level)
            self._root_level = None
        await self.runner.close()

    def request_quit(self) -> None:
        """Quit; when the embedded worker is running jobs, ask first (they are handed back)."""
        busy = self.embedded.status().busy
        if not busy:
            self._quit()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._quit()

        self.push_screen(
            ConfirmScreen(
                f"The embedded worker is running {busy} job(s).\n"
                "Quitting hands them back to the queue: they will run again.",
                yes="Yes, quit and hand them back",
                no="Stay",
            ),
            answered,
        )

    @work(group="quit", exclusive=True, exit_on_error=False)
    async def _quit(self, return_code: int = 0) -> None:
        """Hand the embedded worker's jobs back, close, then leave: Textual restores the
        terminal (the alternate screen, the cursor), which a process killed outright does not."""
        if self.embedded.running:
            self.notify("stopping the embedded worker…", timeout=2)
        await self.close_resources()
        self.exit(return_code=return_code)

    def action_quit(self) -> None:  # type: ignore[override]
        self.request_quit()

    # ---- polling (poller.py): what it posts lands here ---------------------

    def poll_now(self) -> None:
        """Poll at once, unless a poll is running (its answer will be just as fresh)."""
        self.poller.now()

    def read_history(self) -> None:
        """Read the per-minute history now, then every ``history_refresh`` seconds."""
        self.poller.read_history()

    @on(SnapshotReady)
    def _snapshot_ready(self, message: SnapshotReady) -> None:
        self.poll_wait = 0.0
        snap = message.snapshot
        if snap.server_version is not None:
            self.server_version = snap.server_version
        if snap.evicting is not None:
            self.evicting = snap.evicting
        if self.link.state == "disconnected":
            self.notify(f"reconnected to {printable(self.display_url)}", title="Connected", markup=False)
        self.link = Link("connected")
        self.rates.add(snap.stats)
        self.snapshot = snap
        self.poller.succeeded(snap.seq)

    @on(PollFailed)
    def _poll_failed(self, message: PollFailed) -> None:
        self.poll_wait = 0.0
        delay = self.poller.failed()
        self.link = Link("disconnected", message.error, delay, self.poller.failures)

    @on(HistoryRead)
    def _history_read(self, message: HistoryRead) -> None:
        if message.history is not None:
            self.history = message.history
        self.poller.history_read()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.poller.worker_changed(event)

    def set_history_span(self, minutes: int) -> None:
        if minutes != self.history_minutes:
            self.history_minutes = minutes
            self.read_history()

    def toggle_pause(self) -> None:
        self.paused = not self.paused
        if self.paused:
            self.poller.pause()
            self.notify("live updates frozen: the numbers stand still (p to unfreeze)", timeout=3)
        else:
            self.poll_now()
            self.read_history()

    def set_filter(self, text: str) -> None:
        scope = self.scope.with_text(text)
        if scope == self.scope:
            return
        changed = scope.query != self.scope.query
        self.scope = scope
        if changed:
            self.poll_now()

    def set_in_flight_page(self, page: int) -> None:
        self.in_flight_limit = (page + 1) * self.settings.in_flight_page
        if self.snapshot is not None:
            self.snapshot = self.snapshot  # show what we have for the page now
        self.poll_now()

    def _tick(self) -> None:
        if self.poller.polling:
            self.poll_wait = self.poller.waited()
        self.embedded_status = self.embedded.status()

    # ---- the embedded worker and its log --------------------------------

    def action_refuse(self, what: str) -> None:
        """A mutating key pressed in read-only (keys.bindings' hidden twin): say why nothing happens."""
        self.refuse_if_read_only(what)

    def refuse_if_read_only(self, what: str) -> bool:
        if self.settings.read_only:
            self.notify(f"read-only: {what} is disabled (started with --read-only)", severity="warning")
            return True
        return False

    async def toggle_worker(self) -> None:
        if self.refuse_if_read_only("the embedded worker"):
            return
        if self.embedded.running:
            if self.embedded_status.state == "stopping":
                return
            self.embedded.request_stop()
            self.embedded_status = self.embedded.status()
            self._wait_worker_stopped()
            return
        try:
            self.embedded.start()
        except ValueError as exc:
            self.notify(printable(exc), title="Cannot start the worker", severity="error", markup=False)
            return
        self.embedded_status = self.embedded.status()
        self.notify(
            f"embedded worker started: {', '.join(self.handlers.types)}, concurrency {self.embedded.concurrency}",
            timeout=3,
            markup=False,
        )

    @work(group="embedded", exit_on_error=False)
    async def _wait_worker_stopped(self) -> None:
        await self.embedded.wait_stopped()
        self.embedded_status = self.embedded.status()
        self.poll_now()

    def change_concurrency(self, step: int) -> None:
        if self.refuse_if_read_only("the embedded worker"):
            return
        new = max(1, min(1000, self.embedded.concurrency + step))
        self.embedded.concurrency = new
        if self.embedded.running:
            self.notify(f"concurrency {new} applies when the embedded worker restarts (s twice)", timeout=3)
        self.embedded_status = self.embedded.status()

    def _drain_logs(self) -> None:
        lines, dropped = self.log_bridge.drain(LOG_LINES_PER_DRAIN)
        if not lines and not dropped:
            return
        logs = self.query(WorkerLog)
        if logs:
            logs.first().add(lines, dropped)

    # ---- screens ----------------------------------------------------------

    def open_enqueue(self, job_type: str | None = None) -> None:
        if self.refuse_if_read_only("enqueue"):
            return

        def done(result: tuple[str, int] | None) -> None:
            if result:
                job_type, n = result
                what = f"{n:,} {printable(job_type)} job{'s' if n != 1 else ''}"
                self.notify(f"enqueued {what}", title="Enqueued", markup=False)
                self.poll_now()

        self.push_screen(EnqueueScreen(job_type), done)

    def open_bad(self, which: str) -> None:
        self.push_screen(BadJobsScreen("failed" if which == "failed" else "dead"))

    def open_find(self, text: str = "") -> None:
        self.push_screen(FindScreen(text))

    def open_history(self) -> None:
        self.read_history()  # what settled since the last read (it runs every history_refresh s)
        self.push_screen(HistoryScreen())

    @work(group="audit", exclusive=True, exit_on_error=False)
    async def open_audit(self) -> None:
        """The newest operator actions, read now, in a dialog (read-only users may read them)."""
        try:
            records = await self.runner.call(lambda q: q.audit(limit=AUDIT_SHOWN))
        except Exception as exc:
            self.notify(f"audit: {printable(describe_error(exc))}", severity="error", markup=False)
            return
        self.push_screen(AuditScreen(records))

    @work(group="why", exclusive=True, exit_on_error=False)
    async def open_why(self, job_type: str | None, job_id: str | None = None) -> None:
        """Why it waits, read now (a dashboard read and the last hour's history), in a dialog."""
        try:
            explanation = await self.runner.call(lambda q: q.why(job_type, job_id=job_id))
        except Exception as exc:
            self.notify(f"why: {printable(describe_error(exc))}", severity="error", markup=False)
            return
        self.push_screen(WhyScreen(explanation))

    def ask_pause(self, job_type: str, pause: bool) -> None:
        """Pause or resume a type after a y/n question (the queue's flag in Redis, not the display)."""
        if self.refuse_if_read_only("pause / resume"):
            return
        name = printable(job_type)
        if pause:
            question = (
                f"Pause {name}?\nWorkers take none of its jobs from their next fetch; running jobs finish; "
                f"new jobs keep arriving and wait. It stays paused, whoever restarts, until resumed "
                f"(P again, or jobcore resume {name})."
            )
        else:
            question = f"Resume {name}?\nWorkers take its jobs again (idle ones within a second)."

        def answered(yes: bool | None) -> None:
            if yes:
                self._set_paused(job_type, pause)

        yes, no = ("Yes, pause it", "Leave it running") if pause else ("Yes, resume it", "Leave it paused")
        self.push_screen(ConfirmScreen(question, yes=yes, no=no, danger=pause), answered)

    @work(group="control", exit_on_error=False)
    async def _set_paused(self, job_type: str, pause: bool) -> None:
        try:
            await self.runner.call(lambda q: q.pause(job_type) if pause else q.resume(job_type))
        except Exception as exc:
            what = "pause" if pause else "resume"
            self.notify(f"{what} failed: {printable(describe_error(exc))}", severity="error", markup=False)
            return
        done = "paused: workers take none of its jobs" if pause else "resumed: workers take its jobs again"
        self.notify(f"{printable(job_type)} {done}", title="Paused" if pause else "Resumed", markup=False)
        self.poll_now()

    def ask_cancel(self, job_id: str, about: str) -> None:
        """Cancel one running job after a y/n question; the result says what happened."""
        if self.refuse_if_read_only("cancel"):
            return
        question = (
            f"Cancel this running job?\n{about}\n"
            "Its worker stops the handler and records the job as failed "
            '("cancelled by operator"), unless it finishes first; its other jobs go on. '
            "The answer says which."
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self._cancel(job_id)

        self.push_screen(ConfirmScreen(question, yes="Yes, cancel it", no="Keep it running"), answered)

    @work(group="control", exit_on_error=False)
    async def _cancel(self, job_id: str) -> None:
        try:
            result = await self.runner.call(lambda q: q.cancel(job_id))
        except Exception as exc:
            self.notify(f"cancel failed: {printable(describe_error(exc))}", severity="error", markup=False)
            return
        titles = {"cancelled": "Cancelled", "ran_on": "Cancelled", "cancelling": "Cancelling"}
        titles["requested"] = "Not confirmed yet"
        self.notify(
            printable(result.message),
            title=titles.get(result.status, "Not cancelled"),
            severity="information" if result.status == "cancelled" else "warning",
            timeout=10,
            markup=False,
        )
        self.poll_now()

    # ---- what widgets ask for: Messages up, queue I/O here (ConsoleContext) ---------

    @on(Action)
    async def _asked(self, message: Action) -> None:
        done = message.run(self)
        if done is not None:
            await done

    def embedded_now(self) -> EmbeddedStatus:
        return self.embedded.status()

    async def bad_jobs(self, which: Which, job_type: str | None, limit: int) -> list[BadJob]:
        async def fetch(q: jobcore.Queue) -> list[BadJob]:
            return await (q.dead(job_type, limit) if which == "dead" else q.failed(job_type, limit))

        return await self.runner.call(fetch)

    async def act_on_bad(self, what: str, which: Which, plan: dict[str, list[str] | None]) -> int:
        """Requeue or purge dead/failed jobs: per type, the listed ids or (None) all."""

        async def act(q: jobcore.Queue) -> int:
            n = 0
            do = q.requeue if what == "requeue" else q.purge
            for job_type, ids in plan.items():
                if ids is None:
                    n += await do(which, job_type, None)
                    continue
                for chunk in chunked(ids):  # a big group in several calls, as jobcore does
                    n += await do(which, job_type, chunk)
            return n

        return await self.runner.call(act)

    async def job_types_and_schemas(self) -> tuple[list[str], dict[str, dict[str, Any]]]:
        async def fetch(q: jobcore.Queue) -> tuple[list[str], dict[str, dict[str, Any]]]:
            return await q.job_types(), await q.schemas()

        return await self.runner.call(fetch)

    async def enqueue_copies(self, template: Job[Any], n: int) -> int:
        """n copies of template (each its own id), in one enqueue_many; how many landed."""

        async def send(q: jobcore.Queue) -> int:
            t = template
            jobs = (Job(type=t.type, args=t.args, account_id=t.account_id, identity=t.identity) for _ in range(n))
            return len(await q.enqueue_many(jobs))

        return await self.runner.call(send)

    async def find(self, text: str) -> list[FoundJob]:
        return await self.runner.call(lambda q: q.find(text))

    async def pending(self, job_type: str, after: str | None, query: JobQuery | None) -> jobcore.PendingPage:
        return await self.runner.call(lambda q: q.pending(job_type, WAITING_PAGE, after, query))

    async def count_pending(self, job_type: str, query: JobQuery) -> int:
        async def count(q: jobcore.Queue) -> int:
            n, after = 0, None
            while True:
                page = await q.pending(job_type, COUNT_PAGE, after, query)
                n += len(page.jobs)
                if page.after is None:
                    return n
                after = page.after

        return await self.runner.call(count)

    async def delete_pending(self, job_type: str, job_ids: Sequence[str] = (), query: JobQuery | None = None) -> int:
        if job_ids:
            return await self.runner.call(lambda q: q.delete_pending(job_type, ids=list(job_ids)))
        return await self.runner.call(lambda q: q.delete_pending(job_type, query=query))

    async def triage(self, which: Which, jobs: Sequence[BadJob], query: JobQuery | None) -> Triage:
        # CPU only, but a big dead list takes long enough to freeze the screen: a thread.
        return await asyncio.to_thread(triage_bad, which, jobs, query)


def _is_a_context(app: JobConsole) -> tuple[ConsoleContext, ConsoleActions, PollHost]:
    return app, app, app  # mypy checks here that the app keeps every promise the protocols make


def make_app(
    settings: Settings | None = None,
    *,
    queue: jobcore.Queue | None = None,
    handlers: jobcore.Handlers | None = None,
) -> JobConsole:
    """Build the console: the CLI, the tests and the screenshot script all start here."""
    settings = settings or Settings()
    if handlers is None:
        handlers = load_handlers(settings.handlers)
    if queue is None:
        kwargs: dict[str, Any] = {} if settings.namespace is None else {"namespace": settings.namespace}
        queue = jobcore.connect(settings.url, **kwargs)
    return JobConsole(settings, queue, handlers)
