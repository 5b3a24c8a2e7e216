"""Per-type, per-minute history: what settles add, and what ``Queue.history`` reads.

Each type (each partition, on Redis) keeps one hash: a field per minute (its
number since the epoch, Redis server time) holding numbers, space-separated:

- ``processed failed dead run_ms``: the outcomes settled that minute and the
  summed run time of the jobs that ran (ack or fail);
- 17 counts over the coarse bounds :data:`BUCKETS_MS` (and one for longer runs),
  which every jobcore release writes (older workers write only these);
- then, from workers of this release on, the longest run in µs and sparse
  ``index count`` pairs over the fine bounds :data:`FINE_US` (steps of at most
  10 %, so a percentile is within 10 % of the truth).

plus ``lo`` (the oldest minute kept) and ``last`` (the newest written). When a
settle starts a new minute, the minutes more than :data:`KEEP_MINUTES` old are
dropped, so the hash never holds more than a day. An older worker's settle
script keeps the numbers past its 21 as they are, so both write one field
during a rolling deploy; a reader takes the runs the fine pairs do not cover
(older workers' runs) from the coarse counts.

The worker sends each settle batch's run times as one aggregate per type
(:func:`runs_arg`); the settle script counts the outcomes itself, so a stale
settle (a job another worker owns now) adds no outcome, while its run time,
which was spent, still counts. Everything here is pure.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

KEEP_MINUTES = 1440  # a day of minutes per type
MINUTE_MS = 60_000
# Upper bounds (ms) of the coarse run-time buckets; one more bucket counts longer runs.
BUCKETS_MS: tuple[int, ...] = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000)
FIELDS = 4  # processed, failed, dead, run_ms; then the buckets
WIDTH = FIELDS + len(BUCKETS_MS) + 1  # numbers a minute holds: the fields, a count per bucket and one for longer runs
MAX_AT = WIDTH  # where the longest run (µs) sits, then the fine pairs
TIMED = ("ack", "fail")  # outcomes whose run time counts: the handler ran


def _fine_bounds() -> tuple[int, ...]:
    """Upper bounds (µs) of the fine buckets: from 10 µs, each at most 10 % above
    the last (integers, so every process computes the same table), to about 11
    days, with the coarse bounds among them so each fine bucket lies in one
    coarse one. Stored indexes point into this table: it must never change."""
    out, b = [], 10
    while b <= 10**12:
        out.append(b)
        b += max(1, b // 10)
    return tuple(sorted({*out, *(ms * 1000 for ms in BUCKETS_MS)}))


FINE_US = _fine_bounds()
# The coarse bucket each fine bucket (and the open one past FINE_US) lies in.
_COARSE_OF = (*(bisect.bisect_left(BUCKETS_MS, b / 1000) for b in FINE_US), len(BUCKETS_MS))
MAX_LEN = MAX_AT + 1 + 2 * (len(FINE_US) + 1)  # the most numbers a minute of ours holds


def _fine_low(j: int) -> int:
    return FINE_US[j - 1] if j > 0 else 0


def _fine_high(j: int) -> int:
    return FINE_US[j] if j < len(FINE_US) else FINE_US[-1]


# Per coarse bucket: its fine buckets with their share of its width (how an older
# worker's count in it is spread: the same as interpolating within it).
_SPREAD: tuple[tuple[tuple[int, float], ...], ...] = tuple(
    tuple(
        (j, (_fine_high(j) - _fine_low(j)) / (BUCKETS_MS[i] * 1000 - (BUCKETS_MS[i - 1] * 1000 if i else 0)))
        for j in range(len(FINE_US))
        if _COARSE_OF[j] == i
    )
    for i in range(len(BUCKETS_MS))
)
_OPEN = FINE_US.index(BUCKETS_MS[-1] * 1000) + 1  # the fine bucket just past the last coarse bound


def bucket_of(ms: float) -> int:
    """The coarse bucket of a run of ``ms`` milliseconds (of its fine bucket: they always agree)."""
    return _COARSE_OF[fine_of(ms * 1000)]


def fine_of(us: float) -> int:
    """The fine bucket of a run of ``us`` microseconds: the first whose bound it does not exceed."""
    return bisect.bisect_left(FINE_US, us)


def runs_arg(took_s: Iterable[float]) -> str:
    """A batch's run times (seconds) as the settle script takes them:
    ``"SUM_MS MAX_US i:count ... fj:count ..."`` (coarse buckets i, fine buckets
    j; those with none left out), "" for none."""
    fine: dict[int, int] = {}
    total = 0.0
    longest = 0.0
    for s in took_s:
        us = s * 1_000_000
        total += us
        longest = max(longest, us)
        j = bisect.bisect_left(FINE_US, us)  # fine_of(us), without a call per settled job
        fine[j] = fine.get(j, 0) + 1
    if not fine:
        return ""
    coarse: dict[int, int] = {}
    for j, n in fine.items():
        coarse[_COARSE_OF[j]] = coarse.get(_COARSE_OF[j], 0) + n
    return " ".join(
        [
            str(round(total / 1000)),
            str(max(1, math.ceil(longest))),
            *(f"{b}:{n}" for b, n in sorted(coarse.items())),
            *(f"f{j}:{n}" for j, n in sorted(fine.items())),
        ]
    )


MAX_DIGITS = 15  # what settle.lua writes stays below this; longer is not a count of ours


def _count(part: str) -> int | None:
    return int(part) if part.isascii() and part.isdigit() and len(part) <= MAX_DIGITS else None


def parse_minute(value: bytes | str | None) -> list[int]:
    """A minute's stored value as numbers, at least WIDTH of them (missing or
    unreadable parts read 0; past MAX_LEN, not ours, dropped)."""
    text = value.decode(errors="replace") if isinstance(value, bytes) else (value or "")
    out = [_count(part) or 0 for part in text.split()[:MAX_LEN]]
    return out + [0] * (WIDTH - len(out))


def readable_minute(value: bytes | str | None) -> bool:
    """Whether a minute's stored value is what settle.lua writes (parse_minute reads any)."""
    text = value.decode(errors="replace") if isinstance(value, bytes) else (value or "")
    return all(_count(part) is not None for part in text.split())


