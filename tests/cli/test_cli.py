"""The jobcore command, run as a user runs it: real processes, a private redis-server."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from jobcore import SyncQueue
from tests.support.cli import run_cli
from tests.support.servers import free_port

ENQUEUE_TIMEOUT = 30


def jc(env: dict[str, str], *args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    """The command with these arguments, run in this process (tests/support/cli.py)."""
    return run_cli([*(["--url", url] if url else []), *args], env, timeout=ENQUEUE_TIMEOUT)


def start_worker(env: dict[str, str], url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "jobcore", "--url", url, "worker", "jobcore.demo:handlers", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stats(env: dict[str, str], url: str) -> dict[str, Any]:
    """What `jobcore stats --json` prints, read in-process so polling stays cheap."""
    with SyncQueue(url) as q:
        return q.stats().to_dict()


def test_stats_json_matches_the_library(cli_env: dict[str, str], redis_url: str) -> None:
    jc(cli_env, "enqueue", "noop", "{}", "--count", "4", "--no-validate", url=redis_url)
    res = jc(cli_env, "stats", "--json", url=redis_url)
    assert res.returncode == 0, res.stderr
    printed = json.loads(res.stdout)
    now = stats(cli_env, redis_url)
    for row in (*printed["types"].values(), *now["types"].values()):
        assert row.pop("oldest_pending_age") >= 0
    assert printed["types"] == now["types"]
    assert printed["totals"]["pending"] == 4


def wait_for(pred: Any, timeout: float = 20.0, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def test_worker_runs_demo_launch_and_logs_the_six_fields(cli_env: dict[str, str], redis_url: str) -> None:
    worker = start_worker(cli_env, redis_url, "--log-format", "json", "--concurrency", "2")
    try:
        wait_for(lambda: stats(cli_env, redis_url)["workers"] == 1)
        res = jc(
            cli_env,
            "enqueue",
            "launch",
            '{"reservation_id": 7, "step_seconds": 0.05}',
            "--account-id",
            "12",
            "--account-number",
            "000123",
            "--org-id",
            "org-7",
            url=redis_url,
        )
        assert res.returncode == 0, res.stderr
        assert res.stdout.startswith("enqueued launch job ")
        job_id = res.stdout.split()[-1]
        wait_for(lambda: stats(cli_env, redis_url)["types"]["launch"]["processed"] == 1)
    finally:
        worker.send_signal(signal.SIGTERM)
        _out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    job_lines = [ln for ln in lines if ln.get("job_id") == job_id]
    assert [ln["message"] for ln in job_lines] == [
        "launching 1 x t3.small for reservation 7",
        "instances running; tagging them with reservation 7",
        "launch done",
    ]
    for ln in job_lines:
        assert (ln["account_id"], ln["account_number"], ln["org_id"], ln["job_type"], ln["reservation_id"]) == (
            12,
            "000123",
            "org-7",
            "launch",
            7,
        )
    assert any("stopping gracefully" in ln["message"] for ln in lines)


def test_text_log_format_carries_the_fields(cli_env: dict[str, str], redis_url: str) -> None:
    assert (
        jc(
            cli_env, "enqueue", "launch", '{"reservation_id": 9, "step_seconds": 0}', "--no-validate", url=redis_url
        ).returncode
        == 0
    )
    worker = start_worker(cli_env, redis_url)
    try:
        wait_for(lambda: stats(cli_env, redis_url)["types"]["launch"]["processed"] == 1)
    finally:
        worker.send_signal(signal.SIGINT)
        _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0
    done = next(line for line in err.splitlines() if "launch done" in line)
    for field in ("account_id=0", "account_number=", "org_id=", "job_id=", "job_type=launch", "reservation_id=9"):
        assert field in done


def test_enqueue_validates_against_the_published_schema(cli_env: dict[str, str], redis_url: str) -> None:
    res = jc(cli_env, "enqueue", "launch", '{"reservation_id": 1}', url=redis_url)
    assert res.returncode == 1
    assert res.stderr.strip().startswith("jobcore: error: no args schema known for job type 'launch'")
    assert "--no-validate" in res.stderr and "Traceback" not in res.stderr
    # A worker publishes the schemas; stop it so the jobs stay queued.
    worker = start_worker(cli_env, redis_url)
    wait_for(lambda: stats(cli_env, redis_url)["workers"] == 1)
    worker.send_signal(signal.SIGTERM)
    worker.communicate(timeout=30)
    bad = jc(cli_env, "enqueue", "launch", '{"reservation_id": "seven"}', url=redis_url)
    assert bad.returncode == 1
    assert bad.stderr.strip() == (
        "jobcore: error: args for 'launch' do not fit its schema at reservation_id: 'seven' is not of type 'integer'"
    )
    missing = jc(cli_env, "enqueue", "launch", "{}", url=redis_url)
    assert "'reservation_id' is a required property" in missing.stderr
    ok = jc(cli_env, "enqueue", "launch", '{"reservation_id": 3}', "--count", "25", "--json", url=redis_url)
    assert ok.returncode == 0 and len(json.loads(ok.stdout)) == 25
    assert stats(cli_env, redis_url)["types"]["launch"]["pending"] == 25


def test_enqueue_refuses_an_unknown_field_by_name(cli_env: dict[str, str], redis_url: str) -> None:
    """A typo'd field would run with the default in its place (issue 19 item 1): refused,
    against a worker's published schema and against --handlers, in one line."""
    worker = start_worker(cli_env, redis_url)
    wait_for(lambda: stats(cli_env, redis_url)["workers"] == 1)
    worker.send_signal(signal.SIGTERM)
    worker.communicate(timeout=30)
    known = "(its fields: `count`, `instance_type`, `reservation_id`, `step_seconds`)"
    typo = jc(cli_env, "enqueue", "launch", '{"reservation_id": 8, "instance_typ": "m5.24xlarge"}', url=redis_url)
    assert typo.returncode == 1 and typo.stdout == ""
    assert typo.stderr == (
        f"jobcore: error: args for 'launch' carry field(s) `instance_typ` that LaunchArgs does not know {known}\n"
    )
    bogus = jc(
        cli_env, "enqueue", "sleep", '{"seconds": 1, "bogus": 2}', "--handlers", "jobcore.demo:handlers", url=redis_url
    )
    assert bogus.returncode == 1 and bogus.stderr.count("\n") == 1
    assert "carry field(s) `bogus` that SleepArgs does not know (its fields: `seconds`)" in bogus.stderr
    assert stats(cli_env, redis_url)["types"]["launch"]["pending"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["enqueue", "noop", "{bad json"], "ARGS_JSON is not valid JSON"),
        (["enqueue", "noop", "[1, 2]"], "ARGS_JSON must be a JSON object, got list"),
    ],
)
def test_bad_input_is_one_clear_line(cli_env: dict[str, str], redis_url: str, args: list[str], message: str) -> None:
    res = jc(cli_env, *args, url=redis_url)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and message in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["enqueue", "noop", "{}", "--count", "zero"],
        ["worker", "x:y", "--concurrency", "0"],
        ["worker", "x:y", "--prefetch", "-1"],
        ["dead", "requeue", "noop"],
        ["failed", "purge", "noop", "1-0", "--all"],
        ["enqueue", "noop", "{}", "--no-validate", "--handlers", "jobcore.demo:handlers"],
        ["nosuch"],
        [],
    ],
)
def test_bad_flags_exit_2_without_traceback(cli_env: dict[str, str], args: list[str]) -> None:
    res = jc(cli_env, *args)
    assert res.returncode == 2
    assert "error:" in res.stderr and "Traceback" not in res.stderr


