"""rq job functions for the benchmark (the worker imports them by dotted path)."""

from __future__ import annotations

import os
import time

import redis

_clients: dict[int, redis.Redis] = {}  # by pid: rq's default worker forks per job


def _client() -> redis.Redis:
    client = _clients.get(os.getpid())
    if client is None:
        client = _clients[os.getpid()] = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    return client


def bench_job(account_id: int, org_id: str, reservation_id: int, payload: str) -> None:
    """No-op."""


def lat_job(seq: int) -> None:
    started = time.time()
    _client().rpush("bench:lat", f"{seq} {started!r}")