def add_to_minute(current: Sequence[int] | None, acked: int, failed: int, dead: int, runs: str) -> list[int]:
    """``current`` plus one settle's outcomes and run times (what settle.lua does)."""
    v = list(current or [])
    v += [0] * (FIELDS - len(v))
    v[0] += acked
    v[1] += failed
    v[2] += dead
    if runs:
        total, longest, *pairs = runs.split()
        v[3] += int(total)
        v += [0] * (MAX_AT + 1 - len(v))
        v[MAX_AT] = max(v[MAX_AT], int(longest))
        fine = _pairs(v[MAX_AT + 1 :])
        for pair in pairs:
            b, n = pair.split(":")
            if b.startswith("f"):
                fine[int(b[1:])] = fine.get(int(b[1:]), 0) + int(n)
            else:
                v[FIELDS + int(b)] += int(n)
        v = v[: MAX_AT + 1] + [x for j, n in sorted(fine.items()) for x in (j, n)]
    while len(v) > FIELDS and v[-1] == 0:  # as settle.lua keeps them: short
        v.pop()
    return v


def _pairs(numbers: Sequence[int]) -> dict[int, int]:
    """The fine ``index count`` pairs of a stored minute (an index past the table is not ours)."""
    out: dict[int, int] = {}
    for j, n in zip(numbers[0::2], numbers[1::2], strict=False):
        if j <= len(FINE_US):
            out[j] = out.get(j, 0) + n
    return out


def prune_from(minute: int) -> int:
    """The oldest minute kept once ``minute`` has started."""
    return minute - KEEP_MINUTES + 1


