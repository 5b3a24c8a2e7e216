"""Per-type, per-minute history: what settles add, and what ``Queue.history`` reads.

Each type (each partition, on Redis) keeps one hash: a field per minute (its
number since the epoch, Redis server time) holding ``"processed failed dead
run_ms c0 c1 ..."`` — the outcomes settled that minute, the summed run time of
the jobs that ran (ack or fail) and a histogram of their run times over
:data:`BUCKETS_MS` — plus ``lo`` (the oldest minute kept) and ``last`` (the
newest written). When a settle starts a new minute, the minutes more than
:data:`KEEP_MINUTES` old are dropped, so the hash never holds more than a day.

The worker sends each settle batch's run times as one aggregate per type
(:func:`runs_arg`); the settle script counts the outcomes itself, so a stale
settle (a job another worker owns now) adds no outcome, while its run time,
which was spent, still counts. Everything here is pure.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

KEEP_MINUTES = 1440  # a day of minutes per type
MINUTE_MS = 60_000
# Upper bounds (ms) of the run-time buckets; one more bucket counts longer runs.
BUCKETS_MS: tuple[int, ...] = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000)
FIELDS = 4  # processed, failed, dead, run_ms; then the buckets
WIDTH = FIELDS + len(BUCKETS_MS) + 1  # numbers a minute holds: the fields, a count per bucket and one for longer runs
TIMED = ("ack", "fail")  # outcomes whose run time counts: the handler ran


def bucket_of(ms: float) -> int:
    """The bucket of a run of ``ms`` milliseconds: the first whose bound it does not exceed."""
    return bisect.bisect_left(BUCKETS_MS, ms)


def runs_arg(took_s: Iterable[float]) -> str:
    """A batch's run times (seconds) as the settle script takes them:
    ``"SUM_MS i:count i:count ..."`` (buckets with none left out), "" for none."""
    counts: dict[int, int] = {}
    total = 0.0
    for s in took_s:
        ms = s * 1000
        total += ms
        b = bisect.bisect_left(BUCKETS_MS, ms)  # bucket_of(ms), without a call per settled job
        counts[b] = counts.get(b, 0) + 1
    if not counts:
        return ""
    return " ".join([str(round(total)), *(f"{b}:{n}" for b, n in sorted(counts.items()))])


MAX_DIGITS = 15  # what settle.lua writes stays below this; longer is not a count of ours


def _count(part: str) -> int | None:
    return int(part) if part.isascii() and part.isdigit() and len(part) <= MAX_DIGITS else None


def parse_minute(value: bytes | str | None) -> list[int]:
    """A minute's stored value as numbers (missing or unreadable parts read 0)."""
    text = value.decode(errors="replace") if isinstance(value, bytes) else (value or "")
    out = []
    for part in text.split()[:WIDTH]:
        out.append(_count(part) or 0)
    return out + [0] * (WIDTH - len(out))


def readable_minute(value: bytes | str | None) -> bool:
    """Whether a minute's stored value is what settle.lua writes (parse_minute reads any)."""
    text = value.decode(errors="replace") if isinstance(value, bytes) else (value or "")
    return all(_count(part) is not None for part in text.split())


def add_to_minute(current: Sequence[int] | None, acked: int, failed: int, dead: int, runs: str) -> list[int]:
    """``current`` plus one settle's outcomes and run times (what settle.lua does)."""
    v = list(current or [])
    v += [0] * (WIDTH - len(v))
    v[0] += acked
    v[1] += failed
    v[2] += dead
    if runs:
        total, *pairs = runs.split()
        v[3] += int(total)
        for pair in pairs:
            b, n = pair.split(":")
            v[FIELDS + int(b)] += int(n)
    return v


def prune_from(minute: int) -> int:
    """The oldest minute kept once ``minute`` has started."""
    return minute - KEEP_MINUTES + 1


