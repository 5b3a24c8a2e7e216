"""jobcore on a Redis Cluster beside a standalone server, in one run:
``python -m bench.cluster [--jobs N] [--workers W] [--out DIR]``.

Starts a private standalone server and two private 3-master clusters, one
without replicas and one with a replica per master, from the same binary. On
each, with the same jobs: concurrent enqueue (200 coroutines, one awaited
``enqueue`` per job), batch enqueue (``enqueue_many`` of 1,000), and a drain by
W ``jobcore worker`` processes timed from their start until ``stats()`` counts
every job processed. Two shapes: ten types (``c0``..``c9``, round robin) and one
type with three partitions (``hot``, accounts spread). Each master's Redis CPU
(INFO cpu, user + sys) and command calls are read before and after, so the
split across shards shows. Writes ``cluster.json`` and ``CLUSTER.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import subprocess
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jobcore
from jobcore import Identity, Job
from jobcore.keys import Keys, lane_slot
from tests.support.servers import RedisCluster, RedisServer

from .cluster_tasks import HOT, TYPES
from .common import BIN, REPO, JobData, make_jobs, start_worker, stop_worker
from .tasks import BenchArgs

CONCURRENCY = 200
BATCH = 1000


def job_of(d: JobData, job_type: str) -> Job[BenchArgs]:
    return Job(
        type=job_type,
        args=BenchArgs(reservation_id=d.reservation_id, payload=d.payload),
        account_id=d.account_id,
        identity=Identity(org_id=d.org_id),
    )


def shaped(data: Sequence[JobData], shape: str) -> list[Job[BenchArgs]]:
    if shape == "types":
        return [job_of(d, TYPES[i % len(TYPES)]) for i, d in enumerate(data)]
    return [job_of(d, HOT) for d in data]


class Target:
    """One topology: its URL, its masters (for INFO cpu) and how to flush it."""

    def __init__(self, name: str, url: str, masters: list[RedisServer], flush: Any) -> None:
        self.name, self.url, self.masters, self._flush = name, url, masters, flush

    def cpu(self) -> dict[str, float]:
        out = {}
        for m in self.masters:
            info = m.info("cpu")
            out[f"127.0.0.1:{m.port}"] = float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
        return out

    def commands(self) -> dict[str, int]:
        """Calls per command, summed over the masters (scripts' inner calls included)."""
        out: dict[str, int] = {}
        for m in self.masters:
            for name, row in m.info("commandstats").items():
                out[name] = out.get(name, 0) + int(row["calls"])
        return out

    def flush(self) -> None:
        self._flush()


async def _prepare(url: str, shape: str) -> jobcore.Queue:
    q = jobcore.connect(url)
    if shape == "hot":
        await q.set_partitions(HOT, 3)
    return q


async def enqueue_concurrent(url: str, jobs: list[Job[BenchArgs]], shape: str) -> float:
    q = await _prepare(url, shape)
    try:
        for job_type in {j.type for j in jobs}:  # each type seen once before the clock
            await q.enqueue(Job(type=job_type, args=jobs[0].args, account_id=1))
        it = iter(jobs)
        t = time.perf_counter()

        async def one() -> None:
            for job in it:
                await q.enqueue(job)

        await asyncio.gather(*[one() for _ in range(CONCURRENCY)])
        return len(jobs) / (time.perf_counter() - t)
    finally:
        await q.close()


async def enqueue_batch(url: str, jobs: list[Job[BenchArgs]], shape: str) -> float:
    q = await _prepare(url, shape)
    try:
        t = time.perf_counter()
        for i in range(0, len(jobs), BATCH):
            await q.enqueue_many(jobs[i : i + BATCH])
        return len(jobs) / (time.perf_counter() - t)
    finally:
        await q.close()


async def processed(url: str) -> int:
    q = jobcore.connect(url)
    try:
        return (await q.stats()).processed
    finally:
        await q.close()


def drain(target: Target, n: int, workers: int, log_dir: Path, name: str) -> dict[str, Any]:
    argv = [str(BIN / "jobcore"), "--url", target.url, "worker", "bench.cluster_tasks:handlers"]
    procs = []
    t = time.monotonic()
    try:
        procs = [start_worker(argv, target.url, log_dir, f"{name}-{i}") for i in range(workers)]
        done = 0
        while done < n and time.monotonic() - t < 300:
            time.sleep(0.1)
            done = asyncio.run(processed(target.url))
        elapsed = time.monotonic() - t
    finally:
        for p in procs:
            stop_worker(p)
    return {"done": done, "elapsed_s": elapsed, "jobs_per_s": done / elapsed}


def run_shape(target: Target, shape: str, data: list[JobData], workers: int, log_dir: Path) -> dict[str, Any]:
    jobs = shaped(data, shape)
    row: dict[str, Any] = {}
    target.flush()
    row["concurrent_enqueue_per_s"] = asyncio.run(enqueue_concurrent(target.url, jobs, shape))
    target.flush()
    before = target.cpu()
    calls_before = target.commands()
    row["batch_enqueue_per_s"] = asyncio.run(enqueue_batch(target.url, jobs, shape))
    mid = target.cpu()
    row["drain"] = drain(target, len(jobs), workers, log_dir, f"{target.name}-{shape}")
    after = target.cpu()
    calls = {k: v - calls_before.get(k, 0) for k, v in target.commands().items()}
    calls.pop("cmdstat_info", None)  # the harness's own
    row["commands_per_job"] = sum(calls.values()) / len(jobs)
    row["top_commands_per_job"] = {
        k.removeprefix("cmdstat_"): v / len(jobs) for k, v in sorted(calls.items(), key=lambda kv: -kv[1])[:6]
    }
    row["cpu_enqueue_s"] = {k: mid[k] - before[k] for k in before}
    row["cpu_drain_s"] = {k: after[k] - mid[k] for k in before}
    total = sum(after[k] - before[k] for k in before)
    row["cpu_us_per_job"] = total / len(jobs) * 1e6
    row["cpu_share"] = {k: (after[k] - before[k]) / total if total else 0.0 for k in before}
    if shape == "hot":
        row["partitions"] = asyncio.run(placement(target))
    target.flush()
    return row


async def placement(target: Target) -> dict[str, str]:
    q = jobcore.connect(target.url)
    try:
        await q.partitions([HOT])
        owners = await q.transport.slot_owners()  # type: ignore[attr-defined]
        names = q.routes.lanes(HOT)
    finally:
        await q.close()
    keys = Keys()
    return {keys.of_type(name).stream: (owners[lane_slot(name)] if owners else "the one server") for name in names}


def report(res: dict[str, Any]) -> str:
    lines = [
        "# jobcore on a Redis Cluster, beside a standalone server (one run)",
        "",
        f"`python -m bench.cluster --jobs {res['jobs']} --workers {res['workers']}` on {res['date']}; "
        f"{res['server']}; {res['machine']}; jobcore {res['revision']}.",
        "",
        "Each topology gets the same jobs. Concurrent enqueue: 200 coroutines awaiting one `enqueue` per job. "
        "Batch: `enqueue_many` of 1,000. Drain: "
        f"{res['workers']} `jobcore worker` processes (concurrency 10 each), timed from their start until "
        "`stats()` counts every job processed (start-up included). Redis CPU: INFO cpu (user + sys) of each "
        "master across the batch enqueue and the drain, per job. Everything (servers, workers, producer) "
        "shares the machine's 2 cores, so rates are bounded by the client side; the CPU split is the point.",
        "",
        "| shape | topology | concurrent enqueue/s | batch enqueue/s | drain jobs/s | Redis CPU µs/job | "
        "CPU share per master | commands/job | most called, per job |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for shape, label in (("types", "10 types"), ("hot", "1 type, 3 partitions")):
        for topo, r in res["rows"][shape].items():
            share = " / ".join(f"{v:.0%}" for v in r["cpu_share"].values())
            top = ", ".join(f"{k} {v:.2f}" for k, v in r["top_commands_per_job"].items())
            lines.append(
                f"| {label} | {topo} | {r['concurrent_enqueue_per_s']:,.0f} | {r['batch_enqueue_per_s']:,.0f} | "
                f"{r['drain']['jobs_per_s']:,.0f} | {r['cpu_us_per_job']:.1f} | {share} | "
                f"{r['commands_per_job']:.2f} | {top} |"
            )
    lines += ["", "Where the three partitions of `hot` live on the cluster:", ""]
    for key, node in res["rows"]["hot"]["cluster + 1 replica each"]["partitions"].items():
        lines.append(f"- `{key}` on {node}")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.cluster")
    ap.add_argument("--jobs", type=int, default=30_000)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="jobcore-bench-cluster-"))
    data = make_jobs(a.jobs)
    single = RedisServer(base / "standalone", appendonly=False)
    bare = RedisCluster(base / "bare", replicas_per_master=0, appendonly=False)
    cluster = RedisCluster(base / "cluster", appendonly=False)
    try:
        single.start()
        bare.start()
        cluster.start()
        targets = [
            Target("standalone", single.url, [single], lambda: single.client().flushall()),
            Target("cluster, no replicas", bare.seed_url, bare.masters(), bare.flushall),
            Target("cluster + 1 replica each", cluster.seed_url, cluster.masters(), cluster.flushall),
        ]
        rows: dict[str, dict[str, Any]] = {"types": {}, "hot": {}}
        for shape in ("types", "hot"):
            for target in targets:
                print(f"== {shape} on {target.name}", flush=True)
                rows[shape][target.name] = run_shape(target, shape, data, a.workers, base / "logs")
                print(json.dumps(rows[shape][target.name]), flush=True)
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        res = {
            "date": datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "jobs": a.jobs,
            "workers": a.workers,
            "server": str(single.flavor()),
            "machine": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores",
            "revision": rev.stdout.strip(),
            "rows": rows,
        }
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "cluster.json").write_text(json.dumps(res, indent=2) + "\n")
        (a.out / "CLUSTER.md").write_text(report(res))
        print(report(res))
    finally:
        single.cleanup()
        bare.cleanup()
        cluster.cleanup()


if __name__ == "__main__":
    main()
