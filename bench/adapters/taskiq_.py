"""taskiq on taskiq-redis's ``RedisStreamBroker``: ``task.kiq`` (no batch API);
``taskiq worker bench.taskiq_tasks:broker --workers 1``."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from typing import Any

import redis
import taskiq_redis  # noqa: F401 - ImportError here when taskiq-redis is not installed

from ..common import BIN, URL_ENV, Adapter, JobData, Loop, WorkerVariant, gather_enqueue

CONCURRENT = 100
STREAM = "bench"
GROUP = "taskiq"


def _field(info: dict[Any, Any], name: str) -> Any:
    return info.get(name, info.get(name.encode()))


class TaskiqAdapter(Adapter):
    name = "taskiq"
    dist = "taskiq"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        os.environ[URL_ENV] = url
        from .. import taskiq_tasks

        self.tasks = taskiq_tasks
        self.loop = Loop()
        self.loop.run(taskiq_tasks.broker.startup())  # the client side starts the broker too

    @property
    def version(self) -> str:
        from importlib.metadata import version

        return f"{version('taskiq')} (taskiq-redis {version('taskiq-redis')})"

    def variants(self) -> list[WorkerVariant]:
        return [
            WorkerVariant(
                "taskiq (1 process, default 100 async tasks)",
                [str(BIN / "taskiq"), "worker", "bench.taskiq_tasks:broker", "--workers", "1"],
                "one worker process as for every library; taskiq's default would start 2",
            )
        ]

    def _one(self, d: JobData) -> Any:
        return self.tasks.bench_job.kiq(**d.kwargs())

    def enqueue_single(self, jobs: Sequence[JobData]) -> float:
        async def run() -> float:
            await self._one(jobs[0])
            t0 = time.perf_counter()
            for d in jobs:
                await self._one(d)
            return time.perf_counter() - t0

        return self.loop.run(run())

    def enqueue_concurrent(self, jobs: Sequence[JobData], workers: int) -> float:
        async def run() -> float:
            await self._one(jobs[0])
            return await gather_enqueue(jobs, workers, self._one)

        return self.loop.run(run())

    def fill(self, jobs: Sequence[JobData]) -> None:
        async def run() -> None:
            for i in range(0, len(jobs), CONCURRENT):
                await asyncio.gather(*(self._one(d) for d in jobs[i : i + CONCURRENT]))

        self.loop.run(run())

    def done_count(self, r: redis.Redis, total: int) -> int:
        # The stream keeps its entries after the ack (no XDEL, no MAXLEN by
        # default): done = entries the group has read less those not acked yet.
        try:
            groups = r.xinfo_groups(STREAM)
        except redis.ResponseError:  # no stream yet
            return 0
        for g in groups:  # type: ignore[union-attr]
            name = _field(g, "name")
            if (name.decode() if isinstance(name, bytes) else name) == GROUP:
                return int(_field(g, "entries-read") or 0) - int(_field(g, "pending") or 0)
        return 0

    def enqueue_latency_job(self, seq: int) -> None:
        async def run() -> None:
            await self.tasks.lat_job.kiq(seq=seq)

        self.loop.run(run())

    def close(self) -> None:
        self.loop.run(self.tasks.broker.shutdown())
        self.loop.close()


ADAPTER = TaskiqAdapter