def percentile(buckets: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (0 < q ≤ 1) of run times in ms from a histogram over
    BUCKETS_MS, interpolated within its bucket (the last, open bucket gives its
    lower bound); None when there are no runs."""
    total = sum(buckets)
    if total <= 0:
        return None
    target = q * total
    seen = 0
    for i, n in enumerate(buckets):
        if n and seen + n >= target:
            low = BUCKETS_MS[i - 1] if i > 0 else 0
            if i >= len(BUCKETS_MS):
                return float(low)
            return low + (BUCKETS_MS[i] - low) * (target - seen) / n
        seen += n
    return float(BUCKETS_MS[-1])


@dataclass(frozen=True, slots=True)
class Counts:
    """Outcomes and run times added up (over a minute, or a window)."""

    processed: int = 0
    failed: int = 0
    dead: int = 0
    run_ms: int = 0  # summed run time of the jobs that ran (acked or failed)
    buckets: tuple[int, ...] = ()  # how many runs fell in each bucket of BUCKETS_MS (and over it)

    @property
    def runs(self) -> int:
        return sum(self.buckets)

    @property
    def mean_ms(self) -> float | None:
        return self.run_ms / self.runs if self.runs else None

    @property
    def p50_ms(self) -> float | None:
        return percentile(self.buckets, 0.5)

    @property
    def p95_ms(self) -> float | None:
        return percentile(self.buckets, 0.95)

    def to_dict(self) -> dict[str, Any]:
        return {
            "processed": self.processed,
            "failed": self.failed,
            "dead": self.dead,
            "runs": self.runs,
            "run_ms": self.run_ms,
            "p50_ms": _round(self.p50_ms),
            "p95_ms": _round(self.p95_ms),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class MinuteRow(Counts):
    """One type's outcomes in one minute."""

    at: datetime  # the minute's start (UTC, Redis server time)

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), **Counts.to_dict(self)}


@dataclass(frozen=True, slots=True, kw_only=True)
class TypeHistory(Counts):
    """One type's minutes over a window, oldest first, every minute present
    (zeros where nothing settled); its own numbers are the window's totals."""

    job_type: str
    rows: tuple[MinuteRow, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**Counts.to_dict(self), "minutes": [r.to_dict() for r in self.rows]}


@dataclass(frozen=True, slots=True)
class History:
    """Per-type history over the last ``minutes`` minutes up to ``until``."""

    minutes: int
    until: datetime  # the start of the newest minute (the current one, still counting)
    types: dict[str, TypeHistory]

    def to_dict(self) -> dict[str, Any]:
        return {
            "minutes": self.minutes,
            "until": self.until.isoformat(),
            "buckets_ms": list(BUCKETS_MS),
            "types": {t: h.to_dict() for t, h in sorted(self.types.items())},
        }


def _round(ms: float | None) -> float | None:
    return None if ms is None else round(ms, 1)


def window(now_ms: int, minutes: int) -> list[int]:
    """The minute numbers of the last ``minutes`` minutes, the current one last."""
    if not isinstance(minutes, int) or not 1 <= minutes <= KEEP_MINUTES:
        raise ValueError(f"minutes must be a whole number from 1 to {KEEP_MINUTES}")
    last = now_ms // MINUTE_MS
    return list(range(last - minutes + 1, last + 1))


def build_history(minutes: Sequence[int], stored: Mapping[str, Sequence[Mapping[int, Sequence[int]]]]) -> History:
    """A History from each type's stored minutes (one mapping per partition, added up)."""
    types: dict[str, TypeHistory] = {}
    for job_type, parts in stored.items():
        rows = []
        total = [0] * WIDTH
        for m in minutes:
            v = [0] * WIDTH
            for part in parts:
                got = part.get(m)
                if got:
                    v = [a + b for a, b in zip(v, got, strict=False)]
            total = [a + b for a, b in zip(total, v, strict=True)]
            rows.append(MinuteRow(at=_minute_at(m), **_counts(v)))
        types[job_type] = TypeHistory(job_type=job_type, rows=tuple(rows), **_counts(total))
    return History(len(minutes), _minute_at(minutes[-1]), types)


def _counts(v: Sequence[int]) -> dict[str, Any]:
    return {"processed": v[0], "failed": v[1], "dead": v[2], "run_ms": v[3], "buckets": tuple(v[FIELDS:])}


def _minute_at(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, tz=UTC)


@dataclass(slots=True)
class MinuteTable:
    """One type's history hash held in memory: what settle.lua keeps in Redis,
    by the same rules (the memory backend's twin of it)."""

    minutes: dict[int, list[int]]
    lo: int | None = None
    last: int | None = None

    def add(self, minute: int, acked: int, failed: int, dead: int, runs: str) -> None:
        if not (acked or failed or dead or runs):
            return
        current = self.minutes.get(minute)
        value = add_to_minute(current, acked, failed, dead, runs)
        if current is None:
            start = prune_from(minute)
            if self.lo is None or self.last is None or self.last < start:
                self.minutes.clear()
                self.lo = self.last = minute
            elif self.lo < start:
                for m in range(max(self.lo, start - KEEP_MINUTES), start):
                    self.minutes.pop(m, None)
                self.lo = start
            self.lo, self.last = min(self.lo, minute), max(self.last, minute)
        self.minutes[minute] = value
