"""Settling: the outcomes of finished jobs go to Redis in batches, one settle
call a batch, retried while Redis refuses (up to a deadline when stopping); and
hand-backs of jobs this worker holds but never started."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from jobcore.errors import ConnectionFailed, JobcoreError
from jobcore.queue import Queue
from jobcore.records import Outcome, Stale
from jobcore.worker.backoff import Backoff
from jobcore.worker.state import Held, Signals

log = logging.getLogger("jobcore.worker")


class Settler:
    def __init__(self, queue: Queue, worker_id: str, types: Sequence[str], held: Held, signals: Signals) -> None:
        self.queue = queue
        self.worker_id = worker_id
        self.types = types
        self.closing = False  # the runners have ended: settle what is left, then stop
        self._held = held
        self._signals = signals

    async def loop(self) -> None:
        held, signals = self._held, self._signals
        while (not self.closing or held.outbox) and not signals.hard_stop:
            await held.outbox_ready.wait()
            held.outbox_ready.clear()
            await self.settle_all()

    async def settle_all(self, deadline: float | None = None) -> None:
        """Settle what is in the outbox, retrying while Redis refuses; with a
        ``deadline`` (a stopping worker), give up then and say what is left."""
        held, signals = self._held, self._signals
        backoff = Backoff()
        while held.outbox:
            batch, held.outbox = held.outbox, []
            held.settling = batch
            try:
                if deadline is None:
                    stale = await self.queue.settle(self.worker_id, batch)
                else:
                    stale = await asyncio.wait_for(
                        self.queue.settle(self.worker_id, batch), max(0.1, deadline - time.monotonic())
                    )
            except asyncio.CancelledError:
                held.outbox[:0] = batch
                raise
            except (JobcoreError, TimeoutError) as exc:
                held.outbox[:0] = batch
                if isinstance(exc, (ConnectionFailed, TimeoutError)):
                    signals.cut_off_at = time.monotonic()
                delay = backoff.next()
                if signals.hard_stop or (deadline is not None and time.monotonic() + delay >= deadline):
                    self._unsettled(exc)
                    return
                log.warning("settling %d job(s) failed: %s; retrying in %.1fs", len(batch), exc, delay)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            held.settling = []
            known = held.known
            for o in batch:
                known.discard((o.job_type, o.entry_id))
            held.remember(batch, stale)
            _log_stale(stale)

    def _unsettled(self, exc: BaseException) -> None:
        left = self._held.outbox
        log.error(
            "stopping without settling %d job(s) (%s): %s; they stay in flight under this worker, whose lease "
            "lapses, and then another worker runs them again",
            len(left),
            ", ".join(o.entry_id for o in left[:20]),
            exc or "timed out",
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
