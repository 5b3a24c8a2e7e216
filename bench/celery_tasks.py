"""celery tasks on the Redis broker: ``celery -A bench.celery_tasks worker``."""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:1/0")

app = Celery("bench", broker=URL)
# No result backend and results ignored: the worker writes nothing per job but
# its acks. Otherwise celery's defaults (queue "celery", prefork pool with one
# child per core, prefetch multiplier 4, early acks).
app.conf.update(task_ignore_result=True, result_backend=None, broker_connection_retry_on_startup=True)

_clients: dict[int, redis.Redis] = {}  # by pid: the prefork pool's children each have their own


@app.task(name="bench_job")
def bench_job(account_id: int, org_id: str, reservation_id: int, payload: str) -> None:
    """No-op."""


@app.task(name="lat_job")
def lat_job(seq: int) -> None:
    started = time.time()
    client = _clients.get(os.getpid())
    if client is None:
        client = _clients[os.getpid()] = redis.Redis.from_url(URL)
    client.rpush("bench:lat", f"{seq} {started!r}")
