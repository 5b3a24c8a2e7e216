"""The eight workloads. Each takes an adapter and the private redis, returns plain data."""

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
    concurrent_n: int = 20_000
    concurrent_coroutines: int = 200  # asyncio libraries: 200 coroutines x 100 awaited enqueues
    concurrent_threads: int = 16  # blocking libraries: 16 threads x 1,250 enqueues
    concurrent_rounds: int = 3
    cpu_n: int = 20_000
    cpu_cap_s: float = 300.0  # a drain still running then is reported as partial, with no per-job figure
    cpu_poll_s: float = 0.1  # how often the harness asks whether all are done (its commands are subtracted)

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
            concurrent_n=2_000,
            concurrent_coroutines=20,
            concurrent_threads=16,
            concurrent_rounds=1,
            cpu_n=1_500,
            cpu_cap_s=30.0,
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


def encode_command(args: Sequence[str | bytes]) -> bytes:
    """One command in RESP (an array of bulk strings)."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def round_trip_floor(host: str, port: int, n: int) -> float:
    """What one connection that waits for each reply can do on this machine: a
    blocking socket sending one pre-encoded XADD (the size of a jobcore envelope)
    per reply, no library at all. A one-call-per-job enqueue cannot beat it."""
    import hiredis

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


# ---- 7. concurrent enqueue ------------------------------------------------------


def concurrent_enqueue(adapter: Adapter, r: redis.Redis, p: Params) -> dict[str, Any]:
    """``concurrent_n`` jobs, one awaited enqueue call per job, from
    ``concurrent_coroutines`` coroutines at once (asyncio libraries) or
    ``concurrent_threads`` threads (blocking libraries)."""
    jobs = make_jobs(p.concurrent_n)
    workers = p.concurrent_threads if adapter.sync else p.concurrent_coroutines
    flush(r)
    took = adapter.enqueue_concurrent(jobs, workers)
    flush(r)
    return {
        "n": len(jobs),
        "mode": "threads" if adapter.sync else "coroutines",
        "workers": workers,
        "s": took,
        "jobs_per_s": len(jobs) / took,
    }


# ---- 8. Redis CPU and commands per job, over a job's whole life -----------------

_HARNESS_INFO = [0]  # INFO calls this module made: subtracted from the INFO count


def _info(r: redis.Redis, section: str) -> dict[str, Any]:
    _HARNESS_INFO[0] += 1
    info: dict[str, Any] = r.info(section)  # type: ignore[assignment]
    return info


def _cpu_s(r: redis.Redis) -> float:
    info = _info(r, "cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def _calls(r: redis.Redis) -> dict[str, int]:
    """Calls by command name, from INFO commandstats (``cmdstat_xadd`` and, for
    subcommands, ``cmdstat_xgroup|create``)."""
    out: dict[str, int] = {}
    for key, val in _info(r, "commandstats").items():
        if key.startswith("cmdstat_"):
            calls = val["calls"] if isinstance(val, dict) else int(str(val).split("calls=")[1].split(",")[0])
            out[key[len("cmdstat_") :]] = int(calls)
    return out


def _snapshot(r: redis.Redis) -> tuple[float, dict[str, int], int]:
    """(Redis CPU seconds, calls by command, INFO calls the harness has made)."""
    calls = _calls(r)
    cpu = _cpu_s(r)
    return cpu, calls, _HARNESS_INFO[0]


def _between(a: tuple[float, dict[str, int], int], b: tuple[float, dict[str, int], int]) -> dict[str, int]:
    """Commands run between two snapshots, less the harness's own INFO calls:
    a's two are in b's figures (a command is counted once it has run), b's
    commandstats call is not, b's cpu call is not: as many as b made."""
    out = {k: b[1].get(k, 0) - a[1].get(k, 0) for k in set(a[1]) | set(b[1])}
    out["info"] = out.get("info", 0) - (b[2] - a[2])
    return {k: v for k, v in out.items() if v}


