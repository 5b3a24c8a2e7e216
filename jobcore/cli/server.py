"""``jobcore server [status|start|stop]``: the local Redis jobcore starts when no URL is given."""

from __future__ import annotations

import argparse
import asyncio
import sys

from jobcore.cli.errors import CliError
from jobcore.display import printable
from jobcore.local import LocalServer, LocalServerError


def cmd_server(a: argparse.Namespace) -> int:
    server = LocalServer()
    try:
        if a.action == "stop":
            if not a.force and not _may_stop(server, a.namespace):
                return 1
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


def _may_stop(server: LocalServer, namespace: str) -> bool:
    """Whether to stop a server others are connected to: asked on a terminal,
    refused elsewhere with one line saying who (``--force`` skips this)."""
    who = _connected(server, namespace)
    if not who:
        return True
    if sys.stdin.isatty() and sys.stderr.isatty():
        try:
            answer = input(f"{who}; stopping the server cuts them off. Stop it? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() in ("y", "yes"):
            return True
        print("not stopped", file=sys.stderr)
        return False
    print(f"jobcore: error: not stopped: {who}; `jobcore server stop --force` stops it anyway", file=sys.stderr)
    return False


def _connected(server: LocalServer, namespace: str) -> str:
    """Who is connected to the server, in a few words ("" when nobody is)."""
    clients = server.clients()
    if not clients:
        return ""
    said = f"{len(clients)} client connection(s) open on the local server"
    try:
        workers = asyncio.run(_live_workers(server.url, namespace))
    except Exception:  # what the workers are is a detail: the connections are the warning
        return said
    if not workers:
        return said
    named = ", ".join(f"{printable(w)} holding {busy} job(s)" for w, busy in workers[:3])
    more = f" and {len(workers) - 3} more" if len(workers) > 3 else ""
    return f"{said}, live worker(s) among them: {named}{more}"


async def _live_workers(url: str, namespace: str) -> list[tuple[str, int]]:
    from jobcore.connect import connect
    from jobcore.limits import IN_FLIGHT_ALL

    q = connect(url, namespace=namespace)
    try:
        # The jobs each holds now (a heartbeat's busy count may be a lease/3 old).
        board = await asyncio.wait_for(q.dashboard(IN_FLIGHT_ALL), 3)
    finally:
        await q.close()
    held: dict[str, int] = {}
    for r in board.in_flight:
        held[r.worker] = held.get(r.worker, 0) + 1
    return [(w.id, held.get(w.id, 0)) for w in board.workers if w.state != "lost"]
