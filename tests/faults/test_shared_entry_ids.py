"""Jobs of several types enqueued together get the same entry ids (an id is
unique within one type's stream only): each must still run exactly once."""

from __future__ import annotations

from jobcore import Job
from jobcore.redis_backend import RedisQueue

from .audit import Audit
from .handlers import Work
from .procs import Workers, wait_for


async def test_jobs_of_different_types_sharing_entry_ids_each_run_once(
    workers: Workers, queue: RedisQueue, audit: Audit
) -> None:
    jobs = [Job(type=t, args=Work(n=i, seconds=0.3)) for i in range(20) for t in ("work", "sync_sleep", "later")]
    ids = await queue.enqueue_many(jobs)
    entry_ids = {t: [r[0] for r in await queue.redis.xrange(queue.keys.of_type(t).stream)] for t in ("work", "later")}
    assert set(entry_ids["work"]) & set(entry_ids["later"]), "expected shared entry ids across types"
    (w,) = workers.start(1, concurrency=6, lease=1.0)

    async def all_done() -> bool:
        s = await queue.stats()
        return s.processed >= len(jobs) and s.in_flight == 0

    await wait_for(all_done, 60, "all jobs", workers, [w])
    report = audit.report(ids)
    report.assert_all_processed()
    assert not report.duplicates
    assert all(len(s) == 1 for s in report.starts.values())
    assert "never seen" not in w.log()
