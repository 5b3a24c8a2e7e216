"""What one poll of the queue returns, and the processed/s history built from polls.

Nothing here imports Textual: a poll runs wherever the runner puts it (the UI loop
for ``memory://``, an I/O thread for Redis), and the UI only renders the result.
"""

from __future__ import annotations

import bisect
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

import jobcore
from jobcore import InFlightJob, JobQuery, QueueStats, WorkerInfo
from jobcore.limits import IN_FLIGHT_ALL

from .scope import in_flight_matches


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One consistent-enough view of the queue, immutable once taken."""

    seq: int
    stats: QueueStats
    in_flight: tuple[InFlightJob, ...]
    in_flight_limit: int
    workers: tuple[WorkerInfo, ...]
    latency: float  # seconds the poll took
    server_version: str | None = None  # only fetched on the first poll after (re)connecting
    evicting: str | None = None  # evicting maxmemory policies, read with the version ("" when none)
    topology: str = ""  # standalone / cluster / sentinel, as of this poll (it follows a failover)
    query: JobQuery | None = None  # the filter this poll matched in-flight jobs against
    in_flight_matches: int = 0  # with a query: how many in-flight jobs matched (in_flight holds a page's worth)

    @property
    def taken_at(self) -> datetime:
        return self.stats.taken_at

    def heartbeat_age(self, worker: WorkerInfo) -> float:
        """Age against the snapshot's own clock (the server's for Redis), not this host's."""
        return max(0.0, (self.taken_at - worker.heartbeat_at).total_seconds())


async def take_snapshot(
    queue: jobcore.Queue,
    seq: int,
    in_flight_limit: int,
    want_version: bool = False,
    query: JobQuery | None = None,
) -> Snapshot:
    """One poll: stats, one page of in-flight jobs and the workers (one round trip on Redis).

    Each call's cost is bounded by the number of types and the page size, never by
    queue length (jobcore's stats and in_flight(limit) guarantee that). With a filter
    it reads every in-flight job (up to IN_FLIGHT_ALL: bounded by the workers'
    slots and buffers, not by what is pending) and keeps the matches, here, off the UI.
    """
    started = time.perf_counter()
    dash = await queue.dashboard(IN_FLIGHT_ALL if query is not None else in_flight_limit)
    stats, in_flight, workers = dash.stats, dash.in_flight, dash.workers
    matches = 0
    if query is not None:
        in_flight = [j for j in in_flight if in_flight_matches(query, j)]
        matches = len(in_flight)
        in_flight = in_flight[:in_flight_limit]
    version = await queue.server_version() if want_version else None
    evicting = ", ".join(sorted(await queue.eviction_policies())) if want_version else None
    return Snapshot(
        seq=seq,
        stats=stats,
        in_flight=tuple(in_flight),
        in_flight_limit=in_flight_limit,
        workers=tuple(workers),
        latency=time.perf_counter() - started,
        server_version=version,
        evicting=evicting,
        topology=queue.topology(),
        query=query,
        in_flight_matches=matches,
    )


@dataclass(slots=True)
class _Series:
    times: deque[float] = field(default_factory=deque)
    values: deque[int] = field(default_factory=deque)

    def at(self, t: float) -> int | None:
        """The counter's value at time t (the last sample at or before it)."""
        i = bisect.bisect_right(self.times, t)
        return self.values[i - 1] if i else None


class RateHistory:
    """processed/s per type, from the processed counters of successive snapshots.

    Times are the snapshot's own clock, so frozen clocks give frozen rates in tests.
    """

    def __init__(self, window: float = 120.0, buckets: int = 12, recent: float = 5.0) -> None:
        self.window = window
        self.buckets = buckets
        self.recent = recent
        self._series: dict[str, _Series] = {}
        self._now = 0.0

    def add(self, stats: QueueStats) -> None:
        now = stats.taken_at.timestamp()
        self._now = now
        for name, t in stats.types.items():
            s = self._series.setdefault(name, _Series())
            if s.values and t.processed < s.values[-1]:
                s.times.clear()  # counters were reset (keys deleted): start over
                s.values.clear()
            if s.times and now <= s.times[-1]:
                continue
            s.times.append(now)
            s.values.append(t.processed)
            while len(s.times) > 2 and s.times[1] < now - self.window - self.window / self.buckets:
                s.times.popleft()
                s.values.popleft()

    def rate(self, job_type: str) -> float | None:
        """Over the last few seconds (or what history there is): steadier than one interval."""
        s = self._series.get(job_type)
        if s is None or len(s.times) < 2:
            return None
        i = max(0, bisect.bisect_right(s.times, self._now - self.recent) - 1)
        i = min(i, len(s.times) - 2)
        return (s.values[-1] - s.values[i]) / (s.times[-1] - s.times[i])

    def trend(self, job_type: str, buckets: int | None = None) -> list[float | None]:
        """Average processed/s in each of ``buckets`` equal slices of the window, oldest first."""
        n = buckets or self.buckets
        s = self._series.get(job_type)
        width = self.window / n
        out: list[float | None] = []
        for i in range(n):
            start = self._now - self.window + i * width
            end = start + width
            if s is None or not s.times or s.times[0] > start:
                out.append(None)
                continue
            a, b = s.at(start), s.at(end)
            out.append(None if a is None or b is None else (b - a) / width)
        return out
