"""Deleting waiting jobs while three worker processes drain the type (issue 21):
each job ran exactly once or was deleted, none both, none lost (the audit)."""

from __future__ import annotations

from jobcore import Identity, Job
from jobcore.redis.backend import RedisQueue

from .audit import Audit
from .handlers import Work
from .procs import Workers, figures, wait_for


async def test_delete_all_pending_while_three_workers_drain(workers: Workers, queue: RedisQueue, audit: Audit) -> None:
    jobs = [
        Job(
            type="work",
            args=Work(n=i, seconds=0.002),
            account_id=i % 7,
            identity=Identity(account_number="a", org_id="o"),
        )
        for i in range(3000)
    ]
    ids = await queue.enqueue_many(jobs)
    workers.start(3, concurrency=8)

    async def started() -> bool:
        return (await queue.stats()).processed >= 100

    await wait_for(started, 60, "the workers to start", workers)
    deleted = await queue.delete_pending("work", all=True)

    async def settled() -> bool:
        t = (await queue.stats()).types["work"]
        return t.pending == 0 and t.in_flight == 0

    await wait_for(settled, 60, "the jobs left to run", workers)
    report = audit.report(ids)
    # Deleted jobs are in no place: exactly as many as delete_pending said, none ever started.
    assert len(report.missing) == deleted, (deleted, report.summary())
    assert not report.overlap and not report.duplicates, report.summary()
    assert not (report.missing & (set(report.starts) | set(report.runs))), "a deleted job also ran"
    assert len(report.processed) + deleted == len(ids), report.summary()
    assert 0 < deleted < len(ids)
    figures("delete pending under load", jobs=len(ids), deleted=deleted, ran=len(report.processed))
