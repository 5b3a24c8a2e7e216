"""The first line about the local server, and `jobcore server stop` with others
connected (issue 19 items 13 and 20)."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time
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
        assert "live worker(s) among them: svc-1 holding 1 job(s)" in line and "--force" in line
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


def _answer_on_a_terminal(env: dict[str, str], args: list[str], answer: bytes) -> tuple[int, str]:
    """Run with a terminal for stdin, stdout and stderr; type ``answer`` at the question."""
    main, side = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "jobcore", *args], stdin=side, stdout=side, stderr=side, env=env)
    os.close(side)
    out = b""
    deadline = time.monotonic() + 30
    try:
        while b"[y/N]" not in out and time.monotonic() < deadline:
            if select.select([main], [], [], 0.5)[0]:
                out += os.read(main, 65536)
        os.write(main, answer)
    except OSError:  # it ended without asking
        pass
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    code = proc.wait(timeout=30)
    os.close(main)
    return code, out.decode(errors="replace")


def test_server_stop_on_a_terminal_asks_first(own_state: Path, cli_env: dict[str, str]) -> None:  # noqa: F811
    env = dict(cli_env, XDG_STATE_HOME=str(own_state), JOBCORE_DEFAULT_REDIS="127.0.0.1:1")
    assert run(env, "server", "start").returncode == 0
    server = LocalServer()
    holder = socket.socket(socket.AF_UNIX)  # a client connected, as a console would be
    holder.connect(str(server.socket))
    try:
        code, said = _answer_on_a_terminal(env, ["server", "stop"], b"n\n")
        assert code == 1 and "1 client connection(s) open on the local server" in said and "Stop it? [y/N]" in said
        assert "not stopped" in said and server.status().running
        code, said = _answer_on_a_terminal(env, ["server", "stop"], b"y\n")
        assert code == 0 and "stopped the local server" in said, said
    finally:
        holder.close()
    assert not server.status().running
