"""Handlers for the fault-injection suite: ``tests.faults.handlers:handlers``.

Each handler records its execution in the audit database (a different Redis DB
from jobcore's, named by ``JOBCORE_TEST_AUDIT_URL``) so a test can count runs.
Records are keyed by a fresh run id, so a write retried after a cut connection
is counted once.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import signal
import time
import uuid

import msgspec
import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from jobcore import Handlers, Job

AUDIT_URL_ENV = "JOBCORE_TEST_AUDIT_URL"
WORKER_ENV = "JOBCORE_TEST_WORKER"
STARTS = "audit:starts"  # run id -> "job_id|attempt|worker|ms"
DONE = "audit:done"  # run id -> "job_id|attempt|worker|ms"

handlers = Handlers()


class Work(msgspec.Struct, kw_only=True):
    n: int = 0
    seconds: float = 0.0


_client: redis.Redis | None = None


def audit_client() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(
            os.environ[AUDIT_URL_ENV],
            socket_timeout=5,
            socket_connect_timeout=2,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.02), 3),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
        )
    return _client


def _record(key: str, job: Job[Work], run_id: str) -> None:
    """Write one record, retrying through outages for up to a minute (a record is
    keyed by its run id, so writing it twice counts once)."""
    worker = os.environ.get(WORKER_ENV, str(os.getpid()))
    value = f"{job.id}|{job.attempt}|{worker}|{int(time.time() * 1000)}"
    deadline = time.monotonic() + 60
    while True:
        try:
            audit_client().hset(key, run_id, value)
            return
        except (RedisConnectionError, RedisTimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def start(job: Job[Work]) -> str:
    run_id = uuid.uuid4().hex
    _record(STARTS, job, run_id)
    return run_id


def done(job: Job[Work], run_id: str) -> None:
    _record(DONE, job, run_id)


@handlers.handler("work", Work)
async def work(job: Job[Work]) -> None:
    """Sleeps ``seconds`` without blocking the event loop."""
    run_id = await asyncio.to_thread(start, job)
    await asyncio.sleep(job.args.seconds)
    await asyncio.to_thread(done, job, run_id)


@handlers.handler("noop", Work)
async def noop(job: Job[Work]) -> None:
    """Records that it ran; nothing else (soak)."""
    await asyncio.to_thread(done, job, uuid.uuid4().hex)


@handlers.handler("crash", Work)
def crash(job: Job[Work]) -> None:
    """Kills its own worker process, every time."""
    start(job)
    os.kill(os.getpid(), signal.SIGKILL)


@handlers.handler("sync_sleep", Work)
def sync_sleep(job: Job[Work]) -> None:
    """Sleeps in a handler thread (cannot be cancelled)."""
    run_id = start(job)
    time.sleep(job.args.seconds)
    done(job, run_id)


@handlers.handler("cpu", Work)
def cpu(job: Job[Work]) -> None:
    """A pure-Python CPU loop in a handler thread."""
    run_id = start(job)
    end = time.monotonic() + job.args.seconds
    x = 0
    while time.monotonic() < end:
        x += 1
    done(job, run_id)


_libc = ctypes.PyDLL(ctypes.util.find_library("c"))  # PyDLL: the GIL stays held during calls


@handlers.handler("gil", Work)
def gil(job: Job[Work]) -> None:
    """Holds the GIL for the whole run: no other thread of the process runs."""
    run_id = start(job)
    _libc.usleep(ctypes.c_uint(int(job.args.seconds * 1_000_000)))
    done(job, run_id)


@handlers.handler("gil_cpu", Work)
def gil_cpu(job: Job[Work]) -> None:
    """A CPU loop in C that holds the GIL: each ``sum(range(n))`` call keeps every
    other thread of the process out for about 1.5 s (longer than a test lease)."""
    run_id = start(job)
    t0 = time.perf_counter()
    sum(range(1_000_000))
    n = int(1_000_000 * 1.5 / max(1e-6, time.perf_counter() - t0))
    end = time.monotonic() + job.args.seconds
    while time.monotonic() < end:
        sum(range(n))
    done(job, run_id)


@handlers.handler("block", Work)
async def block(job: Job[Work]) -> None:
    """Blocks the worker's event loop (a badly written async handler)."""
    run_id = start(job)
    time.sleep(job.args.seconds)  # noqa: ASYNC251 - blocking on purpose
    done(job, run_id)


@handlers.handler("later", Work)
async def later(job: Job[Work]) -> None:
    """Served only by workers started with it in --types."""
    await asyncio.to_thread(done, job, await asyncio.to_thread(start, job))
