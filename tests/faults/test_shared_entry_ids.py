"""Jobs of several types enqueued together get the same entry ids (an id is
unique within one type's stream only): each must still run exactly once."""

from __future__ import annotations

import time

from jobcore import Job
from jobcore.model import encode_job
from jobcore.redis.backend import RedisQueue

from .audit import Audit
from .handlers import Work
from .procs import Workers, wait_for


async def test_jobs_of_different_types_sharing_entry_ids_each_run_once(
    workers: Workers, queue: RedisQueue, audit: Audit
) -> None:
    types = ("work", "sync_sleep", "later")
    jobs = [Job(type=t, args=Work(n=i, seconds=0.3)) for i in range(20) for t in types]
    # Give every type's stream the same entry ids, as enqueue_many does whenever
    # the types' writes land in the same millisecond (not something to leave to chance).
    ms = int(time.time() * 1000)
    for t in types:
        await queue.transport.call("SADD", queue.keys.types, t)
        for i, job in enumerate(j for j in jobs if j.type == t):
            await queue.transport.call("XADD", queue.keys.of_type(t).stream, f"{ms}-{i}", "d", encode_job(job))
    ids = [j.id for j in jobs]
    entry_ids = {}
    for t in types:
        entry_ids[t] = [r[0] for r in await queue.transport.call("XRANGE", queue.keys.of_type(t).stream, "-", "+")]
    assert entry_ids["work"] == entry_ids["later"] == entry_ids["sync_sleep"]
    (w,) = workers.start(1, concurrency=6, lease=1.0)

    async def all_done() -> bool:
        s = await queue.stats()
        return s.processed >= len(jobs) and s.in_flight == 0

    await wait_for(all_done, 60, "all jobs", workers, [w])
    report = audit.report(ids)
    report.assert_all_processed()
    assert not report.duplicates
    assert all(len(s) == 1 for s in report.starts.values())
    assert "never seen" not in w.log(), w.log()
