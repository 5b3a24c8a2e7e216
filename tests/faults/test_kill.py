"""Fault 1: SIGKILL a worker under load."""

from __future__ import annotations

import asyncio
import random
import time

from jobcore import Job
from jobcore.redis.backend import RedisQueue

from .audit import Audit
from .handlers import Work
from .procs import Workers, figures, sigkill, wait_for


async def test_kill_9_under_load_loses_nothing_and_reruns_only_what_the_dead_worker_held(
    workers: Workers, queue: RedisQueue, audit: Audit
) -> None:
    rnd = random.Random(1)
    jobs = [Job(type="work", args=Work(n=i, seconds=rnd.uniform(0.2, 1.0))) for i in range(500)]
    w1, w2 = workers.start(2, concurrency=20, lease=1.0)
    ids = await queue.enqueue_many(jobs)

    async def under_load() -> bool:
        s = await queue.stats()
        held = [r for r in await queue.in_flight() if r.worker == w1.id]
        return s.processed >= 100 and len(held) >= 5

    await wait_for(under_load, 60, "w1 to be busy", workers, [w1, w2])
    sigkill(w1)
    killed_at = time.time()
    # Let Redis finish any request w1 sent before it died; its lease (1 s) holds
    # its jobs in place until then.
    await asyncio.sleep(0.3)
    held = {r.job_id for r in await queue.in_flight() if r.worker == w1.id}
    assert held, "the killed worker held no jobs"

    async def all_done() -> bool:
        s = await queue.stats()
        return s.processed >= 500 and s.in_flight == 0

    await wait_for(all_done, 90, "all 500 jobs", workers, [w2])
    report = audit.report(ids)
    report.assert_all_processed()
    assert report.redelivered == held
    assert max(len(r) for r in report.runs.values()) <= 2
    assert all(len(r) <= 2 for r in report.starts.values())
    recovered_by = max(r.ms for j in held for r in report.runs[j] if r.attempt > 1) / 1000
    figures(
        "kill -9 under load",
        jobs=500,
        kills=1,
        held_by_killed=len(held),
        redelivered=len(report.redelivered),
        duplicates=len(report.duplicates),
        time_to_recover_s=round(recovered_by - killed_at, 2),
    )