def test_unreachable_redis_is_one_clear_line(cli_env: dict[str, str]) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    for args in (["stats"], ["enqueue", "noop", "{}", "--no-validate"], ["dead", "list"]):
        res = jc(cli_env, *args, url=url)
        assert res.returncode == 1
        assert res.stderr.startswith("jobcore: error:") and "unreachable" in res.stderr
        assert res.stderr.count("\n") == 1


def test_bad_url_and_bad_handlers_are_clear(cli_env: dict[str, str], redis_url: str) -> None:
    res = jc(cli_env, "stats", url="http://example")
    assert res.returncode == 1 and "unsupported queue URL" in res.stderr
    res = jc(cli_env, "worker", "no_such_module:handlers", url=redis_url)
    assert res.returncode == 2 and "cannot import handlers module 'no_such_module'" in res.stderr
    res = jc(cli_env, "worker", "jobcore.demo:log", url=redis_url)
    assert res.returncode == 2 and "jobcore.demo:log is a Logger, not a jobcore.Handlers registry" in res.stderr
    res = jc(cli_env, "worker", "jobcore.demo:nosuch", url=redis_url)
    assert res.returncode == 2 and "module 'jobcore.demo' has no 'nosuch' (its registries: handlers)" in res.stderr
    res = jc(cli_env, "worker", "jobcore.demo:handlers", "--types", "noop,nope", url=redis_url)
    assert res.returncode == 2 and "no handler registered for type(s): nope" in res.stderr


