"""A worker's lease, kept from outside its event loop.

A heartbeat thread with a connection of its own renews the lease every
``interval`` (so a handler that blocks the event loop cannot let it lapse), and
a keeper process extends it while the worker process exists and is not stopped
(so a handler that holds the GIL in a long C call cannot either; Linux only).
The worker talks to this class only: ``start``, ``stop``, ``beat_soon``,
``cut_off_at`` and ``vouch``.

Two processes may carry one worker id (a worker frozen past its lease, and a
new one started with its id): they share a consumer name, so only the
instance token in the record tells them apart, and only the heartbeat checks
it. The worker writes as its consumer only while a heartbeat vouched for its
token within the lease (``fresh``); after a freeze it waits for the next one
(``vouch``), which tells it whether the id is still its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from jobcore.errors import ConnectionFailed, JobcoreError, WorkerIdTaken
from jobcore.queue import Queue
from jobcore.records import Lease
from jobcore.worker.backoff import beat_again_in

log = logging.getLogger("jobcore.worker")


class LeaseKeeping:
    def __init__(
        self,
        queue: Queue,
        worker_id: str,
        info: Callable[[], dict[str, Any]],
        lease: float,
        interval: float,
        on_beat: Callable[[], None] = lambda: None,
        on_id_taken: Callable[[WorkerIdTaken], None] = lambda exc: None,
    ) -> None:
        self.queue = queue
        self.worker_id = worker_id
        self._info = info  # the worker's record, read from the heartbeat thread
        self.lease = lease
        self.interval = interval
        self._on_beat = on_beat  # called after each heartbeat that reached Redis
        self._on_id_taken = on_id_taken  # called in the worker's loop, once
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by stop() and beat_soon()
        self._thread: threading.Thread | None = None
        self._keeper: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._cut_off_at = -1e9
        # Monotonic time a heartbeat that found this instance's token (or wrote
        # it) was sent: the lease is surely this instance's until then + lease.
        self._vouched_at = -1e9
        self.id_taken: WorkerIdTaken | None = None  # another instance holds the id now
        self._loop: asyncio.AbstractEventLoop | None = None
        self._vouched: asyncio.Event | None = None  # set (in the worker's loop) after each vouching beat

    @property
    def cut_off_at(self) -> float:
        """Monotonic time the heartbeat last failed to reach Redis, or found the
        lease lapsed or gone (the other workers were likely cut off too)."""
        with self._lock:
            return self._cut_off_at

    def _cut_off(self) -> None:
        with self._lock:
            self._cut_off_at = time.monotonic()

    def vouched(self, sent_at: float) -> None:
        """A heartbeat sent at ``sent_at`` (monotonic) found or wrote this instance's token."""
        with self._lock:
            self._vouched_at = max(self._vouched_at, sent_at)
        if self._vouched is not None:
            self._in_loop(self._vouched.set)

    def fresh(self) -> bool:
        """The id is surely this instance's now: vouched for within the lease."""
        with self._lock:
            return time.monotonic() - self._vouched_at < self.lease and self.id_taken is None

    async def vouch(self) -> bool:
        """Wait until a heartbeat vouches for this instance (at once when one
        did within the lease); False when the id is another's now. Callers bound it."""
        while not self.fresh():
            if self.id_taken is not None or self._vouched is None:
                return False
            self._vouched.clear()
            self.beat_soon()
            await self._vouched.wait()
        return True

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._vouched = asyncio.Event()
        self._start_keeper()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._beat()), name=f"jobcore-heartbeat-{self.worker_id}", daemon=True
        )
        self._thread.start()

    async def stop(self, deadline: float | None = None) -> bool:
        """End the heartbeat thread and the keeper, waiting until ``deadline``
        (monotonic; 5 s by default) at most. True when no heartbeat can land
        after this (one would bring back a worker whose record was removed)."""
        deadline = time.monotonic() + 5 if deadline is None else deadline
        self._stop.set()
        self._wake.set()
        if self._vouched is not None:
            self._vouched.set()  # wake a vouch: no beat comes any more
        thread = self._thread
        if thread is not None:
            await asyncio.to_thread(thread.join, max(0.0, deadline - time.monotonic()))
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            await asyncio.to_thread(_end_keeper, keeper, max(0.0, deadline - time.monotonic()))
        return thread is None or not thread.is_alive()

    def beat_soon(self) -> None:
        """Publish the worker's record now rather than at the next interval (it changed)."""
        self._wake.set()

    async def _beat(self) -> None:
        queue = self.queue
        q = queue.clone()
        failures = 0
        try:
            while not self._stop.is_set():
                wait = self.interval
                sent = time.monotonic()
                try:
                    lease = await q.heartbeat(self._info(), int(self.lease * 1000))
                    self.vouched(sent)
                    self._report(lease)
                    failures = 0
                    self._on_beat()
                except WorkerIdTaken as exc:
                    # Another instance took the id while this one was frozen past its
                    # lease: beat no more; the worker stops serving at once.
                    self.id_taken = exc
                    self._in_loop(functools.partial(self._id_taken, exc))
                    return
                except JobcoreError as exc:
                    if isinstance(exc, ConnectionFailed):
                        self._cut_off()
                    log.warning("heartbeat failed: %s", exc)
                    failures += 1
                    wait = beat_again_in(wait, failures)
                await asyncio.to_thread(self._wake.wait, wait)
                self._wake.clear()
        finally:
            if q is not queue:
                await q.close()

    def _in_loop(self, call: Callable[[], None]) -> None:
        """Run ``call`` in the worker's loop (from the heartbeat thread); not once that loop is closed."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(call)

    def _id_taken(self, exc: WorkerIdTaken) -> None:
        if self._vouched is not None:
            self._vouched.set()  # wake a vouch: the answer is no
        self._on_id_taken(exc)

    def _report(self, lease: Lease) -> None:
        if lease == Lease.LAPSED:
            self._cut_off()
            log.warning("worker %s lease had lapsed: its jobs may run again elsewhere", self.worker_id)
        elif lease == Lease.NEW:
            self._cut_off()
            log.error(
                "worker %s had no lease any more: Redis lost its data (a restart without persistence, or a flush) "
                "or other workers took this one for lost; jobs it held may run again, and jobs that were only "
                "in Redis may be gone",
                self.worker_id,
            )

    def _start_keeper(self) -> None:
        """Start the keeper process, when the backend can be reached from one (and
        on Linux, where it can tell a stopped worker from a busy one)."""
        settings = self.queue.lease_keeper_settings()
        if settings is None or not os.path.exists("/proc/self/stat"):
            return
        settings = dict(
            settings,
            id=self.worker_id,
            instance=str(self._info().get("instance", "")),
            parent=os.getpid(),
            lease_ms=int(self.lease * 1000),
            interval=self.interval,
        )
        # The keeper imports jobcore from where this worker did (this file is jobcore/worker/lease.py).
        home = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [home, os.environ.get("PYTHONPATH")])))
        try:
            keeper = subprocess.Popen(
                [sys.executable, "-P", "-m", "jobcore.worker.keeper"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                close_fds=True,
                env=env,
            )
            assert keeper.stdin is not None
            keeper.stdin.write(json.dumps(settings).encode() + b"\n")
            keeper.stdin.flush()
        except OSError as exc:
            log.warning("cannot start the lease keeper (%s): a handler holding the GIL may lose its lease", exc)
            return
        self._keeper = keeper


def _end_keeper(keeper: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """Close the keeper's input (it exits at once, or after a call Redis is slow
    to answer) and reap it; kill it past ``timeout``."""
    try:
        if keeper.stdin is not None:
            keeper.stdin.close()
        keeper.wait(timeout)
    except (OSError, subprocess.TimeoutExpired):
        keeper.kill()
        keeper.wait()
