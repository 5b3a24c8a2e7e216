"""Per-minute history (jobcore.ops.history): the pure parts, and the settle script's
rules against a real redis-server (pruning, a day bound, a corrupt key)."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest

from jobcore import Job, UnknownJobType
from jobcore.memory import MemoryQueue
from jobcore.ops.history import (
    BUCKETS_MS,
    FIELDS,
    FINE_US,
    KEEP_MINUTES,
    WIDTH,
    MinuteTable,
    add_to_minute,
    bucket_of,
    build_history,
    parse_minute,
    percentile,
    runs_arg,
    window,
)
from jobcore.records import Outcome
from jobcore.redis.backend import RedisQueue


def test_buckets_and_the_batch_aggregate() -> None:
    assert [bucket_of(ms) for ms in (0, 1, 1.5, 2, 300000, 300001)] == [0, 0, 1, 1, 15, 16]
    assert runs_arg([]) == ""
    # Sum (ms), longest (µs), coarse bucket counts, then fine ones.
    assert runs_arg([0.0004, 0.0009, 0.2, 400.0]) == "400201 400000000 0:2 7:1 16:1 f44:1 f53:1 f116:1 f205:1"
    # Fine buckets: each bound at most 10 % above the last, the coarse bounds among them.
    assert all(b / a <= 1.1 for a, b in itertools.pairwise(FINE_US))
    assert {ms * 1000 for ms in BUCKETS_MS} <= set(FINE_US) and FINE_US[0] == 10


def test_a_minute_adds_up_and_reads_back() -> None:
    v = add_to_minute(None, 3, 1, 2, "400201 400000000 0:2 7:1 16:1 f44:1 f53:1 f116:1 f205:1")
    assert v[:FIELDS] == [3, 1, 2, 400201] and v[FIELDS] == 2 and v[FIELDS + 7] == 1 and v[WIDTH - 1] == 1
    assert v[WIDTH:] == [400000000, 44, 1, 53, 1, 116, 1, 205, 1]
    text = " ".join(map(str, v))
    assert parse_minute(text.encode()) == v
    assert parse_minute("[1, 2]") == [0] * WIDTH  # not ours: zeros
    assert parse_minute("5 x 7") == [5, 0, 7] + [0] * (WIDTH - 3)
    assert parse_minute(None) == [0] * WIDTH


@pytest.mark.parametrize(
    ("buckets", "p50", "p95"),
    [
        ([0] * 17, None, None),
        ([0, 0, 0, 0, 10] + [0] * 12, 17.5, 24.25),  # all ten in (10, 25]: interpolated
        ([10] + [0] * 15 + [10], 1.0, 300000.0),  # half instant, half over the last bound
    ],
)
def test_percentiles_from_the_histogram(buckets: list[int], p50: float | None, p95: float | None) -> None:
    assert percentile(buckets, 0.5) == pytest.approx(p50) if p50 is not None else percentile(buckets, 0.5) is None
    assert percentile(buckets, 0.95) == pytest.approx(p95) if p95 is not None else percentile(buckets, 0.95) is None


def _history_of(*values: list[int]) -> Any:
    return build_history([1], {"t": [{1: v} for v in values]}).types["t"]


@pytest.mark.parametrize(
    "took_s",
    [
        [30 + i / 20 for i in range(200)],  # 30 s to 40 s: the coarse buckets said p50 45 s, p95 58.5 s
        [60.05] * 10,  # a minute each: the coarse buckets said p50 180 s
        [0.0003 * (1 + i % 7) for i in range(50)],
        [0.004] * 95 + [2.0] * 5,
    ],
)
def test_percentiles_are_within_ten_percent_and_never_above_the_longest_run(took_s: list[float]) -> None:
    h = _history_of(add_to_minute(None, len(took_s), 0, 0, runs_arg(took_s)))
    ms = sorted(t * 1000 for t in took_s)
    for q, got in ((0.5, h.p50_ms), (0.95, h.p95_ms)):
        exact = ms[max(0, round(q * len(ms)) - 1)]
        assert got is not None and abs(got - exact) <= 0.1 * exact, (q, got, exact)
        assert got <= ms[-1]
    assert h.runs == len(took_s) and h.max_us == round(ms[-1] * 1000)


def test_old_workers_coarse_counts_are_read_with_the_fine_ones() -> None:
    """A rolling deploy: an older worker adds only coarse counts (positions 4..20)
    to a minute; the runs the fine pairs do not cover are read from them."""
    old = [2, 0, 0, 40000, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]  # two runs in (10 s, 30 s]
    assert _history_of(old).p50_ms == pytest.approx(20000) and _history_of(old).runs == 2
    new = add_to_minute(None, 2, 0, 0, runs_arg([0.004, 0.004]))
    both = list(new)
    both[FIELDS + 13] += 2  # what the older settle script does to the same minute
    h = _history_of(both)
    assert h.runs == 4 and h.p50_ms is not None and 3.6 <= h.p50_ms <= 4.4
    assert h.p95_ms is not None and 10000 < h.p95_ms <= 30000  # the old runs: in their coarse bucket
    # Partitions: one written by an older worker, one by a newer: added up.
    mixed = _history_of(old, new)
    assert mixed.runs == 4 and mixed.p95_ms is not None and mixed.p95_ms > 10000


def test_window_and_build_history_add_partitions_and_fill_empty_minutes() -> None:
    span = window(10 * 60_000 + 5, 3)
    assert span == [8, 9, 10]
    with pytest.raises(ValueError, match="from 1 to 1440"):
        window(0, KEEP_MINUTES + 1)
    a = [2, 1, 0, 30, 0, 0, 0, 3]  # as an older worker wrote it: three runs in (5, 10] ms
    b = add_to_minute(None, 1, 0, 1, runs_arg([0.007]))
    h = build_history(span, {"t": [{9: a}, {9: b, 10: b}], "idle": []})
    t = h.types["t"]
    assert [r.processed for r in t.rows] == [0, 3, 1]
    assert (t.processed, t.failed, t.dead, t.runs, t.run_ms) == (4, 1, 2, 5, 44)
    assert t.rows[1].mean_ms == pytest.approx(37 / 4) and t.rows[0].mean_ms is None
    assert [r.processed for r in h.types["idle"].rows] == [0, 0, 0] and h.types["idle"].p50_ms is None
    assert h.to_dict()["types"]["t"]["minutes"][1]["processed"] == 3 and h.until.minute == 10


def test_the_memory_table_keeps_a_day_and_starts_afresh_after_a_longer_gap() -> None:
    table = MinuteTable({})
    for m in range(100, 100 + KEEP_MINUTES + 50):
        table.add(m, 1, 0, 0, "")
    assert len(table.minutes) == KEEP_MINUTES and min(table.minutes) == 150 and table.lo == 150
    table.add(10_000, 1, 0, 0, "")
    assert list(table.minutes) == [10_000] and table.lo == table.last == 10_000
    table.add(10_001, 0, 0, 0, "")  # nothing settled: nothing written
    assert list(table.minutes) == [10_000]


# ---- the settle script on a real server ----------------------------------------


async def _settle_some(q: Any, job_type: str, kinds: list[str], took: float = 0.02) -> None:
    await q.enqueue_many([Job(type=job_type, args={"n": i}) for i in range(len(kinds))])
    got = await q.fetch("w", [job_type], len(kinds), 0)
    assert len(got) == len(kinds)
    await q.settle("w", [Outcome(job_type, d.entry_id, k, 1, "x", took) for d, k in zip(got, kinds, strict=True)])  # type: ignore[arg-type]


async def test_settle_drops_minutes_older_than_a_day_on_redis(redis_url: str) -> None:
    import redis.asyncio as aioredis

    async with RedisQueue(redis_url) as q:
        await q.register_types({"h": {"type": "object"}})
        key = q.keys.of_type("h").history
        r = aioredis.Redis.from_url(redis_url)
        now_minute = int((await r.time())[0]) // 60
        # A day and a bit of old minutes, as if settles had written them.
        old = {str(m): "1 0 0 5" for m in range(now_minute - KEEP_MINUTES - 20, now_minute)}
        await r.hset(key, mapping={**old, "lo": str(now_minute - KEEP_MINUTES - 20), "last": str(now_minute - 1)})
        await _settle_some(q, "h", ["ack", "ack", "fail"])
        fields = {k.decode() for k in await r.hkeys(key)}
        minutes = sorted(int(f) for f in fields - {"lo", "last"})
        assert minutes[0] == now_minute - KEEP_MINUTES + 1 and minutes[-1] == now_minute
        assert len(minutes) == KEEP_MINUTES
        assert int(await r.hget(key, "lo")) == minutes[0]
        # Everything older than a day: the hash starts afresh.
        await r.delete(key)
        await r.hset(key, mapping={"5": "1 0 0 0", "lo": "5", "last": "5"})
        await _settle_some(q, "h", ["ack"])
        assert {k.decode() for k in await r.hkeys(key)} == {str(now_minute), "lo", "last"} or (
            {k.decode() for k in await r.hkeys(key)} == {str(now_minute + 1), "lo", "last"}  # the minute turned
        )
        # A history key holding something else fails no settle.
        await r.delete(key)
        await r.set(key, "not a hash")
        await _settle_some(q, "h", ["ack"])
        assert (await q.stats()).types["h"].processed == 4
        assert (await q.history("h")).types["h"].processed == 0
        await r.aclose()


async def test_memory_and_redis_history_agree(redis_url: str) -> None:
    found = []
    for q in (MemoryQueue(), RedisQueue(redis_url)):
        async with q:
            await q.register_types({"m": {"type": "object"}})
            await _settle_some(q, "m", ["ack", "ack", "fail", "dead", "release"], took=0.03)
            h = await q.history("m", minutes=5)
            row = h.types["m"].rows[-1]
            found.append((row.processed, row.failed, row.dead, row.runs, row.run_ms, row.buckets))
    assert found[0] == found[1] == (2, 1, 1, 3, 90, found[0][5])
    assert found[0][5][bucket_of(30)] == 3


OLD_SETTLE = (Path(__file__).parent.parent / "support" / "settle_before_fine_buckets.lua").read_text()


async def test_older_workers_settle_script_and_this_one_share_a_minute_on_redis(redis_url: str) -> None:
    """A rolling deploy: the settle script of the release before fine buckets
    (kept verbatim in tests/support) and this one add to the same minute; each
    keeps what the other wrote, and both kinds of reader read the whole of it."""
    import redis.asyncio as aioredis

    async with RedisQueue(redis_url) as q:
        await q.register_types({"r": {"type": "object"}})
        k = q.keys.of_type("r")
        r = aioredis.Redis.from_url(redis_url)

        async def old_settle(runs: str) -> None:  # an older worker's run times (no outcomes: none it owns)
            keys = (k.stream, k.stats, k.dead, k.failed, k.history)
            await r.eval(OLD_SETTLE, 5, *keys, "g", "old", 1000, "0-0", "0-0", runs, KEEP_MINUTES)  # type: ignore[misc]

        await old_settle("40000 13:2")  # two runs in (10 s, 30 s]
        await _settle_some(q, "r", ["ack", "ack"], took=0.004)
        await old_settle("40000 13:2")
        h = (await q.history("r", minutes=2)).types["r"]
        assert (h.processed, h.runs, h.run_ms) == (2, 6, 80008)
        assert h.max_us == 4000  # the older script kept the newer numbers as they were
        # 4 ms, 4 ms, then four runs spread over (10 s, 30 s], as the coarse buckets say.
        assert h.p50_ms == pytest.approx(15000) and h.p95_ms == pytest.approx(28500)
        # An older reader takes the first 21 numbers: every run is in its coarse counts.
        values = [v for f, v in (await r.hgetall(k.history)).items() if f not in (b"lo", b"last")]
        assert sum(sum(int(x) for x in v.split()[FIELDS:WIDTH]) for v in values) == 6
        await r.aclose()


def test_history_read_of_no_types_is_empty() -> None:
    async def run() -> None:
        q = MemoryQueue()
        h = await q.history()
        assert h.types == {} and h.minutes == 60
        # A type never enqueued nor served is refused, not shown as a window of zeros.
        with pytest.raises(UnknownJobType, match="unknown job type 'nosuch'"):
            await q.history("nosuch")

    asyncio.run(run())
