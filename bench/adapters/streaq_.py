"""streaq: ``task.enqueue`` / ``Worker.enqueue_many``; ``streaq run bench.streaq_tasks:worker``.

streaq's client lives inside ``async with worker:`` (anyio structured
concurrency): one long-lived task holds that context on the adapter's loop, and
every call runs beside it on the same loop.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from typing import Any

import redis
import streaq  # noqa: F401 - ImportError here when streaq is not installed

from ..common import BIN, URL_ENV, Adapter, JobData, Loop, WorkerVariant, gather_enqueue

BATCH = 1000
RESULTS = "streaq:bench:index:results"  # a sorted set of finished task ids (results kept 5 min)


class StreaqAdapter(Adapter):
    name = "streaq"
    dist = "streaq"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        os.environ[URL_ENV] = url  # the tasks module builds its Worker from it
        from .. import streaq_tasks

        self.tasks = streaq_tasks
        self.loop = Loop()
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._holder = self.loop.loop.create_task(self._hold())
        self.loop.run(self._wait_ready())

    async def _hold(self) -> None:
        async with self.tasks.worker:
            self._ready.set()
            await self._stop.wait()

    async def _wait_ready(self) -> None:
        done, _ = await asyncio.wait(
            [self._holder, asyncio.ensure_future(self._ready.wait())], timeout=30, return_when=asyncio.FIRST_COMPLETED
        )
        if self._holder in done:
            self._holder.result()  # raises what went wrong
        if not self._ready.is_set():
            raise RuntimeError("streaq: the worker context did not open in 30 s")

    def variants(self) -> list[WorkerVariant]:
        return [
            WorkerVariant(
                "streaq (default: concurrency 16)",
                [str(BIN / "streaq"), "run", "bench.streaq_tasks:worker"],
                "streaq's defaults; it logs every task at INFO",
            )
        ]

    def _one(self, d: JobData) -> Any:
        return self.tasks.bench_job.enqueue(**d.kwargs())

    def enqueue_single(self, jobs: Sequence[JobData]) -> float:
        async def run() -> float:
            await self._one(jobs[0])
            t0 = time.perf_counter()
            for d in jobs:
                await self._one(d)
            return time.perf_counter() - t0

        return self.loop.run(run())

    def enqueue_batch(self, jobs: Sequence[JobData]) -> float | None:
        w = self.tasks.worker

        async def run() -> float:
            await self._one(jobs[0])
            t0 = time.perf_counter()
            await w.enqueue_many([self._one(d) for d in jobs])
            return time.perf_counter() - t0

        return self.loop.run(run())

    def enqueue_concurrent(self, jobs: Sequence[JobData], workers: int) -> float:
        async def run() -> float:
            await self._one(jobs[0])
            return await gather_enqueue(jobs, workers, self._one)

        return self.loop.run(run())

    def fill(self, jobs: Sequence[JobData]) -> None:
        w = self.tasks.worker

        async def run() -> None:
            for i in range(0, len(jobs), BATCH):
                await w.enqueue_many([self._one(d) for d in jobs[i : i + BATCH]])

        self.loop.run(run())

    def done_count(self, r: redis.Redis, total: int) -> int:
        return int(r.zcard(RESULTS))  # type: ignore[arg-type]

    def enqueue_latency_job(self, seq: int) -> None:
        async def run() -> None:
            await self.tasks.lat_job.enqueue(seq=seq)

        self.loop.run(run())

    def close(self) -> None:
        self._stop.set()
        self.loop.run(asyncio.wait_for(self._holder, 30))
        self.loop.close()


ADAPTER = StreaqAdapter