def percentile(buckets: Sequence[int], q: float, fine: Iterable[tuple[int, int]] = (), max_us: int = 0) -> float | None:
    """The ``q`` quantile (0 < q ≤ 1) of run times in ms, interpolated within a
    fine bucket, never above the longest run seen; None when there are no runs.
    ``buckets`` are the coarse counts (every run), ``fine`` the (index, count)
    pairs of the runs newer workers wrote: the runs the pairs do not cover, an
    older worker's, are spread over their coarse bucket (the open last one gives
    its lower bound, as before)."""
    weights: dict[int, float] = {}
    inside = [0] * (len(BUCKETS_MS) + 1)
    for j, n in fine:
        weights[j] = weights.get(j, 0.0) + n
        inside[_COARSE_OF[j]] += n
    cap: float = max_us / 1000
    for i, n in enumerate(buckets[: len(BUCKETS_MS) + 1]):
        rest = n - inside[i]
        if rest <= 0:
            continue
        cap = max(cap, float(BUCKETS_MS[min(i, len(BUCKETS_MS) - 1)]))  # an older worker's runs: no longer than this
        for j, share in _SPREAD[i] if i < len(BUCKETS_MS) else ((_OPEN, 1.0),):
            weights[j] = weights.get(j, 0.0) + rest * share
    total = sum(weights.values())
    if total <= 0:
        return None
    target = q * total
    seen = 0.0
    value = _fine_high(max(weights)) / 1000
    for j in sorted(weights):
        w = weights[j]
        if w > 0 and seen + w >= target * (1 - 1e-9):  # spread shares add up to a hair under
            low, high = _fine_low(j), _fine_high(j)
            value = (low + (high - low) * min(1.0, (target - seen) / w)) / 1000
            break
        seen += w
    return min(value, cap)


@dataclass(frozen=True, slots=True)
class Counts:
    """Outcomes and run times added up (over a minute, or a window)."""

    processed: int = 0
    failed: int = 0
    dead: int = 0
    run_ms: int = 0  # summed run time of the jobs that ran (acked or failed)
    buckets: tuple[int, ...] = ()  # how many runs fell in each bucket of BUCKETS_MS (and over it)
    fine: tuple[tuple[int, int], ...] = ()  # (FINE_US index, runs) of the runs newer workers wrote
    max_us: int = 0  # the longest of those runs (0: none written)

    @property
    def runs(self) -> int:
        return sum(self.buckets)

    @property
    def mean_ms(self) -> float | None:
        return self.run_ms / self.runs if self.runs else None

    @property
    def p50_ms(self) -> float | None:
        return percentile(self.buckets, 0.5, self.fine, self.max_us)

    @property
    def p95_ms(self) -> float | None:
        return percentile(self.buckets, 0.95, self.fine, self.max_us)

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
        total = _Sum()
        for m in minutes:
            minute = _Sum()
            for part in parts:
                got = part.get(m)
                if got:
                    minute.add(got)
                    total.add(got)
            rows.append(MinuteRow(at=_minute_at(m), **minute.counts()))
        types[job_type] = TypeHistory(job_type=job_type, rows=tuple(rows), **total.counts())
    return History(len(minutes), _minute_at(minutes[-1]), types)


class _Sum:
    """Stored minutes added up: counts summed, fine pairs merged, the longest run kept."""

    def __init__(self) -> None:
        self.head = [0] * WIDTH
        self.fine: dict[int, int] = {}
        self.max_us = 0

    def add(self, v: Sequence[int]) -> None:
        self.head = [a + b for a, b in zip(self.head, [*v[:WIDTH], *[0] * (WIDTH - len(v))], strict=True)]
        if len(v) > MAX_AT:
            self.max_us = max(self.max_us, v[MAX_AT])
            for j, n in _pairs(v[MAX_AT + 1 :]).items():
                self.fine[j] = self.fine.get(j, 0) + n

    def counts(self) -> dict[str, Any]:
        v = self.head
        return {
            "processed": v[0],
            "failed": v[1],
            "dead": v[2],
            "run_ms": v[3],
            "buckets": tuple(v[FIELDS:]),
            "fine": tuple(sorted(self.fine.items())),
            "max_us": self.max_us,
        }


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
