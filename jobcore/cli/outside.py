"""``jobcore exporter`` and ``jobcore check``: the queue for Prometheus and for
cron, probes and Nagios (jobcore/views/)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

from jobcore.cli.errors import UsageError
from jobcore.display import printable, redacted_url
from jobcore.queue import Queue
from jobcore.views.checks import ANY, BadRule, Limit, judge, parse_limit
from jobcore.views.exporter import QueueCollector, Reader, serve
from jobcore.worker.metrics import metrics_url

EXIT_BREACH = 1
EXIT_UNKNOWN = 2  # cannot tell: Redis unreachable, a type it does not know, a rule that does not read


def check_rules(a: argparse.Namespace) -> None:
    """The rules read into ``a.limits`` before connecting (a bad one: exit 2)."""
    try:
        limits = [parse_limit("max_age", t) for t in a.max_age]
        limits += [parse_limit("max_pending", t) for t in a.max_pending]
        limits += [parse_limit("max_dead", t) for t in a.max_dead]
    except BadRule as exc:
        raise UsageError(str(exc)) from None
    limits += [Limit("served", t, 1) for t in a.served]
    if a.all_served:
        limits.append(Limit("served", ANY, 1))
    if not limits:
        raise UsageError("give at least one rule: --max-age, --max-pending, --max-dead, --served or --all-served")
    a.limits = limits


async def cmd_check(q: Queue, a: argparse.Namespace) -> int:
    stats = await q.stats()
    breaches = judge(stats, a.limits)
    if a.json:
        print(json.dumps({"ok": not breaches, "breaches": [b.to_dict() for b in breaches]}))
    else:
        for b in breaches:
            print(f"BREACH {printable(b.line())}")
        if not breaches:
            n = len(a.limits)
            print(f"OK: {n} rule(s) hold over {len(stats.types)} type(s)")
    return EXIT_BREACH if breaches else 0


async def cmd_exporter(q: Queue, a: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="jobcore exporter: %(message)s", stream=sys.stderr)
    collector = QueueCollector()
    reader = Reader(q, collector)
    await reader.read()  # the first scrape has numbers (or jobcore_up 0), not nothing
    server = serve(collector, a.host, a.port)  # JobcoreError (a port in use...): one line, exit 1
    print(
        f"jobcore exporter: serving {metrics_url(a.host, a.port)} for {redacted_url(q.url)}, "
        f"read every {a.interval:g} s",
        file=sys.stderr,
    )
    try:
        await asyncio.sleep(a.interval)
        await reader.forever(a.interval)
    except asyncio.CancelledError:
        pass
    finally:
        server.shutdown()
    return 0
