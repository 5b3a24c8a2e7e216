"""``jobcore server [status|start|stop]``: the local Redis jobcore starts when no URL is given."""

from __future__ import annotations

import argparse

from jobcore.cli.errors import CliError
from jobcore.local import LocalServer, LocalServerError


def cmd_server(a: argparse.Namespace) -> int:
    server = LocalServer()
    try:
        if a.action == "start":
            status = server.start()
            verb = "started" if status.started_now else "already running:"
            print(f"{verb} {status.version} at {server.url} (pid {status.pid}); data kept in {server.dir}")
        elif a.action == "stop":
            if server.stop():
                print(f"stopped the local server at {server.url}; its data stays in {server.dir}")
            else:
                print(f"the local server is not running (it would serve {server.url})")
        else:
            status = server.status()
            if status.running:
                print(f"running: {status.version} at {server.url} (pid {status.pid}); data kept in {server.dir}")
            else:
                print(f"not running; `jobcore server start` (or any command with no URL) starts it at {server.url}")
                return 3  # like `systemctl status` for a stopped service
    except LocalServerError as exc:
        raise CliError(str(exc)) from None
    return 0
