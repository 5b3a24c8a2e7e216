"""RedisQueue._add_many through the transport (lean client; fakeredis through the redis-py adapter)."""

from __future__ import annotations

from typing import Any

import pytest

from jobcore import EnqueueError, Job
from jobcore.keys import key_slot
from jobcore.model import decode_envelope
from jobcore.redis import resp
from jobcore.redis.adding import ADD_CHUNK
from jobcore.redis.backend import RedisQueue
from jobcore.redis.redispy import RedisPyTransport
from tests.conftest import fake_queue
from tests.support.servers import RedisCluster


async def test_a_batch_goes_over_the_lean_connection_in_order(redis_url: str) -> None:
    q = RedisQueue(redis_url)
    try:
        n = 2 * ADD_CHUNK + 7
        jobs = [Job(type="bulk", args={"i": i}) for i in range(n)] + [Job(type="other", args={"i": 0})]
        ids = await q.enqueue_many(jobs)
        entries = await q.transport.call("XRANGE", q.keys.of_type("bulk").stream, "-", "+")
        assert [decode_envelope(fields[1]).id for _, fields in entries] == ids[:n]
        assert await q.job_types() == ["bulk", "other"]
        assert (await q.stats()).types["other"].pending == 1
    finally:
        await q.close()


async def test_an_unreachable_redis_reads_as_not_enqueued_or_not_confirmed() -> None:
    q = RedisQueue("redis://127.0.0.1:1/0", connect_timeout=1)
    try:
        with pytest.raises(
            EnqueueError, match=r"^2 job\(s\) not enqueued \(or not confirmed\): Redis at .* unreachable"
        ):
            await q.enqueue_many([Job(type="t", args={}), Job(type="t", args={})])
    finally:
        await q.close()


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (
            "LOADING Redis is loading the dataset in memory",
            r"^1 job\(s\) not enqueued: Redis at redis://127\.0\.0\.1:\d+/0 is unreachable while it loads \(LOADING",
        ),
        ("OOM command not allowed", r"^1 job\(s\) not enqueued: Redis error: OOM command not allowed$"),
    ],
)
async def test_error_replies_map_as_for_a_single_enqueue(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, reply: str, message: str
) -> None:
    q = RedisQueue(redis_url)
    try:

        async def refuse(*args: Any, **kwargs: Any) -> Any:
            raise resp.RespError(reply)

        monkeypatch.setattr(q._t, "run_scripts", refuse)
        with pytest.raises(EnqueueError, match=message):
            await q.enqueue_many([Job(type="t", args={})])
    finally:
        await q.close()


async def test_fakeredis_queues_go_through_the_redis_py_adapter() -> None:
    q = fake_queue()
    try:
        assert isinstance(q.transport, RedisPyTransport)
        await q.enqueue_many([Job(type="t", args={"i": i}) for i in range(3)])
        assert (await q.stats()).types["t"].pending == 3
    finally:
        await q.close()


async def test_on_a_cluster_with_a_master_down_it_says_exactly_which_jobs_landed(
    redis_cluster: RedisCluster, cluster_url: str
) -> None:
    q = RedisQueue(cluster_url, connect_timeout=1)
    try:
        home = redis_cluster.master_for_slot(key_slot(q.keys.types))  # the namespace's keys: left alive
        types = [f"t{i}" for i in range(12)]
        where = {t: redis_cluster.master_for_slot(key_slot(q.keys.of_type(t).stream)) for t in types}
        victim = next(n for n in where.values() if n is not home)
        await q.enqueue_many([Job(type=t, args={"i": -1}) for t in types])  # routes and lanes known
        batch = [Job(type=types[i % len(types)], args={"i": i}) for i in range(1000)]
        down = {j.id for j in batch if where[j.type] is victim}
        redis_cluster.kill(victim)
        with pytest.raises(EnqueueError, match=rf"{len(down)} of 1000 job\(s\) not enqueued") as err:
            await q.enqueue_many(batch)
        assert victim.url.split("//")[1].split("/")[0] in str(err.value)  # the node that failed, named
        assert set(err.value.not_landed) == down
        assert set(err.value.landed) == {j.id for j in batch} - down
    finally:
        await q.close()
    redis_cluster.heal()
    q = RedisQueue(cluster_url)
    try:
        stored = set()
        for t in types:
            for _, fields in await q.transport.call("XRANGE", q.keys.of_type(t).stream, "-", "+"):
                stored.add(decode_envelope(fields[1]).id)
        assert stored & {j.id for j in batch} == set(err.value.landed)
    finally:
        await q.close()
