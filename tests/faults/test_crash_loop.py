"""Fault 2: a job that kills its worker every time it runs."""

from __future__ import annotations

from jobcore import Job
from jobcore.redis.backend import RedisQueue

from .audit import Audit
from .handlers import Work
from .procs import Supervisor, Workers, figures, wait_for

MAX_ATTEMPTS = 3


async def test_a_job_that_kills_its_worker_is_dead_lettered_and_the_others_flow(
    workers: Workers, queue: RedisQueue, audit: Audit
) -> None:
    crasher = Job(type="crash", args=Work())
    others = [Job(type="work", args=Work(n=i, seconds=0.3)) for i in range(200)]
    ids = await queue.enqueue_many([crasher, *others])
    procs = workers.start(2, concurrency=8, lease=1.0, max_attempts=MAX_ATTEMPTS)
    with Supervisor(workers, procs) as sup:

        async def settled() -> bool:
            s = await queue.stats()
            return s.processed + s.dead >= len(ids) and s.in_flight == 0 and s.pending == 0

        took = await wait_for(settled, 90, "every job to settle", workers)
    report = audit.report(ids)
    report.assert_accounted()
    assert report.dead == {str(crasher.id)}, report.summary()
    reason = report.dead_reasons[str(crasher.id)]
    assert f"max_attempts={MAX_ATTEMPTS}" in reason, reason
    assert len(report.starts[str(crasher.id)]) == MAX_ATTEMPTS
    assert report.processed == {str(j.id) for j in others}, report.summary()
    assert report.acked == len(others)
    # Healthy jobs that were beside it when it struck finish within three attempts.
    assert max(r.attempt for j in report.processed for r in report.runs[j]) <= 3
    figures(
        "crash loop",
        jobs=len(ids),
        worker_deaths=sup.restarts,
        crasher_runs=len(report.starts[str(crasher.id)]),
        dead=len(report.dead),
        others_redelivered=len(report.redelivered - {str(crasher.id)}),
        duplicates=len(report.duplicates),
        seconds=round(took, 1),
    )
