"""arq: ``ArqRedis.enqueue_job`` (no batch API); ``arq bench.arq_tasks.WorkerSettings``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import redis
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.constants import default_queue_name

from ..common import BIN, Adapter, JobData, Loop, WorkerVariant, gather_enqueue

CONCURRENT = 100  # in-flight enqueue calls when filling (untimed set-up)


class ArqAdapter(Adapter):
    name = "arq"
    dist = "arq"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.loop = Loop()
        self.pool: ArqRedis = self.loop.run(create_pool(RedisSettings.from_dsn(url)))

    def variants(self) -> list[WorkerVariant]:
        arq = str(BIN / "arq")
        return [
            WorkerVariant("arq (default: poll_delay 0.5 s)", [arq, "bench.arq_tasks.WorkerSettings"]),
            WorkerVariant("arq (poll_delay 0.01 s)", [arq, "bench.arq_tasks.FastPollSettings"]),
        ]

    def enqueue_single(self, jobs: Sequence[JobData]) -> float:
        pool = self.pool

        async def run() -> float:
            await pool.enqueue_job("bench_job", **jobs[0].kwargs())
            t0 = time.perf_counter()
            for d in jobs:
                await pool.enqueue_job("bench_job", **d.kwargs())
            return time.perf_counter() - t0

        return self.loop.run(run())

    def enqueue_concurrent(self, jobs: Sequence[JobData], workers: int) -> float:
        pool = self.pool

        async def run() -> float:
            await pool.enqueue_job("bench_job", **jobs[0].kwargs())
            return await gather_enqueue(jobs, workers, lambda d: pool.enqueue_job("bench_job", **d.kwargs()))

        return self.loop.run(run())

    def fill(self, jobs: Sequence[JobData]) -> None:
        pool = self.pool

        async def run() -> None:
            for i in range(0, len(jobs), CONCURRENT):
                await asyncio.gather(*(pool.enqueue_job("bench_job", **d.kwargs()) for d in jobs[i : i + CONCURRENT]))

        self.loop.run(run())

    def done_count(self, r: redis.Redis, total: int) -> int:
        # A job leaves arq's queue (a sorted set) when it finishes.
        return total - int(r.zcard(default_queue_name))  # type: ignore[arg-type]

    def enqueue_latency_job(self, seq: int) -> None:
        self.loop.run(self.pool.enqueue_job("lat_job", seq=seq))

    def close(self) -> None:
        self.loop.run(self.pool.aclose())
        self.loop.close()


ADAPTER = ArqAdapter
