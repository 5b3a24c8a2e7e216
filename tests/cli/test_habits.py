"""The CLI meets people's habits: options after the command, --version, help
with defaults, exit 2 for usage and 1 for runtime errors, job ids wherever an
entry id is taken, lists that say when they cut, and an enqueue that can check
args against the caller's own handlers."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

import jobcore
from jobcore import Job
from jobcore.redis.backend import RedisQueue

from .test_cli import jc, start_worker


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return jc(env, *args)


@pytest.fixture
def fresh(redis_url: str) -> str:
    """The suite's server, flushed (redis_url does that)."""
    return redis_url


def test_global_options_go_before_or_after_the_command(cli_env: dict[str, str], fresh: str) -> None:
    before = run(cli_env, "--url", fresh, "stats", "--json")
    after = run(cli_env, "stats", "--json", "--url", fresh)
    assert before.returncode == after.returncode == 0, after.stderr
    assert json.loads(before.stdout)["totals"] == json.loads(after.stdout)["totals"]
    # The value after the command wins; it works a level down too.
    res = run(cli_env, "--url", "redis://127.0.0.1:1/0", "failed", "list", "--url", fresh, "--namespace", "other")
    assert res.returncode == 0 and res.stdout == "none\n", res.stderr
    assert run(cli_env, "--version").stdout.startswith(f"jobcore {jobcore.__version__}")


def test_help_describes_each_command_and_says_each_default(cli_env: dict[str, str]) -> None:
    res = run(cli_env, "worker", "--help")
    assert res.returncode == 0
    flat = " ".join(res.stdout.split())
    assert "run a worker for the handlers in MODULE:HANDLERS" in flat
    for said in ("jobs run at once (default: 10)", "(default: 15.0)", "(default: 127.0.0.1)", "(default: 1000)"):
        assert said in flat, said
    flat = " ".join(run(cli_env, "in-flight", "--help").stdout.split())
    assert "rows shown at most (default: 50)" in flat
    flat = " ".join(run(cli_env, "failed", "requeue", "--help").stdout.split())
    assert "by id (entry id or job id), --all or --group KEY" in flat


async def test_requeue_and_purge_take_the_job_id_too(cli_env: dict[str, str], fresh: str) -> None:
    q = RedisQueue(fresh)
    try:
        jobs = [Job(type="t", args={"n": i}) for i in range(3)]
        await q.enqueue_many(jobs)
        got = await q.fetch("w", ["t"], 3, 0)
        await q.settle("w", [jobcore.records.Outcome("t", d.entry_id, "fail", 1, "boom") for d in got])
        rows = await q.failed("t")
        by_job = {r.job_id: r.id for r in rows}
        assert set(by_job) == {str(j.id) for j in jobs}
    finally:
        await q.close()
    first, second, third = (str(j.id) for j in jobs)
    res = run(cli_env, "failed", "requeue", "t", first, "--url", fresh)
    assert (res.returncode, res.stdout) == (0, "requeued 1 failed t job(s)\n"), res.stderr
    # An entry id as the list prints it, and a job id, in one call.
    res = run(cli_env, "failed", "purge", "t", by_job[second], third, "--url", fresh)
    assert (res.returncode, res.stdout) == (0, "purged 2 failed t job(s)\n"), res.stderr
    res = run(cli_env, "failed", "purge", "t", first, "not-an-id", "--url", fresh)
    assert res.returncode == 1 and "2 id(s) were not found" in res.stderr
    stats = json.loads(run(cli_env, "stats", "--json", "--url", fresh).stdout)["types"]["t"]
    assert (stats["pending"], stats["failed_kept"]) == (1, 0)


def test_requeue_or_purge_of_a_type_that_does_not_exist_is_an_error(cli_env: dict[str, str], fresh: str) -> None:
    for action in ("requeue", "purge"):
        res = run(cli_env, "failed", action, "nosuch", "--all", "--url", fresh)
        assert res.returncode == 1 and res.stdout == ""
        assert res.stderr.startswith("jobcore: error: no job type 'nosuch' in this queue (known:")


async def test_lists_say_n_of_m_when_they_cut(cli_env: dict[str, str], fresh: str) -> None:
    q = RedisQueue(fresh)
    try:
        await q.enqueue_many([Job(type="t", args={"n": i}) for i in range(7)])
        got = await q.fetch("w", ["t"], 7, 0)
        await q.settle("w", [jobcore.records.Outcome("t", d.entry_id, "dead", 1, "bad") for d in got[:5]])
    finally:
        await q.close()
    res = run(cli_env, "in-flight", "--limit", "1", "--url", fresh)
    assert res.returncode == 0 and len(res.stdout.splitlines()) == 1
    assert res.stderr == "1 of 2 jobs in flight shown (--limit)\n"
    res = run(cli_env, "dead", "list", "--limit", "3", "--url", fresh)
    assert len(res.stdout.splitlines()) == 3 and res.stderr == "3 of 5 dead jobs shown (--limit)\n"
    res = run(cli_env, "dead", "list", "--limit", "5", "--url", fresh)
    assert res.stderr == ""
    res = run(cli_env, "dead", "list", "--type", "nosuch", "--url", fresh)
    assert res.returncode == 1 and "no job type 'nosuch'" in res.stderr


