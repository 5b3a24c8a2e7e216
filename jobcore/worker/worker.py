"""The worker: fetch, run with bounded concurrency and a timeout, settle, recover."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import random
import socket
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import msgspec

from jobcore.errors import ArgsError, ConnectionFailed, EvictionRisk, JobcoreError, PayloadError, WorkerIdTaken
from jobcore.limits import CANCEL_POLL_S, DEFAULT_LEASE_S, DEFAULT_MAX_ATTEMPTS
from jobcore.logs import enter_job, install_record_factory, leave_job
from jobcore.model import Job, decode_args, decode_envelope, unknown_fields
from jobcore.queue import Queue
from jobcore.records import Delivery, Outcome, Stale
from jobcore.registry import Handlers, Registration
from jobcore.worker.lease import LeaseKeeping
from jobcore.worker.suspects import Suspects

log = logging.getLogger("jobcore.worker")

DEFAULT_TIMEOUT_S = 30 * 60.0
DEFAULT_CONCURRENCY = 10
DEFAULT_GRACE_S = 30.0
DEFAULT_PREFETCH = 40
# Prefetch only while jobs finish this fast on average: a slow job waiting in one
# worker's buffer would keep it from a worker that is idle.
QUICK_JOB_S = 0.01
ORPHANS_EVERY_S = 60.0
STOP_REDIS_S = 5.0  # what a graceful stop gives Redis after the grace period: settle, hand back, unregister
HARD_STOP_REDIS_S = 2.0  # what a stop at once gives Redis to take back the interrupted jobs
CANCELLED = "cancelled by operator"  # the failed reason of a job cancelled with Queue.cancel


@dataclass(frozen=True, slots=True)
class JobDone:
    """What the worker reports to observers (metrics) after each job."""

    job_type: str
    kind: str  # ack | fail | dead | release
    duration: float


class _Backoff:
    def __init__(self, first: float = 0.1, cap: float = 5.0) -> None:
        self.first, self.cap, self.delay = first, cap, first

    def next(self) -> float:
        d = self.delay * (0.5 + random.random())
        self.delay = min(self.cap, self.delay * 2)
        return d

    def reset(self) -> None:
        self.delay = self.first


class _Slot:
    """One of the worker's ``concurrency`` long-lived runner tasks and the job it runs."""

    __slots__ = ("cancelled", "job", "started", "task", "timed_out")

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.job: Delivery | None = None
        self.started = 0.0
        self.timed_out = False
        self.cancelled = False  # an operator cancelled its job (Queue.cancel)