def test_dead_and_failed_list_requeue_purge(cli_env: dict[str, str], redis_url: str, tmp_path: Path) -> None:
    jc(cli_env, "enqueue", "fail", '{"message": "disk full"}', "--count", "2", "--no-validate", url=redis_url)
    jc(cli_env, "enqueue", "sleep", '{"seconds": -5}', "--no-validate", url=redis_url)
    worker = start_worker(cli_env, redis_url)
    try:
        wait_for(
            lambda: (
                stats(cli_env, redis_url)["totals"]["failed"] == 2 and stats(cli_env, redis_url)["totals"]["dead"] == 1
            )
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=30)
    failed = json.loads(jc(cli_env, "failed", "list", "--json", url=redis_url).stdout)
    assert len(failed) == 2 and all("RuntimeError: disk full" in f["reason"] for f in failed)
    dead = json.loads(jc(cli_env, "dead", "list", "--json", url=redis_url).stdout)
    assert len(dead) == 1 and "args do not fit SleepArgs" in dead[0]["reason"] and dead[0]["job_type"] == "sleep"
    text = jc(cli_env, "dead", "list", url=redis_url).stdout
    assert dead[0]["id"] in text and "sleep" in text
    res = jc(cli_env, "failed", "requeue", "fail", failed[0]["id"], url=redis_url)
    assert res.returncode == 0 and "requeued 1 failed fail job(s)" in res.stdout
    assert stats(cli_env, redis_url)["types"]["fail"]["pending"] == 1
    res = jc(cli_env, "failed", "purge", "fail", "--all", url=redis_url)
    assert "purged 1 failed fail job(s)" in res.stdout
    res = jc(cli_env, "dead", "purge", "sleep", "999-0", url=redis_url)
    assert res.returncode == 1 and "1 id(s) were not found" in res.stderr
    res = jc(cli_env, "dead", "requeue", "sleep", "--all", url=redis_url)
    assert "requeued 1 dead sleep job(s)" in res.stdout
    s = stats(cli_env, redis_url)["types"]
    assert (s["sleep"]["pending"], s["sleep"]["dead"]) == (1, 0)


def test_stats_workers_in_flight_and_types(cli_env: dict[str, str], redis_url: str) -> None:
    worker = start_worker(cli_env, redis_url, "--concurrency", "3")
    try:
        wait_for(lambda: stats(cli_env, redis_url)["workers"] == 1)
        # Long enough that they still run when in-flight looks, a command or two later under load.
        jc(cli_env, "enqueue", "sleep", '{"seconds": 8}', "--count", "2", url=redis_url)
        wait_for(lambda: stats(cli_env, redis_url)["types"]["sleep"]["in_flight"] == 2)
        rows = json.loads(jc(cli_env, "in-flight", "--json", url=redis_url).stdout)
        assert [r["job_type"] for r in rows] == ["sleep", "sleep"]
        workers = json.loads(jc(cli_env, "workers", "--json", url=redis_url).stdout)
        assert workers[0]["concurrency"] == 3 and workers[0]["state"] == "alive"
        types = json.loads(jc(cli_env, "types", "--json", url=redis_url).stdout)
        assert set(types) == {"fail", "launch", "noop", "sleep"}
        assert types["sleep"]["$ref"] == "#/$defs/SleepArgs"
        table = jc(cli_env, "stats", url=redis_url).stdout
        assert "sleep" in table and "in flight" in table
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=30)
    s = stats(cli_env, redis_url)["types"]["sleep"]
    # They finished within the default grace period, and were settled once.
    assert (s["pending"], s["in_flight"], s["processed"]) == (0, 0, 2)


