"""Settling: the outcomes of finished jobs go to Redis in batches, one settle
call a batch, retried while Redis refuses (up to a deadline when stopping); and
hand-backs of jobs this worker holds but never started."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from jobcore.errors import ConnectionFailed, JobcoreError
from jobcore.queue import Queue
from jobcore.records import Outcome, Stale
from jobcore.worker.backoff import Backoff
from jobcore.worker.lease import LeaseKeeping
from jobcore.worker.state import Held, Signals

log = logging.getLogger("jobcore.worker")


class Settler:
    def __init__(
        self, queue: Queue, worker_id: str, types: Sequence[str], held: Held, signals: Signals, lease: LeaseKeeping
    ) -> None:
        self.queue = queue
        self.worker_id = worker_id
        self.types = types
        self.closing = False  # the runners have ended: settle what is left, then stop
        self._held = held
        self._signals = signals
        self._refused_backoff = Backoff(first=1.0, cap=30.0)  # settles Redis refused a record for
        self._lease = lease
        self.deadline: float | None = None  # a stop's (monotonic): no settle runs past it
        self.last_error: BaseException | None = None
        self._scope: asyncio.Timeout | None = None  # the settle call in progress
        self._woken = asyncio.Event()  # ends a wait between tries early

    def stop_by(self, deadline: float) -> None:
        """Bound every settle from now on, the one in progress included, by ``deadline``."""
        self.deadline = deadline
        scope, when = self._scope, _loop_time(deadline)
        if scope is not None and not scope.expired() and (scope.when() is None or when < (scope.when() or 0)):
            scope.reschedule(when)
        self._woken.set()

    async def loop(self) -> None:
        held, signals = self._held, self._signals
        while (not self.closing or held.outbox) and not signals.hard_stop:
            await held.outbox_ready.wait()
            held.outbox_ready.clear()
            if not await self.settle_all() and self.closing:
                return  # past the stop's deadline, or the id is another's: the stop says what is left

    async def settle_all(self, deadline: float | None = None) -> bool:
        """Settle what is in the outbox, retrying while Redis refuses, until
        ``deadline`` (or the stop's). True when the outbox is empty; else what
        is left stays there (``unsettled`` says so) and ``last_error`` says why."""
        held, signals = self._held, self._signals
        backoff = Backoff()
        while held.outbox:
            limit = deadline if deadline is not None else self.deadline
            if signals.id_taken or (limit is not None and time.monotonic() >= limit):
                return False
            batch, held.outbox = held.outbox, []
            held.settling = batch
            try:
                async with asyncio.timeout_at(None if limit is None else _loop_time(limit)) as scope:
                    self._scope = scope
                    try:
                        # Write as this worker's consumer only while its id is surely its own.
                        if not self._lease.fresh() and not await self._lease.vouch():
                            held.outbox[:0], held.settling = batch, []
                            return False
                        stale = await self.queue.settle(self.worker_id, batch)
                    finally:
                        self._scope = None  # before the scope ends: stop_by() may not touch it after
            except asyncio.CancelledError:
                held.outbox[:0], held.settling = batch, []
                raise
            except (JobcoreError, TimeoutError) as exc:
                held.outbox[:0], held.settling = batch, []
                self.last_error = exc
                if isinstance(exc, (ConnectionFailed, TimeoutError)):
                    signals.cut_off_at = time.monotonic()
                if signals.hard_stop:
                    return False  # stopping at once: one try
                delay = backoff.next()
                limit = deadline if deadline is not None else self.deadline
                if limit is not None:
                    if time.monotonic() >= limit:
                        return False
                    delay = min(delay, limit - time.monotonic())
                log.warning("settling %d job(s) failed: %s; retrying in %.1fs", len(batch), _why(exc), delay)
                self._woken.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._woken.wait(), delay)
                continue
            backoff.reset()
            held.settling = []
            # Refused (a record Redis could not write): still this worker's, kept
            # known (not handed back as unseen) and settled again later, not run again.
            refused = {(s.job_type, s.entry_id) for s in stale if s.reason is not None}
            known = held.known
            for o in batch:
                if (o.job_type, o.entry_id) not in refused:
                    known.discard((o.job_type, o.entry_id))
            held.remember(
                [o for o in batch if (o.job_type, o.entry_id) not in refused], [s for s in stale if s.reason is None]
            )
            _log_stale(stale)
            if refused:
                self._retry_later([o for o in batch if (o.job_type, o.entry_id) in refused])
        return True

    def _retry_later(self, outcomes: list[Outcome]) -> None:
        def again() -> None:
            self._held.outbox.extend(outcomes)
            self._held.outbox_ready.set()

        asyncio.get_running_loop().call_later(self._refused_backoff.next(), again)

    def unsettled(self) -> None:
        """Say, by entry id, what this stopping worker could not settle."""
        left = self._held.outbox
        if not left:
            return
        log.error(
            "stopping without settling %d job(s) (%s): %s; they stay in flight under this worker, whose lease "
            "lapses, and then another worker runs them again",
            len(left),
            ", ".join(f"{o.job_type} {o.entry_id}" for o in left),
            _why(self.last_error),
        )

    async def hand_back(self, jobs: Sequence[tuple[str, str]]) -> None:
        """Put jobs this worker holds but never started back on their queue,
        without counting an attempt (one atomic settle per job)."""
        await self.queue.settle(self.worker_id, [Outcome(t, e, "release", 0) for t, e in jobs])

    async def release_leftovers(self) -> None:
        """Hand back anything this worker still holds (e.g. taken by a cancelled fetch)."""
        left = await self.queue.owned(self.worker_id, self.types)
        if left:
            await self.hand_back(left)


def _why(exc: BaseException | None) -> str:
    return str(exc) if exc is not None and str(exc) else "Redis did not answer in time"


def _loop_time(deadline: float) -> float:
    """A monotonic deadline on the running loop's clock."""
    return asyncio.get_running_loop().time() + deadline - time.monotonic()


def _log_stale(stale: Sequence[Stale]) -> None:
    """Say truthfully what became of jobs whose result this worker could not record."""
    taken = [s for s in stale if s.owner is not None and s.reason is None]
    gone = [s.entry_id for s in stale if s.owner is None]
    kept = [s for s in stale if s.reason is not None]
    for reason in dict.fromkeys(s.reason for s in kept):
        ids = [s.entry_id for s in kept if s.reason == reason]
        log.error(
            "%d job(s) (%s) not settled: %s; they stay in flight with this worker (nothing was dropped), "
            "which settles them again later (or hands them back when it stops)",
            len(ids),
            ", ".join(ids[:5]),
            reason,
        )
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
