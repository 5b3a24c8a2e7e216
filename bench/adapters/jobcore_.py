"""jobcore: ``Queue.enqueue`` / ``enqueue_many``; ``jobcore worker bench.tasks:handlers``.

Public API only (``jobcore.connect``, ``Queue.enqueue`` / ``enqueue_many`` /
``stats``): the internals may change under it."""

from __future__ import annotations

import time
from collections.abc import Sequence

import redis

import jobcore
from jobcore import Identity, Job

from ..common import BIN, Adapter, JobData, Loop, WorkerVariant, gather_enqueue
from ..tasks import BenchArgs, LatArgs, handlers

BATCH = 1000  # jobs per enqueue_many call when filling


def job_of(d: JobData) -> Job[BenchArgs]:
    return Job(
        type="bench",
        args=BenchArgs(reservation_id=d.reservation_id, payload=d.payload),
        account_id=d.account_id,
        identity=Identity(org_id=d.org_id),
    )


class JobcoreAdapter(Adapter):
    name = "jobcore"
    dist = "jobcore"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.loop = Loop()
        # The typical producer: a queue that checks args against the registered types.
        self.queue = jobcore.connect(url, handlers=handlers)

    def worker_argv(self) -> list[str]:
        return [str(BIN / "jobcore"), "--url", self.url, "worker", "bench.tasks:handlers"]

    def variants(self) -> list[WorkerVariant]:
        return [WorkerVariant("jobcore", self.worker_argv(), "defaults: concurrency 10, asyncio handlers")]

    def scale_argv(self, processes: int) -> list[list[str]] | None:
        return [self.worker_argv() for _ in range(processes)]

    def enqueue_single(self, jobs: Sequence[JobData]) -> float:
        q = self.queue

        async def run() -> float:
            await q.enqueue(job_of(jobs[0]))  # warm-up: connection, type registration
            t0 = time.perf_counter()
            for d in jobs:
                await q.enqueue(job_of(d))
            return time.perf_counter() - t0

        return self.loop.run(run())

    def enqueue_batch(self, jobs: Sequence[JobData]) -> float | None:
        q = self.queue

        async def run() -> float:
            await q.enqueue(job_of(jobs[0]))
            t0 = time.perf_counter()
            await q.enqueue_many([job_of(d) for d in jobs])
            return time.perf_counter() - t0

        return self.loop.run(run())

    def enqueue_concurrent(self, jobs: Sequence[JobData], workers: int) -> float:
        q = self.queue

        async def run() -> float:
            await q.enqueue(job_of(jobs[0]))
            return await gather_enqueue(jobs, workers, lambda d: q.enqueue(job_of(d)))

        return self.loop.run(run())

    def fill(self, jobs: Sequence[JobData]) -> None:
        q = self.queue

        async def run() -> None:
            for i in range(0, len(jobs), BATCH):
                await q.enqueue_many([job_of(d) for d in jobs[i : i + BATCH]])

        self.loop.run(run())

    def done_count(self, r: redis.Redis, total: int) -> int:
        # stats(): one pipelined round trip (the console's read), processed per type.
        t = self.loop.run(self.queue.stats()).types.get("bench")
        return t.processed if t is not None else 0

    def enqueue_latency_job(self, seq: int) -> None:
        self.loop.run(self.queue.enqueue(Job(type="lat", args=LatArgs(seq=seq))))

    def close(self) -> None:
        self.loop.run(self.queue.close())
        self.loop.close()


ADAPTER = JobcoreAdapter