def test_sigterm_hands_unfinished_jobs_back(cli_env: dict[str, str], redis_url: str) -> None:
    worker = start_worker(cli_env, redis_url, "--grace", "0.5")
    try:
        wait_for(lambda: stats(cli_env, redis_url)["workers"] == 1)
        jc(cli_env, "enqueue", "sleep", '{"seconds": 60}', "--count", "2", url=redis_url)
        wait_for(lambda: stats(cli_env, redis_url)["types"]["sleep"]["in_flight"] == 2)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0
    assert err.count("job interrupted by stop; handing it back to the queue") == 2
    s = stats(cli_env, redis_url)
    assert (s["types"]["sleep"]["pending"], s["types"]["sleep"]["in_flight"], s["workers"]) == (2, 0, 0)


def test_metrics_endpoint_serves_prometheus_text(cli_env: dict[str, str], redis_url: str) -> None:
    port = free_port()
    worker = start_worker(cli_env, redis_url, "--metrics-port", str(port))
    try:
        wait_for(lambda: stats(cli_env, redis_url)["workers"] == 1)
        jc(cli_env, "enqueue", "noop", "{}", "--count", "3", url=redis_url)
        jc(cli_env, "enqueue", "fail", "{}", url=redis_url)

        def scraped() -> bool:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            return 'jobcore_jobs_total{job_type="noop",outcome="processed"} 3.0' in body and (
                'jobcore_jobs_total{job_type="fail",outcome="failed"} 1.0' in body
            )

        wait_for(scraped)
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert "jobcore_job_duration_seconds_bucket" in body and "jobcore_pending_jobs" in body
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=30)


def _fail_jobs(url: str, reasons: list[str]) -> None:
    """Jobs of type "fail" failed with ``reasons``, one each, as a worker would settle them."""
    import asyncio

    from jobcore import Job
    from jobcore.records import Outcome
    from jobcore.redis.backend import RedisQueue

    async def run() -> None:
        async with RedisQueue(url) as q:
            await q.register_types({"fail": {"type": "object"}})
            await q.enqueue_many([Job(type="fail", args={"n": i}) for i in range(len(reasons))])
            got = await q.fetch("w", ["fail"], len(reasons), 0)
            await q.settle("w", [Outcome("fail", d.entry_id, "fail", 1, r) for d, r in zip(got, reasons, strict=True)])

    asyncio.run(run())


def test_failed_groups_requeue_and_purge_by_group(cli_env: dict[str, str], redis_url: str) -> None:
    _fail_jobs(
        redis_url, [f"Traceback ...\nTimeoutError: account {i} took {30 + i}.5s" for i in range(3)] + ["KeyError: 'x'"]
    )
    res = jc(cli_env, "failed", "groups", url=redis_url)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 2 and "TimeoutError: account <n> took <n>s" in lines[0] and "KeyError: <str>" in lines[1]
    groups = json.loads(jc(cli_env, "failed", "groups", "fail", "--json", url=redis_url).stdout)
    assert [(g["count"], g["key"]) for g in groups] == [(3, lines[0].split()[0]), (1, lines[1].split()[0])]
    assert jc(cli_env, "dead", "groups", url=redis_url).stdout == "none\n"

    res = jc(cli_env, "failed", "requeue", "fail", "--group", groups[0]["key"], url=redis_url)
    assert res.returncode == 0 and f"requeued 3 failed fail job(s) of group {groups[0]['key']}" in res.stdout
    assert stats(cli_env, redis_url)["types"]["fail"]["pending"] == 3
    res = jc(cli_env, "failed", "purge", "fail", "--group", groups[1]["key"], url=redis_url)
    assert res.returncode == 0 and "purged 1 failed fail job(s)" in res.stdout
    assert stats(cli_env, redis_url)["types"]["fail"]["failed_kept"] == 0

    gone = jc(cli_env, "failed", "purge", "fail", "--group", groups[1]["key"], url=redis_url)
    assert gone.returncode == 1 and gone.stderr.count("\n") == 1
    assert f"no failed group '{groups[1]['key']}' of type 'fail'" in gone.stderr and "Traceback" not in gone.stderr
    both = jc(cli_env, "failed", "requeue", "fail", "1-0", "--group", "abc", url=redis_url)
    assert both.returncode == 2 and "give ids, --all or --group KEY: one of them" in both.stderr
    usage = jc(cli_env, "failed", "requeue", "fail", "--all", "--group", "abc", url=redis_url)
    assert usage.returncode == 2 and "not allowed with argument" in usage.stderr and "Traceback" not in usage.stderr


