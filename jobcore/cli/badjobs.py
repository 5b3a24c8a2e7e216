"""``jobcore dead|failed list|groups|requeue|purge``: the jobs that did not make it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Literal

from jobcore.cli.errors import CliError
from jobcore.cli.output import note_cut, print_json
from jobcore.display import printable
from jobcore.queue import Queue
from jobcore.records import BadJob


def _print_bad(rows: Sequence[BadJob], as_json: bool) -> None:
    if as_json:
        print_json([r.to_dict() for r in rows])
        return
    if not rows:
        print("none")
    for r in rows:
        # The last line of a traceback says what happened; nothing in it is markup or a raw escape.
        reason = r.reason.strip().splitlines()[-1] if r.reason.strip() else ""
        problem = f" (undecodable: {r.payload_error})" if r.payload_error else ""
        # The entry's other fields (a producer's, or planted), the first few: --json has them all.
        other = "".join(f" {k}={v}" for k, v in list(r.fields.items())[:3])
        if len(r.fields) > 3:
            other += f" (+{len(r.fields) - 3} more fields)"
        print(
            f"{printable(r.id):<16} {printable(r.job_type):<12} {r.at:%Y-%m-%d %H:%M:%S} attempt={r.attempt} "
            f"job={r.job_id or '?'}{printable(problem)} reason={printable(reason)}{printable(other)}"
        )


async def _known_type(q: Queue, job_type: str) -> None:
    types = await q.job_types()
    if job_type not in types:
        known = ", ".join(printable(t) for t in types) or "none"
        raise CliError(f"no job type {printable(repr(job_type))} in this queue (known: {known})")


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
            note_cut(len(rows), sum(t.dead if which == "dead" else t.failed_kept for t in held), f"{which} jobs")
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
        print_json([g.to_dict() for g in groups])
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
