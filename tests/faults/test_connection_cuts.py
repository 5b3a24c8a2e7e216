"""Fault 7: cut the workers' connections to Redis (CLIENT KILL), again and again."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from jobcore import Job, JobcoreError
from jobcore.redis.backend import RedisQueue

from .audit import Audit
from .handlers import Work, handlers
from .procs import Workers, figures, wait_for

N = 1000
SPARED = "fault-test"  # the test's own connections carry this name


@pytest.fixture
async def spared_queue(url: str) -> AsyncIterator[RedisQueue]:
    """A queue whose connections the cutter leaves alone."""
    q = RedisQueue(url, client_factory=lambda: aioredis.Redis.from_url(url, client_name=SPARED))
    q.declare_handlers(handlers)
    yield q
    await q.close()


async def cut_connections(url: str, stop: asyncio.Event, rnd: random.Random) -> int:
    """Kill every connection to DB 0 but the test's own, every 20-150 ms."""
    r = aioredis.Redis.from_url(url, client_name=SPARED)
    kills = 0
    try:
        while not stop.is_set():
            await asyncio.sleep(rnd.uniform(0.02, 0.15))
            for c in await r.client_list():
                if c.get("name") != SPARED and c.get("db") == "0":
                    with contextlib.suppress(aioredis.ResponseError):  # already gone
                        kills += int(await r.client_kill_filter(_id=c["id"]))
    finally:
        await r.aclose()
    return kills


async def test_cut_connections_lose_nothing_and_nothing_completes_twice(
    workers: Workers, spared_queue: RedisQueue, audit: Audit
) -> None:
    queue = spared_queue
    procs = workers.start(2, concurrency=10, lease=1.0)
    ids = await queue.enqueue_many([Job(type="work", args=Work(n=i, seconds=0.02)) for i in range(N)])

    async def started() -> bool:
        return (await queue.stats()).processed > 20

    await wait_for(started, 30, "workers to start", workers, procs)
    stop = asyncio.Event()
    cutter = asyncio.create_task(cut_connections(workers.url, stop, random.Random(7)))

    async def all_done() -> bool:
        try:
            s = await queue.stats()
        except JobcoreError:
            return False
        return s.processed >= N and s.in_flight == 0 and s.pending == 0

    try:
        took = await wait_for(all_done, 90, "every job", workers, procs)
    finally:
        stop.set()
        kills = await cutter
    report = audit.report(ids)
    report.assert_all_processed()
    assert not report.duplicates, report.summary()
    assert not report.redelivered, report.summary()  # no attempt was burned either
    assert kills > 10
    logs = "\n".join(p.log() for p in procs)
    assert "unreachable" in logs  # the cuts were felt
    figures(
        "connection cuts",
        jobs=N,
        connections_killed=kills,
        seconds=round(took, 1),
        redelivered=len(report.redelivered),
        duplicates=len(report.duplicates),
        handed_back_unseen=logs.count("held but never seen"),
    )
