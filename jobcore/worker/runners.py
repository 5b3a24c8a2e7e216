"""The runner tasks: ``concurrency`` long-lived tasks, each starting the next held
job in its slot and putting its outcome in the outbox for the settler; the
watchdog that cancels jobs past their timeout; the room there is for more jobs
(ahead of free slots while jobs are quick); and the drain at a stop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from jobcore.records import Delivery, Outcome
from jobcore.worker.execution import Execution
from jobcore.worker.state import ANSWER, Held, Signals, Slot
from jobcore.worker.suspects import Suspects

log = logging.getLogger("jobcore.worker")

# Prefetch only while jobs finish this fast on average: a slow job waiting in one
# worker's buffer would keep it from a worker that is idle.
QUICK_JOB_S = 0.01


@dataclass(frozen=True, slots=True)
class JobDone:
    """What the worker reports to observers (metrics) after each job."""

    job_type: str
    kind: str  # ack | fail | dead | release
    duration: float


class Runners:
    def __init__(
        self,
        held: Held,
        signals: Signals,
        execution: Execution,
        suspects: Suspects,
        observers: list[Callable[[JobDone], None]],
        *,
        concurrency: int,
        prefetch: int,
        timeout: float,
    ) -> None:
        self.concurrency = concurrency
        self.prefetch = prefetch
        self.timeout = timeout
        self.slots: list[Slot] = []
        self._held = held
        self._active, self._buffer = held.active, held.buffer  # never replaced: read here directly
        self._signals = signals
        self._stopping = signals.stopping
        self._run = execution.run
        self._suspects = suspects
        self._observers = observers
        # Runner tasks live as long as the worker: a task per job costs more than
        # a no-op job itself. Idle runners park on a future each.
        self._idle: deque[asyncio.Future[None]] = deque()
        self._all_done = asyncio.Event()
        self._avg_run = float("inf")  # moving average of job run time, s; unknown counts as slow

    def free(self) -> int:
        """How many more jobs to take now."""
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

    def start(self) -> None:
        for i in range(self.concurrency):
            slot = Slot()
            slot.task = asyncio.create_task(self._runner(slot), name=f"jobcore-runner-{i}")
            self.slots.append(slot)

    async def end(self) -> None:
        tasks = [s.task for s in self.slots if s.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.slots.clear()
        self._idle.clear()

    def wake(self) -> None:
        """Wake idle runners, one per buffered job."""
        n = len(self._buffer)
        while n > 0 and self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                n -= 1

    def _next_job(self) -> Delivery | None:
        """The next buffered job to start (suspects one at a time: suspects.py)."""
        if self._stopping.is_set():
            return None
        return self._suspects.next_job(self._buffer)

    async def _runner(self, slot: Slot) -> None:
        loop = asyncio.get_running_loop()
        active = self._active
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
            slot.cancels = []
            slot.answer = ""
            active[d.job_type, d.entry_id] = slot
            try:
                await self._run_one(d, slot)
            finally:
                slot.job = None

    async def watchdog(self) -> None:
        """Cancel jobs past their timeout: one timer for the worker instead of one per job."""
        tick = min(1.0, max(0.005, self.timeout / 20))
        while True:
            await asyncio.sleep(tick)
            started_before = time.monotonic() - self.timeout
            for slot in self.slots:
                if slot.job is not None and not slot.timed_out and slot.started <= started_before and slot.task:
                    slot.timed_out = True
                    slot.task.cancel()

    async def _run_one(self, d: Delivery, slot: Slot) -> None:
        started = time.perf_counter()
        outcome = Outcome(d.job_type, d.entry_id, "release", d.attempt)
        try:
            outcome = await self._run(d, slot)  # cancelled: the release above stands
        except Exception as exc:  # a bug outside the handler: keep the job, never loop it
            log.exception("internal error running job entry %s", d.entry_id)
            outcome = Outcome(d.job_type, d.entry_id, "fail", d.attempt, f"internal error: {exc!r}")
        finally:
            held = self._held
            self._active.pop((d.job_type, d.entry_id), None)
            if not self._active:
                self._all_done.set()
            if self._suspects.finished(d):
                self.wake()  # suspects may be waiting for this one
            held.slot_freed.set()
            took = time.perf_counter() - started
            if outcome.kind == "ack" or outcome.kind == "fail":
                outcome = msgspec.structs.replace(outcome, took=took)  # for the history
            if slot.cancelled:  # its settle answers the cancel requests, in the same script
                answer = slot.answer or ANSWER[outcome.kind]
                outcome = msgspec.structs.replace(outcome, cancels=tuple(slot.cancels), verdict=answer)
            held.outbox.append(outcome)
            held.outbox_ready.set()
            if outcome.kind == "ack":
                held.processed += 1
            elif outcome.kind == "fail":
                held.failed += 1
            elif outcome.kind == "dead":
                held.dead += 1
            avg = self._avg_run
            self._avg_run = took if avg == float("inf") else avg + (took - avg) * 0.1
            if self._observers:
                done = JobDone(d.job_type, outcome.kind, took)
                for observer in self._observers:
                    observer(done)

    async def drain(self, grace: float) -> None:
        """Hand back the jobs held ahead, let running jobs finish within ``grace``
        seconds (or until a hard stop), then cancel the rest."""
        held = self._held
        for d in held.buffer:
            held.outbox.append(Outcome(d.job_type, d.entry_id, "release", d.attempt))
        held.buffer.clear()
        if held.active and grace > 0:
            log.info("stopping: waiting up to %.1fs for %d running job(s)", grace, len(held.active))
            # All jobs done, the grace period over, or a hard stop: whichever comes first.
            self._all_done.clear()
            finished = asyncio.ensure_future(self._all_done.wait())
            hard = asyncio.ensure_future(self._signals.hard_stop_event.wait())
            await asyncio.wait([finished, hard], timeout=grace, return_when=asyncio.FIRST_COMPLETED)
            finished.cancel()
            hard.cancel()
        self._signals.cancelling_all = True
        tasks = [slot.task for slot in held.active.values() if slot.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
