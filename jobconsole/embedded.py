"""A jobcore worker run inside the console, and the bridge that carries its logs to the UI.

With Redis the worker gets its own thread, event loop and connection
(``queue.clone()``), so a burst of jobs competes with the UI only for the GIL,
never for the UI's event loop. The memory backend's queue is bound to the UI's
loop (its fetch waits on an asyncio.Condition), so there the worker runs as a
task on that loop; demo handlers are async and short, so the UI stays smooth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import jobcore
from jobcore.logs import LOG_FIELDS, install_record_factory
from jobcore.loop_thread import LoopThread

log = logging.getLogger("jobconsole.embedded")

State = Literal["stopped", "starting", "running", "stopping"]


@dataclass(frozen=True, slots=True)
class EmbeddedStatus:
    state: State = "stopped"
    concurrency: int = 0
    busy: int = 0
    processed: int = 0
    failed: int = 0
    dead: int = 0
    worker_id: str = ""
    error: str = ""  # why the last run ended badly, if it did


class EmbeddedWorker:
    """Start and stop one worker at a time; read its numbers from any thread."""

    def __init__(
        self,
        queue: jobcore.Queue,
        handlers: jobcore.Handlers,
        *,
        in_process: bool,
        concurrency: int,
        grace: float,
    ) -> None:
        self.queue = queue
        self.handlers = handlers
        self.in_process = in_process
        self.concurrency = concurrency
        self.grace = grace
        self._worker: jobcore.Worker | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: LoopThread | None = None
        self._task: asyncio.Task[Any] | None = None
        self._state: State = "stopped"
        self._error = ""
        self._done = asyncio.Event()
        self._done.set()

    @staticmethod
    def new_id() -> str:
        return f"console-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"

    def status(self) -> EmbeddedStatus:
        w = self._worker
        return EmbeddedStatus(
            state=self._state,
            concurrency=w.concurrency if w else self.concurrency,
            busy=w.busy if w else 0,
            processed=w.processed if w else 0,
            failed=w.failed if w else 0,
            dead=w.dead if w else 0,
            worker_id=w.id if w else "",
            error=self._error,
        )

    @property
    def worker_id(self) -> str:
        return self._worker.id if self._worker else ""

    @property
    def running(self) -> bool:
        return self._state != "stopped"

    def _make_worker(self, queue: jobcore.Queue) -> jobcore.Worker:
        return jobcore.Worker(
            queue, self.handlers, concurrency=self.concurrency, grace=self.grace, worker_id=self.new_id()
        )

    def start(self) -> None:
        """Start serving (returns at once; the worker registers in the background)."""
        if self._state != "stopped":
            return
        install_record_factory()
        self._error = ""
        self._done = asyncio.Event()
        if self.in_process:
            worker = self._make_worker(self.queue)
            self._worker, self._state = worker, "running"
            self._task = asyncio.create_task(self._run_task(worker), name="jobconsole-embedded-worker")
            return
        self._state = "starting"
        ready = threading.Event()
        self._thread = LoopThread("jobconsole-embedded-worker")
        asyncio.run_coroutine_threadsafe(self._run_thread(asyncio.get_running_loop(), ready), self._thread.loop)
        ready.wait(5)  # only as long as building a Worker takes: no I/O happens before ready

    async def _run_thread(self, ui_loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        """The worker on its own thread's loop, with its own connection."""
        try:
            q = self.queue.clone()
            try:
                worker = self._make_worker(q)
                self._worker, self._loop = worker, asyncio.get_running_loop()
                self._task = asyncio.current_task()
                self._state = "running"
                ready.set()
                await worker.run()
            finally:
                ready.set()
                if q is not self.queue:
                    await q.close()
        except asyncio.CancelledError:
            pass  # given up on at exit (see stop)
        except Exception as exc:
            self._error = _one_line(exc)
            log.error("embedded worker crashed: %s", self._error)
        finally:
            await _cancel_the_rest()
            self._state = "stopped"
            ui_loop.call_soon_threadsafe(self._done.set)

    async def _run_task(self, worker: jobcore.Worker) -> None:
        try:
            await worker.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._error = _one_line(exc)
            log.error("embedded worker crashed: %s", self._error)
        finally:
            self._state = "stopped"
            self._done.set()

    def _in_worker(self, fn: Callable[[], None]) -> None:
        """Run fn where the worker lives: its own thread's loop, or here."""
        if self.in_process or self._loop is None:
            fn()
        else:
            self._loop.call_soon_threadsafe(fn)

    def request_stop(self, hard: bool = False, abandon: bool = False) -> None:
        """Graceful: fetch nothing new, let running jobs finish within grace, hand back the rest.
        ``hard``: cancel running jobs now and hand them back. ``abandon`` (the server is
        unreachable, nothing can be handed back): stop at once, their leases lapse."""
        worker = self._worker
        if worker is None or self._state == "stopped":
            return
        self._state = "stopping"

        def stop() -> None:
            if abandon:
                worker.request_hard_stop()
                return
            if hard:
                # Not request_hard_stop(): that skips handing jobs back, leaving them
                # to lapse; grace 0 cancels them and releases them at once.
                worker.grace = 0
            worker.request_stop()

        self._in_worker(stop)

    async def wait_stopped(self) -> None:
        await self._done.wait()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.stop, 10)
            self._thread = None
        self._task = None

    async def stop(self, hard: bool = False, timeout: float | None = None, abandon: bool = False) -> None:
        """Stop and wait. Past ``timeout`` (say the server went away while jobs were
        being handed back) stop at once and give up on the worker's run."""
        self.request_stop(hard, abandon)
        try:
            await asyncio.wait_for(asyncio.shield(self.wait_stopped()), timeout)
        except TimeoutError:
            worker, task = self._worker, self._task
            log.warning("embedded worker did not stop within %.0fs: stopping it at once", timeout)

            def give_up() -> None:
                if worker is not None:
                    worker.request_hard_stop()
                if task is not None:
                    task.cancel()

            self._in_worker(give_up)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wait_stopped(), 5)