def _poll_cost(adapter: Adapter, r: redis.Redis, total: int, times: int = 200) -> tuple[dict[str, int], float]:
    """What one ``done_count`` costs Redis: its commands and its CPU (averaged
    over ``times`` calls), to be taken out of the library's figures."""
    a = _snapshot(r)
    for _ in range(times):
        adapter.done_count(r, total)
    b = _snapshot(r)
    per_call = {k: round(v / times) for k, v in _between(a, b).items() if round(v / times)}
    return per_call, max(0.0, (b[0] - a[0]) / times)


def redis_cpu(
    adapter: Adapter,
    r: redis.Redis,
    p: Params,
    argv: Sequence[str],
    log_dir: Path,
    name: str,
    batch: bool = False,
) -> dict[str, Any]:
    """Redis's CPU time (INFO cpu: used_cpu_sys + used_cpu_user) and commands
    (INFO commandstats) from before ``cpu_n`` no-op jobs are enqueued (one call
    per job, or the batch API) until the library's worker has done them all and
    has been stopped; per job. The harness's own INFO and polling commands are
    subtracted (the polls' CPU as measured by calling the poll alone)."""
    flush(r)
    time.sleep(0.2)
    jobs = make_jobs(p.cpu_n)
    total = p.cpu_n + 1  # enqueue_single / enqueue_batch add one warm-up job
    s0 = _snapshot(r)
    took = adapter.enqueue_batch(jobs) if batch else adapter.enqueue_single(jobs)
    if took is None:
        raise RuntimeError(f"{name}: no batch API")
    s_enq = _snapshot(r)
    # The harness's poll, priced with the jobs in place (its cost depends on
    # what is in Redis); this window is in neither figure.
    poll_cmds, poll_cpu = _poll_cost(adapter, r, total)
    if adapter.done_count(r, total) != 0:
        raise RuntimeError(f"{name}: jobs counted as done before any worker started")
    s_start = _snapshot(r)
    proc = start_worker(argv, adapter.url, log_dir, name)
    polls = 0
    done = 0
    error = ""
    t_start = time.monotonic()
    try:
        while True:
            done = adapter.done_count(r, total)
            polls += 1
            if done >= total or time.monotonic() - t_start > p.cpu_cap_s:
                break
            if proc.popen.poll() is not None:
                error = f"worker exited with {proc.popen.returncode}: {log_tail(proc)}"
                break
            time.sleep(p.cpu_poll_s)
        elapsed = time.monotonic() - t_start
    finally:
        stop_worker(proc)  # graceful: what the worker does on its way out counts too
    s_end = _snapshot(r)
    enq = _between(s0, s_enq)
    work = _between(s_start, s_end)
    for k, v in poll_cmds.items():
        work[k] = work.get(k, 0) - v * polls
    work = {k: v for k, v in work.items() if v}
    cpu_enq = s_enq[0] - s0[0]
    cpu_work = max(0.0, s_end[0] - s_start[0] - poll_cpu * polls)
    out: dict[str, Any] = {
        "n": total,
        "done": done,
        "partial": done < total,
        "error": error,
        "enqueue": "batch" if batch else "single",
        "enqueue_s": took,
        "drain_s": elapsed,
        "polls": polls,
        "poll_commands_each": poll_cmds,
        "poll_cpu_us_each": poll_cpu * 1e6,
        "commands_enqueue": enq,
        "commands_worker": work,
    }
    if done >= total and not error:
        all_cmds = {k: enq.get(k, 0) + work.get(k, 0) for k in set(enq) | set(work)}
        out.update(
            cpu_us_per_job=(cpu_enq + cpu_work) / total * 1e6,
            cpu_enqueue_us_per_job=cpu_enq / total * 1e6,
            cpu_worker_us_per_job=cpu_work / total * 1e6,
            commands_per_job=sum(all_cmds.values()) / total,
            commands_enqueue_per_job=sum(enq.values()) / total,
            commands_worker_per_job=sum(work.values()) / total,
            top_commands_per_job={
                k: v / total for k, v in sorted(all_cmds.items(), key=lambda kv: -kv[1])[:5] if v > 0
            },
        )
    flush(r)
    return out
