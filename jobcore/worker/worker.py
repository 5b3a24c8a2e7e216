"""The worker: its options, its lifecycle (start, serve, stop gracefully or at
once) and the fetch loop. What it does with a job is in its parts: runners.py
(runner tasks and timeouts), execution.py (one job), settling.py (outcomes to
Redis), recovery.py (lost workers' jobs), cancels.py (operator cancels), with
the state they share in state.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from jobcore.errors import ConnectionFailed, EvictionRisk, JobcoreError, WorkerIdTaken
from jobcore.limits import DEFAULT_LEASE_S, DEFAULT_MAX_ATTEMPTS
from jobcore.logs import install_record_factory
from jobcore.queue import Queue
from jobcore.registry import Handlers
from jobcore.worker.backoff import Backoff
from jobcore.worker.cancels import Cancels
from jobcore.worker.execution import Execution
from jobcore.worker.lease import LeaseKeeping
from jobcore.worker.recovery import Recovery
from jobcore.worker.runners import JobDone, Runners
from jobcore.worker.settling import Settler
from jobcore.worker.state import Held, Signals
from jobcore.worker.suspects import Suspects

log = logging.getLogger("jobcore.worker")

DEFAULT_TIMEOUT_S = 30 * 60.0
DEFAULT_CONCURRENCY = 10
DEFAULT_GRACE_S = 30.0
DEFAULT_PREFETCH = 40
STOP_REDIS_S = 5.0  # what a graceful stop gives Redis after the grace period: settle, hand back, unregister
EXIT_RESERVE_S = 1.0  # of which kept for closing connections and exiting, so the process ends in time
HARD_STOP_REDIS_S = 2.0  # what a stop at once gives Redis to take back the interrupted jobs


class Worker:
    """Runs registered handlers for the job types it serves.

    ``await worker.run()`` until ``await worker.stop()``. Jobs are taken only for
    types in ``handlers`` (or the ``types`` subset), so services with different
    handler sets can share one Redis.

    While jobs are quick (under ``runners.QUICK_JOB_S`` on average, and none running
    longer) the worker takes up to ``prefetch`` jobs beyond its free slots, so the next ones are at hand when
    a slot frees; they are in flight (recorded, recovered on a crash, handed back
    on stop) from the moment they are taken.
    """

    def __init__(
        self,
        queue: Queue,
        handlers: Handlers,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout: float = DEFAULT_TIMEOUT_S,
        types: Sequence[str] | None = None,
        lease: float = DEFAULT_LEASE_S,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        grace: float = DEFAULT_GRACE_S,
        block: float = 1.0,
        worker_id: str | None = None,
        prefetch: int = DEFAULT_PREFETCH,
        allow_eviction: bool = False,
        failed_keep: int | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if prefetch < 0:
            raise ValueError("prefetch must not be negative")
        if timeout <= 0 or lease <= 0 or grace < 0:
            raise ValueError("timeout and lease must be positive, grace not negative")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        chosen = list(types) if types else handlers.types
        unknown = [t for t in chosen if t not in handlers]
        if unknown:
            raise ValueError(f"no handler registered for type(s): {', '.join(unknown)}")
        if not chosen:
            raise ValueError("the handler registry is empty: nothing to serve")
        if failed_keep is not None:
            queue.keep_failed(failed_keep)  # the cap this worker's settles apply
        self.queue = queue
        self.handlers = handlers
        self.allow_eviction = allow_eviction
        self._evicting = ""  # the evicting maxmemory policies found at start, when allowed
        self.types = sorted(chosen)
        self.concurrency = concurrency
        self.prefetch = prefetch
        self.timeout = timeout
        self.lease = lease
        self.max_attempts = max_attempts
        self.grace = grace
        self.block_ms = max(1, int(block * 1000))
        self.heartbeat_interval = max(0.05, lease / 3)
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        # Tells this run of the worker from another one given the same id.
        self._instance = uuid.uuid4().hex
        # Each served type's args schema fingerprint: live workers that disagree are shown.
        self._schema_hashes = {t: handlers.get(t).schema_hash() for t in self.types}
        self.observers: list[Callable[[JobDone], None]] = []
        self._stopped = asyncio.Event()
        self._running = False
        self._started_ms = int(time.time() * 1000)
        self._held = held = Held()
        self._signals = signals = Signals()
        # Jobs at this attempt or later were in flight when workers died, twice.
        suspects = Suspects(max_attempts)
        self._execution = Execution(
            handlers, signals, concurrency=concurrency, timeout=timeout, max_attempts=max_attempts
        )
        self._runners = Runners(
            held,
            signals,
            self._execution,
            suspects,
            self.observers,
            concurrency=concurrency,
            prefetch=prefetch,
            timeout=timeout,
        )
        self._lease_keeping = LeaseKeeping(
            queue,
            self.id,
            self.info,
            self.lease,
            self.heartbeat_interval,
            on_beat=self._warn_eviction,
            on_id_taken=self._id_taken,
        )
        self._settler = Settler(queue, self.id, self.types, held, signals, self._lease_keeping)
        # Set by the first stop request (monotonic): the grace ends, then every
        # Redis call of the stop ends STOP_REDIS_S later at the latest.
        self._grace_end: float | None = None
        self._stop_by: float | None = None
        self._recovery = Recovery(
            queue,
            self.id,
            self.types,
            lease=lease,
            interval=self.heartbeat_interval,
            held=held,
            signals=signals,
            suspects=suspects,
            runners=self._runners,
            settler=self._settler,
            lease_keeping=self._lease_keeping,
        )
        self._cancels = Cancels(queue, self.id, handlers, held)
        # The jobs held ahead and the runner slots, for a look from outside.
        self._buffer = held.buffer
        self._slots = self._runners.slots

    # ---- public -----------------------------------------------------------

    @property
    def busy(self) -> int:
        return len(self._held.active)

    @property
    def running(self) -> bool:
        return self._running

    @property
    def processed(self) -> int:
        return self._held.processed

    @property
    def failed(self) -> int:
        return self._held.failed

    @property
    def dead(self) -> int:
        return self._held.dead

    @property
    def threads_busy(self) -> int:
        """Sync handlers still running in their threads. After a stop these are
        jobs already handed back (Python cannot stop a thread): a process that
        exits should not wait for them, or they would finish jobs that another
        worker now runs."""
        return self._execution.threads_busy

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "instance": self._instance,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "concurrency": self.concurrency,
            "busy": self.busy,
            "types": self.types,
            "started_ms": self._started_ms,
            "processed": self.processed,
            "failed": self.failed,
            "heartbeat_interval_ms": int(self.heartbeat_interval * 1000),
            "schemas": self._schema_hashes,
            "stopping": self._signals.stopping.is_set(),
            "sync_types": [t for t in self.types if not self.handlers.get(t).is_async],
        }

    async def run(self) -> None:
        """Serve jobs until stop() (or cancellation)."""
        if self._running:
            raise RuntimeError("worker is already running")
        self._running = True
        install_record_factory()
        signals = self._signals
        served = False
        try:
            if not await self._start():
                return
            served = True
            self._lease_keeping.start()
            log.info(
                "worker %s serving %s (concurrency %d, lease %.1fs)",
                self.id,
                ", ".join(self.types),
                self.concurrency,
                self.lease,
            )
            settler = asyncio.create_task(self._settler.loop(), name="jobcore-settle")
            self._runners.start()
            watchdog = asyncio.create_task(self._runners.watchdog(), name="jobcore-watchdog")
            cancels = asyncio.create_task(self._cancels.watch(), name="jobcore-cancels")
            try:
                await self._fetch_loop()
            finally:
                cancels.cancel()
                if self._stop_by is None:  # ended without a stop request (cancelled)
                    self._set_stop_deadline()
                assert self._grace_end is not None and self._stop_by is not None
                await self._runners.drain(max(0.0, self._grace_end - time.monotonic()))
                watchdog.cancel()
                await self._runners.end()
                # Never cancel a settle in flight: its batch would be lost and
                # finished jobs handed back as leftovers, to run again. The
                # settler gives up at the stop's deadline by itself.
                self._settler.closing = True
                self._held.outbox_ready.set()
                if signals.hard_stop:
                    settler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await settler
                await self._finish_stop()
        finally:
            await self._lease_keeping.stop(self._stop_by)
            self._execution.shutdown()
            self._running = False
            self._stopped.set()
            if served:
                log.info("worker %s stopped (processed %d, failed %d)", self.id, self.processed, self.failed)
            else:
                log.info("worker %s stopped before it started serving: it took no job", self.id)
        if signals.id_taken:
            raise WorkerIdTaken(
                f"worker id {self.id!r} was taken by another process while this one could not renew its lease "
                "(frozen or cut off): it stopped serving at once; give each worker its own id (--id)"
            )

    async def _start(self) -> bool:
        """Register (retrying while Redis refuses) until serving may begin; False
        when a stop came first. A stop ends a try in progress at once."""
        backoff = Backoff()
        stopping = self._signals.stopping
        stop_wait = asyncio.ensure_future(stopping.wait())
        try:
            while not stopping.is_set():
                sent = time.monotonic()
                attempt = asyncio.ensure_future(self._register())
                await asyncio.wait({attempt, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                if not attempt.done():
                    attempt.cancel()
                    with contextlib.suppress(BaseException):
                        await attempt
                    return False
                try:
                    attempt.result()
                except WorkerIdTaken as exc:
                    # Two workers under one id would each take the other's jobs for lost.
                    raise WorkerIdTaken(f"{exc}: give this worker another id (--id)") from None
                except EvictionRisk:
                    raise
                except JobcoreError as exc:
                    delay = backoff.next()
                    log.warning("cannot start serving yet: %s; retrying in %.1fs", exc, delay)
                    await self._sleep_unless_stopping(delay)
                    continue
                self._lease_keeping.vouched(sent)
                if stopping.is_set():  # registered as the stop came: take the record back
                    assert self._stop_by is not None
                    await self._within(self._stop_by, self._unregister())
                    return False
                return True
            return False
        finally:
            stop_wait.cancel()

    async def _register(self) -> None:
        await self._check_eviction()
        await self.queue.register_types({t: self.handlers.get(t).schema() for t in self.types})
        await self.queue.heartbeat(self.info(), int(self.lease * 1000))

    async def _finish_stop(self) -> None:
        """After the runners and the settler: hand back what is held, end the
        heartbeat and remove the record, each bounded by the stop's deadline;
        what could not be settled is named, and left to the lease."""
        settler, held, signals = self._settler, self._held, self._signals
        assert self._stop_by is not None
        if signals.id_taken:
            # Another process serves under this id now: what this one holds is
            # that one's to hand back (it sees jobs it never took). Write nothing.
            left = held.outbox
            held.outbox = []
            await self._within(self._stop_by, self.queue.stop_fetching())
            log.error(
                "worker %s stops serving at once: another process took its id while this one could not renew its "
                "lease (frozen or cut off); %d unsettled job(s) (%s) are left to that process, which hands them back",
                self.id,
                len(left),
                ", ".join(f"{o.job_type} {o.entry_id}" for o in left) or "none",
            )
            return
        if signals.hard_stop:
            # Stop at once, but hand back what was interrupted, in one bounded try:
            # otherwise it waits for the lease to lapse, and runs again as suspects.
            n = len(held.outbox)
            await settler.settle_all(self._stop_by)
            if n and not held.outbox:
                log.warning("stopped at once: %d job(s) handed back to the queue", n)
            settler.unsettled()
            return
        # Bounded, whatever Redis answers: a stop ends within grace + STOP_REDIS_S.
        deadline = self._stop_by
        settler.unsettled()
        await self._within(deadline, self.queue.stop_fetching())
        released = not held.outbox and await self._within(deadline, self._release_leftovers())
        # The record is removed only while it is surely this instance's (a beat
        # just vouched for it), and no heartbeat may land after (it would bring
        # back a worker that is gone).
        ours = released and await self._within(deadline, self._vouch())
        quiet = await self._lease_keeping.stop(deadline)
        if ours and quiet:
            await self._within(deadline, self._unregister())

    async def _vouch(self) -> None:
        if not await self._lease_keeping.vouch():
            raise WorkerIdTaken(f"another worker took the id {self.id!r}: nothing handed back from here")

    async def _release_leftovers(self) -> None:
        await self._vouch()
        await self._settler.release_leftovers()

    async def _check_eviction(self) -> None:
        """Refuse to serve a Redis that may evict queued jobs, unless allowed."""
        policies = ", ".join(sorted(await self.queue.eviction_policies()))
        if not policies:
            return
        if not self.allow_eviction:
            raise EvictionRisk(
                f"Redis uses maxmemory-policy {policies}, which may evict queued jobs when it fills up: "
                "set maxmemory-policy noeviction (or start the worker with --allow-eviction)"
            )
        self._evicting = policies
        self._warn_eviction()

    def _warn_eviction(self) -> None:
        if self._evicting:
            log.warning("Redis uses maxmemory-policy %s: queued jobs may be evicted (allowed)", self._evicting)

    async def stop(self, grace: float | None = None) -> None:
        """Fetch nothing new, let running jobs finish within ``grace`` seconds, then
        hand unfinished jobs back to the queue. Returns when the worker has stopped."""
        if grace is not None:
            self.grace = grace
        self.request_stop()
        if self._running:
            await self._stopped.wait()

    def _set_stop_deadline(self) -> None:
        self._grace_end = time.monotonic() + self.grace
        self._stop_by = self._grace_end + STOP_REDIS_S - EXIT_RESERVE_S
        self._settler.stop_by(self._stop_by)

    def _id_taken(self, exc: WorkerIdTaken) -> None:
        """The heartbeat found another process holding this worker's id (it took
        it while this one was frozen past its lease): stop serving at once."""
        self._signals.id_taken = True
        self.request_hard_stop()

    def request_stop(self) -> None:
        if self._stop_by is None:
            self._set_stop_deadline()
        self._signals.stopping.set()
        self._held.slot_freed.set()
        # Say so in the record: if this worker's jobs are left behind, whoever
        # takes them counts no death against them (suspects.py).
        self._lease_keeping.beat_soon()

    def request_hard_stop(self) -> None:
        """Stop at once: cancel running jobs; their leases lapse and others re-run them."""
        self._signals.hard_stop = True
        self.grace = 0
        now = time.monotonic()
        self._grace_end = now
        self._stop_by = min(self._stop_by or now + HARD_STOP_REDIS_S, now + HARD_STOP_REDIS_S)
        self._settler.stop_by(self._stop_by)
        self._signals.hard_stop_event.set()
        self._held.outbox_ready.set()  # wake a settle loop waiting on an unreachable Redis
        self.request_stop()

    # ---- fetching ---------------------------------------------------------

    async def _sleep_unless_stopping(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._signals.stopping.wait(), delay)

    async def _fetch_loop(self) -> None:
        backoff = Backoff()
        stop_wait = asyncio.ensure_future(self._signals.stopping.wait())
        try:
            await self._fetch_until_stopped(backoff, stop_wait)
        finally:
            stop_wait.cancel()

    async def _fetch_until_stopped(self, backoff: Backoff, stop_wait: asyncio.Future[Any]) -> None:
        held, stopping, runners, recovery = self._held, self._signals.stopping, self._runners, self._recovery
        while not stopping.is_set():
            free = runners.free()
            if free <= 0:
                held.slot_freed.clear()
                await held.slot_freed.wait()
                continue
            if not await self._vouched(stop_wait):
                break
            try:
                if recovery.due():
                    # A stop ends it at once: what a cancelled claim took is handed
                    # back on the way out (or left to the lease).
                    look = asyncio.ensure_future(recovery.run())
                    await asyncio.wait({look, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                    if not look.done():
                        look.cancel()
                        with contextlib.suppress(BaseException):
                            await look
                        break
                    look.result()
                    runners.wake()
                    free = runners.free()
                    if free <= 0:
                        continue
                # While lost workers' jobs wait, come back for the next one soon.
                block_ms = min(self.block_ms, 100) if recovery.recovering else self.block_ms
                fetch = asyncio.ensure_future(self.queue.fetch(self.id, self.types, free, block_ms))
                done, _ = await asyncio.wait({fetch, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                if fetch not in done:
                    fetch.cancel()  # entries it may have taken are released on exit
                    break
                deliveries = fetch.result()
                backoff.reset()
                if not await self._vouched(stop_wait):
                    break  # taken under an id that is another's now: that one hands them back
            except JobcoreError as exc:
                if isinstance(exc, ConnectionFailed):
                    self._signals.cut_off_at = time.monotonic()
                delay = backoff.next()
                log.warning("fetch failed: %s; retrying in %.1fs", exc, delay)
                await self._sleep_unless_stopping(delay)
                continue
            held.take(deliveries)
            runners.wake()

    async def _vouched(self, stop_wait: asyncio.Future[Any]) -> bool:
        """Whether this worker may go on taking jobs under its id: at once while a
        heartbeat vouched for it within the lease; after a freeze, once the next
        one has (False: the id is another's now, or a stop came first)."""
        lease = self._lease_keeping
        if lease.fresh():
            return True
        vouch = asyncio.ensure_future(lease.vouch())
        await asyncio.wait({vouch, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if not vouch.done():
            vouch.cancel()
            return False
        return vouch.result() and not self._signals.stopping.is_set()

    async def _within(self, deadline: float, step: Awaitable[None]) -> bool:
        """Run a stop step until ``deadline``; False (logged) when it failed. What
        the worker still holds then stays its own, so its lease lapses and another
        worker recovers it: the record is not removed."""
        left = deadline - time.monotonic()
        if left <= 0:
            if asyncio.iscoroutine(step):
                step.close()  # never started
            log.warning("stopping: no time left for Redis (grace + %gs); this worker's record stays", STOP_REDIS_S)
            return False
        try:
            await asyncio.wait_for(step, left)
            return True
        except (JobcoreError, TimeoutError) as exc:
            log.warning(
                "stopping: %s; jobs this worker still holds stay its own until its lease lapses, "
                "then another worker takes them",
                exc or "Redis did not answer in time",
            )
            return False

    async def _unregister(self) -> None:
        await self.queue.forget_worker(self.id, self.types, force=True)
