"""The queue-wide exporter (issue 22) on every backend and topology: what a
scrape shows, parsed with prometheus-client's own parser; every known type has
every per-type series; Redis down keeps it serving with jobcore_up 0."""

from __future__ import annotations

import asyncio
import contextlib
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

import jobcore
from jobcore import Job
from jobcore.records import Outcome
from jobcore.views.exporter import QueueCollector, Reader, serve
from tests.support.cli import run_cli
from tests.support.servers import RedisServer, free_port

PER_TYPE = (
    "jobcore_pending_jobs",
    "jobcore_in_flight_jobs",
    "jobcore_oldest_pending_age_seconds",
    "jobcore_processed_jobs",
    "jobcore_failed_jobs",
    "jobcore_dead_jobs",
    "jobcore_type_paused",
    "jobcore_type_served",
    "jobcore_type_workers",
)


def scrape(port: int, openmetrics: bool = False) -> str:
    headers = {"Accept": "application/openmetrics-text; version=1.0.0"} if openmetrics else {}
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=headers)
    with urllib.request.urlopen(req, timeout=5) as resp:
        return str(resp.read().decode())


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, labels) -> value, from Prometheus text."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@contextlib.contextmanager
def serving(collector: QueueCollector) -> Iterator[int]:
    port = free_port()
    server = serve(collector, "127.0.0.1", port)
    try:
        yield port
    finally:
        server.shutdown()


async def test_a_scrape_shows_every_type_with_every_series(queue: jobcore.Queue) -> None:
    await queue.register_types({"launch": {"type": "object"}, "sleep": {"type": "object"}})
    await queue.enqueue_many([Job(type="launch", args={"n": n}) for n in range(6)])
    await queue.enqueue(Job(type="idle", args={"n": 0}))
    got = await queue.fetch("w1", ["launch"], 4, 0)
    await queue.settle(
        "w1",
        [
            Outcome("launch", got[0].entry_id, "ack", 1),
            Outcome("launch", got[1].entry_id, "fail", 1, "boom"),
            Outcome("launch", got[2].entry_id, "dead", 1, "bad"),
        ],
    )
    await queue.requeue("failed", "launch")  # lowers `failed`: the counter must not go down
    await queue.heartbeat({"id": "w1", "types": ["launch"]}, 15_000)
    await queue.pause("idle")
    collector = QueueCollector()
    collector.update(await queue.dashboard(0))
    with serving(collector) as port:
        text = scrape(port)
        om = scrape(port, openmetrics=True)
    got_samples = samples(text)

    def value(name: str, job_type: str) -> float:
        return got_samples[name, (("job_type", job_type),)]

    assert got_samples["jobcore_up", ()] == 1
    for t in ("launch", "sleep", "idle"):  # sleep: known (served, never enqueued), zeros included
        for name in PER_TYPE:
            suffix = "_total" if name in ("jobcore_processed_jobs", "jobcore_failed_jobs") else ""
            assert (name + suffix, (("job_type", t),)) in got_samples, (name, t)
    assert value("jobcore_pending_jobs", "launch") == 3  # 2 never taken + 1 requeued
    assert value("jobcore_in_flight_jobs", "launch") == 1
    assert value("jobcore_processed_jobs_total", "launch") == 1
    assert value("jobcore_failed_jobs_total", "launch") == 1
    assert value("jobcore_dead_jobs", "launch") == 1
    assert value("jobcore_oldest_pending_age_seconds", "launch") >= 0
    assert value("jobcore_pending_jobs", "sleep") == 0 and value("jobcore_oldest_pending_age_seconds", "sleep") == 0
    assert value("jobcore_type_paused", "idle") == 1 and value("jobcore_type_paused", "launch") == 0
    assert value("jobcore_type_served", "launch") == 1 and value("jobcore_type_served", "idle") == 0
    assert value("jobcore_type_workers", "launch") == 1
    assert got_samples["jobcore_workers", (("state", "alive"),)] == 1
    assert got_samples["jobcore_workers", (("state", "lost"),)] == 0
    assert om.rstrip().endswith("# EOF")
    assert {f.name for f in openmetrics_families(om)} >= {"jobcore_pending_jobs", "jobcore_processed_jobs"}


async def test_the_exporter_keeps_serving_with_up_0_while_redis_is_down(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", appendonly=True)
    server.start()
    q = jobcore.connect(server.url)
    collector = QueueCollector()
    try:
        await q.enqueue(Job(type="launch", args={"n": 1}))
        with serving(collector) as port:
            reading = asyncio.ensure_future(Reader(q, collector).forever(0.2))
            await until(lambda: samples(scrape(port)).get(("jobcore_up", ())) == 1)
            server.stop()
            await until(lambda: samples(scrape(port)).get(("jobcore_up", ())) == 0)
            down = samples(scrape(port))
            assert down["jobcore_pending_jobs", (("job_type", "launch"),)] == 1  # the last numbers, kept
            assert down["jobcore_exporter_read_age_seconds", ()] > 0
            server.start()
            await until(lambda: samples(scrape(port)).get(("jobcore_up", ())) == 1, timeout=20)
            reading.cancel()
    finally:
        await q.close()
        server.cleanup()


async def until(check: Any, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await loop.run_in_executor(None, check):
        if loop.time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.1)


def test_the_exporter_command_serves_on_127_0_0_1_and_says_so(cli_env: dict[str, str], redis_url: str) -> None:
    import subprocess
    import sys

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobcore", "-q", "--url", redis_url, "exporter", "--port", str(port), "--interval", "1"],
        env=cli_env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert f"serving http://127.0.0.1:{port}/metrics" in line
        text = scrape(port)
        assert samples(text)["jobcore_up", ()] == 1
        taken = run_cli(["-q", "--url", redis_url, "exporter", "--port", str(port)], cli_env, timeout=30)
        assert taken.returncode == 1 and f"cannot serve metrics on 127.0.0.1:{port}" in taken.stderr
        assert len(taken.stderr.strip().splitlines()) == 1
    finally:
        proc.terminate()
        proc.wait(10)


def test_readmes_alert_rules_name_only_what_the_exporter_serves(repo_root: Path) -> None:
    import yaml

    text = (repo_root / "README.md").read_text()
    block = re.search(r"```yaml\n(# jobcore alert rules\n.*?)```", text, re.S)
    assert block, "README has the alert rules block"
    rules = yaml.safe_load(block.group(1))["groups"][0]["rules"]
    assert len(rules) >= 3
    collector = QueueCollector()
    served = {"jobcore_up", "jobcore_exporter_read_age_seconds", "jobcore_workers", *PER_TYPE}
    for rule in rules:
        assert {"alert", "expr", "for", "annotations"} <= set(rule), rule
        names = set(re.findall(r"\bjobcore_[a-z_]+", rule["expr"]))
        assert names and all(n.removesuffix("_total") in served for n in names), names
    assert collector is not None
    scrape_cfg = re.search(r"```yaml\n(# Prometheus scrape config\n.*?)```", text, re.S)
    assert scrape_cfg and yaml.safe_load(scrape_cfg.group(1))["scrape_configs"][0]["static_configs"]