def test_stats_history_shows_what_a_worker_settled(cli_env: dict[str, str], redis_url: str) -> None:
    jc(cli_env, "enqueue", "noop", "{}", "--count", "20", "--no-validate", url=redis_url)
    jc(cli_env, "enqueue", "fail", '{"message": "no"}', "--count", "2", "--no-validate", url=redis_url)
    worker = start_worker(cli_env, redis_url)
    try:
        wait_for(lambda: stats(cli_env, redis_url)["totals"]["processed"] == 20)
        wait_for(lambda: stats(cli_env, redis_url)["totals"]["failed"] == 2)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=30)
    res = jc(cli_env, "stats", "--history", "--json", "--minutes", "5", url=redis_url)
    assert res.returncode == 0, res.stderr
    h = json.loads(res.stdout)
    assert h["minutes"] == 5 and len(h["types"]["noop"]["minutes"]) == 5
    noop, fail = h["types"]["noop"], h["types"]["fail"]
    assert (noop["processed"], noop["failed"], noop["runs"]) == (20, 0, 20)
    assert (fail["processed"], fail["failed"], fail["runs"]) == (0, 2, 2)
    assert noop["p50_ms"] is not None and noop["p95_ms"] >= noop["p50_ms"]
    text = jc(cli_env, "stats", "--history", "--type", "noop", url=redis_url).stdout
    lines = text.splitlines()
    assert lines[0].startswith("last 60 minute(s) up to ") and lines[2].split()[:5] == ["noop", "20", "0", "0", "20"]
    assert not any(line.startswith("fail ") or " fail " in line for line in lines) and "per minute" in text
    for bad in ("0", "1441", "x"):
        res = jc(cli_env, "stats", "--history", "--minutes", bad, url=redis_url)
        assert res.returncode == 2 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


def test_why_explains_in_sentences(cli_env: dict[str, str], redis_url: str) -> None:
    jc(cli_env, "enqueue", "launch", '{"reservation_id": 7}', "--count", "3", "--no-validate", url=redis_url)
    res = jc(cli_env, "why", "launch", url=redis_url)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("3 job(s) of launch wait, the oldest for ")
    assert (
        lines[1] == "no live worker serves launch: its jobs wait until one starts (jobcore worker ... --types launch)"
    )
    as_json = json.loads(jc(cli_env, "why", "launch", "--json", url=redis_url).stdout)
    assert as_json["job_type"] == "launch" and as_json["sentences"][1] == lines[1]
    job = jc(cli_env, "why", "--job", "0123abcd", url=redis_url)
    assert job.returncode == 0 and "job 0123abcd is not in flight" in job.stdout
    usage = jc(cli_env, "why", url=redis_url)
    assert usage.returncode == 2 and "name a TYPE or a job with --job ID" in usage.stderr
    assert usage.stderr.count("\n") == 1 and "Traceback" not in usage.stderr


def test_why_of_a_pending_job_in_flight_by_type_and_history_of_an_unknown_type(
    cli_env: dict[str, str], redis_url: str
) -> None:
    """Issue 19 item 21: `why --job` of a pending job finds its type; `in-flight`
    takes --type and shows account_number and org_id; an unknown type is refused."""
    (waiting,) = json.loads(
        jc(cli_env, "enqueue", "launch", '{"reservation_id": 7}', "--json", "--no-validate", url=redis_url).stdout
    )
    res = jc(cli_env, "why", "--job", waiting, url=redis_url)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == f"job {waiting} of launch is pending: it waits for the reasons below"
    assert lines[1].startswith("1 job(s) of launch wait") and lines[2].startswith("no live worker serves launch")
    assert json.loads(jc(cli_env, "why", "--job", waiting, "--json", url=redis_url).stdout)["job_type"] == "launch"
    _one_line_error(
        jc(cli_env, "stats", "--history", "--type", "nosuch", url=redis_url), 1, "unknown job type 'nosuch'"
    )
    worker = start_worker(cli_env, redis_url, "--concurrency", "4", "--grace", "0.5")
    try:
        ident = ("--account-number", "ACC-1", "--org-id", "org-9")
        jc(cli_env, "enqueue", "sleep", '{"seconds": 30}', "--count", "2", *ident, url=redis_url)
        jc(cli_env, "enqueue", "launch", '{"reservation_id": 8, "step_seconds": 30}', url=redis_url)
        wait_for(lambda: stats(cli_env, redis_url)["types"]["sleep"]["in_flight"] == 2)
        wait_for(lambda: stats(cli_env, redis_url)["types"]["launch"]["in_flight"] == 1)
        rows = json.loads(jc(cli_env, "in-flight", "--type", "sleep", "--json", url=redis_url).stdout)
        assert [(r["job_type"], r["account_number"], r["org_id"]) for r in rows] == [("sleep", "ACC-1", "org-9")] * 2
        text = jc(cli_env, "in-flight", "--type", "sleep", url=redis_url).stdout.splitlines()
        assert len(text) == 2 and all(" account_number=ACC-1 org_id=org-9 " in line for line in text), text
        both = jc(cli_env, "in-flight", "--type", "sleep", "--type", "launch", "--limit", "2", url=redis_url)
        assert len(both.stdout.splitlines()) == 2 and "2 of 3 jobs in flight shown" in both.stderr
        _one_line_error(jc(cli_env, "in-flight", "--type", "nosuch", url=redis_url), 1, "unknown job type 'nosuch'")
        # 2 of 4 slots... sleep runs, nothing of it waits: still a sentence.
        why = jc(cli_env, "why", "sleep", url=redis_url).stdout.splitlines()
        assert why[0].startswith("nothing of sleep waits; 2 in flight, the oldest taken "), why
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=30)


