"""Issue 18, case 2: settling is all-or-nothing per job.

A job leaves its stream only in the step that files it (processed, failed,
dead, or queued again); whatever Redis holds in the bookkeeping keys (a
counter that is not a number, a dead key that is a string, an entry with
thousands of fields), no job of the batch is dropped, and what was not settled
is said, with why. Against the suite's real server (JOBCORE_TEST_SERVER=valkey
for Valkey)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec
import pytest
import redis

from jobcore import Handlers, Job, Worker
from jobcore.keys import GROUP, Keys
from jobcore.records import Delivery, Outcome
from jobcore.redis.backend import RedisQueue
from tests.helpers import running, wait_until
from tests.test_hostile_data import jc, ok

T = "settlecase"
K = Keys().of_type(T)
ME = "w-settle"


class Empty(msgspec.Struct):
    pass


@pytest.fixture(params=["redis", "cluster"])
def url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("redis_url" if request.param == "redis" else "cluster_url"))


@pytest.fixture
async def q(url: str) -> AsyncIterator[RedisQueue]:
    queue = RedisQueue(url)
    await queue.register_types({T: {}})
    yield queue
    await queue.close()


@pytest.fixture
def r(url: str, request: pytest.FixtureRequest) -> Any:
    """A plain client (one type's keys share a slot, so a cluster client is as simple)."""
    if "cluster" in request.node.callspec.params.get("url", ""):
        return redis.RedisCluster.from_url(url)
    return redis.Redis.from_url(url)


async def take(q: RedisQueue, n: int) -> list[Delivery]:
    got: list[Delivery] = []
    while len(got) < n:
        more = await q.fetch(ME, [T], n - len(got), 100)
        assert more, f"only {len(got)} of {n} fetched"
        got += more
    return got


def where(r: Any) -> dict[str, list[bytes]]:
    """The audit: each payload by where it is (waiting or in flight in the stream, dead, failed)."""
    return {
        name: [f[b"d"] for _, f in r.xrange(key)]
        for name, key in (("stream", K.stream), ("dead", K.dead), ("failed", K.failed))
        if r.type(key) == b"stream"
    }


def pending(r: Any) -> set[str]:
    rows: Any = r.xpending_range(K.stream, GROUP, "-", "+", 10_000)
    return {row["message_id"].decode() for row in rows}


def audit(r: Any, all_payloads: Sequence[bytes], acked: Sequence[bytes]) -> dict[str, list[bytes]]:
    """Every payload in exactly one place; the acked ones in none."""
    places = where(r)
    for p in all_payloads:
        found = [name for name, ps in places.items() for x in ps if x == p]
        if p in acked:
            assert found == [], (p, found)
        else:
            assert len(found) == 1, (p, found)
    return places


async def enqueue(q: RedisQueue, r: Any, n: int) -> list[bytes]:
    await q.enqueue_many([Job(type=T, args={"i": i}) for i in range(n)])
    return [f[b"d"] for _, f in r.xrange(K.stream)]


KINDS = ("ack", "fail", "dead", "release")


def outcomes(ds: Sequence[Delivery]) -> list[Outcome]:
    return [Outcome(T, d.entry_id, KINDS[i % 4], d.attempt, f"why {i}") for i, d in enumerate(ds)]


async def test_an_entry_with_5000_extra_fields_is_dead_lettered_with_its_neighbours(q: RedisQueue, r: Any) -> None:
    raws = [b"\x00bad payload %d" % i for i in range(7)]
    for i, raw in enumerate(raws):
        fields: dict[Any, Any] = {b"d": raw}
        if i == 3:
            fields.update({f"x{j}".encode(): b"v%d" % j for j in range(5000)})
        r.xadd(K.stream, fields)
    ds = await take(q, 7)
    stale = await q.settle(ME, [Outcome(T, d.entry_id, "dead", d.attempt, "bad payload") for d in ds])
    assert stale == []
    places = audit(r, raws, [])
    assert len(places["dead"]) == 7 and places["stream"] == []
    assert pending(r) == set()
    big = next(b for b in await q.dead(T) if b.raw == raws[3])
    assert big.fields["x0"] == "v0"
    assert len(big.fields) == 1001 and big.fields["(not kept)"] == "4000 more fields not kept"


async def test_a_release_of_an_entry_with_5000_extra_fields_keeps_the_job(q: RedisQueue, r: Any) -> None:
    r.xadd(K.stream, {b"d": b"job", **{f"x{j}".encode(): b"v" for j in range(5000)}})
    (d,) = await take(q, 1)
    assert await q.settle(ME, [Outcome(T, d.entry_id, "release", 0)]) == []
    assert where(r)["stream"] == [b"job"] and pending(r) == set()


CORRUPT_COUNTERS = {
    "processed abc": ("processed", b"abc"),
    "failed 400 digits": ("failed", b"9" * 400),
    "processed at the int64 limit": ("processed", b"9223372036854775807"),
}


@pytest.mark.parametrize("case", CORRUPT_COUNTERS)
async def test_a_counter_that_is_not_a_number_is_repaired_and_every_job_settles(
    q: RedisQueue, r: Any, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    field, value = CORRUPT_COUNTERS[case]
    payloads = await enqueue(q, r, 20)
    r.hset(K.stats, field, value)
    ds = await take(q, 20)
    with caplog.at_level(logging.WARNING):
        assert await q.settle(ME, outcomes(ds)) == []
    by_payload = {d.raw: i for i, d in enumerate(ds)}
    acked = [p for p in payloads if by_payload[p] % 4 == 0]
    places = audit(r, payloads, acked)
    assert (len(places["failed"]), len(places["dead"]), len(places["stream"])) == (5, 5, 5)
    assert pending(r) == set()
    counters = r.hgetall(K.stats)
    assert counters[field.encode()] == b"5", counters  # reset, then this batch counted
    warned = [rec.getMessage() for rec in caplog.records if field in rec.getMessage()]
    assert len(warned) == 1 and "not a number" in warned[0], warned


BROKEN_KEYS = {"dead": K.dead, "failed": K.failed, "stats": K.stats}


@pytest.mark.parametrize("which", BROKEN_KEYS)
async def test_a_key_of_the_wrong_type_keeps_its_jobs_and_settles_the_rest(
    q: RedisQueue, r: Any, which: str, caplog: pytest.LogCaptureFixture
) -> None:
    payloads = await enqueue(q, r, 20)
    ds = await take(q, 20)
    r.delete(BROKEN_KEYS[which])
    r.set(BROKEN_KEYS[which], "not a stream")
    with caplog.at_level(logging.WARNING):
        stale = await q.settle(ME, outcomes(ds))
    by_payload = {d.raw: i for i, d in enumerate(ds)}
    acked = [p for p in payloads if by_payload[p] % 4 == 0]
    places = audit(r, payloads, acked)  # nothing dropped, nothing twice
    kept_kind = {"dead": 2, "failed": 1}.get(which)
    if kept_kind is None:  # the counters are lost, the jobs all settle
        assert stale == [] and pending(r) == set()
        assert any("counters" in rec.getMessage() for rec in caplog.records)
        return
    kept = {d.entry_id for i, d in enumerate(ds) if i % 4 == kept_kind}
    assert {s.entry_id for s in stale} == kept
    assert all(s.owner == ME and s.reason and "WRONGTYPE" in s.reason for s in stale), stale
    assert pending(r) == kept  # still this worker's, in flight: its lease keeps them safe
    assert len(places["stream"]) == 5 + 5  # the released and the kept
    # And the neighbours settled: five processed, the other list filed.
    assert r.hget(K.stats, "processed") == b"5"
    other = "failed" if which == "dead" else "dead"
    assert len(places[other]) == 5


async def test_the_worker_says_which_jobs_were_not_settled_and_why(
    q: RedisQueue, r: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """It once logged them "dead-lettered", then "settled by another worker, or Redis lost them"."""
    handlers = Handlers()
    runs: list[int] = []

    @handlers.handler(T, Empty)
    async def boom(job: Job[Empty]) -> None:
        runs.append(1)
        raise RuntimeError("boom")

    for i in range(3):
        r.xadd(K.stream, {b"d": b"\x00poison %d" % i})
    await q.enqueue_many([Job(type=T, args={}) for _ in range(2)])
    r.set(K.dead, "not a stream")
    r.set(K.failed, "not a stream")

    def said(text: str) -> list[str]:
        return [rec.getMessage() for rec in caplog.records if text in rec.getMessage()]

    with caplog.at_level(logging.INFO, logger="jobcore"):
        async with running(Worker(q, handlers)):
            await wait_until(lambda: _true(len(said("not settled")) >= 2))
            assert len(where(r)["stream"]) == 5  # every job is still there
            r.delete(K.dead, K.failed)  # repaired: the same results are settled now
            await wait_until(lambda: _true(r.xlen(K.dead) == 3 and r.xlen(K.failed) == 2), timeout=20)
    assert len(runs) == 2  # settled again, not run again
    text = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "settled by another worker" not in text and "Redis lost them" not in text
    assert "never seen" not in text  # not handed back as if a fetch reply was lost
    lines = said("not settled")
    assert any("WRONGTYPE" in line and K.dead in line for line in lines), lines
    assert any("WRONGTYPE" in line and K.failed in line for line in lines), lines
    places = where(r)
    assert places["stream"] == [] and pending(r) == set()


async def _true(value: bool) -> bool:
    return value


async def test_a_dead_entrys_other_fields_are_listed(q: RedisQueue, r: Any, cli_env: dict[str, str]) -> None:
    """Kept in Redis as "o.NAME" since last round, but shown by neither dead() nor dead list --json."""
    r.xadd(K.stream, {b"d": b"\x00bad", b"x": b"from the producer", b"trace": b"\xff\xfe"})
    (d,) = await take(q, 1)
    assert await q.settle(ME, [Outcome(T, d.entry_id, "dead", d.attempt, "bad payload")]) == []
    (bad,) = await q.dead(T)
    assert bad.fields == {"x": "from the producer", "trace": "\ufffd\ufffd"}
    (row,) = json.loads(ok(jc(cli_env, "dead", "list", "--json", url=q.url)))
    assert row["fields"] == bad.fields
    assert "x=from the producer" in ok(jc(cli_env, "dead", "list", url=q.url))
