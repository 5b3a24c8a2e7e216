"""Running the jobcore command for a test: in this process by default (the same
``main`` the console script calls, its output captured, its environment set for
the call), or as a child process where a test needs one (signals, pipes, exit
by the interpreter). In process it costs no interpreter start and import (about
0.3 s of CPU per call), which the suite's time budget counts."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence

from jobcore.cli.dispatch import main


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_cli(
    args: Sequence[str], env: Mapping[str, str], *, timeout: float, in_process: bool = True
) -> subprocess.CompletedProcess[str]:
    """``jobcore ARGS`` with ``env``: exit code, stdout and stderr as a child process gives them."""
    if not in_process:
        cmd = [sys.executable, "-m", "jobcore", *args]
        return subprocess.run(cmd, env=dict(env), capture_output=True, text=True, timeout=timeout)
    out, err = io.StringIO(), io.StringIO()
    codes: list[int] = []

    def call() -> None:
        try:
            codes.append(main(list(args)))
        except SystemExit as exc:  # argparse's usage errors and --help
            codes.append(exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1)

    with _environment(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            call()
        else:  # called from an async test: the command's own loop runs on a thread (the test's waits)
            thread = threading.Thread(target=call)
            thread.start()
            thread.join(timeout)
    if not codes:
        raise TimeoutError(f"jobcore {' '.join(args)} did not end in {timeout}s")
    return subprocess.CompletedProcess(["jobcore", *args], codes[0], out.getvalue(), err.getvalue())
