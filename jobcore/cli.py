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
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from . import __version__
from .backend import DEFAULT_LEASE_S, DEFAULT_MAX_ATTEMPTS, FAILED_KEEP, BadJob, Queue, WorkerInfo
from .connect import connect
from .display import field_text, printable, redacted_url, scrubbed
from .errors import JobcoreError
from .keys import DEFAULT_NAMESPACE
from .model import Identity, Job
from .registry import Handlers
from .registry import load_handlers as registry_load_handlers
from .schema import check_args
from .worker import DEFAULT_CONCURRENCY, DEFAULT_GRACE_S, DEFAULT_PREFETCH, DEFAULT_TIMEOUT_S, Worker

if TYPE_CHECKING:
    from rich.console import Console

DEFAULT_URL = "redis://localhost:6379/0"
MAX_COUNT = 1_000_000  # jobs one `enqueue` may send
ENQUEUE_BATCH = 1_000  # jobs built and sent per round trip: memory stays flat whatever --count
INT64 = 2**63
DEFAULT_METRICS_HOST = "127.0.0.1"
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a reader that went away
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


def _job_count(text: str) -> int:
    value = _whole(text, 1)
    if value > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"at most {MAX_COUNT:,} jobs per enqueue, got {value:,}")
    return value


def _account_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text[:40]!r}") from None
    if not -INT64 <= value < INT64:
        raise argparse.ArgumentTypeError("does not fit in 64 bits")
    return value


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
    w.add_argument(
        "--metrics-host",
        default=DEFAULT_METRICS_HOST,
        help="address the metrics server binds (default: %(default)s; 0.0.0.0 for every interface)",
    )
    w.add_argument("--id", default=None, help="worker id (default host-pid-random)")
    w.add_argument(
        "--failed-keep",
        type=_positive_int,
        default=FAILED_KEEP,
        help="failed jobs kept per type for requeue, the newest (default: %(default)s)",
    )
    w.add_argument(
        "--allow-eviction",
        action="store_true",
        help="serve a Redis whose maxmemory-policy may evict jobs (refused by default)",
    )

    e = sub.add_parser("enqueue", help="enqueue COUNT jobs of TYPE with ARGS_JSON")
    e.add_argument("type", metavar="TYPE")
    e.add_argument("args", metavar="ARGS_JSON")
    e.add_argument("--count", type=_job_count, default=1, help=f"how many jobs (at most {MAX_COUNT:,})")
    e.add_argument("--account-id", type=_account_id, default=0)
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


