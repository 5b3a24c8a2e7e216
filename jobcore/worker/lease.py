"""A worker's lease, kept from outside its event loop.

A heartbeat thread with a connection of its own renews the lease every
``interval`` (so a handler that blocks the event loop cannot let it lapse), and
a keeper process extends it while the worker process exists and is not stopped
(so a handler that holds the GIL in a long C call cannot either; Linux only).
The worker talks to this class only: ``start``, ``stop``, ``beat_soon`` and
``cut_off_at``.
"""

from __future__ import annotations

import asyncio
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
from jobcore.worker.keeper import beat_again_in

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
    ) -> None:
        self.queue = queue
        self.worker_id = worker_id
        self._info = info  # the worker's record, read from the heartbeat thread
        self.lease = lease
        self.interval = interval
        self._on_beat = on_beat  # called after each heartbeat that reached Redis
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by stop() and beat_soon()
        self._thread: threading.Thread | None = None
        self._keeper: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._cut_off_at = -1e9

    @property
    def cut_off_at(self) -> float:
        """Monotonic time the heartbeat last failed to reach Redis, or found the
        lease lapsed or gone (the other workers were likely cut off too)."""
        with self._lock:
            return self._cut_off_at

    def _cut_off(self) -> None:
        with self._lock:
            self._cut_off_at = time.monotonic()

    def start(self) -> None:
        self._start_keeper()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._beat()), name=f"jobcore-heartbeat-{self.worker_id}", daemon=True
        )
        self._thread.start()

    async def stop(self) -> None:
        """No heartbeat lands after this returns (one would bring back a worker
        whose record was removed)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            await asyncio.to_thread(_end_keeper, keeper)

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
                try:
                    self._report(await q.heartbeat(self._info(), int(self.lease * 1000)))
                    failures = 0
                    self._on_beat()
                except WorkerIdTaken as exc:
                    log.error("%s: this worker's lease lapsed and another took its id", exc)
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


def _end_keeper(keeper: subprocess.Popen[bytes]) -> None:
    """Close the keeper's input (it exits at once) and reap it."""
    try:
        if keeper.stdin is not None:
            keeper.stdin.close()
        keeper.wait(5)
    except (OSError, subprocess.TimeoutExpired):
        keeper.kill()
        keeper.wait()
