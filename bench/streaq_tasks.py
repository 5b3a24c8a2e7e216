"""streaq tasks for the benchmark: ``streaq run bench.streaq_tasks:worker``.

The same ``Worker`` object enqueues (in the benchmark process) and runs the
tasks (in the worker process), as streaq's documentation has it.
"""

from __future__ import annotations

import os
import time

from streaq import Worker

# streaq's defaults (concurrency 16, prefetch = concurrency, pickle, results kept
# 5 minutes), on the benchmark's queue name.
worker = Worker(redis_url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:1/0"), queue_name="bench")


@worker.task()
async def bench_job(account_id: int, org_id: str, reservation_id: int, payload: str) -> None:
    """No-op."""


@worker.task()
async def lat_job(seq: int) -> None:
    started = time.time()
    await worker.redis.rpush("bench:lat", [f"{seq} {started!r}"])
