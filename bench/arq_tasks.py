"""arq functions and worker settings: ``arq bench.arq_tasks.WorkerSettings``."""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar

from arq.connections import RedisSettings


async def bench_job(ctx: dict[str, Any], account_id: int, org_id: str, reservation_id: int, payload: str) -> None:
    """No-op."""


async def lat_job(ctx: dict[str, Any], seq: int) -> None:
    started = time.time()
    await ctx["redis"].rpush("bench:lat", f"{seq} {started!r}")


def settings() -> RedisSettings:
    return RedisSettings.from_dsn(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:1/0"))


class WorkerSettings:
    """arq's defaults (poll_delay 0.5 s, max_jobs 10)."""

    functions: ClassVar[list[Any]] = [bench_job, lat_job]
    redis_settings = settings()


class FastPollSettings:
    """arq's documented tuning knob for latency: poll every 10 ms. (arq reads a
    settings class's own ``__dict__``: nothing is inherited, so all is repeated.)"""

    functions: ClassVar[list[Any]] = [bench_job, lat_job]
    redis_settings = settings()
    poll_delay = 0.01
