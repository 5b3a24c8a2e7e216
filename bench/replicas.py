"""The cost of replica-confirmed enqueue: single and batch enqueue with
``replicas=0`` and ``replicas=1`` against the same primary + replica, in one
run, alternating: ``python -m bench.replicas [rounds]``."""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jobcore
from jobcore import Job
from tests.support.servers import RedisServer


async def measure(url: str, replicas: int) -> tuple[float, float]:
    q = jobcore.connect(url, replicas=replicas)
    await q.enqueue(Job(type="a", args={"n": 0}))
    n = 2000
    t = time.perf_counter()
    for i in range(n):
        await q.enqueue(Job(type="a", args={"n": i}))
    single = n / (time.perf_counter() - t)
    jobs = [Job(type="a", args={"n": i}) for i in range(20000)]
    t = time.perf_counter()
    await q.enqueue_many(jobs)
    batch = 20000 / (time.perf_counter() - t)
    await q.close()
    return single, batch


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    base = Path(tempfile.mkdtemp(prefix="jobcore-replicas-"))
    with RedisServer(base / "primary") as primary:
        replica = RedisServer(base / "replica", extra_args=["--replicaof", "127.0.0.1", str(primary.port)])
        with replica:
            while replica.client().info("replication").get("master_link_status") != "up":
                time.sleep(0.05)
            got: dict[int, list[tuple[float, float]]] = {0: [], 1: []}
            for r in range(rounds):
                for n in (0, 1) if r % 2 == 0 else (1, 0):
                    primary.client().flushall()
                    got[n].append(asyncio.run(measure(primary.url, n)))
    print(f"{'replicas':<10}{'single/s':>12}{'batch/s':>12}")
    for n in (0, 1):
        s = statistics.median(x[0] for x in got[n])
        b = statistics.median(x[1] for x in got[n])
        print(f"{n:<10}{s:>12,.0f}{b:>12,.0f}")


if __name__ == "__main__":
    main()
