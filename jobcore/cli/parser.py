"""The ``jobcore`` command line, parsed: the argument checkers, :class:`CommandLineParser`
(jobconsole's too) and :func:`build_parser`. Imports no command."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn

from jobcore import __version__
from jobcore.errors import BadQuery
from jobcore.keys import DEFAULT_NAMESPACE
from jobcore.limits import DEFAULT_LEASE_S, DEFAULT_MAX_ATTEMPTS, FAILED_KEEP, MAX_PARTITIONS
from jobcore.local import QUIET_ENV, URL_HELP
from jobcore.ops.audit import ACTOR_ENV
from jobcore.ops.find import parse_job_id, parse_word
from jobcore.ops.history import KEEP_MINUTES
from jobcore.worker.worker import DEFAULT_CONCURRENCY, DEFAULT_GRACE_S, DEFAULT_PREFETCH, DEFAULT_TIMEOUT_S

EXIT_USAGE = 2
SCHEMA_WAIT_S = 3.0  # a worker started a moment ago publishes its schemas within this
MAX_COUNT = 1_000_000  # jobs one `enqueue` may send
INT64 = 2**63
DEFAULT_METRICS_HOST = "127.0.0.1"
DEFAULT_EXPORTER_PORT = 9808


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


def _partition_count(text: str) -> int:
    value = _positive_int(text)
    if value > MAX_PARTITIONS:
        raise argparse.ArgumentTypeError(f"at most {MAX_PARTITIONS} partitions, got {value}")
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
    """--url, --namespace, --quiet and --actor, taken before the command or after it (its value wins)."""
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
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS if after_command else False,
        help=f"no first line saying which server was picked (${QUIET_ENV}=1 too); errors, and trouble "
        "with the server, are always said",
    )
    p.add_argument(
        "--actor",
        default=unset,
        metavar="NAME",
        help=f"who acts, as the audit trail records it (default: ${ACTOR_ENV}, else user@host)",
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
    e.add_argument(
        "args", metavar="ARGS_JSON", help="the job's args as a JSON object; - reads it from stdin, @FILE from FILE"
    )
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
    e.add_argument(
        "--key",
        default=None,
        metavar="KEY",
        help="enqueue once: while KEY holds (24 h, or ?key_ttl_s= on the URL) a second enqueue of TYPE with it "
        "for the same account adds nothing and prints the first job's id",
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
    pa.add_argument(
        "count",
        nargs="?",
        type=_partition_count,
        metavar="N",
        help=f"the new count, 1 to {MAX_PARTITIONS} (default: show it)",
    )

    f = command("in-flight", "jobs being processed now")
    f.add_argument(
        "--type", action="append", default=None, metavar="TYPE", help="only this type (repeat for more; default: all)"
    )
    f.add_argument("--limit", type=_positive_int, default=50, help="rows shown at most")
    f.add_argument("--json", action="store_true", help="print JSON")

    wk = command("workers", "live (and lost) workers")
    wk.add_argument("--json", action="store_true", help="print JSON")

    t = command("types", "known job types and their args schema; `types remove TYPE --yes` retires one")
    t.add_argument(
        "words", nargs="*", metavar="remove TYPE", help="remove TYPE: every key of it, once nothing waits or runs"
    )
    t.add_argument(
        "--yes", action="store_true", help="remove: without asking (elsewhere than a terminal it is refused)"
    )
    t.add_argument("--json", action="store_true", help="print JSON")

    wy = command("why", "why TYPE's jobs (or job --job ID) wait, in plain sentences")
    wy.add_argument("type", nargs="?", default=None, metavar="TYPE", help="the job type")
    wy.add_argument(
        "--job", default=None, metavar="ID", help="a job id, whole or its first 8+ hex digits (pending: whole)"
    )
    wy.add_argument("--json", action="store_true", help="print JSON")

    for action in ("pause", "resume"):
        what = "stop" if action == "pause" else "start again"
        running = "running ones finish" if action == "pause" else "from their next fetch"
        pr = command(action, f"{action} TYPE: workers {what} taking its jobs ({running})")
        pr.add_argument("type", metavar="TYPE", help="the job type")

    fa = command("fair", "fairness across accounts of TYPE: show it, or turn it on or off")
    fa.add_argument("type", metavar="TYPE", help="the job type")
    fa.add_argument(
        "state", nargs="?", choices=["on", "off"], default=None, help="turn it on or off (default: show it)"
    )
    fa.add_argument("--json", action="store_true", help="print JSON")

    li = command("limit", "how many of one account's jobs of a fair TYPE run at once: show or set it")
    li.add_argument("type", metavar="TYPE", help="the job type")
    li.add_argument(
        "--per-account", type=_count, default=None, metavar="N", help="at most N of an account's jobs at once (0: none)"
    )
    li.add_argument(
        "--account", type=_account_id, default=None, metavar="ID", help="set this account's own --max or --weight"
    )
    li.add_argument("--max", type=_count, default=None, metavar="N", help="its own limit (0: the type's applies)")
    li.add_argument("--weight", type=_positive_int, default=None, metavar="W", help="its jobs per turn (1: as others)")
    li.add_argument("--json", action="store_true", help="print JSON")

    fi = command(
        "find", "where jobs are: by job id (or its first 8+ hex), account:N, org:ID, acct:NUMBER, res:ID, type:TYPE"
    )
    fi.add_argument(
        "words", nargs="+", metavar="WORD", type=_checked(parse_word), help="all must match (e.g. account:42 type:t)"
    )
    fi.add_argument("--limit", type=_positive_int, default=100, help="matches shown at most")
    fi.add_argument("--json", action="store_true", help="print JSON")

    pe = command(
        "pending", "the waiting jobs of TYPE, oldest first, a page at a time; `pending delete TYPE ...` deletes them"
    )
    pe.add_argument(
        "words",
        nargs="+",
        metavar="TYPE | delete TYPE [JOB_ID ...]",
        help="the type to list; or delete, the type, and job ids (whole or 8+ hex) or a filter or --all",
    )
    pe.add_argument("--account", type=_account_id, default=None, metavar="N", help="only this account's jobs")
    pe.add_argument("--org", default=None, metavar="ID", help="only this org's jobs")
    pe.add_argument("--acct", default=None, metavar="NUMBER", help="only jobs with this account number")
    pe.add_argument("--limit", type=_positive_int, default=50, help="rows shown at most")
    pe.add_argument("--after", default=None, metavar="ENTRY", help="go on past this entry (the last row's, or as said)")
    pe.add_argument("--all", action="store_true", help="delete: every waiting job of TYPE")
    pe.add_argument(
        "--yes", action="store_true", help="delete: without asking (elsewhere than a terminal it is refused)"
    )
    pe.add_argument("--json", action="store_true", help="print JSON")

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

    au = command("audit", "the operator actions recorded (who did what, when, to how many), newest first")
    au.add_argument("--limit", type=_positive_int, default=50, help="records shown at most")
    au.add_argument("--type", default=None, metavar="TYPE", help="only actions on this type")
    au.add_argument("--json", action="store_true", help="print JSON")

    ex = command("exporter", "serve the whole queue as Prometheus metrics (one Redis read per interval)")
    ex.add_argument("--port", type=_port, default=DEFAULT_EXPORTER_PORT, help="the port to serve on")
    ex.add_argument(
        "--host", default=DEFAULT_METRICS_HOST, help="the address to bind (0.0.0.0: every interface; default local)"
    )
    ex.add_argument("--interval", type=_positive_float, default=5.0, metavar="S", help="seconds between reads")

    ck = command("check", "exit 0 when every rule holds, 1 on a breach (one line each), 2 when it cannot tell")
    ck.add_argument("--max-age", action="append", default=[], metavar="TYPE=DURATION", help="oldest waiting job")
    ck.add_argument("--max-pending", action="append", default=[], metavar="TYPE=N", help="jobs waiting")
    ck.add_argument("--max-dead", action="append", default=[], metavar="TYPE=N", help="jobs in the dead set")
    ck.add_argument("--served", action="append", default=[], metavar="TYPE", help="a live worker serves TYPE")
    ck.add_argument("--all-served", action="store_true", help="a live worker serves every known type")
    ck.add_argument("--json", action="store_true", help='print {"ok": ..., "breaches": [...]}')

    sv = command("server", "the local server jobcore starts when no Redis is given or answers")
    sv.add_argument("action", nargs="?", choices=["status", "start", "stop"], default="status", help="what to do")
    sv.add_argument(
        "--force",
        "--yes",
        action="store_true",
        help="stop: even with workers or consoles connected (without it: asked on a terminal, refused elsewhere)",
    )
    return p
