"""The lease keeper: a tiny process that extends its worker's lease from outside
the worker's interpreter.

A handler that holds the GIL (a long C call, a regex gone wild) stops every
thread of the worker, the heartbeat thread included; the keeper keeps the lease
alive while the worker process exists and is not stopped (SIGSTOP), and stops
the moment it is gone. It speaks to Redis through jobcore's own transport, so
it follows a cluster or a Sentinel failover as the worker does. The worker
runs it as ``python -P -m jobcore.worker.keeper`` and writes one JSON line of settings
to its stdin; end of that input (the worker exited or was killed) ends it.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import sys
from typing import Any

from jobcore.worker.backoff import beat_again_in


def process_state(pid: int) -> str | None:
    """The state letter of a process (R, S, D, T, t, Z...), None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return fields[0] if fields else None


def parent_running(parent: int) -> bool:
    """True while the worker may be making progress (alive and not stopped)."""
    return process_state(parent) not in (None, "T", "t", "Z", "X")


def serve(cfg: dict[str, Any]) -> int:
    return asyncio.run(_serve(cfg))


async def _serve(cfg: dict[str, Any]) -> int:
    from importlib import resources

    from jobcore.redis.auto import open_transport
    from jobcore.redis.resp import RespConnectionError, RespError, Script

    parent = int(cfg["parent"])
    interval = float(cfg["interval"])
    redis = open_transport(cfg["url"], connect_timeout=1.0, timeout=max(1.0, interval))
    extend = Script(resources.files("jobcore.redis").joinpath("lua", "extend.lua").read_text())
    keys, args = [cfg["workers"], cfg["leases"]], [cfg["id"], int(cfg["lease_ms"]), str(cfg.get("instance", ""))]
    stdin = sys.stdin.fileno()
    wait, failures = 0.0, 0
    loop = asyncio.get_running_loop()
    try:
        while True:
            ready, _, _ = await loop.run_in_executor(None, select.select, [stdin], [], [], wait)
            if ready and not os.read(stdin, 4096):
                return 0  # the worker closed our input or is gone
            if os.getppid() != parent or process_state(parent) is None:
                return 0
            wait = interval
            if not parent_running(parent):
                continue  # stopped: let its lease lapse so live workers take its jobs
            try:
                (held,) = await redis.run_scripts([(extend, keys, args)])
                failures = 0
                if held == -2:
                    return 0  # another process took this worker's id: keep its lease no more
            except (RespConnectionError, RespError, OSError):
                failures += 1
                wait = beat_again_in(interval, failures)
    finally:
        await redis.close()


def main() -> int:
    # Ctrl-C or SIGTERM to the worker's process group stop the worker gracefully;
    # the keeper keeps its lease until the worker closes our input.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(sys.stdin.fileno(), 1)
        if not chunk:
            return 0
        line += chunk
    return serve(json.loads(line))


if __name__ == "__main__":
    sys.exit(main())
