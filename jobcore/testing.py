"""A private redis-server on a free port, for tests and benchmarks (jobcore's
own and a service's): stoppable, killable and restartable for fault tests.
Never the shared server on 6379."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    def __init__(
        self,
        workdir: Path | None = None,
        *,
        appendonly: bool = False,
        port: int | None = None,
        unixsocket: bool = False,
        extra_args: Sequence[str] = (),
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH: install it (apt-get install redis-server)")
        self.binary = binary
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="jobcore-redis-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.appendonly = appendonly
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.socket_path = self.workdir / "redis.sock" if unixsocket else None
        self.extra_args = list(extra_args)
        self._sentinel_conf: Path | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start_sentinel(self, service: str, primary_port: int, down_after_ms: int = 1000) -> None:
        """Run as a Sentinel watching the primary on ``primary_port``."""
        conf = self.workdir / "sentinel.conf"
        conf.write_text(
            f"sentinel monitor {service} 127.0.0.1 {primary_port} 2\n"
            f"sentinel down-after-milliseconds {service} {down_after_ms}\n"
            f"sentinel failover-timeout {service} 5000\n"
        )
        self._sentinel_conf = conf
        self.start()

    def start(self, timeout: float = 10.0) -> None:
        socket_args = ["--unixsocket", str(self.socket_path)] if self.socket_path else []
        head = [str(self._sentinel_conf), "--sentinel"] if self._sentinel_conf else []
        args = [
            self.binary,
            *head,
            *socket_args,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "always",
            "--dir",
            str(self.workdir),
            "--logfile",
            str(self.workdir / "redis.log"),
            "--daemonize",
            "no",
            *([] if self._sentinel_conf else self.extra_args),
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                log = (self.workdir / "redis.log").read_text() if (self.workdir / "redis.log").exists() else ""
                raise RuntimeError(f"redis-server exited at start: {err} {log[-2000:]}")
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout}s")

    def stop(self) -> None:
        """Graceful shutdown (an append-only file keeps the data)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        self.proc = None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)

    def cleanup(self) -> None:
        self.kill()
        if os.environ.get("JOBCORE_KEEP_REDIS_DIR") is None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def version(self) -> str:
        client = self.client()
        try:
            info = client.info("server")
            return str(info.get("redis_version", "?")) if isinstance(info, dict) else "?"
        finally:
            client.close()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
