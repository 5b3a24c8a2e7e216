"""The six workloads. Each takes an adapter and the private redis, returns plain data."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from .common import (
    LATENCY_KEY,
    REPO,
    WARMUP_SEQ,
    Adapter,
    JobData,
    Proc,
    log_tail,
    make_jobs,
    median,
    percentile,
    read_latency_marks,
    start_worker,
    stop_worker,
)

Log = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Params:
    enqueue_n: int = 20_000
    enqueue_rounds: int = 3  # every library once per round, in rotating order
    drain_n: int = 20_000
    drain_cap_s: float = 60.0  # a drain still running then is reported as partial
    latency_n: int = 500
    latency_interval_s: float = 0.005
    latency_idle_s: float = 1.0  # quiet time between the warm-up job and the measured ones
    memory_n: int = 100_000
    stats_sizes: tuple[int, ...] = (1_000, 100_000, 1_000_000)
    stats_types: int = 20
    stats_in_flight: int = 1_000
    stats_repeats: int = 30
    scale_procs: tuple[int, ...] = (1, 2, 4)
    all_variants: bool = True  # False: each library's default worker only

    @classmethod
    def quick(cls) -> Params:
        return cls(
            enqueue_n=1_500,
            enqueue_rounds=1,
            drain_n=1_500,
            drain_cap_s=5.0,
            latency_n=50,
            latency_idle_s=0.3,
            memory_n=5_000,
            stats_sizes=(1_000, 10_000),
            stats_repeats=5,
            scale_procs=(2,),
            all_variants=False,
        )


def flush(r: redis.Redis) -> None:
    r.flushall()


# ---- 1. enqueue -------------------------------------------------------------


def enqueue(adapter: Adapter, r: redis.Redis, p: Params) -> dict[str, Any]:
    jobs = make_jobs(p.enqueue_n)
    flush(r)
    single = adapter.enqueue_single(jobs)
    out: dict[str, Any] = {"n": len(jobs), "single_s": single, "single_jobs_per_s": len(jobs) / single}
    flush(r)
    batch = adapter.enqueue_batch(jobs)
    if batch is not None:
        out.update(batch_s=batch, batch_jobs_per_s=len(jobs) / batch)
    flush(r)
    return out


def round_trip_floor(host: str, port: int, n: int) -> float:
    """What one connection that waits for each reply can do on this machine: a
    blocking socket sending one pre-encoded XADD (the size of a jobcore envelope)
    per reply, no library at all. A one-call-per-job enqueue cannot beat it."""
    import hiredis

    from jobcore.resp import encode_command

    command = encode_command(("XADD", "bench:floor", "*", "d", os.urandom(146)))
    reader = hiredis.Reader()
    with socket.create_connection((host, port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t0 = time.perf_counter()
        for _ in range(n):
            sock.sendall(command)
            reply = reader.gets()
            while reply is False:
                reader.feed(sock.recv(65536))
                reply = reader.gets()
        took = time.perf_counter() - t0
        sock.sendall(encode_command(("DEL", "bench:floor")))
    return n / took


# ---- 2. drain (and 6. scale) ----------------------------------------------


def drain(
    adapter: Adapter,
    r: redis.Redis,
    argvs: Sequence[Sequence[str]],
    n: int,
    cap_s: float,
    log_dir: Path,
    name: str,
    jobs: Sequence[JobData] | None = None,
) -> dict[str, Any]:
    """Enqueue ``n`` no-op jobs, start the worker process(es), time until all are done.

    Time runs from the worker start command (process start-up and imports
    included); the rate without start-up runs from the first completion seen.
    """
    flush(r)
    adapter.fill(jobs if jobs is not None else make_jobs(n))
    if adapter.done_count(r, n) != 0:
        raise RuntimeError(f"{name}: jobs counted as done before any worker started")
    procs: list[Proc] = []
    t_first = done_first = None
    error = ""
    try:
        t_start = time.monotonic()
        procs = [start_worker(argv, adapter.url, log_dir, f"{name}-{i}") for i, argv in enumerate(argvs)]
        done = 0
        while True:
            done = adapter.done_count(r, n)
            now = time.monotonic()
            if done and t_first is None:
                t_first, done_first = now, done
            if done >= n or now - t_start > cap_s:
                break
            dead = [pr for pr in procs if pr.popen.poll() is not None]
            if dead:
                error = f"worker exited with {dead[0].popen.returncode}: {log_tail(dead[0])}"
                break
            time.sleep(0.005)
        t_end = time.monotonic()
    finally:
        for pr in procs:
            stop_worker(pr)
    elapsed = t_end - t_start
    out: dict[str, Any] = {
        "n": n,
        "done": done,
        "processes": len(argvs),
        "elapsed_s": elapsed,
        "jobs_per_s": done / elapsed if elapsed > 0 else 0.0,
        "partial": done < n,
        "error": error,
    }
    if t_first is not None and done_first is not None and t_end > t_first:
        out["startup_s"] = t_first - t_start
        out["jobs_per_s_after_first"] = (done - done_first) / (t_end - t_first)
    flush(r)
    return out


# ---- 3. latency ---------------------------------------------------------------


def latency(
    adapter: Adapter, r: redis.Redis, argv: Sequence[str], p: Params, log_dir: Path, name: str
) -> dict[str, Any]:
    """An idle worker; ``latency_n`` jobs enqueued ``latency_interval_s`` apart;
    enqueue (time before the enqueue call) to handler start."""
    flush(r)
    proc = start_worker(argv, adapter.url, log_dir, name)
    try:
        adapter.enqueue_latency_job(WARMUP_SEQ)
        deadline = time.monotonic() + 60
        while WARMUP_SEQ not in read_latency_marks(r):
            if proc.popen.poll() is not None or time.monotonic() > deadline:
                return {"error": f"worker never ran the warm-up job: {log_tail(proc)}"}
            time.sleep(0.01)
        time.sleep(p.latency_idle_s)  # idle: the worker is waiting for work now
        r.delete(LATENCY_KEY)
        sent = adapter.enqueue_paced(p.latency_n, p.latency_interval_s)
        deadline = time.monotonic() + 30
        marks: dict[int, float] = {}
        while time.monotonic() < deadline:
            marks = read_latency_marks(r)
            if len(marks) >= p.latency_n:
                break
            time.sleep(0.02)
    finally:
        stop_worker(proc)
    ms = [(marks[i] - t) * 1000 for i, t in sent.items() if i in marks]
    flush(r)
    return {
        "n": p.latency_n,
        "received": len(ms),
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms) if ms else float("nan"),
    }


# ---- 4. memory ----------------------------------------------------------------


def _data_memory(r: redis.Redis) -> int:
    """used_memory without client buffers (the enqueuers' connections are not jobs)."""
    info: dict[str, Any] = r.info("memory")  # type: ignore[assignment]
    return int(info["used_memory"]) - int(info.get("mem_clients_normal", 0))


def memory(adapter: Adapter, r: redis.Redis, p: Params) -> dict[str, Any]:
    jobs = make_jobs(p.memory_n)
    flush(r)
    time.sleep(0.2)
    info_before: dict[str, Any] = r.info("memory")  # type: ignore[assignment]
    before = _data_memory(r)
    adapter.fill(jobs)
    time.sleep(0.2)
    info_after: dict[str, Any] = r.info("memory")  # type: ignore[assignment]
    after = _data_memory(r)
    flush(r)
    return {
        "n": p.memory_n,
        "bytes_per_job": (after - before) / p.memory_n,
        "used_memory_bytes_per_job": (int(info_after["used_memory"]) - int(info_before["used_memory"])) / p.memory_n,
    }


# ---- 5. console / stats cost (jobcore) ------------------------------------------


def stats_cost(url: str, r: redis.Redis, p: Params, log: Log) -> dict[str, Any]:
    """One console refresh (``stats()`` + ``in_flight(1000)``) with ``stats_types``
    types, at each queue length, with ``stats_in_flight`` jobs in flight."""
    return asyncio.run(_stats_cost(url, r, p, log))


async def _stats_cost(url: str, r: redis.Redis, p: Params, log: Log) -> dict[str, Any]:
    import jobcore
    from jobcore import Identity, Job

    from .tasks import BenchArgs, stats_types

    types = list(stats_types(p.stats_types))
    per_type_in_flight = p.stats_in_flight // len(types)
    out: dict[str, Any] = {"types": len(types), "in_flight": p.stats_in_flight, "by_pending": {}}
    flush(r)
    # Every size lives in the same Redis at once, each under its own namespace, and
    # the sizes are probed in turns: a machine that drifts during the run then
    # shifts every size alike, and only the queue length differs between them.
    for size in p.stats_sizes:
        producer = jobcore.connect(url, namespace=f"bench{size}")
        for t in types:
            producer.declare(t, BenchArgs)
        total = size + per_type_in_flight * len(types)
        t0 = time.perf_counter()
        chunk = 5_000
        for start in range(0, total, chunk):
            data = make_jobs(min(chunk, total - start), start)
            await producer.enqueue_many(
                [
                    Job(
                        type=types[(start + i) % len(types)],
                        args=BenchArgs(reservation_id=d.reservation_id, payload=d.payload),
                        account_id=d.account_id,
                        identity=Identity(org_id=d.org_id),
                    )
                    for i, d in enumerate(data)
                ]
            )
        log(f"  stats: {total:,} jobs enqueued in {time.perf_counter() - t0:.1f}s")
        # 1,000 in flight: a consumer takes 50 of each type and never settles them.
        taken = [d for t in types for d in await producer.fetch("bench-console-holder", [t], per_type_in_flight, 0)]
        if len(taken) != per_type_in_flight * len(types):
            raise RuntimeError(f"stats set-up wrong: {len(taken)} taken")
        await producer.close()
    turns = 5
    samples: dict[int, dict[str, list[float]]] = {size: {"stats": [], "in_flight": []} for size in p.stats_sizes}
    rows: dict[int, int] = {}
    for _ in range(turns):
        for size in p.stats_sizes:
            seen = await _probe(url, f"bench{size}", max(1, p.stats_repeats // turns))
            if seen["pending"] != size or seen["in_flight"] != per_type_in_flight * len(types):
                raise RuntimeError(
                    f"stats set-up wrong: pending {seen['pending']} (want {size}), in flight {seen['in_flight']}"
                )
            samples[size]["stats"] += seen["stats_ms"]
            samples[size]["in_flight"] += seen["in_flight_ms"]
            rows[size] = seen["rows"]
    for size in p.stats_sizes:
        stats_ms, in_flight_ms = samples[size]["stats"], samples[size]["in_flight"]
        total_ms = [a + b for a, b in zip(stats_ms, in_flight_ms, strict=True)]
        out["by_pending"][str(size)] = {
            "pending": size,
            "in_flight_rows": rows[size],
            "stats_ms": median(stats_ms),
            "in_flight_ms": median(in_flight_ms),
            "refresh_ms": median(total_ms),
            "refresh_p90_ms": percentile(total_ms, 90),
        }
        log(f"  stats at {size:,} pending: refresh {median(total_ms):.2f} ms")
    flush(r)
    return out


async def _probe(url: str, namespace: str, repeats: int) -> dict[str, Any]:
    """Refreshes timed in a fresh process, as a console's would be (bench/stats_probe.py)."""
    probe = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.stats_probe",
        url,
        namespace,
        str(repeats),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    out_b, err_b = await probe.communicate()
    if probe.returncode != 0:
        raise RuntimeError(f"stats probe failed: {err_b.decode().strip()[-500:]}")
    seen: dict[str, Any] = json.loads(out_b)
    return seen