# ---- operator controls: pause / resume, find, cancel --------------------------


def _one_line_error(res: subprocess.CompletedProcess[str], code: int, says: str) -> None:
    assert res.returncode == code, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in res.stderr, res.stderr


def test_pause_and_resume_show_in_stats_and_unknown_types_are_refused(cli_env: dict[str, str], redis_url: str) -> None:
    jc(cli_env, "enqueue", "noop", "{}", "--count", "3", "--no-validate", url=redis_url)
    res = jc(cli_env, "pause", "noop", url=redis_url)
    assert res.returncode == 0 and "paused 'noop'" in res.stdout, res.stderr
    shown = jc(cli_env, "stats", url=redis_url).stdout
    assert "type 'noop' is paused: workers take none of its jobs until it is resumed" in shown
    assert stats(cli_env, redis_url)["types"]["noop"]["paused"] is True
    worker = start_worker(cli_env, redis_url, "--types", "noop")
    try:
        wait_for(lambda: stats(cli_env, redis_url)["workers"] == 1)
        time.sleep(1.5)
        assert stats(cli_env, redis_url)["types"]["noop"]["pending"] == 3
        res = jc(cli_env, "resume", "noop", url=redis_url)
        assert res.returncode == 0 and "resumed 'noop'" in res.stdout, res.stderr
        wait_for(lambda: stats(cli_env, redis_url)["types"]["noop"]["processed"] == 3)
        assert "paused" not in jc(cli_env, "stats", url=redis_url).stdout
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    _one_line_error(jc(cli_env, "pause", "nope", url=redis_url), 1, "unknown job type 'nope'")
    _one_line_error(jc(cli_env, "resume", "nope", url=redis_url), 1, "unknown job type 'nope'")


def test_find_prints_where_each_job_is_with_its_six_fields(cli_env: dict[str, str], redis_url: str) -> None:
    res = jc(cli_env, "enqueue", "noop", "{}", "--account-id", "42", "--org-id", "org-9", "--account-number", "000123",
             "--no-validate", "--json", url=redis_url)  # fmt: skip
    (job_id,) = json.loads(res.stdout)
    res = jc(cli_env, "find", job_id, url=redis_url)
    assert res.returncode == 0, res.stderr
    (line,) = res.stdout.strip().splitlines()
    assert line.startswith("pending (entry ")
    for part in ("account_id=42", "account_number=000123", "org_id=org-9", f"job_id={job_id}", "job_type=noop"):
        assert part in line
    # Pending jobs are searched by job id only.
    assert json.loads(jc(cli_env, "find", "account:42", "type:noop", "--json", url=redis_url).stdout) == []
    assert jc(cli_env, "find", "account:42", url=redis_url).stdout.startswith("no job matches")
    (hit,) = json.loads(jc(cli_env, "find", job_id, "org:org-9", "--json", url=redis_url).stdout)
    assert (hit["where"], hit["account_number"], hit["job_id"]) == ("pending", "000123", job_id)
    res = jc(cli_env, "find", "0000000000008000800000000000000a", url=redis_url)
    assert res.returncode == 0 and "not found in flight, dead or failed, nor pending in the window" in res.stdout
    assert "processed" not in res.stdout  # nothing kept says so
    _one_line_error(jc(cli_env, "find", "colour:red", url=redis_url), 2, "unknown find word 'colour:red'")
    _one_line_error(jc(cli_env, "find", "account:x", url=redis_url), 2, "account: takes a whole number")
    _one_line_error(jc(cli_env, "find", "xyz", url=redis_url), 2, "not a job id")


