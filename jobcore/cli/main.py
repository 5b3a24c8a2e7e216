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
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from jobcore import __version__
from jobcore.connect import connect
from jobcore.display import field_text, printable, redacted_url, scrubbed
from jobcore.errors import BadQuery, JobcoreError
from jobcore.keys import DEFAULT_NAMESPACE
from jobcore.limits import DEFAULT_LEASE_S, DEFAULT_MAX_ATTEMPTS, FAILED_KEEP
from jobcore.local import URL_HELP, LocalServer, LocalServerError, resolve
from jobcore.model import Identity, Job
from jobcore.ops.find import FoundJob, parse_job_id, parse_query, parse_word
from jobcore.ops.history import KEEP_MINUTES
from jobcore.queue import Queue
from jobcore.records import BadJob, WorkerInfo
from jobcore.registry import Handlers
from jobcore.registry import load_handlers as registry_load_handlers
from jobcore.schema import check_args
from jobcore.worker.worker import DEFAULT_CONCURRENCY, DEFAULT_GRACE_S, DEFAULT_PREFETCH, DEFAULT_TIMEOUT_S, Worker

if TYPE_CHECKING:
    from rich.console import Console

EXIT_USAGE = 2
SCHEMA_WAIT_S = 3.0  # a worker started a moment ago publishes its schemas within this
MAX_COUNT = 1_000_000  # jobs one `enqueue` may send
ENQUEUE_BATCH = 1_000  # jobs built and sent per round trip: memory stays flat whatever --count
INT64 = 2**63
DEFAULT_METRICS_HOST = "127.0.0.1"
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a reader that went away
log = logging.getLogger("jobcore.cli")


class CliError(Exception):
    """A user-facing error: printed as one line, exit 1."""


class UsageError(CliError):
    """The command line asks for something that cannot be: exit 2, like argparse's own."""


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


def _history_minutes(text: str) -> int:
    value = _positive_int(text)
    if value > KEEP_MINUTES:
        raise argparse.ArgumentTypeError(f"history keeps {KEEP_MINUTES} minutes, got {value}")
    return value


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {value}")
    return value


class _Help(argparse.HelpFormatter):
    """Every option's help ends with its default, when it has one worth saying."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "(default" not in text
            and action.option_strings
            and not (default is None or default is False or default == "" or default == argparse.SUPPRESS)
            and not isinstance(action, argparse._VersionAction)
        ):
            text += " (default: %(default)s)"
        return text


def _checked(parse: Callable[[str], object]) -> Callable[[str], str]:
    """An argparse type that reads a word with ``parse`` (a find word, a job id),
    so a bad one is a usage error of one line."""

    def check(text: str) -> str:
        try:
            parse(text)
        except BadQuery as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    return check


class CommandLineParser(argparse.ArgumentParser):
    """jobcore's and jobconsole's parser: help with defaults, usage errors in one line, exit 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _where_options(p: argparse.ArgumentParser, after_command: bool) -> None:
    """--url and --namespace, taken before the command or after it (its value wins)."""
    unset: Any = argparse.SUPPRESS if after_command else None
    p.add_argument(
        "--url",
        default=unset,
        help=URL_HELP,
    )
    p.add_argument(
        "--namespace",
        default=argparse.SUPPRESS if after_command else DEFAULT_NAMESPACE,
        help=f"Redis key prefix (default: {DEFAULT_NAMESPACE})",
    )


