"""rq: ``Queue.enqueue`` / ``enqueue_many``; ``rq worker`` (forking default, and SimpleWorker)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import redis
from rq import Queue
from rq.registry import FinishedJobRegistry

from ..common import BIN, Adapter, JobData, WorkerVariant, threads_enqueue
from ..rq_tasks import bench_job, lat_job

QUEUE = "bench"
BATCH = 1000


class RqAdapter(Adapter):
    name = "rq"
    dist = "rq"
    sync = True

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.conn = redis.Redis.from_url(url)
        self.queue = Queue(QUEUE, connection=self.conn)

    def variants(self) -> list[WorkerVariant]:
        base = [str(BIN / "rq"), "worker", "--url", self.url]
        return [
            WorkerVariant("rq (default: forking Worker)", [*base, QUEUE], "forks a work horse per job"),
            WorkerVariant("rq (SimpleWorker)", [*base, "--worker-class", "rq.worker.SimpleWorker", QUEUE], "no fork"),
        ]

    def enqueue_single(self, jobs: Sequence[JobData]) -> float:
        q = self.queue
        q.enqueue(bench_job, **jobs[0].kwargs())
        t0 = time.perf_counter()
        for d in jobs:
            q.enqueue(bench_job, **d.kwargs())
        return time.perf_counter() - t0

    def enqueue_batch(self, jobs: Sequence[JobData]) -> float | None:
        q = self.queue
        q.enqueue(bench_job, **jobs[0].kwargs())
        t0 = time.perf_counter()
        q.enqueue_many([Queue.prepare_data(bench_job, kwargs=d.kwargs()) for d in jobs])
        return time.perf_counter() - t0

    def cpu_variant(self) -> WorkerVariant:
        v = self.variants()[1]
        return WorkerVariant(
            v.label, v.argv, "the forking default does under 50 jobs/s here: 20,000 jobs would take minutes more"
        )

    def enqueue_concurrent(self, jobs: Sequence[JobData], workers: int) -> float:
        q = self.queue
        q.enqueue(bench_job, **jobs[0].kwargs())
        return threads_enqueue(jobs, workers, lambda d: q.enqueue(bench_job, **d.kwargs()))

    def fill(self, jobs: Sequence[JobData]) -> None:
        for i in range(0, len(jobs), BATCH):
            self.queue.enqueue_many([Queue.prepare_data(bench_job, kwargs=d.kwargs()) for d in jobs[i : i + BATCH]])

    def done_count(self, r: redis.Redis, total: int) -> int:
        return FinishedJobRegistry(QUEUE, connection=r).count

    def enqueue_latency_job(self, seq: int) -> None:
        self.queue.enqueue(lat_job, seq=seq)

    def close(self) -> None:
        self.conn.close()


ADAPTER = RqAdapter
