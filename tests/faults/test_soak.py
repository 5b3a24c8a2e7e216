"""Fault 11: the soak. 100,000 jobs through four worker processes while one of
them is killed every few seconds; then the audit, and Redis back to its size."""

from __future__ import annotations

import asyncio
import contextlib
import math
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
from jobcore.ops.history import KEEP_MINUTES
from jobcore.redis.backend import RedisQueue

from .audit import Audit
from .handlers import Work
from .procs import Supervisor, WorkerProc, Workers, figures, wait_for

N = int(os.environ.get("JOBCORE_SOAK_JOBS", "25000"))  # 100000 for the figures in README
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
        # dataset.bytes is allocated minus overhead, and the overhead of client
        # buffers is given back by Redis's cron a moment later: one reading can be
        # off by a buffer's size (CI once read 38 KB low), two equal ones are not.
        stats, previous = r.memory_stats(), None
        for _ in range(25):
            if previous is not None and stats["dataset.bytes"] == previous["dataset.bytes"]:
                break
            time.sleep(0.2)
            previous, stats = stats, r.memory_stats()
        # A type's history hash: a field per minute with settles (and "lo", "last").
        history = {k: int(r.hlen(k)) for k in sizes if k.endswith(":history")}
        # Hashes each worker writes again at start (the same fields, the same values):
        # their contents are compared, since a rewrite may move a value to another
        # allocator size class (Valkey once grew the schemas hash by 16 bytes so).
        rewritten = {k: r.hgetall(k) for k in sizes if k.endswith(":schemas")}
    return {
        "keys": sizes,
        "history_fields": history,
        "dataset": int(stats["dataset.bytes"]),
        "allocated": int(stats["total.allocated"]),
        "stats": stats,
        "rewritten": rewritten,
    }


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
    kills: list[tuple[float, set[str]]]  # (when, job ids the killed worker held)
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
    kills: list[tuple[float, set[str]]] = []
    with Supervisor(workers, procs) as sup:
        done = asyncio.Event()

        async def killing() -> None:
            pause = 0.5  # the first kill comes early, so the warm-up has one too
            while not done.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), pause)
                pause = rnd.uniform(*KILL_EVERY)
                alive = [p for p in sup.current if p.alive]
                if alive and not done.is_set():
                    victim = rnd.choice(alive)
                    victim.kill()
                    at = time.time()
                    await asyncio.sleep(0.3)  # its last requests land; its lease still holds
                    kills.append((at, {r.job_id or "" for r in await queue.in_flight() if r.worker == victim.id}))

        killer = asyncio.create_task(killing())

        async def drained() -> bool:
            s = await queue.stats()
            return s.processed + s.dead >= target and s.pending == 0 and s.in_flight == 0

        try:
            took = await wait_for(drained, 360, f"{n} jobs", workers, interval=0.5)
        finally:
            done.set()
            await killer  # a kill in progress is recorded with what its worker held
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
    # Re-run were exactly the jobs the killed workers held.
    assert report.redelivered == set().union(*(held for _, held in soak.kills)), report.summary()

    # Time to recover, per kill: until the last job the killed worker held has
    # run to the end elsewhere.
    recover_s = sorted(
        max(r.ms for j in held for r in report.runs[j] if r.attempt > 1) / 1000 - at for at, held in soak.kills if held
    )
    end = keyspace(url, workers.audit_url)
    assert set(end["keys"]) == set(start["keys"]), (start["keys"], end["keys"])
    # A history hash grows by the minutes the soak took, not by its jobs: one
    # field per minute in which jobs settled, at most a day of them (settle.lua
    # drops older minutes). Every other key is back to its size.
    history = set(start["history_fields"])
    assert history, start["keys"]
    assert end["rewritten"] == start["rewritten"]
    grown = {
        k: (v, end["keys"][k])
        for k, v in start["keys"].items()
        if end["keys"][k] > v and k not in history and k not in start["rewritten"]
    }
    assert not grown, grown
    minutes = math.ceil(soak.seconds / 60) + 2  # the minutes it spanned, the warm-up's last one included
    for k in history:
        added = end["history_fields"][k] - start["history_fields"][k]
        assert 0 <= added <= minutes and end["history_fields"][k] <= KEEP_MINUTES + 2, (k, start, end)
    history_bytes = sum(end["keys"][k] - start["keys"][k] for k in history)
    assert history_bytes <= 1024 + minutes * 512, history_bytes  # allocator size classes: not exact
    # The dataset: allocated memory minus Redis's own overhead (client buffers,
    # the AOF buffer, the script cache), so what the data takes.
    shown = ("dataset.bytes", "overhead.total", "clients.normal", "lua.caches", "aof.buffer", "keys.count")
    changed = {k: (start["stats"].get(k), end["stats"].get(k)) for k in shown}
    assert end["dataset"] - start["dataset"] - history_bytes < 4 * 1024, changed
    figures(
        "soak",
        jobs=N,
        workers=WORKERS,
        kills=len(soak.kills),
        held_by_killed=sum(len(held) for _, held in soak.kills),
        recover_s_median=round(recover_s[len(recover_s) // 2], 2) if recover_s else None,
        recover_s_max=round(recover_s[-1], 2) if recover_s else None,
        restarts=soak.restarts,
        seconds=round(soak.seconds, 1),
        jobs_per_s=round(N / soak.seconds),
        enqueue_s=round(soak.enqueue_seconds, 1),
        redelivered=len(report.redelivered),
        duplicates=len(report.duplicates),
        dead=len(report.dead),
        max_runs=max(len(r) for r in report.runs.values()),
        dataset_bytes_start=start["dataset"],
        dataset_bytes_end=end["dataset"],
        history_bytes=history_bytes,
        allocated_bytes_start=start["allocated"],
        allocated_bytes_end=end["allocated"],
        keys=sorted(end["keys"]),
        warm_up_jobs=len(warm.ids),
    )
