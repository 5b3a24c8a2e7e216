"""Smoke test of the benchmark harness: jobcore's adapter, quick enqueue and drain
workloads, on the suite's private redis. Checks the results are sane, not fast."""

from __future__ import annotations

from pathlib import Path

import redis

from bench import cluster as cluster_bench
from bench import workloads
from bench.adapters import load
from bench.common import make_jobs
from tests.support.servers import RedisCluster


def test_bench_quick_enqueue_and_drain_for_jobcore(redis_url: str, tmp_path: Path) -> None:
    params = workloads.Params(enqueue_n=300, drain_n=300, drain_cap_s=60.0)
    adapter = load("jobcore", redis_url)
    r = redis.Redis.from_url(redis_url)
    try:
        enq = workloads.enqueue(adapter, r, params)
        assert enq["n"] == 300
        assert enq["single_jobs_per_s"] > 0
        assert enq["batch_jobs_per_s"] > 0

        argv = adapter.variants()[0].argv
        drained = workloads.drain(adapter, r, [argv], params.drain_n, params.drain_cap_s, tmp_path, "smoke")
        assert drained["error"] == ""
        assert drained["done"] == 300
        assert not drained["partial"]
        assert drained["jobs_per_s"] > 0
        assert drained["startup_s"] >= 0  # a first completion was seen
    finally:
        adapter.close()
        r.close()


def test_bench_cluster_shapes_on_the_suites_cluster(
    redis_cluster: RedisCluster, cluster_url: str, tmp_path: Path
) -> None:
    target = cluster_bench.Target("cluster", cluster_url, redis_cluster.masters(), redis_cluster.flushall)
    data = make_jobs(300)
    for shape in ("types", "hot"):
        row = cluster_bench.run_shape(target, shape, data, 1, tmp_path)
        assert row["drain"]["done"] == 300
        assert row["concurrent_enqueue_per_s"] > 0 and row["batch_enqueue_per_s"] > 0
        assert row["commands_per_job"] > 1  # at least the XADD and the fetch
        assert len(row["cpu_share"]) == 3
    # The three partitions landed on three masters.
    assert len(set(row["partitions"].values())) == 3
