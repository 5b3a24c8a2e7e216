"""The cost of enqueue-once keys, beside arq's job-id dedup (the peer here
that has one: ``enqueue_job(_job_id=...)``), in one run: ``python -m bench.once
[rounds] [n]``. For each mode: Redis memory per job (INFO used_memory without
client buffers) after ``n`` jobs enqueued in batches of 1,000 (arq has no batch
API: one call each); single-call enqueue rate (2,000 calls); and the rate of
retries that find their key held (every job enqueued again with its key).
Modes alternate order every round; medians over the rounds."""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis

import jobcore
from jobcore import Job
from tests.support.servers import RedisServer

MODES = ("jobcore, no key", "jobcore, a key each", "arq, no job id", "arq, _job_id each")
SINGLE = 2000


def _data_memory(r: redis.Redis) -> int:
    info: Any = r.info("memory")
    return int(info["used_memory"]) - int(info.get("mem_clients_normal", 0))


def _job(i: int) -> Job[Any]:
    return Job(type="bench", args={"n": i}, account_id=i % 100)


async def _jobcore(url: str, r: redis.Redis, n: int, keyed: bool) -> dict[str, float]:
    q = jobcore.connect(url)
    await q.enqueue(_job(0))  # the type listed, scripts loaded
    r.flushall()
    await asyncio.sleep(0.1)
    before = _data_memory(r)
    t = time.perf_counter()
    for s in range(0, n, 1000):
        batch = [_job(i) for i in range(s, min(n, s + 1000))]
        await q.enqueue_many(batch, keys=[f"order-{i}" for i in range(s, s + len(batch))] if keyed else None)
    batch_rate = n / (time.perf_counter() - t)
    per_job = (_data_memory(r) - before) / n
    t = time.perf_counter()
    for i in range(n, n + SINGLE):
        await q.enqueue(_job(i), key=f"order-{i}" if keyed else None)
    single = SINGLE / (time.perf_counter() - t)
    retry = 0.0
    if keyed:
        t = time.perf_counter()
        for s in range(0, n, 1000):
            batch = [_job(i) for i in range(s, min(n, s + 1000))]
            ids = await q.enqueue_many(batch, keys=[f"order-{i}" for i in range(s, s + len(batch))])
            assert all(i != j.id for i, j in zip(ids, batch, strict=True))  # every one held: nothing added
        retry = n / (time.perf_counter() - t)
    await q.close()
    return {"bytes": per_job, "batch": batch_rate, "single": single, "retry": retry}


async def _arq(url: str, r: redis.Redis, n: int, keyed: bool) -> dict[str, float]:
    from arq import create_pool
    from arq.connections import RedisSettings

    pool = await create_pool(RedisSettings.from_dsn(url))
    r.flushall()
    await asyncio.sleep(0.1)
    before = _data_memory(r)
    t = time.perf_counter()
    for i in range(n):
        await pool.enqueue_job("bench_job", i, _job_id=f"order-{i}" if keyed else uuid.uuid4().hex)
    batch_rate = n / (time.perf_counter() - t)
    per_job = (_data_memory(r) - before) / n
    t = time.perf_counter()
    for i in range(n, n + SINGLE):
        await pool.enqueue_job("bench_job", i, _job_id=f"order-{i}" if keyed else uuid.uuid4().hex)
    single = SINGLE / (time.perf_counter() - t)
    retry = 0.0
    if keyed:
        t = time.perf_counter()
        for i in range(n):
            assert await pool.enqueue_job("bench_job", i, _job_id=f"order-{i}") is None  # held: nothing added
        retry = n / (time.perf_counter() - t)
    await pool.aclose()
    return {"bytes": per_job, "batch": batch_rate, "single": single, "retry": retry}


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    got: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
    with RedisServer(Path(tempfile.mkdtemp(prefix="jobcore-once-"))) as server:
        r = server.client()
        for k in range(rounds):
            for mode in MODES if k % 2 == 0 else tuple(reversed(MODES)):
                run = _arq if mode.startswith("arq") else _jobcore
                got[mode].append(asyncio.run(run(server.url, r, n, "each" in mode)))
                r.flushall()
        version = r.info("server")["redis_version"]
    lines = [
        f"# Enqueue-once keys: cost (`python -m bench.once {rounds} {n}`)",
        "",
        f"Redis {version}, {n:,} jobs per mode, medians of {rounds} rounds. arq's jobs are one call each "
        "(it has no batch API), so its batch column is its single-call rate over the whole fill.",
        "",
        "| mode | bytes per job | batch enqueue jobs/s | single enqueue jobs/s | held-key retries/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for mode in MODES:
        med = {f: statistics.median(x[f] for x in got[mode]) for f in ("bytes", "batch", "single", "retry")}
        retry = f"{med['retry']:,.0f}" if med["retry"] else "-"
        lines.append(f"| {mode} | {med['bytes']:,.0f} | {med['batch']:,.0f} | {med['single']:,.0f} | {retry} |")
    text = "\n".join(lines) + "\n"
    print(text)
    (Path(__file__).parent / "results" / "ONCE.md").write_text(text)


if __name__ == "__main__":
    main()
