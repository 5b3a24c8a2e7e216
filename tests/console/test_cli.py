"""``jobconsole`` on the command line: clear one-line errors, never a traceback."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import jobconsole.__main__
import jobconsole.app
import jobconsole.settings
from jobconsole.__main__ import main
from jobconsole.app import make_app
from jobconsole.settings import Settings
from jobcore.local import LocalServer, Resolved, resolve, state_dir
from tests.support.servers import RedisServer

SECRET = "hunter2-s3cret"


def test_unreachable_redis_is_one_line_suggesting_memory(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", "redis://127.0.0.1:1/0"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("jobconsole: error: cannot reach redis://127.0.0.1:1/0")
    assert "--memory" in lines[0]


def test_the_installed_command_exits_1_without_a_traceback(cli_env: dict[str, str], repo_root: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "jobconsole", "--url", "redis://127.0.0.1:1/0"],
        capture_output=True,
        text=True,
        env=cli_env,
        cwd=repo_root,
        timeout=30,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stdout == ""  # no half-drawn screen


def test_jobcore_url_from_the_environment(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBCORE_URL", "redis://127.0.0.1:2/0")
    assert main([]) == 1
    err = capsys.readouterr().err
    assert "cannot reach redis://127.0.0.1:2/0" in err and "check JOBCORE_URL" in err


def test_the_hint_asks_for_url_only_when_none_was_given(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOBCORE_URL", raising=False)
    # The default pick (a Redis that answered on localhost:6379) has gone away.
    gone = Resolved("redis://127.0.0.1:1/0", "a Redis answers on localhost:6379", True, "default")
    monkeypatch.setattr(jobconsole.__main__, "resolve", lambda url: gone if url is None else resolve(url))
    assert main([]) == 1
    assert "start Redis or pass --url" in capsys.readouterr().err
    assert main(["--url", "redis://127.0.0.1:1/0"]) == 1
    err = capsys.readouterr().err
    assert "pass --url" not in err and "check the URL and that the server runs" in err


@pytest.fixture(scope="module")
def password_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("auth"), password=SECRET)
    server.start()
    client = server.client()
    # A user that may PING and nothing else: the start-up check must not stop at PING.
    client.execute_command("ACL", "SETUSER", "pinger", "on", ">pingpw", "~*", "+ping", "+hello", "+client")
    client.execute_command("ACL", "SETUSER", "nobody", "on", ">nobodypw", "~*")
    client.close()
    yield server
    server.cleanup()


def _start_expecting_failure(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the CLI; fail if it would open the UI."""

    def no_ui(*_: Any, **__: Any) -> None:
        raise AssertionError("the console UI was opened")

    monkeypatch.setattr(jobconsole.app, "make_app", no_ui)
    assert main(argv) == 1


@pytest.mark.parametrize(
    ("user", "cause", "hint"),
    [
        (f":wrong-{SECRET[:3]}", "refused the user name or password (WRONGPASS", "check the user and password"),
        ("", "asks for a password and none was given (NOAUTH", "put the password in the URL"),
        ("nobody:nobodypw", "does not let this user run what the console needs (NOPERM", "grant the user"),
        ("pinger:pingpw", "does not let this user run what the console needs (NOPERM", "grant the user"),
    ],
)
def test_a_refused_login_or_permission_exits_with_one_line_naming_it(
    password_server: RedisServer,
    user: str,
    cause: str,
    hint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"redis://{user + '@' if user else ''}127.0.0.1:{password_server.port}/0"
    _start_expecting_failure(["--url", url], monkeypatch)
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("jobconsole: error: redis://")
    assert cause in lines[0] and hint in lines[0]
    assert "unreachable" not in lines[0] and "cannot reach" not in lines[0]
    assert SECRET[:3] not in lines[0] and "pingpw" not in lines[0] and "nobodypw" not in lines[0]


def test_the_right_password_opens_the_console(password_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[Settings] = []

    class FakeApp:
        return_code = 0

        def run(self) -> None:
            pass

    def fake_make_app(settings: Settings, **_: Any) -> FakeApp:
        opened.append(settings)
        return FakeApp()

    monkeypatch.setattr(jobconsole.app, "make_app", fake_make_app)
    assert main(["--url", password_server.url]) == 0
    assert [s.url for s in opened] == [password_server.url]


def test_a_password_in_the_url_is_not_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", "redis://:hunter2@127.0.0.1:1/0"]) == 1
    err = capsys.readouterr().err
    assert "hunter2" not in err and "***@127.0.0.1:1/0" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--refresh", "0"], "argument --refresh: must be between 0.1 and 3600, got 0"),
        (["--refresh", "fast"], "argument --refresh: not a number: 'fast'"),
        (["--concurrency", "0"], "argument --concurrency: must be 1 to 1000, got 0"),
        (["--url", "redis://x", "--memory"], "argument --memory: not allowed with argument --url"),
    ],
)
def test_bad_flags_give_one_clear_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"jobconsole: error: {message} (see jobconsole --help)"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--memory", "--handlers", "nope"], "handlers must be MODULE:ATTRIBUTE"),
        (["--memory", "--handlers", "no_such_module_xyz:handlers"], "cannot import handlers module"),
        (["--memory", "--handlers", "jobcore.demo:log"], "jobcore.demo:log is a Logger, not a jobcore.Handlers"),
        (["--url", "http://example.com"], "unsupported queue URL"),
    ],
)
def test_bad_values_give_one_clear_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_help_names_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--url", "--memory", "--refresh", "--read-only", "--handlers", "--concurrency", "--grace"):
        assert option in out


