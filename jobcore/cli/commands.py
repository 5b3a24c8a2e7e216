"""The commands that read the queue or act on one type or job: stats (and its
history), partitions, in-flight, workers, types, why, pause/resume, find, cancel."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from jobcore.cli.errors import CliError
from jobcore.cli.output import Out, note_cut, pipe_console, print_json
from jobcore.cli.pending import remove_type
from jobcore.cli.stats_table import print_stats_table
from jobcore.display import duration, field_text, printable
from jobcore.limits import IN_FLIGHT_ALL
from jobcore.ops.find import FoundJob, parse_query
from jobcore.queue import Queue
from jobcore.records import WorkerInfo


async def cmd_stats(q: Queue, a: argparse.Namespace) -> int:
    from rich.text import Text

    if a.history:
        return await _print_history(q, a.type, a.minutes, a.json)
    stats = await q.stats()
    if a.json:
        print_json(stats.to_dict())
        return 0
    # Every string from Redis goes in as Text: never read as markup, escapes shown escaped.
    console = pipe_console()
    print_stats_table(console, stats, q.url, q.topology(), a.partitions)

    def say(text: Text) -> None:
        console.print(text, soft_wrap=not console.is_terminal)  # piped: every note whole on its line

    for name in stats.unserved:
        say(Text(f"no live worker serves {printable(repr(name))}: its jobs wait until one starts", "yellow"))
    for t in stats.types.values():
        if t.schema_versions > 1:
            say(
                Text(
                    f"type {printable(repr(t.job_type))}: its live workers run {t.schema_versions} different args "
                    "schemas (a rolling deploy?); jobs with fields a worker does not know are dead-lettered there",
                    "yellow",
                )
            )
        if t.problem:
            say(Text(f"type {printable(repr(t.job_type))}: {printable(t.problem)}", "red"))
        if t.paused:
            say(
                Text(f"type {printable(repr(t.job_type))} is paused: workers take none of its jobs until it is resumed",
                     "yellow")
            )  # fmt: skip
        if t.fair and t.accounts_waiting:
            say(
                Text(f"type {printable(repr(t.job_type))} is fair: {t.accounts_waiting:,} account(s) have jobs waiting "
                     f"their turn (`jobcore fair {printable(t.job_type)}` says who)")
            )  # fmt: skip
    evicting = ", ".join(sorted(await q.eviction_policies()))
    if evicting:
        say(Text(f"Redis uses maxmemory-policy {evicting}: it may evict queued jobs; set noeviction", "bold red"))
    return 0


def _ms(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.1f}ms" if ms < 1000 else f"{ms / 1000:.2f}s"


async def _print_history(q: Queue, job_type: str | None, minutes: int, as_json: bool) -> int:
    history = await q.history(job_type, minutes)
    if as_json:
        print_json(history.to_dict())
        return 0
    out = Out()
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
    total: int | None = None
    if a.type:
        await q.check_known(*a.type)
        # Filtered here: every row is read (workers hold few), then the longest-running kept.
        every = [r for r in await q.in_flight(IN_FLIGHT_ALL) if r.job_type in a.type]
        rows, total = every[: a.limit], len(every)
    else:
        rows = await q.in_flight(a.limit)
    if a.json:
        print_json(
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
            ]
        )
        return 0
    if not rows:
        print("no jobs in flight")
    for r in rows:
        problem = f" undecodable: {printable(r.error)}" if r.error else ""
        print(
            f"{printable(r.job_type):<12} {r.job_id or '?':<36} account={r.account_id} "
            f"account_number={field_text(r.account_number)} org_id={field_text(r.org_id)} "
            f"reservation={field_text(r.reservation_id)} worker={printable(r.worker)} "
            f"running={duration(r.running_for)} attempt={r.attempt}{problem}"
        )
    if len(rows) == a.limit:
        note_cut(len(rows), (await q.stats()).in_flight if total is None else total, "jobs in flight")
    return 0


async def cmd_workers(q: Queue, a: argparse.Namespace) -> int:
    rows = await q.workers()
    if a.json:
        print_json(
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
            ]
        )
        return 0
    if not rows:
        print("no workers")
    for w in rows:
        print(
            f"{printable(w.id):<32} {w.state:<6} busy {w.busy}/{w.concurrency} "
            f"heartbeat {duration(w.heartbeat_age)} ago types={printable(','.join(w.types))}"
        )
    return 0


async def cmd_types(q: Queue, a: argparse.Namespace) -> int:
    if a.words:
        return await remove_type(q, a.words[1], yes=a.yes, json_out=a.json)
    types, schemas = await q.job_types(), await q.schemas()
    if a.json:
        print_json({t: schemas.get(t) for t in types})
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


async def cmd_why(q: Queue, a: argparse.Namespace) -> int:
    why = await q.why(a.type, job_id=a.job)
    if a.json:
        print_json(why.to_dict())
        return 0
    for sentence in why.sentences:
        print(printable(sentence))
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
        print_json([f.to_dict() for f in found])
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
        print_json(
            {
                "status": result.status,
                "message": result.message,
                "sync": result.sync,
                "outcome": result.outcome,
                "job": job,
            }
        )
    else:
        print(printable(result.message))
    # 0: cancelled (or it will be, when a sync handler returns); 3: asked, not confirmed; 1: not cancelled.
    if result.status in ("cancelled", "ran_on", "cancelling"):
        return 0
    return 3 if result.status == "requested" else 1