class Worker:
    """Runs registered handlers for the job types it serves.

    ``await worker.run()`` until ``await worker.stop()``. Jobs are taken only for
    types in ``handlers`` (or the ``types`` subset), so services with different
    handler sets can share one Redis.

    While jobs are quick (under ``QUICK_JOB_S`` on average, and none running
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
            if failed_keep < 1:
                raise ValueError("failed_keep must be at least 1")
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
        self._orphans_due = 0.0  # monotonic time of the next look for jobs delivered to no one
        # Each served type's args schema fingerprint: live workers that disagree are shown.
        self._schema_hashes = {t: handlers.get(t).schema_hash() for t in sorted(chosen)}
        self.processed = 0
        self.failed = 0
        self.dead = 0
        self.observers: list[Callable[[JobDone], None]] = []
        self._buffer: deque[Delivery] = deque()
        # Keyed by (type, entry id): an entry id is unique within its type's stream
        # only, and jobs of several types enqueued together share ids.
        self._active: dict[tuple[str, str], _Slot] = {}
        # Runner tasks live as long as the worker: a task per job costs more than
        # a no-op job itself. Idle runners park on a future each.
        self._slots: list[_Slot] = []
        self._idle: deque[asyncio.Future[None]] = deque()
        self._all_done = asyncio.Event()
        self._cancelling_all = False
        self._avg_run = float("inf")  # moving average of job run time, s; unknown counts as slow
        self._known: set[tuple[str, str]] = set()  # held until settled
        self._outbox: list[Outcome] = []
        self._outbox_event = asyncio.Event()
        self._slot_event = asyncio.Event()
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._hard_stop = False
        self._hard_stop_event = asyncio.Event()
        self._closing = False
        self._running = False
        self._started_ms = int(time.time() * 1000)
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="jobcore-job")
        self._lease_keeping = LeaseKeeping(
            queue, self.id, self.info, self.lease, self.heartbeat_interval, on_beat=self._warn_eviction
        )
        self._threads_lock = threading.Lock()
        self._threads_busy = 0
        self._last_maintenance = 0.0
        # Jobs at this attempt or later were in flight when workers died, twice.
        self._suspects = Suspects(max_attempts)
        self._recovering = False  # a lost worker still holds jobs this worker could take
        self._cut_off_at = -1e9  # monotonic time this worker last failed to reach the backend

    # ---- public -----------------------------------------------------------

    @property
    def busy(self) -> int:
        return len(self._active)

    @property
    def running(self) -> bool:
        return self._running

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
            "stopping": self._stopping.is_set(),
            "sync_types": [t for t in self.types if not self.handlers.get(t).is_async],
        }

    async def run(self) -> None:
        """Serve jobs until stop() (or cancellation)."""
        if self._running:
            raise RuntimeError("worker is already running")
        self._running = True
        install_record_factory()
        backoff = _Backoff()
        try:
            while not self._stopping.is_set():
                try:
                    await self._check_eviction()
                    await self.queue.register_types({t: self.handlers.get(t).schema() for t in self.types})
                    await self.queue.heartbeat(self.info(), int(self.lease * 1000))
                    break
                except WorkerIdTaken as exc:
                    # Two workers under one id would each take the other's jobs for lost.
                    raise WorkerIdTaken(f"{exc}: give this worker another id (--id)") from None
                except EvictionRisk:
                    raise
                except JobcoreError as exc:
                    delay = backoff.next()
                    log.warning("cannot start serving yet: %s; retrying in %.1fs", exc, delay)
                    await self._sleep_unless_stopping(delay)
            self._lease_keeping.start()
            log.info(
                "worker %s serving %s (concurrency %d, lease %.1fs)",
                self.id,
                ", ".join(self.types),
                self.concurrency,
                self.lease,
            )
            settler = asyncio.create_task(self._settle_loop(), name="jobcore-settle")
            self._start_runners()
            watchdog = asyncio.create_task(self._watchdog(), name="jobcore-watchdog")
            cancels = asyncio.create_task(self._cancel_watch(), name="jobcore-cancels")
            try:
                await self._fetch_loop()
            finally:
                cancels.cancel()
                await self._drain()
                watchdog.cancel()
                await self._end_runners()
                # Never cancel a settle in flight: its batch would be lost and
                # finished jobs handed back as leftovers, to run again.
                self._closing = True
                self._outbox_event.set()
                if self._hard_stop:
                    settler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await settler
                if self._hard_stop:
                    # Stop at once, but hand back what was interrupted, in one bounded try:
                    # otherwise it waits for the lease to lapse, and runs again as suspects.
                    n = len(self._outbox)
                    await self._settle_all(time.monotonic() + HARD_STOP_REDIS_S)
                    if n and not self._outbox:
                        log.warning("stopped at once: %d job(s) handed back to the queue", n)
                else:
                    # Bounded, whatever Redis answers: a stop ends within grace + STOP_REDIS_S.
                    deadline = time.monotonic() + STOP_REDIS_S
                    await self._settle_all(deadline)
                    await self.queue.stop_fetching()
                    released = await self._within(deadline, self._release_leftovers())
                    # No heartbeat may land after the record is removed (it would
                    # bring back a worker that is gone).
                    await self._lease_keeping.stop()
                    if released and not self._outbox:
                        await self._within(deadline, self._unregister())
        finally:
            await self._lease_keeping.stop()
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._running = False
            self._stopped.set()
            log.info("worker %s stopped (processed %d, failed %d)", self.id, self.processed, self.failed)

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

    def request_stop(self) -> None:
        self._stopping.set()
        self._slot_event.set()
        # Say so in the record: if this worker's jobs are left behind, whoever
        # takes them counts no death against them (suspects.py).
        self._lease_keeping.beat_soon()

    def request_hard_stop(self) -> None:
        """Stop at once: cancel running jobs; their leases lapse and others re-run them."""
        self._hard_stop = True
        self.grace = 0
        self._hard_stop_event.set()
        self._outbox_event.set()  # wake a settle loop waiting on an unreachable Redis
        self.request_stop()

    # ---- fetching ---------------------------------------------------------

    async def _sleep_unless_stopping(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)

    def _free(self) -> int:
        extra = self.prefetch if self._prefetching() else 0
        return self.concurrency + extra - len(self._active) - len(self._buffer)

    def _prefetching(self) -> bool:
        """Take jobs ahead only while jobs are quick on average and none running now
        has been at it long: a job fetched ahead waits for a slot, and a slow job
        holds one (types with quick and slow jobs mix in one worker)."""
        if not self.prefetch or self._avg_run >= QUICK_JOB_S:
            return False
        since = time.monotonic() - QUICK_JOB_S
        return all(slot.started > since for slot in self._active.values())

    async def _fetch_loop(self) -> None:
        backoff = _Backoff()
        stop_wait = asyncio.ensure_future(self._stopping.wait())
        try:
            await self._fetch_until_stopped(backoff, stop_wait)
        finally:
            stop_wait.cancel()

    async def _fetch_until_stopped(self, backoff: _Backoff, stop_wait: asyncio.Future[Any]) -> None:
        while not self._stopping.is_set():
            free = self._free()
            if free <= 0:
                self._slot_event.clear()
                await self._slot_event.wait()
                continue
            try:
                due = time.monotonic() - self._last_maintenance >= self.heartbeat_interval
                if due or (self._recovering and self._can_take_suspect()):
                    await self._maintenance()
                    self._last_maintenance = time.monotonic()
                    self._wake_runners()
                    free = self._free()
                    if free <= 0:
                        continue
                # While lost workers' jobs wait, come back for the next one soon.
                block_ms = min(self.block_ms, 100) if self._recovering else self.block_ms
                fetch = asyncio.ensure_future(self.queue.fetch(self.id, self.types, free, block_ms))
                done, _ = await asyncio.wait({fetch, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                if fetch not in done:
                    fetch.cancel()  # entries it may have taken are released on exit
                    break
                deliveries = fetch.result()
                backoff.reset()
            except JobcoreError as exc:
                if isinstance(exc, ConnectionFailed):
                    self._cut_off_at = time.monotonic()
                delay = backoff.next()
                log.warning("fetch failed: %s; retrying in %.1fs", exc, delay)
                await self._sleep_unless_stopping(delay)
                continue
            for d in deliveries:
                self._known.add((d.job_type, d.entry_id))
                self._buffer.append(d)
            self._wake_runners()

    def _can_take_suspect(self) -> bool:
        return self._suspects.can_take(self._buffer, self._free())

    def _next_job(self) -> Delivery | None:
        """The next buffered job to start (suspects one at a time: suspects.py)."""
        if self._stopping.is_set():
            return None
        return self._suspects.next_job(self._buffer)

    def _wake_runners(self) -> None:
        n = len(self._buffer)
        while n > 0 and self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                n -= 1

    def _start_runners(self) -> None:
        for i in range(self.concurrency):
            slot = _Slot()
            slot.task = asyncio.create_task(self._runner(slot), name=f"jobcore-runner-{i}")
            self._slots.append(slot)

    async def _end_runners(self) -> None:
        tasks = [s.task for s in self._slots if s.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._slots.clear()
        self._idle.clear()

    async def _runner(self, slot: _Slot) -> None:
        loop = asyncio.get_running_loop()
        while True:
            d = self._next_job()
            if d is None:
                waiter = loop.create_future()
                self._idle.append(waiter)
                await waiter
                continue
            slot.job = d
            slot.started = time.monotonic()
            slot.timed_out = False
            slot.cancelled = False
            self._active[d.job_type, d.entry_id] = slot
            try:
                await self._run_one(d, slot)
            finally:
                slot.job = None

    async def _watchdog(self) -> None:
        """Cancel jobs past their timeout: one timer for the worker instead of one per job."""
        tick = min(1.0, max(0.005, self.timeout / 20))
        while True:
            await asyncio.sleep(tick)
            started_before = time.monotonic() - self.timeout
            for slot in self._slots:
                if slot.job is not None and not slot.timed_out and slot.started <= started_before and slot.task:
                    slot.timed_out = True
                    slot.task.cancel()

    async def _maintenance(self) -> None:
        """Hand back jobs this worker holds but never saw (a fetch whose reply was
        lost with its connection), and take jobs of lost workers: as many as there
        are free slots, but only one suspect, and none while one runs here."""
        # A settle on another connection may finish while owned() is on its way
        # back; what was known when asking counts as seen.
        known_before = set(self._known)
        owned = await self.queue.owned(self.id, self.types)
        unseen = [(t, e) for t, e in owned if (t, e) not in known_before and (t, e) not in self._known]
        if unseen:
            log.warning("%d job(s) held but never seen (a fetch reply was lost): handing them back", len(unseen))
            await self._hand_back(unseen)
        if time.monotonic() >= self._orphans_due:
            self._orphans_due = time.monotonic() + ORPHANS_EVERY_S
            back = await self.queue.recover_orphans(self.types)
            if back:
                log.warning("%d job(s) were delivered to no one (their consumer was deleted): back on the queue", back)
        if time.monotonic() - max(self._cut_off_at, self._lease_keeping.cut_off_at) < self.lease:
            # This worker could not reach Redis a moment ago, so the others were
            # likely cut off too: give them a lease to show they live before
            # taking their jobs (after a Redis restart every lease has lapsed).
            return
        lost = [w for w in await self.queue.lost_workers() if w != self.id]
        recovering = False
        all_types = None
        stopping = {w.id for w in await self.queue.workers() if w.stopping} if lost else set()
        for owner in lost:
            died = owner not in stopping
            why = f"recovered from lost worker {owner}" if died else f"taken over from stopped worker {owner}"
            for job_type in self.types:
                got, left = await self.queue.claim(
                    self.id,
                    job_type,
                    owner,
                    max(0, self._free()),
                    suspects=1 if self._can_take_suspect() else 0,
                    suspect_deaths=self._suspects.from_deaths,
                    died=died,
                )
                self._take(got, why)
                recovering = recovering or left > 0
            if all_types is None:
                all_types = await self.queue.job_types()
            await self.queue.forget_worker(owner, all_types)
        self._recovering = recovering

    async def _hand_back(self, held: Sequence[tuple[str, str]]) -> None:
        """Put jobs this worker holds but never started back on their queue,
        without counting an attempt (one atomic settle per job)."""
        await self.queue.settle(self.id, [Outcome(t, e, "release", 0) for t, e in held])

    def _take(self, deliveries: list[Delivery], why: str) -> None:
        for d in deliveries:
            log.warning("job entry %s of type %s %s (attempt %d)", d.entry_id, d.job_type, why, d.attempt)
            self._known.add((d.job_type, d.entry_id))
            self._buffer.append(d)

    # ---- running ----------------------------------------------------------

    async def _run_one(self, d: Delivery, slot: _Slot) -> None:
        started = time.perf_counter()
        outcome = Outcome(d.job_type, d.entry_id, "release", d.attempt)
        try:
            outcome = await self._execute(d, slot)
        except asyncio.CancelledError:
            outcome = Outcome(d.job_type, d.entry_id, "release", d.attempt)
            raise
        except Exception as exc:  # a bug outside the handler: keep the job, never loop it
            log.exception("internal error running job entry %s", d.entry_id)
            outcome = Outcome(d.job_type, d.entry_id, "fail", d.attempt, f"internal error: {exc!r}")
        finally:
            self._active.pop((d.job_type, d.entry_id), None)
            if not self._active:
                self._all_done.set()
            if self._suspects.finished(d):
                self._wake_runners()  # suspects may be waiting for this one
            self._slot_event.set()
            took = time.perf_counter() - started
            if outcome.kind == "ack" or outcome.kind == "fail":
                outcome = msgspec.structs.replace(outcome, took=took)  # for the history
            self._outbox.append(outcome)
            self._outbox_event.set()
            if outcome.kind == "ack":
                self.processed += 1
            elif outcome.kind == "fail":
                self.failed += 1
            elif outcome.kind == "dead":
                self.dead += 1
            avg = self._avg_run
            self._avg_run = took if avg == float("inf") else avg + (took - avg) * 0.1
            if self.observers:
                done = JobDone(d.job_type, outcome.kind, took)
                for observer in self.observers:
                    observer(done)

    async def _execute(self, d: Delivery, slot: _Slot) -> Outcome:
        decoded = self._decode(d)
        if isinstance(decoded, Outcome):
            return decoded
        reg, job = decoded
        token = enter_job(job)
        try:
            if d.attempt > self.max_attempts:
                return self._dead(
                    d,
                    f"delivered {d.attempt} times, more than max_attempts={self.max_attempts}: "
                    "its worker kept stopping before the job finished",
                )
            return await self._run_handler(d, slot, reg, job)
        finally:
            leave_job(token)

    def _dead(self, d: Delivery, reason: str) -> Outcome:
        log.error("job entry %s of type %s dead-lettered: %s", d.entry_id, d.job_type, reason)
        return Outcome(d.job_type, d.entry_id, "dead", d.attempt, reason)

    def _decode(self, d: Delivery) -> Outcome | tuple[Registration, Job[Any]]:
        """The job as its handler takes it, or the dead-letter outcome saying why
        the stored entry cannot be one."""
        if d.raw is None:
            return self._dead(d, "entry has no payload field")
        try:
            env = decode_envelope(d.raw)
        except PayloadError as exc:
            return self._dead(d, str(exc))
        if env.type != d.job_type:
            return self._dead(d, f"envelope says type {env.type!r} but it was queued as {d.job_type!r}")
        reg = self.handlers.get(d.job_type)
        try:
            args = decode_args(env.args, reg.args_type)
        except ArgsError as exc:
            return self._dead(d, str(exc))
        if reg.unknown_fields == "dead":
            extra = unknown_fields(env.args, reg.args_type)
            if extra:
                return self._dead(
                    d,
                    f"args carry field(s) {', '.join(map(repr, extra))} that this worker's "
                    f"{getattr(reg.args_type, '__name__', 'args type')} does not know (a newer producer? deploy "
                    "workers first, then requeue; or register the type with unknown_fields='ignore')",
                )
        return reg, env.job(args, d.attempt)

    async def _run_handler(self, d: Delivery, slot: _Slot, reg: Registration, job: Job[Any]) -> Outcome:
        """Run the handler within the job's timeout: ack, fail (it raised or timed
        out), or CancelledError for a stop (the caller hands the job back)."""
        started = time.perf_counter()
        try:
            if reg.is_async:
                await reg.handler(job)  # type: ignore[misc]
            else:
                ctx = contextvars.copy_context()
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(self._executor, self._in_thread, ctx, reg.handler, job)
        except asyncio.CancelledError:
            task = slot.task
            if slot.cancelled and not self._cancelling_all and task is not None and task.cancelling() == 1:
                task.uncancel()  # the operator's cancel alone (a stop's would be one more)
                log.warning("job cancelled by operator")
                return Outcome(d.job_type, d.entry_id, "fail", d.attempt, CANCELLED)
            # The watchdog's cancel alone: a timeout. Any other cancel is a stop.
            if slot.timed_out and not self._cancelling_all and task is not None and task.cancelling() == 1:
                task.uncancel()
                log.error("job timed out after %.1fs", self.timeout)
                return Outcome(d.job_type, d.entry_id, "fail", d.attempt, f"timed out after {self.timeout:g}s")
            if self._stopping.is_set():
                log.warning("job interrupted by stop; handing it back to the queue")
            raise
        except Exception as exc:
            if slot.cancelled:  # a handler that could not be interrupted (sync) ended
                return self._cancelled_late(d, slot, f"raised {exc!r}")
            log.exception("job failed: %s", exc)
            return Outcome(
                d.job_type,
                d.entry_id,
                "fail",
                d.attempt,
                "".join(traceback.format_exception(exc)).rstrip(),
            )
        if slot.cancelled:
            return self._cancelled_late(d, slot, "returned")
        if slot.timed_out and slot.task is not None and slot.task.cancelling():
            slot.task.uncancel()  # the handler swallowed the timeout's cancel and finished
        log.debug("job done in %.1f ms", (time.perf_counter() - started) * 1000)
        return Outcome(d.job_type, d.entry_id, "ack", d.attempt)

    def _cancelled_late(self, d: Delivery, slot: _Slot, how: str) -> Outcome:
        """The outcome of a job cancelled while its handler ran on (a sync handler
        cannot be interrupted; an async one may swallow the cancel): what the
        handler did is said beside the operator's reason."""
        if slot.task is not None and slot.task.cancelling():
            slot.task.uncancel()  # an async handler swallowed the cancel
        log.warning("job cancelled by operator; its handler could not be interrupted and %s", how)
        text = f"{CANCELLED} (the handler could not be interrupted: it ran on and {how})"
        return Outcome(d.job_type, d.entry_id, "fail", d.attempt, text)

    async def _cancel_watch(self) -> None:
        """Take this worker's cancel requests every CANCEL_POLL_S: one small read
        per poll, whatever the number of jobs."""
        while True:
            await asyncio.sleep(CANCEL_POLL_S)
            try:
                requests = await self.queue.cancel_requests(self.id)
            except JobcoreError as exc:
                log.debug("reading cancel requests failed: %s", exc)
                continue
            for job_type, ref in requests:
                self._cancel(job_type, ref)

    def _cancel(self, job_type: str, ref: str) -> None:
        """Cancel one job of this worker: the handler running it, or the job held
        ahead in the buffer (failed without starting). Nothing else is touched."""
        slot = self._active.get((job_type, ref))
        if slot is not None and slot.job is not None and slot.task is not None:
            if slot.cancelled:
                return
            slot.cancelled = True
            if self.handlers.get(job_type).is_async:
                log.warning("cancelling job entry %s of type %s: asked by an operator", ref, job_type)
                slot.task.cancel()
            else:
                log.warning(
                    "job entry %s of type %s is cancelled by an operator, but its synchronous handler cannot be "
                    "interrupted: it is recorded as cancelled when the handler returns",
                    ref,
                    job_type,
                )
            return
        held = next((d for d in self._buffer if d.job_type == job_type and d.entry_id == ref), None)
        if held is not None:
            self._buffer.remove(held)
            log.warning("job entry %s of type %s cancelled by an operator before it started", ref, job_type)
            self._outbox.append(Outcome(job_type, ref, "fail", held.attempt, f"{CANCELLED} (before it started)"))
            self._outbox_event.set()
            self.failed += 1
            self._slot_event.set()
            return
        log.info("cancel of job entry %s of type %s: not running here (it finished meanwhile)", ref, job_type)

    def _in_thread(self, ctx: contextvars.Context, handler: Callable[..., Any], job: Any) -> Any:
        with self._threads_lock:
            self._threads_busy += 1
        try:
            return ctx.run(handler, job)
        finally:
            with self._threads_lock:
                self._threads_busy -= 1

    @property
    def threads_busy(self) -> int:
        """Sync handlers still running in their threads. After a stop these are
        jobs already handed back (Python cannot stop a thread): a process that
        exits should not wait for them, or they would finish jobs that another
        worker now runs."""
        return self._threads_busy

    # ---- settling ---------------------------------------------------------

    async def _settle_loop(self) -> None:
        while (not self._closing or self._outbox) and not self._hard_stop:
            await self._outbox_event.wait()
            self._outbox_event.clear()
            await self._settle_all()

    async def _settle_all(self, deadline: float | None = None) -> None:
        """Settle what is in the outbox, retrying while Redis refuses; with a
        ``deadline`` (a stopping worker), give up then and say what is left."""
        backoff = _Backoff()
        while self._outbox:
            batch, self._outbox = self._outbox, []
            try:
                if deadline is None:
                    stale = await self.queue.settle(self.id, batch)
                else:
                    stale = await asyncio.wait_for(
                        self.queue.settle(self.id, batch), max(0.1, deadline - time.monotonic())
                    )
            except asyncio.CancelledError:
                self._outbox[:0] = batch
                raise
            except (JobcoreError, TimeoutError) as exc:
                self._outbox[:0] = batch
                if isinstance(exc, (ConnectionFailed, TimeoutError)):
                    self._cut_off_at = time.monotonic()
                delay = backoff.next()
                if self._hard_stop or (deadline is not None and time.monotonic() + delay >= deadline):
                    self._unsettled(exc)
                    return
                log.warning("settling %d job(s) failed: %s; retrying in %.1fs", len(batch), exc, delay)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            for o in batch:
                self._known.discard((o.job_type, o.entry_id))
            _log_stale(stale)

    def _unsettled(self, exc: BaseException) -> None:
        left = self._outbox
        log.error(
            "stopping without settling %d job(s) (%s): %s; they stay in flight under this worker, whose lease "
            "lapses, and then another worker runs them again",
            len(left),
            ", ".join(o.entry_id for o in left[:20]),
            exc or "timed out",
        )

    async def _drain(self) -> None:
        """Let running jobs finish within the grace period, then cancel the rest."""
        for d in self._buffer:
            self._outbox.append(Outcome(d.job_type, d.entry_id, "release", d.attempt))
        self._buffer.clear()
        if self._active and self.grace > 0:
            log.info("stopping: waiting up to %.1fs for %d running job(s)", self.grace, len(self._active))
            # All jobs done, the grace period over, or a hard stop: whichever comes first.
            self._all_done.clear()
            if self._active:
                finished = asyncio.ensure_future(self._all_done.wait())
                hard = asyncio.ensure_future(self._hard_stop_event.wait())
                await asyncio.wait([finished, hard], timeout=self.grace, return_when=asyncio.FIRST_COMPLETED)
                finished.cancel()
                hard.cancel()
        self._cancelling_all = True
        tasks = [slot.task for slot in self._active.values() if slot.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _release_leftovers(self) -> None:
        """Hand back anything this worker still holds (e.g. taken by a cancelled fetch)."""
        left = await self.queue.owned(self.id, self.types)
        if left:
            await self._hand_back(left)

    async def _within(self, deadline: float, step: Awaitable[None]) -> bool:
        """Run a stop step until ``deadline``; False (logged) when it failed. What
        the worker still holds then stays its own, so its lease lapses and another
        worker recovers it: the record is not removed."""
        try:
            await asyncio.wait_for(step, max(0.1, deadline - time.monotonic()))
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


def _log_stale(stale: Sequence[Stale]) -> None:
    """Say truthfully what became of jobs whose result this worker could not record."""
    taken = [s for s in stale if s.owner is not None]
    gone = [s.entry_id for s in stale if s.owner is None]
    if taken:
        log.warning(
            "lease lost for %d job(s) (%s): worker %s holds them now; this worker's result for them was dropped",
            len(taken),
            ", ".join(s.entry_id for s in taken[:5]),
            taken[0].owner,
        )
    if gone:
        log.error(
            "%d job(s) (%s) are in flight nowhere any more: settled by another worker, or Redis lost them "
            "(a restart without persistence, or a flush); this worker's result for them was dropped",
            len(gone),
            ", ".join(gone[:5]),
        )
