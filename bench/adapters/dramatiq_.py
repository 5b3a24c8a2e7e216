"""dramatiq: ``actor.send`` (no batch API); ``dramatiq --processes 1 bench.dramatiq_tasks``."""

from __future__ import annotations

import time
from collections.abc import Sequence

import redis

from ..common import BIN, URL_ENV, Adapter, JobData, WorkerVariant, threads_enqueue


class DramatiqAdapter(Adapter):
    name = "dramatiq"
    dist = "dramatiq"
    sync = True

    def __init__(self, url: str) -> None:
        super().__init__(url)
        import os

        os.environ[URL_ENV] = url  # the actors module builds its broker from it
        from .. import dramatiq_tasks

        self.tasks = dramatiq_tasks

    def variants(self) -> list[WorkerVariant]:
        return [
            WorkerVariant(
                "dramatiq (1 process, default 8 threads)",
                [str(BIN / "dramatiq"), "--processes", "1", "bench.dramatiq_tasks"],
                "one worker process as for every library; dramatiq's default would start one per core",
            )
        ]

    def enqueue_single(self, jobs: Sequence[JobData]) -> float:
        send = self.tasks.bench_job.send
        send(**jobs[0].kwargs())
        t0 = time.perf_counter()
        for d in jobs:
            send(**d.kwargs())
        return time.perf_counter() - t0

    def enqueue_concurrent(self, jobs: Sequence[JobData], workers: int) -> float:
        send = self.tasks.bench_job.send
        send(**jobs[0].kwargs())
        return threads_enqueue(jobs, workers, lambda d: send(**d.kwargs()))

    def fill(self, jobs: Sequence[JobData]) -> None:
        send = self.tasks.bench_job.send
        for d in jobs:
            send(**d.kwargs())

    def done_count(self, r: redis.Redis, total: int) -> int:
        # A message's body stays in the queue's .msgs hash until it is acked.
        return total - int(r.hlen("dramatiq:bench.msgs"))  # type: ignore[arg-type]

    def enqueue_latency_job(self, seq: int) -> None:
        self.tasks.lat_job.send(seq=seq)

    def close(self) -> None:
        self.tasks.broker.close()


ADAPTER = DramatiqAdapter
