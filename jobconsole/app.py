"""The jobconsole App, and ``make_app`` shared by the CLI, the tests and the screenshot script.

Data flow: one poller (a Textual worker) asks the runner for a Snapshot; the runner
does the queue I/O off the UI's loop (Redis) and the poller posts the result as a
message. The next poll is armed with ``set_timer`` only when the previous one has
finished, so polls never pile up, whatever the server's latency.
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from typing import Any

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.reactive import reactive
from textual.timer import Timer
from textual.worker import Worker, WorkerState

import jobcore
from jobcore import BadJob, FoundJob, Job
from jobcore.display import printable
from jobcore.limits import CHUNK as GROUP_CHUNK
from jobcore.ops.history import History

from .components.badjobs import BadJobsScreen
from .components.confirm import ConfirmScreen
from .components.enqueue import EnqueueScreen
from .components.find import FindScreen
from .components.history import HistoryScreen
from .components.main_screen import MainScreen
from .components.palette import ScreenActions
from .components.panels import WorkerLog
from .components.why import WhyScreen
from .context import ConsoleContext, Which
from .embedded import EmbeddedStatus, EmbeddedWorker, LogBridge
from .messages import (
    CancelJob,
    ChangeConcurrency,
    InFlightPage,
    Link,
    OpenBad,
    OpenEnqueue,
    OpenFind,
    OpenHistory,
    OpenWhy,
    PauseType,
    PollFailed,
    PollNow,
    QuitRequested,
    SetFilter,
    SetHistorySpan,
    SnapshotReady,
    TogglePause,
    ToggleWorker,
)
from .runner import Runner, runner_for
from .scope import Scope
from .settings import Settings, load_handlers
from .snapshot import RateHistory, Snapshot, take_snapshot

MAX_RETRY = 5.0  # seconds between attempts while disconnected, at most
LOG_DRAIN_EVERY = 0.1
LOG_LINES_PER_DRAIN = 200  # at most 2,000 lines/s reach the screen; the rest are counted as dropped


redact = jobcore.redacted_url


def describe_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if isinstance(exc, jobcore.JobcoreError) else f"{type(exc).__name__}: {text}"


class JobConsole(App[None]):
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
        self._seq = 0
        self._polling = False
        self._poll_started = 0.0
        self._poll_timer: Timer | None = None
        self._failures = 0
        self._root_level: int | None = None
        self._shutting_down = False
        self._poll_again = False  # the filter changed while a poll ran: poll once more at its end
        self._history_timer: Timer | None = None
        self._history_reading = False

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
        if self.settings.origin_note:
            self.notify(self.settings.origin_note, title="Server", markup=False, timeout=10)

    async def on_unmount(self) -> None:
        await self.close_resources()

    async def close_resources(self) -> None:
        """Stop the embedded worker (handing its jobs back), then close the connection."""
        if self._shutting_down:
            return
        self._shutting_down = True
        for timer in (self._poll_timer, self._history_timer):
            if timer is not None:
                timer.stop()
        self.workers.cancel_group(self, "poll")
        self.workers.cancel_group(self, "history")
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
                confirm="Quit",
            ),
            answered,
        )

    @work(group="quit", exclusive=True, exit_on_error=False)
    async def _quit(self) -> None:
        if self.embedded.running:
            self.notify("stopping the embedded worker…", timeout=2)
        await self.close_resources()
        self.exit()

    def action_quit(self) -> None:  # type: ignore[override]
        self.request_quit()

    # ---- polling ----------------------------------------------------------

    def poll_now(self) -> None:
        """Poll at once, unless a poll is running (its answer will be just as fresh)."""
        if self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None
        if self._shutting_down:
            return
        if self._polling:
            self._poll_again = True
            return
        self._polling = True
        self._poll_started = time.monotonic()
        self._poll()

    @work(group="poll", exit_on_error=False)
    async def _poll(self) -> None:
        want_version = self.link.state != "connected" or not self.server_version
        call = partial(
            take_snapshot,
            seq=self._seq + 1,
            in_flight_limit=self.in_flight_limit,
            want_version=want_version,
            query=self.scope.query,
        )
        try:
            snap = await self.runner.call(call)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure is a link state, never a crash
            self.post_message(PollFailed(describe_error(exc)))
        else:
            self.post_message(SnapshotReady(snap))

    @on(SnapshotReady)
    def _snapshot_ready(self, message: SnapshotReady) -> None:
        self._polling = False
        self.poll_wait = 0.0
        snap = message.snapshot
        self._seq = snap.seq
        self._failures = 0
        if snap.server_version is not None:
            self.server_version = snap.server_version
        if snap.evicting is not None:
            self.evicting = snap.evicting
        if self.link.state == "disconnected":
            self.notify(f"reconnected to {printable(self.display_url)}", title="Connected", markup=False)
        self.link = Link("connected")
        self.rates.add(snap.stats)
        self.snapshot = snap
        self._arm(self.settings.refresh)
        if self._poll_again:
            self._poll_again = False
            self.poll_now()

    @on(PollFailed)
    def _poll_failed(self, message: PollFailed) -> None:
        self._polling = False
        self.poll_wait = 0.0
        self._failures += 1
        delay = min(MAX_RETRY, max(0.5, self.settings.refresh) * 2 ** min(self._failures - 1, 4))
        self.link = Link("disconnected", message.error, delay, self._failures)
        self._arm(delay)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # A poll worker that died some other way must not stop polling for good.
        died = event.state in (WorkerState.ERROR, WorkerState.CANCELLED)
        if event.worker.group == "poll" and died and self._polling and not self._shutting_down:
            self._polling = False
            error = event.worker.error
            self.post_message(PollFailed(describe_error(error) if error else "poll cancelled"))

    # ---- the history kept in Redis: its own, slower cadence -----------------

    def read_history(self) -> None:
        """Read the per-minute history now (unless a read is running), then every
        ``history_refresh`` seconds. Two round trips whatever the queue's length."""
        if self._history_timer is not None:
            self._history_timer.stop()
            self._history_timer = None
        if self._history_reading or self._shutting_down:
            return
        self._history_reading = True
        self._read_history(self.history_minutes)

    @work(group="history", exit_on_error=False)
    async def _read_history(self, minutes: int) -> None:
        try:
            history = await self.runner.call(lambda q: q.history(minutes=minutes))
        except asyncio.CancelledError:
            raise
        except Exception:
            history = None  # the poll's link state says what is wrong; keep what we had
        self._history_reading = False
        if history is not None:
            self.history = history
        if not self._shutting_down and not self.paused:
            self._history_timer = self.set_timer(self.settings.history_refresh, self.read_history)

    def set_history_span(self, minutes: int) -> None:
        if minutes != self.history_minutes:
            self.history_minutes = minutes
            self.read_history()

    def _arm(self, delay: float) -> None:
        if self.paused or self._shutting_down:
            return
        if self._poll_timer is not None:
            self._poll_timer.stop()
        self._poll_timer = self.set_timer(delay, self.poll_now)

    def toggle_pause(self) -> None:
        self.paused = not self.paused
        if self.paused:
            if self._poll_timer is not None:
                self._poll_timer.stop()
                self._poll_timer = None
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
        if self._polling:
            waited = time.monotonic() - self._poll_started
            self.poll_wait = waited if waited >= 3 else 0.0
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

        verb = "Pause" if pause else "Resume"
        self.push_screen(ConfirmScreen(question, confirm=verb, danger=pause), answered)

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
            "Its worker cancels the handler within a second and records the job as failed "
            '("cancelled by operator"); its other jobs go on.'
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self._cancel(job_id)

        self.push_screen(ConfirmScreen(question, confirm="Cancel job"), answered)

    @work(group="control", exit_on_error=False)
    async def _cancel(self, job_id: str) -> None:
        try:
            result = await self.runner.call(lambda q: q.cancel(job_id))
        except Exception as exc:
            self.notify(f"cancel failed: {printable(describe_error(exc))}", severity="error", markup=False)
            return
        ok = result.status == "requested" and not result.sync
        self.notify(
            printable(result.message),
            title="Cancel requested" if result.status == "requested" else "Not cancelled",
            severity="information" if ok else "warning",
            timeout=10,
            markup=False,
        )
        self.poll_now()

    # ---- what widgets ask for: Messages up, queue I/O here (ConsoleContext) ---------

    @on(SetFilter)
    def _filter_asked(self, message: SetFilter) -> None:
        self.set_filter(message.text)

    @on(OpenFind)
    def _find_asked(self, message: OpenFind) -> None:
        self.open_find(message.text)

    @on(OpenWhy)
    def _why_asked(self, message: OpenWhy) -> None:
        self.open_why(message.job_type, message.job_id)

    @on(OpenHistory)
    def _history_asked(self) -> None:
        self.open_history()

    @on(SetHistorySpan)
    def _span_asked(self, message: SetHistorySpan) -> None:
        self.set_history_span(message.minutes)

    @on(PauseType)
    def _pause_type_asked(self, message: PauseType) -> None:
        self.ask_pause(message.job_type, message.pause)

    @on(CancelJob)
    def _cancel_asked(self, message: CancelJob) -> None:
        self.ask_cancel(message.job_id, message.about)

    @on(PollNow)
    def _poll_asked(self) -> None:
        self.poll_now()

    @on(TogglePause)
    def _pause_asked(self) -> None:
        self.toggle_pause()

    @on(ToggleWorker)
    async def _worker_asked(self) -> None:
        await self.toggle_worker()

    @on(ChangeConcurrency)
    def _concurrency_asked(self, message: ChangeConcurrency) -> None:
        self.change_concurrency(message.step)

    @on(InFlightPage)
    def _page_asked(self, message: InFlightPage) -> None:
        self.set_in_flight_page(message.page)

    @on(OpenEnqueue)
    def _enqueue_asked(self, message: OpenEnqueue) -> None:
        self.open_enqueue(message.job_type)

    @on(OpenBad)
    def _bad_asked(self, message: OpenBad) -> None:
        self.open_bad(message.which)

    @on(QuitRequested)
    def _quit_asked(self) -> None:
        self.request_quit()

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
                for i in range(0, len(ids), GROUP_CHUNK):  # a big group in several calls, as jobcore does
                    n += await do(which, job_type, ids[i : i + GROUP_CHUNK])
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


def _is_a_context(app: JobConsole) -> ConsoleContext:
    return app  # mypy checks here that the app gives widgets all the protocol promises


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
