"""``jobconsole --serve``: the same console in a browser, through textual-serve
(the ``web`` extra). Each browser tab runs its own console process, started
with this one's options; the queue URL goes to them in the environment
(``JOBCORE_URL``), never on a command line where ``ps`` would show a password."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence

SERVE_FLAGS = {"--serve": 0, "--host": 1, "--port": 1, "--url": 1}  # flag -> how many values it takes


class ServeError(Exception):
    """Why the console cannot be served (one line, exit 2)."""


def console_command(argv: Sequence[str]) -> str:
    """The command each browser session runs: this console, without the
    serving flags and the URL (``--flag value`` and ``--flag=value`` alike)."""
    kept: list[str] = []
    skip = 0
    for arg in argv:
        if skip:
            skip -= 1
            continue
        name = arg.split("=", 1)[0]
        if name in SERVE_FLAGS:
            skip = 0 if "=" in arg else SERVE_FLAGS[name]
            continue
        kept.append(arg)
    return shlex.join([sys.executable, "-m", "jobconsole", *kept])


def serve(argv: Sequence[str], url: str, host: str, port: int) -> None:
    """Serve the console on ``host``:``port`` until interrupted."""
    try:
        from textual_serve.server import Server
    except ImportError:
        raise ServeError("--serve needs textual-serve: pip install 'jobcore[web]'") from None
    os.environ["JOBCORE_URL"] = url  # each session's console reads it; never on a command line
    shown = "[" + host + "]" if ":" in host else host
    server = Server(
        console_command(argv), host=host, port=port, title="jobconsole", public_url=f"http://{shown}:{port}"
    )
    server.serve()
