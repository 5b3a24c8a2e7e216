"""Which recovered jobs may be what kills workers, and the rule for them: at most
one runs at a time in a worker, so a job that takes its worker down every time
stops taking the jobs beside it down too, while healthy jobs finish within a
few attempts. Pure bookkeeping, no I/O.

The evidence is per job: the worker deaths it lived through (its delivery
count since it was last queued, kept by Redis). A stop is no death: a worker
that was stopping when its lease lapsed said so, and its jobs are moved without
counting, so a mass hand-back after a hard stop recovers at full concurrency.
Failed attempts are no evidence either: a handler that raised did not kill anyone.
"""

from __future__ import annotations

from collections import deque

from jobcore.records import Delivery


class Suspects:
    def __init__(self, max_attempts: int) -> None:
        self.max_attempts = max_attempts
        # In flight when two workers died (one when only 2 attempts are allowed).
        self.from_deaths = 2 if max_attempts >= 3 else 1
        self.running: tuple[str, str] | None = None  # the one suspect running here

    def is_suspect(self, d: Delivery) -> bool:
        """Deliveries past max_attempts are not run (they are dead-lettered), so they are no risk."""
        return d.deaths >= self.from_deaths and d.attempt <= self.max_attempts

    def can_take(self, buffer: deque[Delivery], free: int) -> bool:
        """Whether this worker may take one more suspect (from a lost worker)."""
        return self.running is None and free > 0 and not any(self.is_suspect(d) for d in buffer)

    def next_job(self, buffer: deque[Delivery]) -> Delivery | None:
        """The next buffered job to start, in order, skipping suspects while one runs."""
        if not buffer:
            return None
        if not self.is_suspect(buffer[0]):
            return buffer.popleft()
        for i, d in enumerate(buffer):
            if not self.is_suspect(d):
                del buffer[i]
                return d
            if self.running is None:
                del buffer[i]
                self.running = (d.job_type, d.entry_id)
                return d
        return None

    def finished(self, d: Delivery) -> bool:
        """Note that ``d`` ended; True when it was the running suspect (others may start)."""
        if self.running == (d.job_type, d.entry_id):
            self.running = None
            return True
        return False
