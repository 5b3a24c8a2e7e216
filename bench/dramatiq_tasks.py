"""dramatiq actors for the benchmark: ``dramatiq -p 1 bench.dramatiq_tasks``."""

from __future__ import annotations

import os
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker

broker = RedisBroker(url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:1/0"))  # type: ignore[no-untyped-call]
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="bench")
def bench_job(account_id: int, org_id: str, reservation_id: int, payload: str) -> None:
    """No-op."""


@dramatiq.actor(queue_name="bench")
def lat_job(seq: int) -> None:
    started = time.time()
    broker.client.rpush("bench:lat", f"{seq} {started!r}")
