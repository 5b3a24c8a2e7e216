"""Fault 6: restart the redis-server (append-only) in the middle of the work."""

from __future__ import annotations

import asyncio
import time
import uuid

from jobcore import EnqueueError, Job, JobcoreError
from jobcore.redis.backend import RedisQueue
from tests.support.servers import RedisServer

from .audit import Audit
from .handlers import Work
from .procs import Workers, figures, wait_for

N = 2000
DOWN_FOR = 2.0


async def test_redis_restart_mid_run_loses_nothing_and_workers_reconnect(
    server: RedisServer, workers: Workers, queue: RedisQueue, audit: Audit
) -> None:
    procs = workers.start(2, concurrency=20, lease=1.0)
    ids = await queue.enqueue_many([Job(type="work", args=Work(n=i, seconds=0.05)) for i in range(N)])
    confirmed: list[uuid.UUID] = []
    refused: list[tuple[uuid.UUID, str]] = []
    stop_enqueuing = asyncio.Event()

    async def enqueue_steadily() -> None:
        n = 0
        while not stop_enqueuing.is_set():
            job = Job(type="work", args=Work(n=N + n, seconds=0.01))
            n += 1
            try:
                confirmed.append(await queue.enqueue(job))
            except EnqueueError as exc:
                refused.append((job.id, str(exc)))
            await asyncio.sleep(0.02)

    async def processed() -> int:
        try:
            return (await queue.stats()).processed
        except JobcoreError:
            return -1

    async def halfway() -> bool:
        return await processed() >= N // 4

    await wait_for(halfway, 60, "a quarter of the jobs", workers, procs)
    enqueuer = asyncio.create_task(enqueue_steadily())
    await asyncio.sleep(0.3)
    await asyncio.to_thread(server.restart, DOWN_FOR)
    back_at = time.monotonic()
    before = -1

    async def progressing() -> bool:
        nonlocal before
        now = await processed()
        if before < 0:
            before = now
        return now > before >= 0

    recovered_in = await wait_for(progressing, 30, "work to resume after the restart", workers, procs)
    await asyncio.sleep(0.5)
    stop_enqueuing.set()
    await enqueuer

    assert refused, "no enqueue was attempted while Redis was down"
    for _, message in refused:
        assert "not enqueued" in message and "unreachable" in message, message
    total = N + len(confirmed)

    async def all_done() -> bool:
        try:
            s = await queue.stats()
        except JobcoreError:
            return False
        return s.processed >= total and s.in_flight == 0 and s.pending == 0

    await wait_for(all_done, 90, "every confirmed job", workers, procs)
    # An enqueue reported as failed may still have landed (a reply lost); count
    # those as enqueued, and require every confirmed one.
    landed = {str(i) for i, _ in refused} & set(audit.runs())
    report = audit.report([*ids, *confirmed, *landed])
    report.assert_all_processed()
    assert all(p.alive for p in procs)
    # Every worker's lease lapsed while Redis was down; none took another's jobs.
    assert not report.redelivered and not report.duplicates, report.summary()
    logs = "\n".join(p.log() for p in procs)
    assert "unreachable" in logs
    figures(
        "redis restart",
        jobs=report.enqueued,
        down_s=DOWN_FOR,
        refused_enqueues=len(refused),
        refused_but_landed=len(landed),
        resumed_after_s=round(recovered_in, 2),
        redelivered=len(report.redelivered),
        duplicates=len(report.duplicates),
        workers_exited=sum(not p.alive for p in procs),
        since_back_s=round(time.monotonic() - back_at, 1),
    )
