from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import jobcore
from jobcore import Worker
from jobcore.memory import MemoryQueue
from jobcore.redis.backend import RedisQueue


async def plant(q: jobcore.Queue, job_type: str, raw: bytes | None) -> str:
    """Write bytes straight into a type's queue, bypassing enqueue's checks."""
    if isinstance(q, MemoryQueue):
        return q.add_raw(job_type, raw)
    assert isinstance(q, RedisQueue)
    fields = {b"d": raw} if raw is not None else {b"x": b"no payload field"}
    return await q.add_raw(job_type, fields)


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


@asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[Worker]:
    """A worker running in this loop for the block, stopped gracefully after it."""
    task = asyncio.create_task(worker.run())
    try:
        await wait_until(lambda: _value(worker.running), timeout=10)
        yield worker
    finally:
        await worker.stop()
        await task


async def _value(value: bool) -> bool:
    return value


@asynccontextmanager
async def read_only_queue(redis_url: str) -> AsyncIterator[RedisQueue]:
    """A queue as a monitoring user with the ACL lines README gives (reads only)."""
    import redis

    admin = redis.Redis.from_url(redis_url)
    admin.execute_command("ACL", "SETUSER", "watcher", "reset", "on", ">pw", "~*", "+@read", "+@connection", "+time",
                          "+info", "+evalsha_ro", "+script|load")  # fmt: skip
    port = redis_url.split(":")[-1].split("/")[0]
    ro = RedisQueue(f"redis://watcher:pw@127.0.0.1:{port}/0")
    try:
        yield ro
    finally:
        admin.execute_command("ACL", "DELUSER", "watcher")
        admin.close()
        await ro.close()
