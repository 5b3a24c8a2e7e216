"""``jobcore server [status|start|stop]``: the local Redis jobcore starts when no URL is given."""

from __future__ import annotations

import argparse

from jobcore.cli.errors import CliError
from jobcore.local import LocalServer, LocalServerError


def cmd_server(a: argparse.Namespace) -> int:
    server = LocalServer()
    try:
        if a.action == "stop":
            how = server.stop()
            if how:
                print(f"stopped the local server at {server.url} with {how}; its data stays in {server.dir}")
            else:
                print(f"the local server is not running (it would serve {server.url})")
            return 0
        status = server.start() if a.action == "start" else server.status()
        if not status.running:
            print(f"not running; `jobcore server start` (or any command with no URL) starts it at {server.url}")
            return 3  # like `systemctl status` for a stopped service
        if status.trouble:  # it runs (a second one must not start) but cannot serve
            print(f"running (pid {status.pid}) at {server.url} but {status.trouble}; `jobcore server stop` stops it")
            return 1
        verb = "running:" if a.action != "start" else "started" if status.started_now else "already running:"
        print(f"{verb} {status.version} at {server.url} (pid {status.pid}); data kept in {server.dir}")
    except LocalServerError as exc:
        raise CliError(str(exc)) from None
    return 0
