"""Partitioned types: the same contract on every backend and topology. A job
goes to the partition of its account; workers serve them all; stats add them
up; dead/failed/claim/requeue find a job in whichever partition holds it."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

import msgspec
import pytest

import jobcore
from jobcore import Job
from jobcore.keys import Keys, lane, lane_slot, partition_of, placed_lanes, split_lane, split_ref, valid_lane
from jobcore.model import decode_envelope
from jobcore.records import Outcome
from jobcore.redis.backend import RedisQueue

from .conftest import BACKENDS, fake_queue


class Ping(msgspec.Struct):
    n: int


def job(n: int, account_id: int) -> Job[Ping]:
    return Job(type="busy", args=Ping(n), account_id=account_id)


def test_partition_of_is_crc32_of_the_account_digits() -> None:
    assert partition_of(42, 1) == 0
    for account in (0, 1, 42, 123456789, -7):
        assert partition_of(account, 3) == zlib.crc32(str(account).encode()) % 3
    assert partition_of(42, 3) == 0xF4A0E6D3 % 3 == zlib.crc32(b"42") % 3  # a fixed point for other languages
    assert lane("busy", 0) == "busy" and lane("busy", 2) == "busy{2"
    assert split_lane("busy{2") == ("busy", "@2") and split_lane("busy") == ("busy", "")
    assert split_ref("1-0@2") == ("1-0", 2) and split_ref("1-0") == ("1-0", 0)
    # Each partition has its own hash tag, so a cluster spreads them over shards.
    assert Keys().of_type(lane("busy", 2)).stream == "jobcore:{busy{2}:jobs"


async def test_declare_partitions_is_kept_grows_only_and_shows_in_stats(queue: jobcore.Queue) -> None:
    queue.declare("busy", Ping, partitions=3)
    with pytest.raises(ValueError, match="partitions"):
        queue.declare("busy", Ping, partitions=0)
    await queue.enqueue_many([job(i, account_id=i) for i in range(30)])
    assert await queue.partitions(["busy", "other"]) == {"busy": 3, "other": 1}
    assert await queue.set_partitions("busy", 2) == 3  # never shrinks
    assert await queue.set_partitions("busy", 4) == 4
    stats = await queue.stats()
    t = stats.types["busy"]
    assert t.partitions == 4 and t.pending == 30
    if t.pending_by_partition:  # Redis counts each partition apart
        expected = [sum(1 for a in range(30) if partition_of(a, 3) == p) for p in range(3)] + [0]
        assert list(t.pending_by_partition) == expected
    assert stats.to_dict()["types"]["busy"]["partitions"] == 4


async def test_every_job_is_fetched_fifo_per_account_and_settles(queue: jobcore.Queue) -> None:
    queue.declare("busy", Ping, partitions=3)
    await queue.register_types({"busy": {}})
    jobs = [job(i, account_id=i % 7) for i in range(70)]
    for j in jobs[:35]:
        await queue.enqueue(j)
    await queue.enqueue_many(jobs[35:])
    got = []
    while batch := await queue.fetch("w1", ["busy"], 16, 0):
        got += batch
    assert len(got) == 70
    assert {d.job_type for d in got} == {"busy"}
    envs = [decode_envelope(d.raw or b"") for d in got]
    assert sorted(e.id for e in envs) == sorted(j.id for j in jobs)
    for account in range(7):  # FIFO holds per account
        assert [e.id for e in envs if e.account_id == account] == [j.id for j in jobs if j.account_id == account]
    held = await queue.owned("w1", ["busy"])
    assert sorted(ref for _, ref in held) == sorted(d.entry_id for d in got)
    assert (await queue.stats()).types["busy"].in_flight == 70
    rows = await queue.in_flight(100)
    assert {r.entry_id for r in rows} == {d.entry_id for d in got} and {r.job_type for r in rows} == {"busy"}

    outcomes = [Outcome("busy", d.entry_id, "ack", d.attempt) for d in got[:60]]
    outcomes += [Outcome("busy", d.entry_id, "dead", d.attempt, "bad") for d in got[60:65]]
    outcomes += [Outcome("busy", d.entry_id, "fail", d.attempt, "boom") for d in got[65:]]
    assert await queue.settle("w1", outcomes) == []
    stats = (await queue.stats()).types["busy"]
    assert (stats.processed, stats.dead, stats.failed, stats.in_flight, stats.pending) == (60, 5, 5, 0, 0)

    dead = await queue.dead("busy")
    assert sorted(b.job_id or "" for b in dead) == sorted(str(e.id) for e in envs[60:65])
    failed = await queue.failed("busy")
    assert len(failed) == 5
    assert await queue.requeue("dead", "busy", [b.id for b in dead[:2]]) == 2
    assert await queue.purge("failed", "busy", [failed[0].id]) == 1
    assert await queue.requeue("failed", "busy") == 4
    assert await queue.purge("dead", "busy") == 3
    back = []
    while batch := await queue.fetch("w1", ["busy"], 16, 0):
        back += batch
    ids = {str(decode_envelope(d.raw or b"").id) for d in back}
    assert ids == {b.job_id for b in dead[:2]} | {b.job_id for b in failed[1:]}


async def test_a_lost_workers_jobs_are_claimed_from_every_partition(queue: jobcore.Queue) -> None:
    queue.declare("busy", Ping, partitions=3)
    await queue.register_types({"busy": {}})
    await queue.enqueue_many([job(i, account_id=i) for i in range(12)])
    taken = await queue.fetch("lost", ["busy"], 12, 0)
    assert len(taken) == 12
    some = [d.entry_id for d in taken[:2]]
    got, left = await queue.claim("w2", "busy", "lost", 10, some)
    assert sorted(d.entry_id for d in got) == sorted(some) and left == 10
    got, left = await queue.claim("w2", "busy", "lost", 6)
    assert len(got) == 6 and left == 4
    got, left = await queue.claim("w2", "busy", "lost", 10)
    assert len(got) == 4 and left == 0
    assert {d.attempt for d in got} == {2}
    assert len(await queue.owned("w2", ["busy"])) == 12


@pytest.fixture(params=[b for b in BACKENDS if b != "memory"])  # memory: one queue per type whatever the count
async def redis_queue(request: pytest.FixtureRequest) -> AsyncIterator[RedisQueue]:
    q = fake_queue() if request.param == "fakeredis" else RedisQueue(request.getfixturevalue(f"{request.param}_url"))
    yield q
    await q.close()


async def test_a_producer_follows_a_count_raised_elsewhere(redis_queue: RedisQueue) -> None:
    queue = redis_queue
    other = queue.clone()
    try:
        await queue.enqueue(job(1, account_id=5))
        assert await other.set_partitions("busy", 5) == 5
        queue.routes.expire()  # as if the 10 s a count is trusted had passed
        await queue.enqueue(job(2, account_id=5))
        stats = (await queue.stats()).types["busy"]
        assert stats.partitions == 5 and stats.pending == 2
        p = partition_of(5, 5)
        assert stats.pending_by_partition[p] == (2 if p == 0 else 1)
    finally:
        await other.close()


async def test_a_worker_serves_every_partition_and_one_raised_while_it_runs(queue: jobcore.Queue) -> None:
    import asyncio

    from jobcore import Handlers, Worker

    from .helpers import wait_until

    seen: list[tuple[int, int]] = []
    handlers = Handlers()

    @handlers.handler("busy", Ping)
    async def busy(job: Job[Ping]) -> None:
        seen.append((job.account_id, job.args.n))

    queue.declare("busy", Ping, partitions=2)
    await queue.enqueue_many([job(i, account_id=i % 5) for i in range(40)])
    worker = Worker(queue, handlers, concurrency=4)
    task = asyncio.create_task(worker.run())
    try:

        async def done(n: int) -> bool:
            t = (await queue.stats()).types.get("busy")
            return t is not None and t.processed >= n and t.in_flight == 0 and t.pending == 0

        await wait_until(lambda: done(40), timeout=15)
        # A producer raises the count while the worker runs: it serves the new
        # partitions within the time a process trusts a count it read.
        other = queue.clone()
        try:
            assert await other.set_partitions("busy", 4) == 4
            await other.enqueue_many([job(100 + i, account_id=i) for i in range(40)])
        finally:
            if other is not queue:
                await other.close()
        await wait_until(lambda: done(80), timeout=30)
    finally:
        await worker.stop()
        await task
    assert sorted(n for _, n in seen) == sorted([*range(40), *range(100, 140)])
    for account in range(5):  # one at a time per account here: order kept
        ns = [n for a, n in seen if a == account and n < 100]
        assert ns == sorted(ns)


def test_placed_lanes_give_each_master_its_share() -> None:
    # Three masters with equal thirds of the slots, as a fresh cluster has them.
    slots = [f"m{s * 3 // 16384}" for s in range(16384)]
    for name in ("busy", "hot", "orders", "launch", "events"):
        placed = placed_lanes(name, [], 6, slots)
        assert placed[0] == name and all(valid_lane(name, p, n) for p, n in enumerate(placed))
        per_master = [sum(1 for n in placed if slots[lane_slot(n)] == m) for m in ("m0", "m1", "m2")]
        assert per_master == [2, 2, 2], (name, placed)
        # Growing keeps every name it had.
        assert placed_lanes(name, placed[:2], 6, slots)[:2] == placed[:2]
    # One server: the first candidate names.
    assert placed_lanes("busy", [], 3, None) == ["busy", "busy{1", "busy{2"]
    assert not valid_lane("busy", 1, "other{1") and not valid_lane("busy", 1, "busy{1:x")
    assert valid_lane("busy", 1, "busy{1:12") and split_lane("busy{1:12") == ("busy", "@1")


async def test_on_a_cluster_n_partitions_land_on_n_masters(cluster_url: str) -> None:
    q = RedisQueue(cluster_url)
    try:
        assert await q.set_partitions("busy", 3) == 3
        names = q.routes.lanes("busy")
        owners = await q.transport.slot_owners()
        assert owners is not None
        assert len({owners[lane_slot(n)] for n in names}) == 3, names
        # Another process reads the same names, and routes the same way.
        other = RedisQueue(cluster_url)
        try:
            assert await other.partitions(["busy"]) == {"busy": 3}
            assert other.routes.lanes("busy") == names
        finally:
            await other.close()
        await q.enqueue_many([job(i, account_id=i) for i in range(30)])
        by_partition = (await q.stats()).types["busy"].pending_by_partition
        assert list(by_partition) == [sum(1 for a in range(30) if partition_of(a, 3) == p) for p in range(3)]
    finally:
        await q.close()


async def test_corrupt_stored_partitions_read_as_safe_lanes(redis_url: str) -> None:
    import redis as redis_py

    q = RedisQueue(redis_url)
    try:
        r = redis_py.Redis.from_url(redis_url)
        # Names that point at another type's keys, or are not names at all.
        r.hset(q.keys.partitions, "busy", "busy\nother\n\x1b[31m\nbusy{3:9")
        r.hset(q.keys.partitions, "empty", "")
        assert await q.partitions(["busy", "empty"]) == {"busy": 4, "empty": 1}
        assert q.routes.lanes("busy") == ("busy", "busy{1", "busy{2", "busy{3:9")
        r.close()
        await q.enqueue_many([job(i, account_id=i) for i in range(8)])
        assert (await q.stats()).types["busy"].pending == 8
    finally:
        await q.close()


@pytest.mark.parametrize("kind", ["redis", "cluster"])
async def test_a_type_no_worker_serves_is_listed_at_once_after_redis_lost_its_data(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """Issue 18, the wiped restart: a long-lived producer keeps enqueueing after
    Redis came back empty; its types are listed by the next read, not 10 s later."""
    url = request.getfixturevalue(f"{kind}_url")
    solo, batch = RedisQueue(url), RedisQueue(url)  # one long-lived producer each
    try:
        await solo.enqueue(Job(type="solo", args=Ping(0)))
        await batch.enqueue_many([Job(type="batch", args=Ping(i)) for i in range(3)])
        if kind == "cluster":
            redis_cluster_flush(request)()
        else:
            await solo.transport.call("FLUSHALL")
        await solo.enqueue(Job(type="solo", args=Ping(1)))
        await batch.enqueue_many([Job(type="batch", args=Ping(i)) for i in range(3, 5)])
        reader = RedisQueue(url)  # a `stats` started now
        try:
            stats = await reader.stats()
        finally:
            await reader.close()
        assert {t: s.pending for t, s in stats.types.items()} == {"solo": 1, "batch": 2}
    finally:
        await solo.close()
        await batch.close()


def redis_cluster_flush(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return request.getfixturevalue("redis_cluster").flushall


async def test_a_raised_count_keeps_fifo_per_account_while_the_old_partition_has_a_backlog(
    redis_queue: RedisQueue,
) -> None:
    """Issue 18 case 9: a backlog in one partition, the count raised to 3, a new
    job per account: no account's new job runs ahead of its older ones (the new
    partitions open once the old one has run what it held at the raise)."""
    queue, other, worker = redis_queue, redis_queue.clone(), redis_queue.clone()
    try:
        await worker.register_types({"busy": {}})
        backlog = [job(n, account_id=n % 10) for n in range(40)]
        await queue.enqueue_many(backlog)  # one partition: all in partition 0
        assert await other.set_partitions("busy", 3) == 3
        queue.routes.expire()  # the producer and the worker have read the new count
        worker.routes.expire()
        new = [job(100 + a, account_id=a) for a in range(10)]
        await queue.enqueue_many(new)
        by_partition = (await queue.stats()).types["busy"].pending_by_partition
        assert by_partition[1] + by_partition[2] > 0  # moved accounts' new jobs wait in the new partitions
        ran: list[int] = []
        for _ in range(200):
            got = await worker.fetch("w1", ["busy"], 5, 0)
            if not got:
                if len(ran) == 50:
                    break
                worker.routes.expire()  # as the 10 s its view is trusted had passed
                continue
            ran += [_n(d.raw) for d in got]
            await worker.settle("w1", [Outcome("busy", d.entry_id, "ack", d.attempt) for d in got])
        assert sorted(ran) == sorted(j.args.n for j in backlog + new)
        for account in range(10):
            mine = [n for n in ran if (n - 100 if n >= 100 else n) % 10 == account]
            assert mine == sorted(mine), f"account {account} ran out of order: {mine}"
        # Drained: a later job goes to its account's new partition at once.
        worker.routes.expire()
        await worker.fetch("w1", ["busy"], 1, 0)
        assert not worker.routes.closed
    finally:
        await other.close()
        await worker.close()


def _n(raw: bytes | None) -> int:
    return int(msgspec.msgpack.decode(decode_envelope(raw or b"").args, type=Ping).n)


async def test_a_producer_records_its_partitions_again_after_redis_lost_them(redis_queue: RedisQueue) -> None:
    """A lane that exists is never forgotten: a producer that knew 3 partitions
    keeps them when Redis comes back empty, and records them again."""
    queue = redis_queue
    assert await queue.set_partitions("busy", 3) == 3
    await queue.enqueue(job(1, account_id=1))
    await _flush(queue)
    queue.routes.expire()  # its next read of the counts finds none
    await queue.enqueue(job(2, account_id=1))
    fresh = queue.clone()
    try:
        assert await fresh.partitions(["busy"]) == {"busy": 3}
    finally:
        await fresh.close()


async def _flush(queue: RedisQueue) -> None:
    if queue.transport.kind == "cluster":
        await queue.transport.on_every_master("FLUSHALL")
    else:
        await queue.transport.call("FLUSHALL")