def build_parser() -> argparse.ArgumentParser:
    p = CommandLineParser(prog="jobcore", description="A typed, at-least-once job queue on Redis.")
    p.add_argument("--version", action="version", version=f"jobcore {__version__}")
    _where_options(p, after_command=False)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=CommandLineParser)
    where = CommandLineParser(add_help=False)
    _where_options(where, after_command=True)

    def command(name: str, text: str, parent: Any = sub) -> argparse.ArgumentParser:
        made: argparse.ArgumentParser = parent.add_parser(name, help=text, description=text, parents=[where])
        return made

    w = command("worker", "run a worker for the handlers in MODULE:HANDLERS")
    w.add_argument("handlers", metavar="MODULE:HANDLERS", help="the handler registry, e.g. jobcore.demo:handlers")
    w.add_argument("--concurrency", type=_positive_int, default=DEFAULT_CONCURRENCY, help="jobs run at once")
    w.add_argument(
        "--prefetch",
        type=_count,
        default=None,
        help=f"jobs taken beyond the free slots while jobs are quick (default: {DEFAULT_PREFETCH})",
    )
    w.add_argument("--types", default=None, help="comma-separated subset of the registered types (default: all)")
    w.add_argument("--timeout", type=_positive_float, default=DEFAULT_TIMEOUT_S, help="per-job timeout, seconds")
    w.add_argument(
        "--lease", type=_positive_float, default=DEFAULT_LEASE_S, help="seconds without a heartbeat before it is lost"
    )
    w.add_argument(
        "--max-attempts",
        type=_positive_int,
        default=DEFAULT_MAX_ATTEMPTS,
        help="deliveries of one job before it is dead-lettered",
    )
    w.add_argument("--grace", type=float, default=DEFAULT_GRACE_S, help="seconds running jobs get on a stop")
    w.add_argument("--log-format", choices=["text", "json"], default="text", help="log line format")
    w.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info", help="least level")
    w.add_argument("--metrics-port", type=_port, default=None, help="serve Prometheus metrics on this port")
    w.add_argument(
        "--metrics-host",
        default=DEFAULT_METRICS_HOST,
        help="address the metrics server binds; 0.0.0.0 for every interface",
    )
    w.add_argument("--id", default=None, help="worker id, unique while it lives (default: host-pid-random)")
    w.add_argument(
        "--failed-keep", type=_positive_int, default=FAILED_KEEP, help="failed jobs kept per type for requeue"
    )
    w.add_argument(
        "--allow-eviction",
        action="store_true",
        help="serve a Redis whose maxmemory-policy may evict jobs (refused otherwise)",
    )

    e = command("enqueue", "enqueue COUNT jobs of TYPE with ARGS_JSON")
    e.add_argument("type", metavar="TYPE", help="the job type")
    e.add_argument("args", metavar="ARGS_JSON", help="the job's args as a JSON object")
    e.add_argument("--count", type=_job_count, default=1, help=f"how many jobs (at most {MAX_COUNT:,})")
    e.add_argument("--account-id", type=_account_id, default=0, help="the jobs' account id")
    e.add_argument("--account-number", default="", help="the jobs' account number (a log field)")
    e.add_argument("--org-id", default="", help="the jobs' org id (a log field)")
    e.add_argument(
        "--handlers",
        default=None,
        metavar="MODULE:HANDLERS",
        help="check ARGS_JSON against this registry's types (default: the schema a worker published)",
    )
    e.add_argument("--no-validate", action="store_true", help="send ARGS_JSON without checking it")
    e.add_argument(
        "--wait-schema",
        type=float,
        default=SCHEMA_WAIT_S,
        metavar="SECONDS",
        help="how long to wait for a starting worker to publish TYPE's schema",
    )
    e.add_argument("--json", action="store_true", help="print the job ids as JSON")

    s = command("stats", "per-type queue depth, in flight, processed, failed, dead")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.add_argument("--partitions", action="store_true", help="also show each partition's pending jobs")
    s.add_argument("--history", action="store_true", help="per-minute outcomes and run-time p50/p95 per type")
    s.add_argument("--minutes", type=_history_minutes, default=60, help="with --history: the window in minutes")
    s.add_argument("--type", default=None, help="with --history: one type only")

    pa = command(
        "partitions",
        "show or raise TYPE's partition count (jobs spread over N streams by account; it never shrinks)",
    )
    pa.add_argument("type", metavar="TYPE", help="the job type")
    pa.add_argument("count", nargs="?", type=_positive_int, metavar="N", help="the new count (default: show it)")

    f = command("in-flight", "jobs being processed now")
    f.add_argument("--limit", type=_positive_int, default=50, help="rows shown at most")
    f.add_argument("--json", action="store_true", help="print JSON")

    wk = command("workers", "live (and lost) workers")
    wk.add_argument("--json", action="store_true", help="print JSON")

    t = command("types", "known job types and their args schema")
    t.add_argument("--json", action="store_true", help="print JSON")

    wy = command("why", "why TYPE's jobs (or job --job ID in flight) wait, in plain sentences")
    wy.add_argument("type", nargs="?", default=None, metavar="TYPE", help="the job type")
    wy.add_argument("--job", default=None, metavar="ID", help="a job id in flight, whole or its first 8+ hex digits")
    wy.add_argument("--json", action="store_true", help="print JSON")

    for action in ("pause", "resume"):
        what = "stop" if action == "pause" else "start again"
        pr = command(action, f"{action} TYPE: workers {what} taking its jobs (running ones finish)")
        pr.add_argument("type", metavar="TYPE", help="the job type")

    fi = command(
        "find", "where jobs are: by job id (or its first 8+ hex), account:N, org:ID, acct:NUMBER, res:ID, type:TYPE"
    )
    fi.add_argument(
        "words", nargs="+", metavar="WORD", type=_checked(parse_word), help="all must match (e.g. account:42 type:t)"
    )
    fi.add_argument("--limit", type=_positive_int, default=100, help="matches shown at most")
    fi.add_argument("--json", action="store_true", help="print JSON")

    ca = command("cancel", "cancel a running job (whole id or its first 8+ hex characters)")
    ca.add_argument("id", metavar="ID", type=_checked(parse_job_id), help="the job id")
    ca.add_argument("--json", action="store_true", help="print JSON")

    for which in ("dead", "failed"):
        d = command(which, f"list, requeue or purge {which} jobs")
        dsub = d.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=CommandLineParser)
        dl = command("list", f"list {which} jobs, newest first", dsub)
        dl.add_argument("--type", default=None, help="only this type (default: all)")
        dl.add_argument("--limit", type=_positive_int, default=20, help="rows shown at most")
        dl.add_argument("--json", action="store_true", help="print JSON")
        dg = command("groups", f"{which} jobs grouped by type and cause, largest group first", dsub)
        dg.add_argument("type", nargs="?", default=None, metavar="TYPE", help="only this type (default: all)")
        dg.add_argument("--json", action="store_true", help="every group with its entry ids")
        for action in ("requeue", "purge"):
            da = command(
                action, f"{action} {which} jobs of TYPE: by id (entry id or job id), --all or --group KEY", dsub
            )
            da.add_argument("type", metavar="TYPE", help="the job type")
            da.add_argument("ids", nargs="*", metavar="ID", help="entry ids or job ids, as the list shows them")
            chosen = da.add_mutually_exclusive_group()
            chosen.add_argument("--all", action="store_true", help=f"every {which} job of TYPE")
            chosen.add_argument("--group", default=None, metavar="KEY", help=f"the group KEY `{which} groups` shows")

    sv = command("server", "the local server jobcore starts when no Redis is given or answers")
    sv.add_argument("action", nargs="?", choices=["status", "start", "stop"], default="status", help="what to do")
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


