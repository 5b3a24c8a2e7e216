"""taskiq tasks on taskiq-redis's stream broker: ``taskiq worker bench.taskiq_tasks:broker --workers 1``."""

from __future__ import annotations

import os
import time

import redis.asyncio as aioredis
from taskiq_redis import RedisStreamBroker

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:1/0")

# taskiq-redis's defaults but one: consumer_id "0" instead of "$", so a consumer
# group created when the worker starts (the benchmark flushes Redis between
# workloads) reads the jobs already in the stream; with "$" it would skip them.
# Once the group exists (any deployment after its first start) the two are the same.
# No result backend (taskiq's default): nothing is stored per result.
broker = RedisStreamBroker(url=URL, queue_name="bench", consumer_id="0")
_redis: aioredis.Redis | None = None


@broker.task(task_name="bench_job")
async def bench_job(account_id: int, org_id: str, reservation_id: int, payload: str) -> None:
    """No-op."""


@broker.task(task_name="lat_job")
async def lat_job(seq: int) -> None:
    started = time.time()
    global _redis
    if _redis is None:
        _redis = aioredis.Redis.from_url(URL)
    await _redis.rpush("bench:lat", f"{seq} {started!r}")  # type: ignore[misc]
