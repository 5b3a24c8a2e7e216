"""The ``jobcore`` command: worker, enqueue, stats, in-flight, workers, dead, failed."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import NoReturn

from . import __version__
from .backend import DEFAULT_LEASE_S, DEFAULT_MAX_ATTEMPTS, BadJob, Queue
from .connect import connect
from .errors import JobcoreError
from .keys import DEFAULT_NAMESPACE
from .model import Identity, Job
from .registry import Handlers
from .registry import load_handlers as registry_load_handlers
from .schema import check_args
from .transport import redacted as redacted_url
from .worker import DEFAULT_CONCURRENCY, DEFAULT_GRACE_S, DEFAULT_PREFETCH, DEFAULT_TIMEOUT_S, Worker

DEFAULT_URL = "redis://localhost:6379/0"
log = logging.getLogger("jobcore.cli")


class CliError(Exception):
    """A user-facing error: printed as one line, exit 1."""


def default_url() -> str:
    return os.environ.get("JOBCORE_URL") or DEFAULT_URL


def load_handlers(spec: str) -> Handlers:
    try:
        return registry_load_handlers(spec)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _whole(text, 1)


def _count(text: str) -> int:
    return _whole(text, 0)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {value}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="jobcore", description="A typed, at-least-once job queue on Redis.")
    p.add_argument("--version", action="version", version=f"jobcore {__version__}")
    p.add_argument("--url", default=None, help=f"queue URL (env JOBCORE_URL, default {DEFAULT_URL})")
    p.add_argument("--namespace", default=DEFAULT_NAMESPACE, help="Redis key prefix (default: %(default)s)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    w = sub.add_parser("worker", help="run a worker for the handlers in MODULE:HANDLERS")
    w.add_argument("handlers", metavar="MODULE:HANDLERS")
    w.add_argument("--concurrency", type=_positive_int, default=DEFAULT_CONCURRENCY)
    w.add_argument(
        "--prefetch",
        type=_count,
        default=None,
        help=f"jobs taken beyond the free slots while jobs are quick (default: {DEFAULT_PREFETCH})",
    )
    w.add_argument("--types", default=None, help="comma-separated subset of the registered types")
    w.add_argument("--timeout", type=_positive_float, default=DEFAULT_TIMEOUT_S, help="per-job timeout, s")
    w.add_argument("--lease", type=_positive_float, default=DEFAULT_LEASE_S, help="lease, s (default 15)")
    w.add_argument("--max-attempts", type=_positive_int, default=DEFAULT_MAX_ATTEMPTS)
    w.add_argument("--grace", type=float, default=DEFAULT_GRACE_S, help="graceful stop period, s")
    w.add_argument("--log-format", choices=["text", "json"], default="text")
    w.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info")
    w.add_argument("--metrics-port", type=_port, default=None, help="serve Prometheus metrics")
    w.add_argument("--id", default=None, help="worker id (default host-pid-random)")

    e = sub.add_parser("enqueue", help="enqueue COUNT jobs of TYPE with ARGS_JSON")
    e.add_argument("type", metavar="TYPE")
    e.add_argument("args", metavar="ARGS_JSON")
    e.add_argument("--count", type=_positive_int, default=1)
    e.add_argument("--account-id", type=int, default=0)
    e.add_argument("--account-number", default="")
    e.add_argument("--org-id", default="")
    e.add_argument(
        "--no-validate",
        action="store_true",
        help="send even when no schema is known for TYPE (no worker has served it yet)",
    )
    e.add_argument("--json", action="store_true", help="print the job ids as JSON")

    s = sub.add_parser("stats", help="per-type queue depth, in flight, processed, failed, dead")
    s.add_argument("--json", action="store_true")
    s.add_argument("--partitions", action="store_true", help="also show each partition's pending jobs")

    pa = sub.add_parser(
        "partitions",
        help="show or raise TYPE's partition count (jobs spread over N streams by account; it never shrinks)",
    )
    pa.add_argument("type", metavar="TYPE")
    pa.add_argument("count", nargs="?", type=_positive_int, metavar="N", help="the new count (default: show it)")

    f = sub.add_parser("in-flight", help="jobs being processed now")
    f.add_argument("--limit", type=_positive_int, default=50)
    f.add_argument("--json", action="store_true")

    wk = sub.add_parser("workers", help="live (and lost) workers")
    wk.add_argument("--json", action="store_true")

    t = sub.add_parser("types", help="known job types and their args schema")
    t.add_argument("--json", action="store_true")

    for which in ("dead", "failed"):
        d = sub.add_parser(which, help=f"list, requeue or purge {which} jobs")
        dsub = d.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=_Parser)
        dl = dsub.add_parser("list", help=f"list {which} jobs, newest first")
        dl.add_argument("--type", default=None)
        dl.add_argument("--limit", type=_positive_int, default=20)
        dl.add_argument("--json", action="store_true")
        for action in ("requeue", "purge"):
            da = dsub.add_parser(action, help=f"{action} {which} jobs of TYPE (ids, or --all)")
            da.add_argument("type", metavar="TYPE")
            da.add_argument("ids", nargs="*", metavar="ID")
            da.add_argument("--all", action="store_true")
    return p


# ---- commands ---------------------------------------------------------------


async def cmd_enqueue(q: Queue, a: argparse.Namespace) -> int:
    try:
        args = json.loads(a.args)
    except json.JSONDecodeError as exc:
        raise CliError(f"ARGS_JSON is not valid JSON: {exc}") from None
    if not isinstance(args, dict):
        raise CliError(f"ARGS_JSON must be a JSON object, got {type(args).__name__}")
    schemas = await q.schemas()
    schema = schemas.get(a.type)
    if schema is None and not a.no_validate:
        known = ", ".join(sorted(schemas)) or "none"
        raise CliError(
            f"no args schema known for job type {a.type!r} (no worker has served it; known: {known}); "
            "use --no-validate to enqueue it anyway"
        )
    if schema is not None:
        check_args(a.type, args, schema)
    ident = Identity(account_number=a.account_number, org_id=a.org_id)
    jobs = [Job(type=a.type, args=args, account_id=a.account_id, identity=ident) for _ in range(a.count)]
    ids = await q.enqueue_many(jobs)
    if a.json:
        print(json.dumps([str(i) for i in ids]))
    elif len(ids) == 1:
        print(f"enqueued {a.type} job {ids[0]}")
    else:
        print(f"enqueued {len(ids)} {a.type} jobs ({ids[0]} ... {ids[-1]})")
    return 0


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


async def cmd_stats(q: Queue, a: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    stats = await q.stats()
    if a.json:
        print(json.dumps(stats.to_dict(), indent=2))
        return 0
    table = Table(title=f"jobcore at {redacted_url(q.url)}, {q.topology()} ({stats.workers} live worker(s))")
    split = any(t.partitions > 1 for t in stats.types.values())
    cols = ["type", *(["partitions"] if split else []), "pending", "in flight", "processed", "failed", "dead"]
    for col in (*cols, "oldest", "workers"):
        table.add_column(col, justify="left" if col == "type" else "right")
    for t in sorted(stats.types.values(), key=lambda t: t.job_type):
        served = str(t.served_by) if t.served_by else ("[red]none[/]" if t.pending else "0")
        table.add_row(
            t.job_type,
            *([str(t.partitions)] if split else []),
            str(t.pending),
            str(t.in_flight),
            str(t.processed),
            str(t.failed),
            str(t.dead),
            _age(t.oldest_pending_age),
            served,
        )
        if a.partitions:
            for p, pending in enumerate(t.pending_by_partition):
                table.add_row(Text(f"  p{p}", style="dim"), "", str(pending), *[""] * 6)
    table.add_row(
        "[b]total[/]",
        *([""] if split else []),
        str(stats.pending),
        str(stats.in_flight),
        str(stats.processed),
        str(stats.failed),
        str(stats.dead),
        "",
        "",
        end_section=True,
    )
    console = Console()
    console.print(table)
    for name in stats.unserved:
        console.print(f"[yellow]no live worker serves {name!r}: its jobs wait until one starts[/]")
    return 0


async def cmd_partitions(q: Queue, a: argparse.Namespace) -> int:
    if a.count is None:
        n = (await q.partitions([a.type]))[a.type]
        print(f"{a.type}: {n} partition(s)")
        return 0
    try:
        n = await q.set_partitions(a.type, a.count)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if n > a.count:
        print(f"{a.type}: {n} partition(s), kept (a count never shrinks: the jobs of a dropped partition would wait)")
    else:
        print(f"{a.type}: {n} partition(s); producers and workers follow within 10 s")
    return 0


async def cmd_in_flight(q: Queue, a: argparse.Namespace) -> int:
    rows = await q.in_flight(a.limit)
    if a.json:
        print(
            json.dumps(
                [
                    {
                        "job_type": r.job_type,
                        "job_id": r.job_id,
                        "account_id": r.account_id,
                        "account_number": r.account_number,
                        "org_id": r.org_id,
                        "reservation_id": r.reservation_id,
                        "worker": r.worker,
                        "started_at": r.started_at.isoformat(),
                        "running_for": r.running_for,
                        "attempt": r.attempt,
                        "args": r.args,
                        "error": r.error,
                    }
                    for r in rows
                ],
                indent=2,
                default=str,
            )
        )
        return 0
    if not rows:
        print("no jobs in flight")
    for r in rows:
        print(
            f"{r.job_type:<12} {r.job_id or '?':<36} account={r.account_id} "
            f"reservation={r.reservation_id} worker={r.worker} running={_age(r.running_for)} "
            f"attempt={r.attempt}"
        )
    return 0


async def cmd_workers(q: Queue, a: argparse.Namespace) -> int:
    rows = await q.workers()
    if a.json:
        print(
            json.dumps(
                [
                    {
                        "id": w.id,
                        "host": w.host,
                        "pid": w.pid,
                        "concurrency": w.concurrency,
                        "busy": w.busy,
                        "types": w.types,
                        "state": w.state,
                        "heartbeat_at": w.heartbeat_at.isoformat(),
                        "lease": w.lease,
                    }
                    for w in rows
                ],
                indent=2,
            )
        )
        return 0
    if not rows:
        print("no workers")
    for w in rows:
        print(
            f"{w.id:<32} {w.state:<6} busy {w.busy}/{w.concurrency} "
            f"heartbeat {_age(w.heartbeat_age)} ago types={','.join(w.types)}"
        )
    return 0


async def cmd_types(q: Queue, a: argparse.Namespace) -> int:
    types, schemas = await q.job_types(), await q.schemas()
    if a.json:
        print(json.dumps({t: schemas.get(t) for t in types}, indent=2))
        return 0
    for t in types:
        print(f"{t:<16} {'schema published' if t in schemas else 'no schema (no worker has served it)'}")
    return 0


def _print_bad(rows: Sequence[BadJob], as_json: bool) -> None:
    if as_json:
        print(json.dumps([r.to_dict() for r in rows], indent=2, default=str))
        return
    if not rows:
        print("none")
    for r in rows:
        reason = r.reason.strip().splitlines()[-1] if r.reason.strip() else ""
        print(
            f"{r.id:<16} {r.job_type:<12} {r.at:%Y-%m-%d %H:%M:%S} attempt={r.attempt} "
            f"job={r.job_id or '?'} reason={reason}"
        )


async def cmd_bad(q: Queue, a: argparse.Namespace) -> int:
    which = a.command
    if a.action == "list":
        rows = await (q.dead if which == "dead" else q.failed)(a.type, a.limit)
        _print_bad(rows, a.json)
        return 0
    if not a.ids and not a.all:
        raise CliError(f"name the {which} job ids to {a.action}, or pass --all")
    if a.ids and a.all:
        raise CliError("give ids or --all, not both")
    ids = None if a.all else list(a.ids)
    if a.action == "requeue":
        n = await q.requeue(which, a.type, ids)
        print(f"requeued {n} {which} {a.type} job(s)")
    else:
        n = await q.purge(which, a.type, ids)
        print(f"purged {n} {which} {a.type} job(s)")
    if ids is not None and n < len(ids):
        print(f"{len(ids) - n} id(s) were not found", file=sys.stderr)
        return 1
    return 0


async def cmd_worker(q: Queue, a: argparse.Namespace) -> int:
    from .logs import configure

    configure(a.log_level, a.log_format)
    handlers = load_handlers(a.handlers)
    types = [t.strip() for t in a.types.split(",") if t.strip()] if a.types else None
    try:
        worker = Worker(
            q,
            handlers,
            concurrency=a.concurrency,
            timeout=a.timeout,
            types=types,
            lease=a.lease,
            max_attempts=a.max_attempts,
            grace=a.grace,
            worker_id=a.id,
            prefetch=DEFAULT_PREFETCH if a.prefetch is None else a.prefetch,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    metrics = None
    poller = None
    if a.metrics_port:
        from .metrics import WorkerMetrics

        try:
            metrics = WorkerMetrics(worker, q, a.metrics_port)
        except (RuntimeError, OSError) as exc:
            raise CliError(f"cannot serve metrics on port {a.metrics_port}: {exc}") from None
        poller = asyncio.create_task(metrics.poll())
        log.info("serving Prometheus metrics on :%d/metrics", a.metrics_port)

    loop = asyncio.get_running_loop()
    signals = 0

    def on_signal(signame: str) -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            log.info("%s: stopping gracefully (grace %.0fs); again to stop at once", signame, worker.grace)
            worker.request_stop()
        else:
            log.warning("%s again: stopping at once", signame)
            worker.request_hard_stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig.name)
    try:
        await worker.run()
    finally:
        if poller:
            poller.cancel()
        if metrics:
            metrics.close()
    if worker.threads_busy:
        # Their jobs were handed back and may already run elsewhere: exit now
        # rather than wait for the threads (Python cannot stop them).
        log.warning("exiting with %d sync handler(s) still running jobs that were handed back", worker.threads_busy)
        _exit_now(0)
    return 0


def _exit_now(code: int) -> NoReturn:
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


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
}


async def _main(a: argparse.Namespace) -> int:
    url = a.url or default_url()
    try:
        q = connect(url, namespace=a.namespace)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    try:
        if a.command != "worker":
            await q.ping()
        return await COMMANDS[a.command](q, a)
    finally:
        await q.close()


def main(argv: Sequence[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    try:
        return asyncio.run(_main(a))
    except (CliError, JobcoreError) as exc:
        print(f"jobcore: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
