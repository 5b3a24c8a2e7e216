"""Which recovered jobs may be what kills workers, and the rule for them: at most
one runs at a time in a worker, so a job that takes its worker down every time
stops taking the jobs beside it down too, while healthy jobs finish within a
few attempts. Pure bookkeeping, no I/O."""

from __future__ import annotations

from collections import deque

from .backend import Delivery


class Suspects:
    def __init__(self, max_attempts: int) -> None:
        self.max_attempts = max_attempts
        # In flight when its worker died twice (once when only 2 attempts are allowed).
        self.from_attempt = 3 if max_attempts >= 3 else 2
        self.running: tuple[str, str] | None = None  # the one suspect running here

    def is_suspect(self, d: Delivery) -> bool:
        """Deliveries past max_attempts are not run (they are dead-lettered), so they are no risk."""
        return self.from_attempt <= d.attempt <= self.max_attempts

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
