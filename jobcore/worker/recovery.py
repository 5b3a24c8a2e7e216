"""Recovery, done between fetches: jobs this worker holds but never saw go back
to the queue, jobs delivered to no one are put back, and jobs of lost workers
are taken over (as many as there are free slots, suspects one at a time:
suspects.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from jobcore.queue import Queue
from jobcore.records import Delivery
from jobcore.worker.lease import LeaseKeeping
from jobcore.worker.runners import Runners
from jobcore.worker.settling import Settler
from jobcore.worker.state import Held, Signals
from jobcore.worker.suspects import Suspects

log = logging.getLogger("jobcore.worker")

ORPHANS_EVERY_S = 60.0


class Recovery:
    def __init__(
        self,
        queue: Queue,
        worker_id: str,
        types: Sequence[str],
        *,
        lease: float,
        interval: float,
        held: Held,
        signals: Signals,
        suspects: Suspects,
        runners: Runners,
        settler: Settler,
        lease_keeping: LeaseKeeping,
    ) -> None:
        self.queue = queue
        self.worker_id = worker_id
        self.types = types
        self.lease = lease
        self.interval = interval  # between looks, when no lost worker's jobs wait
        self.recovering = False  # a lost worker still holds jobs this worker could take
        self._held = held
        self._signals = signals
        self._suspects = suspects
        self._runners = runners
        self._settler = settler
        self._lease_keeping = lease_keeping
        self._last = 0.0  # monotonic time of the last look
        self._orphans_due = 0.0  # monotonic time of the next look for jobs delivered to no one

    def due(self) -> bool:
        if time.monotonic() - self._last >= self.interval:
            return True
        return self.recovering and self.can_take_suspect()

    def can_take_suspect(self) -> bool:
        return self._suspects.can_take(self._held.buffer, self._runners.free())

    async def run(self) -> None:
        await self._look()
        self._last = time.monotonic()

    async def _look(self) -> None:
        """Hand back jobs this worker holds but never saw (a fetch whose reply was
        lost with its connection), and take jobs of lost workers: as many as there
        are free slots, but only one suspect, and none while one runs here."""
        held = self._held
        # A settle on another connection may finish while owned() is on its way
        # back; what was known when asking counts as seen.
        known_before = set(held.known)
        owned = await self.queue.owned(self.worker_id, self.types)
        unseen = [(t, e) for t, e in owned if (t, e) not in known_before and (t, e) not in held.known]
        if unseen:
            log.warning("%d job(s) held but never seen (a fetch reply was lost): handing them back", len(unseen))
            await self._settler.hand_back(unseen)
        if time.monotonic() >= self._orphans_due:
            self._orphans_due = time.monotonic() + ORPHANS_EVERY_S
            back = await self.queue.recover_orphans(self.types)
            if back:
                log.warning("%d job(s) were delivered to no one (their consumer was deleted): back on the queue", back)
        if time.monotonic() - max(self._signals.cut_off_at, self._lease_keeping.cut_off_at) < self.lease:
            # This worker could not reach Redis a moment ago, so the others were
            # likely cut off too: give them a lease to show they live before
            # taking their jobs (after a Redis restart every lease has lapsed).
            return
        lost = [w for w in await self.queue.lost_workers() if w != self.worker_id]
        recovering = False
        all_types = None
        stopping = {w.id for w in await self.queue.workers() if w.stopping} if lost else set()
        for owner in lost:
            died = owner not in stopping
            why = f"recovered from lost worker {owner}" if died else f"taken over from stopped worker {owner}"
            for job_type in self.types:
                got, left = await self.queue.claim(
                    self.worker_id,
                    job_type,
                    owner,
                    max(0, self._runners.free()),
                    suspects=1 if self.can_take_suspect() else 0,
                    suspect_deaths=self._suspects.from_deaths,
                    died=died,
                )
                self._take(got, why)
                recovering = recovering or left > 0
            if all_types is None:
                all_types = await self.queue.job_types()
            await self.queue.forget_worker(owner, all_types)
        self.recovering = recovering

    def _take(self, deliveries: list[Delivery], why: str) -> None:
        for d in deliveries:
            log.warning("job entry %s of type %s %s (attempt %d)", d.entry_id, d.job_type, why, d.attempt)
        self._held.take(deliveries)
