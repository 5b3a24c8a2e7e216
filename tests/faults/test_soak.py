"""Fault 11: the soak. 100,000 jobs through four worker processes while one of
them is killed every few seconds; then the audit, and Redis back to its size."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from jobcore import Job
from jobcore.redis_backend import RedisQueue

from .audit import Audit
from .handlers import Work
from .procs import Supervisor, WorkerProc, Workers, figures, wait_for

N = int(os.environ.get("JOBCORE_SOAK_JOBS", "100000"))
WARM_UP = 2_000
CHUNK = 10_000  # jobs per enqueue_many call
WORKERS = 4
KILL_EVERY = (2.0, 4.0)  # seconds between kills


def keyspace(url: str, audit_url: str) -> dict[str, Any]:
    """jobcore's keys (DB 0) with their sizes, and the server's dataset size once
    the audit records (DB 1) are gone."""
    with redis.Redis.from_url(audit_url) as a:
        a.flushdb()
    with redis.Redis.from_url(url) as r:
        # Not part of the keyspace: slow commands are kept with their arguments,
        # and Redis 7 allocates a latency histogram for each command on first use.
        r.slowlog_reset()
        r.config_resetstat()
        sizes = {k.decode(): int(r.memory_usage(k, samples=0) or 0) for k in r.scan_iter(count=1000)}
        stats = r.memory_stats()
    # Allocated memory minus client buffers (which depend on who is connected
    # right now, and what they last sent), then what the keys themselves take.
    allocated, clients = int(stats["total.allocated"]), int(stats["clients.normal"])
    return {"keys": sizes, "held": allocated - clients, "dataset": int(stats["dataset.bytes"]), "allocated": allocated}


async def stop(procs: list[WorkerProc]) -> None:
    for p in procs:
        p.signal(signal.SIGTERM)
    for p in procs:
        assert await p.wait(30) == 0, p.tail()


@dataclass
class Round:
    ids: list[uuid.UUID]
    seconds: float
    enqueue_seconds: float
    kills: int
    restarts: int


async def run_round(workers: Workers, queue: RedisQueue, n: int, first: int, rnd: random.Random) -> Round:
    """Start four workers, enqueue ``n`` jobs, kill a worker every few seconds
    (a supervisor restarts it) until the queue is empty, then stop them all."""
    target = (await queue.stats()).processed + n
    procs = workers.start(WORKERS, concurrency=50, lease=1.0)
    t0 = time.monotonic()
    ids: list[uuid.UUID] = []
    for i in range(first, first + n, CHUNK):
        chunk = range(i, min(first + n, i + CHUNK))
        ids += await queue.enqueue_many([Job(type="noop", args=Work(n=k)) for k in chunk])
    enqueue_s = time.monotonic() - t0
    kills = 0
    with Supervisor(workers, procs) as sup:

        async def killing() -> None:
            nonlocal kills
            while True:
                await asyncio.sleep(rnd.uniform(*KILL_EVERY))
                alive = [p for p in sup.current if p.alive]
                if alive:
                    rnd.choice(alive).kill()
                    kills += 1

        killer = asyncio.create_task(killing())

        async def drained() -> bool:
            s = await queue.stats()
            return s.processed + s.dead >= target and s.pending == 0 and s.in_flight == 0

        try:
            took = await wait_for(drained, 360, f"{n} jobs", workers, interval=0.5)
        finally:
            killer.cancel()
        live = [p for p in sup.current if p.alive]

        async def only_live_workers() -> bool:
            return {w.id for w in await queue.workers()} == {p.id for p in live}

        await wait_for(only_live_workers, 30, "killed workers to be forgotten", workers)
    await stop(live)
    return Round(ids, took, enqueue_s, kills, sup.restarts)


@pytest.mark.soak
@pytest.mark.timeout(420)
async def test_soak_with_random_kills(workers: Workers, queue: RedisQueue, audit: Audit, url: str) -> None:
    rnd = random.Random(11)
    # Warm up the same way (groups, scripts, counters), then measure an idle,
    # empty queue with no worker attached: the state the soak must come back to.
    warm = await run_round(workers, queue, WARM_UP, -WARM_UP, rnd)
    start = keyspace(url, workers.audit_url)
    soak = await run_round(workers, queue, N, 0, rnd)

    report = audit.report(soak.ids)  # the warm-up's records went with the audit DB
    report.assert_accounted()
    assert report.processed == {str(i) for i in soak.ids}, report.summary()
    assert report.acked == WARM_UP + N, report.summary()
    assert not report.dead, report.summary()

    end = keyspace(url, workers.audit_url)
    assert set(end["keys"]) == set(start["keys"]), (start["keys"], end["keys"])
    grown = {k: (v, end["keys"][k]) for k, v in start["keys"].items() if end["keys"][k] > v}
    assert not grown, grown
    assert end["held"] - start["held"] < 8 * 1024, (start, end)
    figures(
        "soak",
        jobs=N,
        workers=WORKERS,
        kills=soak.kills,
        restarts=soak.restarts,
        seconds=round(soak.seconds, 1),
        jobs_per_s=round(N / soak.seconds),
        enqueue_s=round(soak.enqueue_seconds, 1),
        redelivered=len(report.redelivered),
        duplicates=len(report.duplicates),
        dead=len(report.dead),
        max_runs=max(len(r) for r in report.runs.values()),
        held_bytes_start=start["held"],
        held_bytes_end=end["held"],
        allocated_bytes_start=start["allocated"],
        allocated_bytes_end=end["allocated"],
        keys=len(end["keys"]),
        warm_up_jobs=len(warm.ids),
    )