def _args_json(text: str) -> dict[str, Any]:
    try:
        args = json.loads(text)
    except RecursionError:
        raise CliError("ARGS_JSON is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, or an integer of thousands of digits
        raise CliError(f"ARGS_JSON is not valid JSON: {exc}") from None
    if not isinstance(args, dict):
        raise CliError(f"ARGS_JSON must be a JSON object, got {type(args).__name__}")
    return args


class _Out:
    """stdout that survives its reader going away (``| head``): what is printed
    after that is dropped, and the command ends with EXIT_BROKEN_PIPE."""

    def __init__(self) -> None:
        self.gone = False

    def write(self, text: str) -> None:
        if self.gone:
            return
        try:
            sys.stdout.write(text)
        except BrokenPipeError:
            self.gone = True
            _drop_stdout()


async def cmd_enqueue(q: Queue, a: argparse.Namespace) -> int:
    args = _args_json(a.args)
    schemas = await q.schemas()
    schema = schemas.get(a.type)
    if schema is None and not a.no_validate:
        known = ", ".join(printable(t) for t in sorted(schemas)) or "none"
        raise CliError(
            f"no args schema known for job type {a.type!r} (no worker has served it; known: {known}); "
            "use --no-validate to enqueue it anyway"
        )
    try:
        if schema is not None:
            check_args(a.type, args, schema)
    except RecursionError:
        raise CliError("ARGS_JSON is nested too deeply") from None
    ident = Identity(account_number=a.account_number, org_id=a.org_id)
    out = _Out()
    done = 0
    first = last = None
    try:
        # In batches, so a million jobs never sit in memory at once; the ids
        # are printed as each batch lands. All jobs are sent even when stdout
        # is gone: the jobs are what was asked for, the ids only a report.
        for n in _batches(a.count, ENQUEUE_BATCH):
            jobs = [Job(type=a.type, args=args, account_id=a.account_id, identity=ident) for _ in range(n)]
            ids = await q.enqueue_many(jobs)
            if a.json:
                out.write(("[" if done == 0 else ", ") + ", ".join(f'"{i}"' for i in ids))
            if first is None:
                first = ids[0]
            last = ids[-1]
            done += len(ids)
    except JobcoreError as exc:
        if not done:
            raise
        if a.json:
            out.write("]\n")  # the ids of what did land, as valid JSON
        raise CliError(f"{exc} ({done:,} of {a.count:,} jobs were enqueued before it)") from None
    name = printable(a.type)
    if a.json:
        out.write("]\n")
    elif done == 1:
        out.write(f"enqueued {name} job {first}\n")
    else:
        out.write(f"enqueued {done} {name} jobs ({first} ... {last})\n")
    return EXIT_BROKEN_PIPE if out.gone else 0


def _batches(total: int, size: int) -> Iterator[int]:
    while total > 0:
        yield min(size, total)
        total -= size


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


async def cmd_stats(q: Queue, a: argparse.Namespace) -> int:
    from rich.table import Table
    from rich.text import Text

    stats = await q.stats()
    if a.json:
        print(json.dumps(stats.to_dict(), indent=2))
        return 0
    # Every string from Redis goes in as Text: never read as markup, escapes shown escaped.
    title = f"jobcore at {redacted_url(q.url)}, {q.topology()} ({stats.workers} live worker(s))"
    table = Table(title=Text(printable(title)))
    split = any(t.partitions > 1 for t in stats.types.values())
    cols = ["type", *(["partitions"] if split else []), "pending", "in flight", "processed", "failed", "dead"]
    for col in (*cols, "oldest", "workers"):
        # A type name folds rather than being cut: it is what an operator types next.
        table.add_column(
            col, justify="left" if col == "type" else "right", overflow="fold" if col == "type" else "ellipsis"
        )
    for t in sorted(stats.types.values(), key=lambda t: t.job_type):
        served = Text(str(t.served_by)) if t.served_by else (Text("none", "red") if t.pending else Text("0"))
        table.add_row(
            Text(printable(t.job_type)),
            *([str(t.partitions)] if split else []),
            str(t.pending),
            str(t.in_flight),
            str(t.processed),
            _failed(t.failed, t.failed_kept),
            str(t.dead),
            _age(t.oldest_pending_age),
            served,
        )
        if a.partitions:
            for p, pending in enumerate(t.pending_by_partition):
                table.add_row(Text(f"  p{p}", style="dim"), "", str(pending), *[""] * 6)
    table.add_row(
        Text("total", "bold"),
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
    console = _console()
    console.print(table)
    for name in stats.unserved:
        console.print(Text(f"no live worker serves {printable(repr(name))}: its jobs wait until one starts", "yellow"))
    for t in stats.types.values():
        if t.schema_versions > 1:
            console.print(
                Text(
                    f"type {printable(repr(t.job_type))}: its live workers run {t.schema_versions} different args "
                    "schemas (a rolling deploy?); jobs with fields a worker does not know are dead-lettered there",
                    "yellow",
                )
            )
        if t.problem:
            console.print(Text(f"type {printable(repr(t.job_type))}: {printable(t.problem)}", "red"))
    evicting = ", ".join(sorted(await q.eviction_policies()))
    if evicting:
        console.print(
            Text(f"Redis uses maxmemory-policy {evicting}: it may evict queued jobs; set noeviction", "bold red")
        )
    return 0


def _failed(failed: int, kept: int) -> str:
    """Failures counted, and how many of them the failed list still holds when that differs."""
    return str(failed) if kept == failed else f"{failed} ({kept} kept)"


def _console() -> Console:
    """A rich Console whose broken pipe ends the command like any other print's."""
    from rich.console import Console

    class _PipeConsole(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError  # rich would exit 1; main() exits quietly with 141

    return _PipeConsole()


async def cmd_partitions(q: Queue, a: argparse.Namespace) -> int:
    if a.count is None:
        n = (await q.partitions([a.type]))[a.type]
        print(f"{printable(a.type)}: {n} partition(s)")
        return 0
    try:
        n = await q.set_partitions(a.type, a.count)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    name = printable(a.type)
    if n > a.count:
        print(f"{name}: {n} partition(s), kept (a count never shrinks: the jobs of a dropped partition would wait)")
    else:
        print(f"{name}: {n} partition(s); producers and workers follow within 10 s")
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
        problem = f" undecodable: {printable(r.error)}" if r.error else ""
        print(
            f"{printable(r.job_type):<12} {r.job_id or '?':<36} account={r.account_id} "
            f"reservation={field_text(r.reservation_id)} worker={printable(r.worker)} running={_age(r.running_for)} "
            f"attempt={r.attempt}{problem}"
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
            f"{printable(w.id):<32} {w.state:<6} busy {w.busy}/{w.concurrency} "
            f"heartbeat {_age(w.heartbeat_age)} ago types={printable(','.join(w.types))}"
        )
    return 0


async def cmd_types(q: Queue, a: argparse.Namespace) -> int:
    types, schemas = await q.job_types(), await q.schemas()
    if a.json:
        print(json.dumps({t: schemas.get(t) for t in types}, indent=2))
        return 0
    skew = _schema_skew(await q.workers())
    for t in types:
        state = "schema published" if t in schemas else "no schema (no worker has served it)"
        if t in skew:
            state += f"; live workers disagree: {skew[t]}"
        print(f"{printable(t):<16} {state}")
    return 0


def _schema_skew(workers: Sequence[WorkerInfo]) -> dict[str, str]:
    """Per type whose live workers publish different args schemas: which, by how many."""
    by_type: dict[str, dict[str, int]] = {}
    for w in workers:
        if w.state != "lost":
            for t, h in w.schemas.items():
                by_type.setdefault(t, {})
                by_type[t][h] = by_type[t].get(h, 0) + 1
    return {
        t: ", ".join(f"schema {printable(h)} on {n} worker(s)" for h, n in sorted(hashes.items()))
        for t, hashes in by_type.items()
        if len(hashes) > 1
    }


def _print_bad(rows: Sequence[BadJob], as_json: bool) -> None:
    if as_json:
        print(json.dumps([r.to_dict() for r in rows], indent=2, default=str))
        return
    if not rows:
        print("none")
    for r in rows:
        # The last line of a traceback says what happened; nothing in it is markup or a raw escape.
        reason = r.reason.strip().splitlines()[-1] if r.reason.strip() else ""
        problem = f" (undecodable: {r.payload_error})" if r.payload_error else ""
        print(
            f"{printable(r.id):<16} {printable(r.job_type):<12} {r.at:%Y-%m-%d %H:%M:%S} attempt={r.attempt} "
            f"job={r.job_id or '?'}{printable(problem)} reason={printable(reason)}"
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
        print(f"requeued {n} {which} {printable(a.type)} job(s)")
    else:
        n = await q.purge(which, a.type, ids)
        print(f"purged {n} {which} {printable(a.type)} job(s)")
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
            allow_eviction=a.allow_eviction,
            failed_keep=a.failed_keep,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    log.info("worker %s using the queue at %s", worker.id, redacted_url(q.url))
    metrics = None
    poller = None
    if a.metrics_port:
        from .metrics import WorkerMetrics, metrics_url

        where = metrics_url(a.metrics_host, a.metrics_port)
        try:
            metrics = WorkerMetrics(worker, q, a.metrics_port, a.metrics_host)
        except (RuntimeError, OSError) as exc:
            raise CliError(f"cannot serve metrics on {where}: {exc}") from None
        poller = asyncio.create_task(metrics.poll())
        log.info("serving Prometheus metrics on %s", where)

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
    except ValueError as exc:  # a bad URL, which the message may quote
        raise CliError(scrubbed(str(exc), url)) from None
    try:
        if a.command != "worker":
            await q.ping()
        return await COMMANDS[a.command](q, a)
    finally:
        await q.close()


def _drop_stdout() -> None:
    """Send what stdout still holds, and anything printed later, to /dev/null: its
    reader is gone, and Python's flush at exit would print a traceback."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    try:
        code = asyncio.run(_main(a))
        sys.stdout.flush()  # a reader that went away shows here, not at exit
        return code
    except BrokenPipeError:  # `jobcore workers --json | head -1`
        _drop_stdout()
        return EXIT_BROKEN_PIPE
    except (CliError, JobcoreError) as exc:
        # One line, whatever the message quotes from Redis.
        print(f"jobcore: error: {printable(exc)}", file=sys.stderr)
        return 1
    except UnicodeDecodeError as exc:  # a name or field in Redis that is not UTF-8
        print(f"jobcore: error: Redis holds text that is not UTF-8: {printable(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