def test_errors_speak_the_users_words(cli_env: dict[str, str]) -> None:
    res = run(cli_env, "stats", "--url", "redis://127.0.0.1:1/0")
    assert res.returncode == 1
    assert res.stderr.startswith("jobcore: error: Redis at redis://127.0.0.1:1/0 is unreachable (")


async def test_enqueue_checks_against_the_callers_handlers_or_waits_for_a_starting_worker(
    cli_env: dict[str, str], fresh: str
) -> None:
    # No worker has published anything: --handlers checks against the module's own types.
    res = run(cli_env, "enqueue", "sleep", '{"seconds": "x"}', "--handlers", "jobcore.demo:handlers", "--url", fresh)
    assert res.returncode == 1 and "seconds" in res.stderr
    res = run(cli_env, "enqueue", "nosuch", "{}", "--handlers", "jobcore.demo:handlers", "--url", fresh)
    assert res.returncode == 2 and "jobcore.demo:handlers has no handler for job type 'nosuch'" in res.stderr
    res = run(cli_env, "enqueue", "sleep", '{"seconds": 0}', "--handlers", "jobcore.demo:handlers", "--url", fresh)
    assert res.returncode == 0, res.stderr
    # With no schema and no worker, it waits briefly, then says what to do.
    t0 = time.monotonic()
    res = run(cli_env, "enqueue", "launch", "{}", "--wait-schema", "0.5", "--url", fresh)
    assert res.returncode == 1 and time.monotonic() - t0 >= 0.5
    assert "no worker has served it yet" in res.stderr and "--handlers MODULE:HANDLERS" in res.stderr
    # README's two lines pasted together: the worker starts, the enqueue waits for its schema.
    worker = start_worker(cli_env, fresh)
    try:
        res = run(cli_env, "enqueue", "noop", "{}", "--url", fresh)
        assert res.returncode == 0, res.stderr
    finally:
        worker.terminate()
        worker.communicate(timeout=30)


def test_no_validate_means_no_validation(cli_env: dict[str, str], fresh: str) -> None:
    worker = start_worker(cli_env, fresh, "--concurrency", "1")
    try:
        ok = run(cli_env, "enqueue", "sleep", '{"seconds": 0}', "--url", fresh)  # waits for the schema
        assert ok.returncode == 0, ok.stderr
        bad = run(cli_env, "enqueue", "sleep", '{"seconds": "soon"}', "--url", fresh)
        assert bad.returncode == 1 and "seconds" in bad.stderr
        sent = run(cli_env, "enqueue", "sleep", '{"seconds": "soon"}', "--no-validate", "--url", fresh)
        assert sent.returncode == 0, sent.stderr

        def dead_one() -> bool:
            res = run(cli_env, "stats", "--json", "--url", fresh)
            return json.loads(res.stdout)["types"]["sleep"]["dead"] == 1

        deadline = time.monotonic() + 20
        while not dead_one():  # the worker is the one that refuses it: dead-lettered with the reason
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        worker.terminate()
        worker.communicate(timeout=30)


async def test_a_handlers_queue_refuses_an_undeclared_type_unless_allowed(fresh: str) -> None:
    from jobcore.demo import handlers

    q = jobcore.connect(fresh, handlers=handlers)
    try:
        with pytest.raises(jobcore.EnqueueError, match="'lanch' is not one of the handler registry's types"):
            await q.enqueue(Job(type="lanch", args={}))
        with pytest.raises(jobcore.EnqueueError, match="not one of the handler registry's types"):
            await q.enqueue_many([Job(type="noop", args=handlers.args_type("noop")()), Job(type="x", args={})])
        assert (await q.stats()).pending == 0  # all or nothing
    finally:
        await q.close()
    q = jobcore.connect(fresh, handlers=handlers, allow_undeclared=True)
    try:
        await q.enqueue(Job(type="other-service", args={"a": 1}))
        assert (await q.stats()).types["other-service"].pending == 1
    finally:
        await q.close()


def test_sync_queue_has_the_reads_and_actions_a_script_needs(fresh: str) -> None:
    with jobcore.SyncQueue(fresh) as q:
        ids = q.enqueue_many([Job(type="t", args={"n": i}) for i in range(2)])
        assert q.job_types() == ["t"] and q.stats().pending == 2
        assert q.failed() == [] and q.dead() == [] and q.in_flight() == [] and q.workers() == []
        assert q.schemas() == {}
        assert q.partitions(["t"]) == {"t": 1}
        q.ping()
        assert q.server_version()
        assert q.failure_groups("dead") == [] and q.history("t").types["t"].processed == 0
        assert "no live worker serves t" in " ".join(q.why("t").sentences)
        q.pause("t")
        assert q.stats().types["t"].paused
        q.resume("t")
        (found,) = q.find(str(ids[0]))
        assert found.where == "pending"
        assert q.cancel(str(ids[1])).status == "pending"
