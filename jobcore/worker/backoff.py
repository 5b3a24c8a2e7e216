"""The wait between retries of a call the backend refused: doubling, jittered, capped;
and the one between failed lease beats (the keeper's and the heartbeat thread's)."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, first: float = 0.1, cap: float = 5.0) -> None:
        self.first, self.cap, self.delay = first, cap, first

    def next(self) -> float:
        d = self.delay * (0.5 + random.random())
        self.delay = min(self.cap, self.delay * 2)
        return d

    def reset(self) -> None:
        self.delay = self.first


def beat_again_in(interval: float, failures: int) -> float:
    """The wait after ``failures`` failed beats in a row (the keeper's and the
    heartbeat thread's): soon after a cut connection, well within the lease."""
    return min(interval, 0.05 * 2.0**failures)
