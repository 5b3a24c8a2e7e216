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
from jobcore import BadJob, Job
from jobcore.display import printable

from .components.badjobs import BadJobsScreen
from .components.confirm import ConfirmScreen
from .components.enqueue import EnqueueScreen
from .components.main_screen import MainScreen
from .components.palette import ScreenActions
from .components.panels import WorkerLog
from .context import ConsoleContext, Which
from .embedded import EmbeddedStatus, EmbeddedWorker, LogBridge
from .messages import (
    ChangeConcurrency,
    InFlightPage,
    Link,
    OpenBad,
    OpenEnqueue,
    PollFailed,
    PollNow,
    QuitRequested,
    SnapshotReady,
    TogglePause,
    ToggleWorker,
)
from .runner import Runner, runner_for
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
        if self.settings.origin_note:
            self.notify(self.settings.origin_note, title="Server", markup=False, timeout=10)

    async def on_unmount(self) -> None:
        await self.close_resources()

    async def close_resources(self) -> None:
        """Stop the embedded worker (handing its jobs back), then close the connection."""
        if self._shutting_down:
            return
        self._shutting_down = True
        if self._poll_timer is not None:
            self._poll_timer.stop()
        self.workers.cancel_group(self, "poll")
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
        if self._polling or self._shutting_down:
            return
        self._polling = True
        self._poll_started = time.monotonic()
        self._poll()

    @work(group="poll", exit_on_error=False)
    async def _poll(self) -> None:
        want_version = self.link.state != "connected" or not self.server_version
        call = partial(
            take_snapshot, seq=self._seq + 1, in_flight_limit=self.in_flight_limit, want_version=want_version
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
            self.notify("live updates paused: numbers are frozen (p to resume)", timeout=3)
        else:
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

    # ---- what widgets ask for: Messages up, queue I/O here (ConsoleContext) ---------

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
            for job_type, ids in plan.items():
                if what == "requeue":
                    n += await q.requeue(which, job_type, ids)
                else:
                    n += await q.purge(which, job_type, ids)
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
