"""jobcore handlers for the benchmark: ``jobcore worker bench.tasks:handlers``.

``bench`` is the no-op job of the enqueue, drain and memory workloads; ``lat``
records when it started (for the latency workload). account_id and org_id
travel in jobcore's envelope (``Job.account_id`` / ``Job.identity``), where
jobcore keeps them for every job; the args carry the rest.
"""

from __future__ import annotations

import os
import time
from typing import Any

import msgspec
import redis.asyncio as aioredis

from jobcore import Handlers, Job

handlers = Handlers()
_redis: aioredis.Redis | None = None


class BenchArgs(msgspec.Struct, kw_only=True):
    reservation_id: int
    payload: str


class LatArgs(msgspec.Struct, kw_only=True):
    seq: int


@handlers.handler("bench", BenchArgs)
async def bench(job: Job[BenchArgs]) -> None:
    """No-op."""


@handlers.handler("lat", LatArgs)
async def lat(job: Job[LatArgs]) -> None:
    started = time.time()
    global _redis
    if _redis is None:
        _redis = aioredis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    await _redis.rpush("bench:lat", f"{job.args.seq} {started!r}")  # type: ignore[misc]


def stats_types(n: int = 20) -> dict[str, Any]:
    """The 20 job types of the console/stats workload, all with BenchArgs."""
    return {f"t{i:02d}": BenchArgs for i in range(n)}


class FairArgs(msgspec.Struct, kw_only=True):
    seq: int


@handlers.handler("fairlat", FairArgs)
async def fairlat(job: Job[FairArgs]) -> None:
    """The fairness row: a job of a small account (seq >= 0) records when it started."""
    if job.args.seq < 0:
        return
    started = time.time()
    global _redis
    if _redis is None:
        _redis = aioredis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    await _redis.rpush("bench:fairlat", f"{job.args.seq} {started!r}")  # type: ignore[misc]
