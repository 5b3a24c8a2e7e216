"""A/B of jobcore's hot paths between two source trees, in one run against one
private redis-server: ``python -m bench.ab OLD_TREE NEW_TREE [rounds]``.
Each round runs both trees in fresh processes, in alternating order; medians."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.servers import RedisServer

PROBE = r"""
import asyncio, json, sys, time
import redis
import jobcore
from jobcore import Handlers, Job, Worker
try:
    from jobcore.records import Outcome
except ImportError:  # a tree from before the house moved records out of jobcore.backend
    from jobcore.backend import Outcome

def redis_cpu():
    info = redis.Redis.from_url(sys.argv[1]).info("cpu")
    return info["used_cpu_sys"] + info["used_cpu_user"]

async def main(url):
    out = {}
    q = jobcore.connect(url)
    await q.register_types({"a": {}})
    await q.enqueue(Job(type="a", args={"n": 0}))
    n = 3000
    t = time.perf_counter()
    for i in range(n):
        await q.enqueue(Job(type="a", args={"n": i}))
    out["single"] = n / (time.perf_counter() - t)
    t = time.perf_counter()
    async def co(k):
        for i in range(50):
            await q.enqueue(Job(type="a", args={"n": i}))
    await asyncio.gather(*[co(k) for k in range(200)])
    out["concurrent"] = 10000 / (time.perf_counter() - t)
    jobs = [Job(type="a", args={"n": i}) for i in range(20000)]
    t = time.perf_counter()
    await q.enqueue_many(jobs)
    out["batch"] = 20000 / (time.perf_counter() - t)
    # settle() alone: 20,000 jobs taken 200 at a time, each batch acked in one call
    # (with a run time where the tree's Outcome carries one: the history's input).
    await q.register_types({"s": {}})
    await q.enqueue_many([Job(type="s", args={"n": i}) for i in range(20000)])
    took = {"took": 0.003} if "took" in Outcome.__struct_fields__ else {}
    spent, cpu0 = 0.0, redis_cpu()
    while batch := await q.fetch("bench", ["s"], 200, 0):
        outcomes = [Outcome("s", d.entry_id, "ack", d.attempt, "", **took) for d in batch]
        t = time.perf_counter()
        await q.settle("bench", outcomes)
        spent += time.perf_counter() - t
    out["settle"] = 20000 / spent
    out["settle_redis_us"] = (redis_cpu() - cpu0) / 20000 * 1e6
    h = Handlers()
    total = (await q.stats()).types["a"].pending
    done = 0
    @h.handler("a", dict)
    async def a(job):
        nonlocal done
        done += 1
    w = Worker(q, h, concurrency=50)
    cpu0 = redis_cpu()
    t = time.perf_counter()
    task = asyncio.create_task(w.run())
    while done < total:
        await asyncio.sleep(0.005)
    out["drain"] = total / (time.perf_counter() - t)
    out["drain_redis_us"] = (redis_cpu() - cpu0) / total * 1e6
    t = time.perf_counter()
    for _ in range(200):
        await q.dashboard(100)
    out["refresh_ms"] = (time.perf_counter() - t) / 200 * 1000
    await w.stop()
    await task
    await q.close()
    print(json.dumps(out))

asyncio.run(main(sys.argv[1]))
"""


def main() -> None:
    old, new = Path(sys.argv[1]), Path(sys.argv[2])
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    results: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    with RedisServer(Path(tempfile.mkdtemp(prefix="jobcore-ab-"))) as server:
        for r in range(rounds):
            order = [("old", old), ("new", new)] if r % 2 == 0 else [("new", new), ("old", old)]
            for name, tree in order:
                server.client().flushall()
                res = subprocess.run(
                    [sys.executable, "-c", PROBE, server.url],
                    env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                results[name].append(json.loads(res.stdout))
    keys = list(results["old"][0])
    print(f"{'workload':<14}{'old':>12}{'new':>12}{'new/old':>10}")
    for k in keys:
        o = statistics.median(x[k] for x in results["old"])
        n = statistics.median(x[k] for x in results["new"])
        print(f"{k:<14}{o:>12,.1f}{n:>12,.1f}{n / o:>10.2f}")


if __name__ == "__main__":
    main()
