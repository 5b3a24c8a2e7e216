"""``jobcore``'s entry: the command line parsed and checked, the command looked up
in :data:`COMMANDS` and run on the queue it names, and every error turned into one
line and an exit code. A new command: its arguments in ``parser.build_parser``, its
function in ``commands`` (or a module of its own), its name here."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence

from jobcore.cli.audit import cmd_audit
from jobcore.cli.badjobs import cmd_bad
from jobcore.cli.commands import (
    cmd_cancel,
    cmd_find,
    cmd_in_flight,
    cmd_partitions,
    cmd_pause,
    cmd_stats,
    cmd_types,
    cmd_why,
    cmd_workers,
)
from jobcore.cli.enqueue import check_enqueue_usage, cmd_enqueue
from jobcore.cli.errors import CliError, UsageError
from jobcore.cli.fairness import cmd_fair, cmd_limit
from jobcore.cli.output import EXIT_BROKEN_PIPE, drop_stdout
from jobcore.cli.outside import EXIT_UNKNOWN, check_rules, cmd_check, cmd_exporter
from jobcore.cli.parser import EXIT_USAGE, build_parser
from jobcore.cli.pending import check_pending_usage, cmd_pending
from jobcore.cli.server import cmd_server
from jobcore.cli.worker_process import check_worker_usage, cmd_worker
from jobcore.connect import connect
from jobcore.display import printable, scrubbed
from jobcore.errors import JobcoreError
from jobcore.local import QUIET_ENV, LocalServerError, resolve
from jobcore.queue import Queue
from jobcore.url import scheme_of

COMMANDS: dict[str, Callable[[Queue, argparse.Namespace], Awaitable[int]]] = {
    "worker": cmd_worker,
    "enqueue": cmd_enqueue,
    "stats": cmd_stats,
    "partitions": cmd_partitions,
    "in-flight": cmd_in_flight,
    "workers": cmd_workers,
    "types": cmd_types,
    "dead": cmd_bad,
    "failed": cmd_bad,
    "why": cmd_why,
    "pause": cmd_pause,
    "resume": cmd_pause,
    "fair": cmd_fair,
    "limit": cmd_limit,
    "find": cmd_find,
    "pending": cmd_pending,
    "audit": cmd_audit,
    "cancel": cmd_cancel,
    "exporter": cmd_exporter,
    "check": cmd_check,
}
UNPINGED = ("worker", "exporter", "check")  # they say themselves what an unreachable Redis means


async def _main(a: argparse.Namespace) -> int:
    try:
        where = resolve(a.url)
    except LocalServerError as exc:
        raise CliError(str(exc)) from None
    url = where.url
    quiet = a.quiet or os.environ.get(QUIET_ENV, "").lower() in ("1", "true", "yes")
    if where.implicit and (where.trouble or not quiet):
        # Said on stderr, so what a script reads from stdout stays the same.
        print(f"jobcore: {where.why}", file=sys.stderr)
    if scheme_of(url) == "memory":
        # A queue inside this one process: nobody else would see what it enqueues or serves.
        raise CliError(
            "memory:// is a queue inside one process: a jobcore command would only see an empty queue of its "
            "own; give a Redis URL (or none, for the local server)"
        )
    try:
        q = connect(url, namespace=a.namespace)
    except ValueError as exc:  # a bad URL, which the message may quote
        raise CliError(scrubbed(str(exc), url)) from None
    if getattr(a, "actor", None):
        q.actor = a.actor
    try:
        if a.command not in UNPINGED:
            await q.ping()
        return await COMMANDS[a.command](q, a)
    finally:
        await q.close()


def _check_usage(a: argparse.Namespace) -> None:
    """What argparse cannot say about the command line, said before any connection."""
    if a.command in ("dead", "failed") and a.action in ("requeue", "purge"):
        if not a.ids and not a.all and a.group is None:
            raise UsageError(
                f"name the {a.command} jobs to {a.action} (their ids or job ids), or pass --all or --group KEY"
            )
        if a.ids and (a.all or a.group is not None):
            raise UsageError("give ids, --all or --group KEY: one of them")
    if a.command == "limit" and (a.max is not None or a.weight is not None) and a.account is None:
        raise UsageError("--max and --weight are one account's: give --account ID")
    if a.command == "enqueue":
        check_enqueue_usage(a)
    if a.command == "worker":
        check_worker_usage(a)
    if a.command == "pending":
        check_pending_usage(a)
    if a.command == "check":
        check_rules(a)
    if a.command == "types" and a.words and (len(a.words) != 2 or a.words[0] != "remove"):
        raise UsageError("types lists the known types; types remove TYPE retires one")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    if a.command == "why" and not a.type and not a.job:
        parser.error("why: name a TYPE or a job with --job ID")
    try:
        _check_usage(a)
        code = cmd_server(a) if a.command == "server" else asyncio.run(_main(a))
        sys.stdout.flush()  # a reader that went away shows here, not at exit
        return code
    except BrokenPipeError:  # `jobcore workers --json | head -1`
        drop_stdout()
        return EXIT_BROKEN_PIPE
    except UsageError as exc:
        print(f"jobcore: error: {printable(exc)} (see jobcore {a.command} --help)", file=sys.stderr)
        return EXIT_USAGE
    except (CliError, JobcoreError) as exc:
        # One line, whatever the message quotes from Redis.
        print(f"jobcore: error: {printable(exc)}", file=sys.stderr)
        return EXIT_UNKNOWN if a.command == "check" else 1
    except UnicodeDecodeError as exc:  # a name or field in Redis that is not UTF-8
        print(f"jobcore: error: Redis holds text that is not UTF-8: {printable(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
