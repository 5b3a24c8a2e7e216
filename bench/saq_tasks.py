"""saq functions and worker settings: ``saq bench.saq_tasks.settings``."""

from __future__ import annotations

import os
import time
from typing import Any

from saq import Queue


async def bench_job(ctx: dict[str, Any], *, account_id: int, org_id: str, reservation_id: int, payload: str) -> None:
    """No-op."""


async def lat_job(ctx: dict[str, Any], *, seq: int) -> None:
    started = time.time()
    await ctx["worker"].queue.redis.rpush("bench:lat", f"{seq} {started!r}")


queue = Queue.from_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:1/0"), name="bench")

settings: dict[str, Any] = {
    "queue": queue,
    "functions": [bench_job, lat_job],
    "concurrency": 10,  # saq's default, stated
}