async def _schema_for(q: Queue, a: argparse.Namespace) -> dict[str, Any] | None:
    """The args schema ARGS_JSON must fit: the --handlers registry's type, else
    the one a worker published (waiting briefly for a worker that is starting)."""
    if a.no_validate:
        return None
    if a.handlers:
        registry = load_handlers(a.handlers)
        if a.type not in registry:
            known = ", ".join(printable(t) for t in registry.types) or "none"
            raise CliError(f"{a.handlers} has no handler for job type {printable(repr(a.type))} (it has: {known})")
        return registry.get(a.type).schema()
    deadline = time.monotonic() + max(0.0, a.wait_schema)
    while True:
        schemas = await q.schemas()
        if a.type in schemas:
            return schemas[a.type]
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.2)
    known = ", ".join(printable(t) for t in sorted(schemas)) or "none"
    raise CliError(
        f"no args schema known for job type {printable(repr(a.type))}: no worker has served it yet (known: {known}); "
        "start its worker, or pass --handlers MODULE:HANDLERS to check against your own types, "
        "or --no-validate to send it unchecked"
    )


async def cmd_enqueue(q: Queue, a: argparse.Namespace) -> int:
    args = _args_json(a.args)
    schema = await _schema_for(q, a)
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

    if a.history:
        return await _print_history(q, a.type, a.minutes, a.json)
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
        type_cell = Text(printable(t.job_type))
        if t.paused:
            type_cell.append(" paused", "yellow")
        table.add_row(
            type_cell,
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
        if t.paused:
            console.print(
                Text(f"type {printable(repr(t.job_type))} is paused: workers take none of its jobs until it is resumed",
                     "yellow")
            )  # fmt: skip
    evicting = ", ".join(sorted(await q.eviction_policies()))
    if evicting:
        console.print(
            Text(f"Redis uses maxmemory-policy {evicting}: it may evict queued jobs; set noeviction", "bold red")
        )
    return 0


def _ms(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.1f}ms" if ms < 1000 else f"{ms / 1000:.2f}s"


async def _print_history(q: Queue, job_type: str | None, minutes: int, as_json: bool) -> int:
    history = await q.history(job_type, minutes)
    if as_json:
        print(json.dumps(history.to_dict(), indent=2))
        return 0
    out = _Out()
    types = sorted(history.types.values(), key=lambda h: h.job_type)
    out.write(
        f"last {minutes} minute(s) up to {history.until:%Y-%m-%d %H:%M} UTC (the current minute still counting)\n"
    )
    out.write(f"{'type':<16} {'processed':>10} {'failed':>8} {'dead':>6} {'runs':>8} {'p50':>9} {'p95':>9}\n")
    for h in types:
        out.write(
            f"{printable(h.job_type):<16} {h.processed:>10} {h.failed:>8} {h.dead:>6} {h.runs:>8} "
            f"{_ms(h.p50_ms):>9} {_ms(h.p95_ms):>9}\n"
        )
    busy = [(r, h.job_type) for h in types for r in h.rows if r.processed or r.failed or r.dead or r.runs]
    if busy:
        out.write("\nper minute (minutes with outcomes only):\n")
        out.write(
            f"{'minute':<7}{'type':<16} {'processed':>10} {'failed':>8} {'dead':>6} {'runs':>8} {'p50':>9} {'p95':>9}\n"
        )
    for r, name in sorted(busy, key=lambda x: (x[0].at, x[1])):
        out.write(
            f"{r.at:%H:%M}  {printable(name):<16} {r.processed:>10} {r.failed:>8} {r.dead:>6} {r.runs:>8} "
            f"{_ms(r.p50_ms):>9} {_ms(r.p95_ms):>9}\n"
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
    if len(rows) == a.limit:
        _cut(len(rows), (await q.stats()).in_flight, "jobs in flight")
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


async def _known_type(q: Queue, job_type: str) -> None:
    types = await q.job_types()
    if job_type not in types:
        known = ", ".join(printable(t) for t in types) or "none"
        raise CliError(f"no job type {printable(repr(job_type))} in this queue (known: {known})")


def _cut(shown: int, total: int, what: str) -> None:
    """Say on stderr that a list stops short, so stdout stays the rows."""
    if shown < total:
        print(f"{shown} of {total} {what} shown (--limit)", file=sys.stderr)


async def cmd_bad(q: Queue, a: argparse.Namespace) -> int:
    which = a.command
    if a.action == "list":
        if a.type is not None:
            await _known_type(q, a.type)
        rows = await (q.dead if which == "dead" else q.failed)(a.type, a.limit)
        _print_bad(rows, a.json)
        if len(rows) == a.limit and not a.json:
            stats = await q.stats()
            held = [t for t in stats.types.values() if a.type is None or t.job_type == a.type]
            _cut(len(rows), sum(t.dead if which == "dead" else t.failed_kept for t in held), f"{which} jobs")
        return 0
    if a.action == "groups":
        if a.type is not None:
            await _known_type(q, a.type)
        return await _print_groups(q, which, a.type, a.json)
    await _known_type(q, a.type)
    if a.group is not None:
        return await _act_on_group(q, which, a.action, a.type, a.group)
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


async def _print_groups(q: Queue, which: Literal["dead", "failed"], job_type: str | None, as_json: bool) -> int:
    groups = await q.failure_groups(which, job_type)
    if as_json:
        print(json.dumps([g.to_dict() for g in groups], indent=2, default=str))
        return 0
    if not groups:
        print("none")
    for g in groups:
        print(
            f"{g.key}  {printable(g.job_type):<12} {g.count:>6}  newest {g.newest:%Y-%m-%d %H:%M:%S}  "
            f"e.g. {printable(g.example.id)}  {printable(g.label)}"
        )
    return 0


async def _act_on_group(q: Queue, which: Literal["dead", "failed"], action: str, job_type: str, key: str) -> int:
    act = q.requeue_group if action == "requeue" else q.purge_group
    n = await act(which, key, job_type)
    print(f"{action}d {n} {which} {printable(job_type)} job(s) of group {printable(key)}")
    return 0


async def cmd_why(q: Queue, a: argparse.Namespace) -> int:
    why = await q.why(a.type, job_id=a.job)
    if a.json:
        print(json.dumps(why.to_dict(), indent=2))
        return 0
    for sentence in why.sentences:
        print(printable(sentence))
    return 0


async def cmd_worker(q: Queue, a: argparse.Namespace) -> int:
    from jobcore.logs import configure

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
        from jobcore.worker.metrics import WorkerMetrics, metrics_url

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


async def cmd_pause(q: Queue, a: argparse.Namespace) -> int:
    name = printable(repr(a.type))
    if a.command == "pause":
        await q.pause(a.type)
        print(f"paused {name}: workers take none of its jobs from their next fetch; running ones finish")
    else:
        await q.resume(a.type)
        print(f"resumed {name}: workers take its jobs again")
    return 0


def _found_line(f: FoundJob) -> str:
    fields = " ".join(f"{k}={field_text(v)}" for k, v in f.log_fields().items())
    extra = ""
    if f.where in ("dead", "failed") and f.reason:
        lines = f.reason.strip().splitlines()
        extra = f" reason={printable(lines[-1] if lines else '')}"
    return f"{printable(f.describe())}: {fields}{extra}"


async def cmd_find(q: Queue, a: argparse.Namespace) -> int:
    found = await q.find(parse_query(a.words), limit=a.limit)
    if a.json:
        print(json.dumps([f.to_dict() for f in found], indent=2, default=str))
        return 0
    if not found:
        print("no job matches (in flight, dead and failed were searched; pending only by a whole job id)")
    for f in found:
        print(_found_line(f))
    return 0


async def cmd_cancel(q: Queue, a: argparse.Namespace) -> int:
    result = await q.cancel(a.id)
    if a.json:
        job = result.job.to_dict() if result.job else None
        print(json.dumps({"status": result.status, "message": result.message, "sync": result.sync, "job": job},
                         indent=2, default=str))  # fmt: skip
    else:
        print(printable(result.message))
    return 0 if result.status == "requested" else 1


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
    "why": cmd_why,
    "pause": cmd_pause,
    "resume": cmd_pause,
    "find": cmd_find,
    "cancel": cmd_cancel,
}


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


async def _main(a: argparse.Namespace) -> int:
    try:
        where = resolve(a.url)
    except LocalServerError as exc:
        raise CliError(str(exc)) from None
    url = where.url
    if where.implicit:
        # Said on stderr, so what a script reads from stdout stays the same.
        print(f"jobcore: {where.why}", file=sys.stderr)
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


def _check_usage(a: argparse.Namespace) -> None:
    """What argparse cannot say about the command line, said before any connection."""
    if a.command in ("dead", "failed") and a.action in ("requeue", "purge"):
        if not a.ids and not a.all and a.group is None:
            raise UsageError(
                f"name the {a.command} jobs to {a.action} (their ids or job ids), or pass --all or --group KEY"
            )
        if a.ids and (a.all or a.group is not None):
            raise UsageError("give ids, --all or --group KEY: one of them")
    if a.command == "enqueue" and a.handlers and a.no_validate:
        raise UsageError("--handlers checks the args and --no-validate skips the check: give one of them")


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
        _drop_stdout()
        return EXIT_BROKEN_PIPE
    except UsageError as exc:
        print(f"jobcore: error: {printable(exc)} (see jobcore {a.command} --help)", file=sys.stderr)
        return EXIT_USAGE
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