def test_cancel_a_60s_sleep_job_and_say_so_for_others(cli_env: dict[str, str], redis_url: str) -> None:
    worker = start_worker(cli_env, redis_url, "--types", "sleep", "--concurrency", "3", "--grace", "0.5")
    try:
        res = jc(cli_env, "enqueue", "sleep", '{"seconds": 60}', "--count", "2", "--no-validate", "--json",
                 url=redis_url)  # fmt: skip
        stuck, other = json.loads(res.stdout)
        wait_for(lambda: stats(cli_env, redis_url)["types"]["sleep"]["in_flight"] == 2)
        asked = time.monotonic()
        res = jc(cli_env, "cancel", stuck[:8], url=redis_url)
        assert res.returncode == 0 and f"job {stuck} (sleep) cancelled on worker " in res.stdout, res.stderr
        wait_for(lambda: stats(cli_env, redis_url)["types"]["sleep"]["failed"] == 1, timeout=10)
        assert time.monotonic() - asked < 10
        (failed,) = json.loads(jc(cli_env, "failed", "list", "--type", "sleep", "--json", url=redis_url).stdout)
        assert (failed["job_id"], failed["reason"]) == (stuck, "cancelled by operator")
        running = json.loads(jc(cli_env, "in-flight", "--json", url=redis_url).stdout)
        assert [r["job_id"] for r in running] == [other]
        res = jc(cli_env, "cancel", stuck, url=redis_url)
        assert res.returncode == 1 and "is not in flight: it is failed (id " in res.stdout
        assert "cancelled by operator; nothing was cancelled" in res.stdout
        res = jc(cli_env, "find", stuck, url=redis_url)
        assert res.stdout.startswith("failed (id ") and "reason=cancelled by operator" in res.stdout
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    res = jc(cli_env, "enqueue", "noop", "{}", "--no-validate", "--json", url=redis_url)
    (pending,) = json.loads(res.stdout)
    res = jc(cli_env, "cancel", pending, url=redis_url)
    assert res.returncode == 1 and "it is pending (not started yet)" in res.stdout
    res = jc(cli_env, "cancel", "0000000000008000800000000000000a", url=redis_url)
    assert res.returncode == 1 and "was never enqueued" in res.stdout
    _one_line_error(jc(cli_env, "cancel", "xyz", url=redis_url), 2, "not a job id")
    _one_line_error(jc(cli_env, "cancel", "0190c4e", url=redis_url), 2, "too short")


def test_durations_print_one_way() -> None:
    """The CLI's ages (oldest, running=, heartbeat ... ago) read as the console's do."""
    from jobcore.display import duration

    assert [duration(s) for s in (None, -1.0, 0.44, 59.94, 90.0, 3599.9, 7380.0, 273_600.0)] == [
        "-",
        "0.0s",
        "0.4s",
        "59.9s",
        "1m30s",
        "59m59s",
        "2h03m",
        "3d04h",
    ]


def test_the_parser_imports_without_the_commands() -> None:
    """jobconsole takes the parser; the commands (and what they import) stay unloaded."""
    code = (
        "import sys; from jobcore.cli.parser import CommandLineParser, build_parser; build_parser(); "
        "print(sorted(m for m in sys.modules if m.startswith('jobcore.cli')))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.stdout.split() == ["['jobcore.cli',", "'jobcore.cli.parser']"], res.stderr


@pytest.mark.parametrize(
    "args", [("worker", "jobcore.demo:handlers"), ("enqueue", "noop", "{}"), ("stats",)], ids=lambda a: a[0]
)
def test_memory_url_is_refused_by_every_command_with_one_line(cli_env: dict[str, str], args: tuple[str, ...]) -> None:
    """A memory:// queue lives inside one process: a worker on it serves nobody, an
    enqueue reaches nobody. Refused before anything runs, in one line."""
    res = jc(cli_env, *args, url="memory://")
    assert res.returncode == 1, res.stdout + res.stderr
    assert res.stderr.count("\n") == 1 and "memory:// is a queue inside one process" in res.stderr, res.stderr
    assert res.stdout == ""
