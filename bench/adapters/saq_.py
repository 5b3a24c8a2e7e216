"""saq: ``Queue.enqueue`` (no batch enqueue API); ``saq bench.saq_tasks.settings``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import redis
from saq import Queue

from ..common import BIN, Adapter, JobData, Loop, WorkerVariant, gather_enqueue

CONCURRENT = 100


class SaqAdapter(Adapter):
    name = "saq"
    dist = "saq"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.loop = Loop()
        self.queue = Queue.from_url(url, name="bench")

    def variants(self) -> list[WorkerVariant]:
        return [WorkerVariant("saq (default: concurrency 10)", [str(BIN / "saq"), "bench.saq_tasks.settings"])]

    def enqueue_single(self, jobs: Sequence[JobData]) -> float:
        q = self.queue

        async def run() -> float:
            await q.enqueue("bench_job", **jobs[0].kwargs())
            t0 = time.perf_counter()
            for d in jobs:
                await q.enqueue("bench_job", **d.kwargs())
            return time.perf_counter() - t0

        return self.loop.run(run())

    def enqueue_concurrent(self, jobs: Sequence[JobData], workers: int) -> float:
        q = self.queue

        async def run() -> float:
            await q.enqueue("bench_job", **jobs[0].kwargs())
            return await gather_enqueue(jobs, workers, lambda d: q.enqueue("bench_job", **d.kwargs()))

        return self.loop.run(run())

    def fill(self, jobs: Sequence[JobData]) -> None:
        q = self.queue

        async def run() -> None:
            for i in range(0, len(jobs), CONCURRENT):
                await asyncio.gather(*(q.enqueue("bench_job", **d.kwargs()) for d in jobs[i : i + CONCURRENT]))

        self.loop.run(run())

    def done_count(self, r: redis.Redis, total: int) -> int:
        # saq keeps every unfinished job in its "incomplete" sorted set.
        return total - int(r.zcard("saq:bench:incomplete"))  # type: ignore[arg-type]

    def enqueue_latency_job(self, seq: int) -> None:
        self.loop.run(self.queue.enqueue("lat_job", seq=seq))

    def close(self) -> None:
        self.loop.run(self.queue.disconnect())
        self.loop.close()


ADAPTER = SaqAdapter
