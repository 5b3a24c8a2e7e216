"""Fault 4: a worker frozen past its lease (SIGSTOP) comes back (SIGCONT)."""

from __future__ import annotations

import asyncio
import signal
import time

from jobcore import Job
from jobcore.redis.backend import RedisQueue

from .audit import Audit
from .handlers import Work
from .procs import Workers, figures, wait_for

LEASE = 1.0


async def test_a_stale_worker_coming_back_changes_nothing(workers: Workers, queue: RedisQueue, audit: Audit) -> None:
    w1, w2 = workers.start(2, concurrency=5, lease=LEASE)
    jobs = [Job(type="work", args=Work(n=i, seconds=2.0)) for i in range(10)]
    ids = await queue.enqueue_many(jobs)

    async def w1_busy() -> bool:
        return sum(r.worker == w1.id for r in await queue.in_flight()) >= 3

    await wait_for(w1_busy, 30, "w1 to hold jobs", workers, [w1, w2])
    w1.signal(signal.SIGSTOP)
    stopped_at = time.time()
    held = {r.job_id for r in await queue.in_flight() if r.worker == w1.id}

    async def taken_over() -> bool:
        rows = await queue.in_flight()
        return held <= {r.job_id for r in rows if r.worker == w2.id} | set(audit.runs())

    await wait_for(taken_over, 20, "w2 to take w1's jobs", workers, [w2])
    await asyncio.sleep(0.2)
    w1.signal(signal.SIGCONT)
    stopped_for = time.time() - stopped_at  # its handlers finish now, while w2 runs the same jobs

    async def all_done() -> bool:
        s = await queue.stats()
        return s.processed >= len(jobs) and s.in_flight == 0 and s.pending == 0

    await wait_for(all_done, 30, "all jobs", workers, [w1, w2])

    # Its results are dropped: the jobs are w2's now, or already settled by w2.
    async def tried() -> bool:
        log = w1.log()
        return await _has(log, "lease lost for") or await _has(log, "are in flight nowhere any more")

    await wait_for(tried, 10, "w1 to try its stale acks", workers, [w1])
    report = audit.report(ids)
    report.assert_all_processed()  # exactly one ack per job: the stale ones changed nothing
    assert report.redelivered == held
    assert set(report.duplicates) <= held
    assert all(r.attempt == 2 for j in held for r in report.runs[j] if r.worker == w2.id)
    figures(
        "stale worker (SIGSTOP past lease, SIGCONT)",
        jobs=len(jobs),
        held_by_stopped=len(held),
        redelivered=len(report.redelivered),
        ran_twice=len(report.duplicates),
        acked=report.acked,
        stopped_s=round(stopped_for, 1),
    )
    # The stale worker carries on serving.
    more = await queue.enqueue_many([Job(type="work", args=Work(n=100 + i, seconds=0.05)) for i in range(40)])

    async def more_done() -> bool:
        return (await queue.stats()).processed >= len(jobs) + len(more)

    await wait_for(more_done, 30, "the next jobs", workers, [w1, w2])
    report = audit.report([*ids, *more])
    report.assert_all_processed()
    assert any(r.worker == w1.id for j in map(str, more) for r in report.runs.get(j, []))


async def _has(text: str, needle: str) -> bool:
    return needle in text