async def test_memory_console_starts_and_quits() -> None:
    app = make_app(Settings(url="memory://"))
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause(0.2)
    assert app.return_code == 0


async def test_with_no_url_the_console_opens_on_the_local_server_and_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """README's install-and-run command on a machine with nothing on localhost:6379
    (the suite probes a port where nothing listens): the console starts the local
    server, opens on it, and its header and first notice say which server and why.
    A state directory of its own: no earlier test's local server runs there."""
    monkeypatch.delenv("JOBCORE_URL", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    try:
        await _opens_on_the_local_server(monkeypatch)
    finally:
        LocalServer().stop()


async def _opens_on_the_local_server(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[Settings] = []

    class Opened:
        return_code = 0

        def __init__(self, settings: Settings) -> None:
            opened.append(settings)

        def run(self) -> None:
            pass

    monkeypatch.setattr(jobconsole.app, "make_app", lambda settings, handlers=None: Opened(settings))
    assert await asyncio.to_thread(main, []) == 0  # main() runs its own event loop
    (settings,) = opened
    assert settings.url == f"unix://{state_dir()}/server.sock"
    assert settings.origin == "local server: nothing on 127.0.0.1:1"
    assert "a local Valkey 9." in settings.origin_note and "`jobcore server stop` stops it" in settings.origin_note
    app = make_app(settings)
    async with app.run_test(size=(140, 30)) as pilot:
        for _ in range(100):
            await pilot.pause(0.05)
            if app.server_version:
                break
        await pilot.pause(0.2)
        header = app.screen.query_one("#status").render()
        text = str(header)
        assert "(local server: nothing on 127.0.0.1:1)" in text and "Valkey 9." in text, text
        assert any("a local Valkey 9." in n.message for n in app._notifications)


def _read_until(fd: int, out: bytearray, done: Any, seconds: float) -> bool:
    """Read the pty into ``out`` until done(out) or EOF (the child closed it) or ``seconds``."""
    import select
    import time

    deadline = time.monotonic() + seconds
    while not done(out) and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: every writer closed
                return done(out)
            if not chunk:
                return done(out)
            out += chunk
    return done(out)


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_sigterm_leaves_the_terminal_as_it_found_it(cli_env: dict[str, str], repo_root: Path, sig: str) -> None:
    """Issue 19 item 2: SIGTERM (a supervisor, `kill`) or SIGHUP (the window closed) quits
    as q does: out of the alternate screen, the cursor back, then exit 128 + the signal."""
    import fcntl
    import pty
    import signal
    import struct
    import termios

    signum = getattr(signal, sig)

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    env = {**cli_env, "TERM": "xterm-256color"}
    env.pop("TEXTUAL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobconsole", "--memory"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        cwd=repo_root,
        start_new_session=True,
    )
    out = bytearray()
    try:
        os.close(follower)
        assert _read_until(leader, out, lambda b: b"\x1b[?1049h" in b and b"Quit" in b, 30), bytes(out[-500:])
        mark = len(out)
        proc.send_signal(signum)
        _read_until(leader, out, lambda b: False, 10)  # until the child closes the terminal
        assert proc.wait(timeout=10) == 128 + signum
        after = bytes(out[mark:])
        assert b"\x1b[?1049l" in after  # left the alternate screen
        assert b"\x1b[?25h" in after  # the cursor shown again
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
