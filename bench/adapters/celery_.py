"""celery with the Redis broker: ``task.delay`` (no batch API); ``celery -A bench.celery_tasks worker``
(the prefork default, and the solo pool). No result backend, results ignored."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import celery  # noqa: F401 - ImportError here when celery is not installed
import redis

from ..common import BIN, URL_ENV, Adapter, JobData, WorkerVariant, threads_enqueue

QUEUE = "celery"  # celery's default queue: a Redis list
UNACKED = "unacked"  # kombu's hash of messages delivered to a worker and not acked yet


class CeleryAdapter(Adapter):
    name = "celery"
    dist = "celery"
    sync = True

    def __init__(self, url: str) -> None:
        super().__init__(url)
        os.environ[URL_ENV] = url
        from .. import celery_tasks

        self.tasks = celery_tasks

    def variants(self) -> list[WorkerVariant]:
        base = [str(BIN / "celery"), "-A", "bench.celery_tasks", "worker"]
        cores = os.cpu_count() or 1
        return [
            WorkerVariant(
                f"celery (default: prefork, {cores} children)",
                base,
                f"one worker process with celery's default pool: one child process per core ({cores} here)",
            ),
            WorkerVariant("celery (solo pool)", [*base, "--pool", "solo"], "runs the tasks in the worker process"),
        ]

    def enqueue_single(self, jobs: Sequence[JobData]) -> float:
        delay = self.tasks.bench_job.delay
        delay(**jobs[0].kwargs())
        t0 = time.perf_counter()
        for d in jobs:
            delay(**d.kwargs())
        return time.perf_counter() - t0

    def enqueue_concurrent(self, jobs: Sequence[JobData], workers: int) -> float:
        delay = self.tasks.bench_job.delay
        delay(**jobs[0].kwargs())
        return threads_enqueue(jobs, workers, lambda d: delay(**d.kwargs()))

    def fill(self, jobs: Sequence[JobData]) -> None:
        delay = self.tasks.bench_job.delay
        for d in jobs:
            delay(**d.kwargs())

    def done_count(self, r: redis.Redis, total: int) -> int:
        # A message leaves the list when a worker takes it, and kombu's unacked
        # hash when it is acked: celery acks early, as the task starts, so this
        # counts the running tasks (at most the pool's size) as done.
        with r.pipeline(transaction=False) as pipe:
            waiting, unacked = pipe.llen(QUEUE).hlen(UNACKED).execute()
        return total - int(waiting) - int(unacked)

    def enqueue_latency_job(self, seq: int) -> None:
        self.tasks.lat_job.delay(seq=seq)

    def close(self) -> None:
        self.tasks.app.close()


ADAPTER = CeleryAdapter
