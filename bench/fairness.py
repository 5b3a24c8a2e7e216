"""The cost and the effect of fairness across accounts, plain and fair types
side by side in one run: ``python -m bench.fairness [rounds] [--out FILE]``.

Cost: 20,000 no-op jobs enqueued (a plain type; a fair type with one account,
the worst case for the bookkeeping; a fair type over 1,000 accounts; the same
with a limit of 5 per account, which the worker's 10 slots never reach), then one
``jobcore worker bench.tasks:handlers`` (concurrency 10) started and timed until
all are done; Redis CPU (INFO cpu) and commands (INFO commandstats) from just
before the worker starts to just after it stopped, per job. Modes alternate
order every round; medians over the rounds.

Effect: 50,000 no-op jobs of one account queued, a worker started; once 1,000
are done, 20 small accounts enqueue one job each: how long each waited to
start (p50, max), plain and fair. Every FIFO queue (each peer's) behaves as
plain does here; none of the peers has a free fair mode to compare with.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

import jobcore
from bench.common import REPO, start_worker, stop_worker
from bench.tasks import BenchArgs, FairArgs
from jobcore import Identity, Job
from tests.support.servers import RedisServer

N = 20_000
BIG = 50_000
WORKER = [sys.executable, "-m", "jobcore", "worker", "bench.tasks:handlers"]


LIMITED = "fair, 1,000 accounts, limit 5 each"


def _cpu(r: redis.Redis) -> float:
    info: Any = r.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def _calls(r: redis.Redis) -> int:
    stats: Any = r.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k.startswith("cmdstat_") and "info" not in k)


async def fill(url: str, mode: str, n: int = N) -> None:
    q = jobcore.connect(url)
    accounts = 1000 if mode.startswith("fair, 1,000 accounts") else 1
    jobs = [
        Job(
            type="bench",
            args=BenchArgs(reservation_id=i, payload="x" * 64),
            account_id=1 + i % accounts,
            identity=Identity(account_number="a", org_id="o"),
        )
        for i in range(n)
    ]
    await q.enqueue_many(jobs)
    if mode != "plain":
        await q.set_fair("bench", True)
    if mode == LIMITED:
        await q.set_limit("bench", per_account=5)
    await q.close()


async def processed(url: str, job_type: str) -> int:
    q = jobcore.connect(url)
    try:
        t = (await q.stats()).types.get(job_type)
        return t.processed if t else 0
    finally:
        await q.close()


def cost(url: str, r: redis.Redis, mode: str, logs: Path) -> dict[str, float]:
    r.flushall()
    asyncio.run(fill(url, mode))
    cpu0, calls0 = _cpu(r), _calls(r)
    t0 = time.monotonic()
    proc = start_worker([*WORKER, "--url", url], url, logs, mode.replace(" ", "_").replace(",", ""))
    try:
        while asyncio.run(processed(url, "bench")) < N:
            if time.monotonic() - t0 > 300:
                raise RuntimeError(f"{mode}: not done in 300 s")
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
    finally:
        stop_worker(proc)
    cpu, calls = _cpu(r) - cpu0, _calls(r) - calls0
    return {"jobs_per_s": N / elapsed, "redis_cpu_us_per_job": cpu / N * 1e6, "commands_per_job": calls / N}


async def _delay_fill(url: str, fair: bool) -> None:
    q = jobcore.connect(url)
    big = [
        Job(type="fairlat", args=FairArgs(seq=-1), account_id=1, identity=Identity(account_number="a", org_id="o"))
        for _ in range(BIG)
    ]
    await q.enqueue_many(big)
    if fair:
        await q.set_fair("fairlat", True)
    await q.close()


def delay(url: str, r: redis.Redis, fair: bool, logs: Path) -> dict[str, float]:
    r.flushall()
    asyncio.run(_delay_fill(url, fair))
    proc = start_worker([*WORKER, "--url", url], url, logs, f"delay_{'fair' if fair else 'plain'}")
    try:
        while asyncio.run(processed(url, "fairlat")) < 1000:
            time.sleep(0.02)

        async def small() -> dict[int, float]:
            q = jobcore.connect(url)
            at: dict[int, float] = {}
            for a in range(20):
                job = Job(
                    type="fairlat",
                    args=FairArgs(seq=a),
                    account_id=2 + a,
                    identity=Identity(account_number="b", org_id="o"),
                )
                at[a] = time.time()
                await q.enqueue(job)
            await q.close()
            return at

        enqueued = asyncio.run(small())
        deadline = time.monotonic() + 120
        while r.llen("bench:fairlat") < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        marks = [m.decode().split() for m in r.lrange("bench:fairlat", 0, -1)]  # type: ignore[union-attr]
    finally:
        stop_worker(proc)
    waits = [float(t) - enqueued[int(s)] for s, t in marks]
    return {"started": len(waits), "p50_s": statistics.median(waits), "max_s": max(waits)}


def main() -> None:
    args = sys.argv[1:]
    out = Path(args[args.index("--out") + 1]) if "--out" in args else REPO / "bench" / "results" / "FAIRNESS.json"
    rounds = int(args[0]) if args and args[0].isdigit() else 3
    base = Path(tempfile.mkdtemp(prefix="jobcore-fair-"))
    modes = ["plain", "fair, one account", "fair, 1,000 accounts", LIMITED]
    got: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    delays: dict[str, list[dict[str, float]]] = {"plain": [], "fair": []}
    with RedisServer(base / "redis") as server:
        r = server.client()
        for k in range(rounds):
            order = modes[k % len(modes) :] + modes[: k % len(modes)]
            for mode in order:
                got[mode].append(cost(server.url, r, mode, base / "logs"))
                print(mode, got[mode][-1], flush=True)
            for fair in (k % 2 == 0, k % 2 == 1):
                d = delay(server.url, r, fair, base / "logs")
                delays["fair" if fair else "plain"].append(d)
                print("delay", "fair" if fair else "plain", d, flush=True)
    med = {m: {f: statistics.median(x[f] for x in rows) for f in rows[0]} for m, rows in got.items()}
    dmed = {m: {f: statistics.median(x[f] for x in rows) for f in rows[0]} for m, rows in delays.items()}
    out.write_text(json.dumps({"rounds": rounds, "cost": med, "delay": dmed, "runs": got, "delays": delays}, indent=2))
    plain = med["plain"]
    lines = [
        "# Fairness across accounts: cost and effect",
        "",
        f"`python -m bench.fairness {rounds}`: medians of {rounds} round(s), modes in rotating order; one",
        f"private redis-server, one `jobcore worker` (concurrency 10); {N:,} no-op jobs queued before the",
        "worker starts (the drain rate includes its start-up); Redis CPU and commands from just before it",
        "starts to just after it stopped. Only ratios within this run count.",
        "",
        "| mode | drain jobs/s | vs plain | Redis CPU µs/job | vs plain | commands/job |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for m, v in med.items():
        lines.append(
            f"| {m} | {v['jobs_per_s']:,.0f} | {v['jobs_per_s'] / plain['jobs_per_s']:.0%} "
            f"| {v['redis_cpu_us_per_job']:.1f} | {v['redis_cpu_us_per_job'] / plain['redis_cpu_us_per_job']:.2f}x "
            f"| {v['commands_per_job']:.1f} |"
        )
    lines += [
        "",
        f"A small account's job enqueued behind {BIG:,} queued jobs of one account (one worker, 1,000 of them",
        "done first; 20 small accounts, one job each): how long it waited to start.",
        "",
        "| type | p50 | max |",
        "|---|---:|---:|",
    ]
    for m, v in dmed.items():
        lines.append(f"| {m} | {v['p50_s']:.3f} s | {v['max_s']:.3f} s |")
    text = "\n".join(lines) + "\n"
    out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
