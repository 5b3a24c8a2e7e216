"""Exit codes, as README's table says: 2 for what the command line alone shows is
wrong, said before anything connects or starts; ARGS_JSON from stdin or a file
(issue 19 items 12 and 15)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from jobcore.model import decode_args, decode_envelope
from jobcore.redis.backend import RedisQueue
from tests.support.servers import free_port

from .test_cli import jc, stats, wait_for


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["partitions", "noop", "100000"], "at most 1024 partitions, got 100000"),
        (["enqueue", "noop", "{bad json"], "ARGS_JSON is not valid JSON"),
        (["enqueue", "noop", "[1]"], "ARGS_JSON must be a JSON object, got list"),
        (["enqueue", "noop", "@/no/such/file.json"], "cannot read ARGS_JSON from /no/such/file.json"),
        (["enqueue", "nosuch", "{}", "--handlers", "jobcore.demo:handlers"], "has no handler for job type 'nosuch'"),
        (["worker", "jobcore.demo"], "handlers must be MODULE:ATTRIBUTE"),
        (["worker", "no_such_module:handlers"], "cannot import handlers module 'no_such_module'"),
        (["worker", "jobcore.demo:handlers", "--types", "noop,nope"], "no handler registered for type(s): nope"),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else None,
)
def test_usage_errors_exit_2_before_connecting_or_starting_anything(
    cli_env: dict[str, str], tmp_path: Path, args: list[str], says: str
) -> None:
    # No URL, nothing on the probed port: anything that connected would start a local server here.
    env = dict(cli_env, XDG_STATE_HOME=str(tmp_path), JOBCORE_DEFAULT_REDIS=f"127.0.0.1:{free_port()}")
    res = jc(env, *args)
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in res.stderr, res.stderr
    assert not (tmp_path / "jobcore").exists()  # no local server was started


def test_a_bad_handlers_spec_exits_2_in_jobcore_and_jobconsole_alike(cli_env: dict[str, str]) -> None:
    worker = jc(cli_env, "worker", "jobcore.demo")
    console = subprocess.run(
        [sys.executable, "-m", "jobconsole", "--memory", "--handlers", "jobcore.demo"],
        env=cli_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert worker.returncode == console.returncode == 2, (worker.stderr, console.stderr)
    assert (
        "handlers must be MODULE:ATTRIBUTE" in worker.stderr and "handlers must be MODULE:ATTRIBUTE" in console.stderr
    )


def _pending_notes(url: str) -> list[int]:
    """The size of each pending noop job's note, oldest first."""

    async def read() -> list[int]:
        async with RedisQueue(url) as q:
            got = await q.fetch("w", ["noop"], 10, 0)
        return [len(decode_args(decode_envelope(d.raw or b"").args, dict)["note"]) for d in got]

    return asyncio.run(read())


def test_args_json_from_stdin_and_from_a_file(cli_env: dict[str, str], redis_url: str, tmp_path: Path) -> None:
    big = json.dumps({"note": "x" * 3_000_000})  # 3 MB: more than one argument may carry (128 KiB)
    base = [sys.executable, "-m", "jobcore", "--url", redis_url, "enqueue", "noop"]
    res = subprocess.run([*base, "-", "--no-validate"], input=big, env=cli_env, capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert res.returncode == 0 and res.stdout.startswith("enqueued noop job "), res.stderr
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"note": "y" * 5}))
    res = jc(cli_env, "enqueue", "noop", f"@{path}", "--no-validate", url=redis_url)
    assert res.returncode == 0, res.stderr
    assert _pending_notes(redis_url) == [3_000_000, 5]
    res = subprocess.run([*base, "-", "--no-validate"], input="[]", env=cli_env, capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert res.returncode == 2 and "ARGS_JSON must be a JSON object, got list" in res.stderr


def test_ctrl_c_during_a_big_enqueue_says_how_many_went_in_and_exits_130(
    cli_env: dict[str, str], redis_url: str
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobcore", "--url", redis_url, "enqueue", "noop", "{}", "--count", "1000000",
         "--no-validate"],
        env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # As a shell starts it: Ctrl-C's default action (a test runner's worker may ignore
        # SIGINT, and an ignored signal stays ignored in its children).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    import redis as redispy

    r = redispy.Redis.from_url(redis_url)
    try:
        # Polled straight from Redis, every 5 ms: a `jobcore stats` per look can take a second
        # under load, long enough for the whole million to go in before the signal.
        wait_for(lambda: r.xlen("jobcore:{noop}:jobs") >= 5000, timeout=60, interval=0.005)
        # Writes held for a moment, so the signal lands mid-run however the cores are shared
        # (a starved test could otherwise see the million go in before it signals).
        r.execute_command("CLIENT", "PAUSE", 20000, "WRITE")
        assert proc.poll() is None, "the enqueue ended before the test could interrupt it"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        r.execute_command("CLIENT", "UNPAUSE")
        r.close()
    assert proc.returncode == 130, err
    said = re.fullmatch(
        r"jobcore: interrupted: ([\d,]+) of 1,000,000 noop jobs were enqueued \(\S+ \.\.\. \S+\); "
        r"the batch being sent \(1,000\) may or may not have landed\n",
        err,
    )
    assert said and out == "", err
    confirmed = int(said.group(1).replace(",", ""))
    pending = stats(cli_env, redis_url)["totals"]["pending"]
    # 5,000 had landed when it was signalled; the last of them may not have been confirmed yet.
    assert pending >= 5000 and confirmed <= pending <= confirmed + 1000
