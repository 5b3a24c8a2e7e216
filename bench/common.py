"""Shared pieces of the benchmark: job data, worker processes, timing helpers.

Every library gets the same jobs (built before any timed section) and the same
measurement code; adapters only translate "enqueue this job" and "how many jobs
are done" into each library's own API.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import redis

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
URL_ENV = "BENCH_REDIS_URL"
LATENCY_KEY = "bench:lat"  # list of "seq start_time" written by every library's latency handler
WARMUP_SEQ = 1_000_000


@dataclass(frozen=True, slots=True)
class JobData:
    """One benchmark job: the same four fields for every library."""

    account_id: int
    org_id: str
    reservation_id: int
    payload: str  # 64 bytes

    def kwargs(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "org_id": self.org_id,
            "reservation_id": self.reservation_id,
            "payload": self.payload,
        }


def make_jobs(n: int, start: int = 0) -> list[JobData]:
    """``n`` small jobs; payloads differ per job (64 hex characters)."""
    return [
        JobData(
            account_id=100_000 + (i % 5000),
            org_id=f"org-{i % 997:05d}",
            reservation_id=50_000_000 + i,
            payload=os.urandom(32).hex(),
        )
        for i in range(start, start + n)
    ]


@dataclass(frozen=True, slots=True)
class WorkerVariant:
    """One way of running a library's worker process, with its own CLI."""

    label: str  # e.g. "rq (SimpleWorker)"
    argv: list[str]
    note: str = ""


@dataclass(slots=True)
class Proc:
    popen: subprocess.Popen[bytes]
    log_path: Path
    started: float  # time.monotonic() right before Popen


def worker_env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env[URL_ENV] = url
    env["PYTHONPATH"] = f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}".rstrip(os.pathsep)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_worker(argv: Sequence[str], url: str, log_dir: Path, name: str) -> Proc:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log = log_path.open("ab")
    started = time.monotonic()
    popen = subprocess.Popen(
        list(argv),
        cwd=REPO,
        env=worker_env(url),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: forked children stop with it
    )
    log.close()
    return Proc(popen, log_path, started)


def stop_worker(proc: Proc, timeout: float = 15.0) -> None:
    """SIGTERM the worker's own process group (graceful stop), SIGKILL if it lingers."""
    pgid = proc.popen.pid
    if proc.popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)  # leftovers of the same group (forked work horses)
    if proc.popen.poll() is None:
        proc.popen.wait(5)


def log_tail(proc: Proc, chars: int = 1500) -> str:
    try:
        return proc.log_path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def pace(n: int, interval: float, fire: Callable[[int], None]) -> dict[int, float]:
    """Call ``fire(i)`` every ``interval`` seconds; the time each call began, by i."""
    sent: dict[int, float] = {}
    t0 = time.perf_counter()
    for i in range(n):
        target = t0 + i * interval
        while True:
            left = target - time.perf_counter()
            if left <= 0:
                break
            time.sleep(left if left > 0.002 else 0)
        sent[i] = time.time()
        fire(i)
    return sent


def read_latency_marks(r: redis.Redis) -> dict[int, float]:
    out: dict[int, float] = {}
    for raw in r.lrange(LATENCY_KEY, 0, -1):  # type: ignore[union-attr]
        seq, _, ts = raw.decode().partition(" ")
        out[int(seq)] = float(ts)
    return out


def split(jobs: Sequence[JobData], parts: int) -> list[Sequence[JobData]]:
    """``jobs`` in ``parts`` contiguous slices of (nearly) equal length."""
    size, extra = divmod(len(jobs), parts)
    out: list[Sequence[JobData]] = []
    start = 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(jobs[start:end])
        start = end
    return out


async def gather_enqueue(
    jobs: Sequence[JobData], coroutines: int, enqueue_one: Callable[[JobData], Awaitable[Any]]
) -> float:
    """``coroutines`` coroutines, each awaiting one enqueue call per job of its
    slice of ``jobs``, one after the other; the seconds until all are done."""

    async def one(chunk: Sequence[JobData]) -> None:
        for d in chunk:
            await enqueue_one(d)

    chunks = split(jobs, coroutines)
    t0 = time.perf_counter()
    await asyncio.gather(*(one(c) for c in chunks))
    return time.perf_counter() - t0


def threads_enqueue(jobs: Sequence[JobData], threads: int, enqueue_one: Callable[[JobData], Any]) -> float:
    """``threads`` threads, each making one enqueue call per job of its slice of
    ``jobs``, released together; the seconds from the release until all are done."""
    chunks = split(jobs, threads)
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def one(chunk: Sequence[JobData]) -> None:
        barrier.wait()
        try:
            for d in chunk:
                enqueue_one(d)
        except BaseException as exc:  # re-raised in the caller
            errors.append(exc)

    workers = [threading.Thread(target=one, args=(c,), daemon=True) for c in chunks]
    for t in workers:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in workers:
        t.join()
    took = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return took


class Loop:
    """A private event loop kept across calls, for the asyncio libraries."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


class Adapter(abc.ABC):
    """The workload interface every library implements.

    Enqueue-side methods run in the benchmark process; workers run as
    subprocesses started from ``variants()``.
    """

    name = ""
    dist = ""  # distribution name, for its version
    sync = False  # a blocking client: the concurrent enqueue uses threads, not coroutines

    def __init__(self, url: str) -> None:
        self.url = url
        self.notes: list[str] = []

    @property
    def version(self) -> str:
        from importlib.metadata import version

        return version(self.dist)

    @abc.abstractmethod
    def variants(self) -> list[WorkerVariant]:
        """Worker command lines: the library's default first."""

    def scale_argv(self, processes: int) -> list[list[str]] | None:
        """Worker command lines for a drain by ``processes`` worker processes (jobcore only)."""
        return None

    def cpu_variant(self) -> WorkerVariant:
        """The worker of the Redis CPU workload: the library's default, unless it
        cannot finish the jobs in reasonable time (then the adapter says why)."""
        return self.variants()[0]

    @abc.abstractmethod
    def enqueue_single(self, jobs: Sequence[JobData]) -> float:
        """Enqueue one warm-up job (``jobs[0]`` again, untimed), then one call per
        job; return the seconds the calls took. ``len(jobs) + 1`` jobs in all."""

    def enqueue_batch(self, jobs: Sequence[JobData]) -> float | None:
        """Like :meth:`enqueue_single` (one warm-up job first), with the library's
        batch API; None when it has none."""
        return None

    @abc.abstractmethod
    def enqueue_concurrent(self, jobs: Sequence[JobData], workers: int) -> float:
        """One warm-up job (untimed), then ``jobs`` enqueued one awaited call per
        job by ``workers`` coroutines at once (``workers`` threads when
        :attr:`sync`); return the seconds until all calls are done."""

    @abc.abstractmethod
    def fill(self, jobs: Sequence[JobData]) -> None:
        """Enqueue ``jobs`` as fast as the library allows (untimed set-up)."""

    @abc.abstractmethod
    def done_count(self, r: redis.Redis, total: int) -> int:
        """How many of ``total`` jobs enqueued before the worker started are done."""

    @abc.abstractmethod
    def enqueue_latency_job(self, seq: int) -> None:
        """Enqueue one latency job; its handler records (seq, start time)."""

    def enqueue_paced(self, n: int, interval: float) -> dict[int, float]:
        return pace(n, interval, self.enqueue_latency_job)

    def close(self) -> None:  # noqa: B027 - optional hook
        pass