async def _cancel_the_rest() -> None:
    """What asyncio.run does at its end: cancel the tasks the run left on this loop, wait
    for them, close async generators."""
    rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in rest:
        task.cancel()
    await asyncio.gather(*rest, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()


def _one_line(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(exc)).strip().splitlines()[-1]


@dataclass(frozen=True, slots=True)
class LogLine:
    created: float
    level: int
    levelname: str
    logger: str
    message: str
    fields: tuple[tuple[str, Any], ...]
    exc: str = ""


class LogBridge(logging.Handler):
    """Buffers the embedded worker's records for the UI to drain on a timer.

    Bounded: when the UI falls behind, new lines are counted as dropped instead of
    growing memory or flooding the screen. Safe to call from any thread.
    """

    def __init__(self, capacity: int = 2000, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.capacity = capacity
        self._lines: deque[LogLine] = deque()
        self._dropped = 0
        self._mutex = threading.Lock()

    @staticmethod
    def wanted(record: logging.LogRecord) -> bool:
        """jobcore's and this console's own records, and any record logged inside a job."""
        return record.name.startswith(("jobcore", "jobconsole")) or hasattr(record, "job_id")

    def emit(self, record: logging.LogRecord) -> None:
        if not self.wanted(record):
            return
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        exc = ""
        if record.exc_info and record.exc_info[0] is not None:
            exc = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        line = LogLine(
            created=record.created,
            level=record.levelno,
            levelname=record.levelname,
            logger=record.name,
            message=message,
            fields=tuple((k, getattr(record, k)) for k in LOG_FIELDS if hasattr(record, k)),
            exc=exc,
        )
        with self._mutex:
            if len(self._lines) >= self.capacity:
                self._dropped += 1
            else:
                self._lines.append(line)

    def drain(self, max_lines: int) -> tuple[list[LogLine], int]:
        """Up to ``max_lines`` buffered lines, and how many were dropped since the last drain."""
        with self._mutex:
            n = min(max_lines, len(self._lines))
            lines = [self._lines.popleft() for _ in range(n)]
            dropped, self._dropped = self._dropped, 0
        return lines, dropped

    def pending(self) -> int:
        with self._mutex:
            return len(self._lines)
