"""The first line about the local server, and `jobcore server stop` with others
connected (issue 19 items 13 and 20)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from jobcore.local import LocalServer
from tests.test_local import cannot_write, own_state, run, servers_on, until  # noqa: F401 - own_state: a fixture

from .test_cli import stats


def test_quiet_hides_which_server_was_picked_never_an_error_or_trouble(
    own_state: Path,  # noqa: F811 - the fixture imported above
    cli_env: dict[str, str],
) -> None:
    env = dict(cli_env, XDG_STATE_HOME=str(own_state), JOBCORE_DEFAULT_REDIS="127.0.0.1:1")
    loud = run(env, "stats", "--json")
    assert loud.returncode == 0 and loud.stderr.startswith("jobcore: nothing answers on 127.0.0.1:1: started a local")
    for quiet in (run(env, "-q", "stats", "--json"), run(env, "stats", "--quiet", "--json"),
                  run(dict(env, JOBCORE_QUIET="1"), "stats", "--json")):  # fmt: skip
        assert (quiet.returncode, quiet.stderr) == (0, ""), quiet.stderr
        assert json.loads(quiet.stdout)["types"] == json.loads(loud.stdout)["types"]
    # Errors are said whatever the setting.
    res = run(dict(env, JOBCORE_QUIET="1"), "-q", "pause", "nosuch")
    assert res.returncode == 1 and res.stderr.startswith("jobcore: error: unknown job type 'nosuch'"), res.stderr
    # So is trouble with the server picked.
    cannot_write(LocalServer())
    res = run(dict(env, JOBCORE_QUIET="1"), "-q", "stats")
    assert "— it cannot write its data: MISCONF" in res.stderr.splitlines()[0], res.stderr


def test_server_stop_with_a_worker_holding_a_job_refuses_without_force(
    own_state: Path,  # noqa: F811 - the fixture imported above
    cli_env: dict[str, str],
) -> None:
    env = dict(cli_env, XDG_STATE_HOME=str(own_state), JOBCORE_DEFAULT_REDIS="127.0.0.1:1", JOBCORE_QUIET="1")
    assert run(env, "server", "start").returncode == 0
    server = LocalServer()
    worker = subprocess.Popen(
        [sys.executable, "-m", "jobcore", "worker", "jobcore.demo:handlers", "--id", "svc-1", "--grace", "0.2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        until(lambda: stats(env, server.url)["workers"] == 1, "the worker is up", timeout=30)
        assert run(env, "enqueue", "sleep", '{"seconds": 60}').returncode == 0
        until(lambda: stats(env, server.url)["types"]["sleep"]["in_flight"] == 1, "the job runs", timeout=30)
        res = run(env, "server", "stop")  # not a terminal: refused, in one line
        assert res.returncode == 1 and res.stdout == "", res
        (line,) = res.stderr.splitlines()
        assert (
            line.startswith("jobcore: error: not stopped: ") and "client connection(s) open on the local server" in line
        )
        assert "live worker(s) among them: svc-1 running 1 job(s)" in line and "--force" in line
        assert server.status().running
        res = run(env, "server", "stop", "--force")
        assert res.returncode == 0 and res.stdout.startswith("stopped the local server"), res
        assert servers_on(server.dir) == []
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    # Nobody connected: it stops without a question.
    assert run(env, "server", "start").returncode == 0
    res = run(env, "server", "stop")
    assert res.returncode == 0 and res.stdout.startswith("stopped the local server"), res
