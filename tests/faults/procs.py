"""Real ``jobcore worker`` subprocesses for the fault suite."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from .handlers import AUDIT_URL_ENV, WORKER_ENV

REPO_ROOT = Path(__file__).resolve().parents[2]
HANDLERS = "tests.faults.handlers:handlers"


class WorkerProc:
    """One ``jobcore worker`` subprocess; its log goes to a file."""

    def __init__(self, worker_id: str, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.id = worker_id
        self.args = args
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def signal(self, sig: int) -> None:
        if self.alive:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL, and wait for it to be gone."""
        if self.alive:
            self.proc.kill()
        self.proc.wait(10)

    async def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.alive:
            if time.monotonic() > deadline:
                raise AssertionError(f"worker {self.id} did not exit within {timeout}s\n{self.tail()}")
            await asyncio.sleep(0.05)
        rc = self.proc.returncode
        assert rc is not None
        return rc

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return f"--- log of {self.id} (pid {self.pid}) ---\n" + "\n".join(self.log().splitlines()[-lines:])

    def close(self) -> None:
        if self.alive:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


class Workers:
    """Starts and tracks worker subprocesses; kills whatever is left at teardown."""

    def __init__(self, url: str, audit_url: str, logdir: Path) -> None:
        self.url = url
        self.audit_url = audit_url
        self.logdir = logdir
        self.procs: list[WorkerProc] = []
        self._n = 0

    def env(self, worker_id: str) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        env.pop("JOBCORE_URL", None)
        env[AUDIT_URL_ENV] = self.audit_url
        env[WORKER_ENV] = worker_id
        return env

    def start(
        self,
        n: int = 1,
        *,
        concurrency: int = 10,
        lease: float = 1.0,
        max_attempts: int = 5,
        grace: float = 5.0,
        types: Sequence[str] | None = None,
        name: str = "w",
        extra: Sequence[str] = (),
    ) -> list[WorkerProc]:
        out = []
        for _ in range(n):
            self._n += 1
            worker_id = f"{name}{self._n}"
            args = [
                sys.executable,
                "-m",
                "jobcore",
                "--url",
                self.url,
                "worker",
                HANDLERS,
                "--id",
                worker_id,
                "--concurrency",
                str(concurrency),
                "--lease",
                str(lease),
                "--max-attempts",
                str(max_attempts),
                "--grace",
                str(grace),
                "--log-format",
                "json",
                *(["--types", ",".join(types)] if types else []),
                *extra,
            ]
            proc = WorkerProc(worker_id, args, self.env(worker_id), self.logdir / f"{worker_id}.log")
            self.procs.append(proc)
            out.append(proc)
        return out

    def restart(self, old: WorkerProc) -> WorkerProc:
        """A supervisor's restart: a new process (and a new worker id), same options."""
        self._n += 1
        worker_id = f"{old.id.rstrip('0123456789')}{self._n}"
        args = list(old.args)
        args[args.index("--id") + 1] = worker_id
        proc = WorkerProc(worker_id, args, self.env(worker_id), self.logdir / f"{worker_id}.log")
        self.procs.append(proc)
        return proc

    @property
    def alive(self) -> list[WorkerProc]:
        return [p for p in self.procs if p.alive]

    def tails(self) -> str:
        return "\n".join(p.tail() for p in self.procs)

    def close(self) -> None:
        for p in self.procs:
            p.close()


async def wait_for(
    check: Callable[[], Awaitable[bool]],
    timeout: float,
    what: str,
    pool: Workers | None = None,
    must_live: Sequence[WorkerProc] = (),
    interval: float = 0.1,
) -> float:
    """Poll ``check`` until true; fail with the workers' logs on timeout or when a
    worker in ``must_live`` has died. Returns the seconds waited."""
    t0 = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - t0
        dead = [p for p in must_live if not p.alive]
        if dead:
            logs = pool.tails() if pool else ""
            raise AssertionError(f"worker(s) {[p.id for p in dead]} exited while waiting for {what}\n{logs}")
        if time.monotonic() - t0 > timeout:
            logs = pool.tails() if pool else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs}")
        await asyncio.sleep(interval)


def sigkill(p: WorkerProc) -> None:
    os.kill(p.pid, signal.SIGKILL)
    p.proc.wait(10)


def figures(name: str, **values: object) -> None:
    """Print the figures a test measured (``pytest -rP`` or ``-s`` shows them)."""
    import json

    print(f"FIGURES {name}: {json.dumps(values)}")


class Supervisor:
    """Restarts workers that die, like systemd or Kubernetes would."""

    def __init__(self, pool: Workers, procs: Sequence[WorkerProc]) -> None:
        self.pool = pool
        self.current = list(procs)
        self.restarts = 0
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        while True:
            for i, p in enumerate(self.current):
                if not p.alive:
                    self.current[i] = self.pool.restart(p)
                    self.restarts += 1
            await asyncio.sleep(0.05)

    def __enter__(self) -> Supervisor:
        self._task = asyncio.get_running_loop().create_task(self._watch())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
