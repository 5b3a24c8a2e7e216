"""``jobcore pending TYPE``: a type's waiting jobs, oldest first, a page at a time;
``pending delete`` and ``types remove``, which ask first."""

from __future__ import annotations

import argparse
import asyncio
import sys

from jobcore.cli.errors import CliError, UsageError
from jobcore.cli.output import print_json
from jobcore.display import field_text, preview, printable
from jobcore.ops.find import FoundJob
from jobcore.queue import Queue


def pending_filter(a: argparse.Namespace) -> list[str]:
    """The find words the flags give (none: every waiting job)."""
    words = []
    if a.account is not None:
        words.append(f"account:{a.account}")
    if a.org is not None:
        words.append(f"org:{a.org}")
    if a.acct is not None:
        words.append(f"acct:{a.acct}")
    return words


def _row(f: FoundJob) -> dict[str, object]:
    return {
        "id": f.job_id,
        "entry": f.ref,
        "job_type": f.job_type,
        "account_id": f.account_id,
        "account_number": f.account_number,
        "org_id": f.org_id,
        "reservation_id": f.reservation_id,
        "enqueued_at": f.at.isoformat() if f.at else None,
        "args": f.args,
        "problem": f.reason,
    }


def check_pending_usage(a: argparse.Namespace) -> None:
    """`pending TYPE` lists, `pending delete TYPE (JOB_ID... | filter | --all)` deletes: said before connecting."""
    deleting = a.words[0] == "delete" and len(a.words) > 1
    if not deleting:
        if len(a.words) > 1:
            raise UsageError("name one TYPE to list (to delete: pending delete TYPE ...)")
        if a.all or a.yes:
            raise UsageError("--all and --yes are for pending delete TYPE")
        return
    if a.after is not None:
        raise UsageError("--after is for listing")
    chosen = sum((len(a.words) > 2, bool(pending_filter(a)), a.all))
    if chosen != 1:
        raise UsageError("give job ids, a filter (--account, --org, --acct) or --all: one of them")


async def cmd_pending(q: Queue, a: argparse.Namespace) -> int:
    if a.words[0] == "delete" and len(a.words) > 1:
        return await _delete(q, a, a.words[1], a.words[2:])
    a.type = a.words[0]
    words = pending_filter(a)
    page = await q.pending(a.type, limit=a.limit, after=a.after, query=words or None)
    if a.json:
        print_json([_row(f) for f in page.jobs])
    elif not page.jobs:
        print(f"no job of {printable(repr(a.type))} waits" + (" that matches" if words else ""))
    for f in page.jobs if not a.json else ():
        if f.job_id is None:
            print(f"{printable(f.ref)}  {printable(f.reason)}")
            continue
        at = f.at.strftime("%Y-%m-%d %H:%M:%S") if f.at else "?"
        fields = " ".join(f"{k}={field_text(getattr(f, k))}" for k in ("account_id", "account_number", "org_id"))
        print(f"{printable(f.ref)}  {f.job_id}  {at}  {fields}  args={preview(f.args)}")
    if page.after is not None:
        # On stderr: --json's output stays one list; the last row's entry is where a page ends.
        looked = f"looked at {page.looked_at:,} entries; " if words else ""
        print(f"{looked}more may wait: --after {page.after} for the next page", file=sys.stderr)
    return 0


async def _asked(q: Queue, job_type: str, question: str, refused: str) -> bool:
    """Whether to go on: asked on a terminal; elsewhere a CliError saying to pass --yes."""
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise CliError(f"{refused}; pass --yes to do it")
    await q.check_known(job_type)
    try:
        answer = await asyncio.to_thread(input, f"{question} [y/N] ")
    except EOFError:
        answer = ""
    return answer.strip().lower() in ("y", "yes")


async def remove_type(q: Queue, job_type: str, *, yes: bool, json_out: bool) -> int:
    """`jobcore types remove TYPE`."""
    name = printable(repr(job_type))
    if not yes and not await _asked(
        q, job_type, f"Remove type {name} with its dead and failed jobs and history?", f"not removed: type {name}"
    ):
        print("nothing removed", file=sys.stderr)
        return 1
    await q.remove_type(job_type)
    if json_out:
        print_json({"removed": job_type})
    else:
        print(f"removed type {name}")
    return 0


async def _delete(q: Queue, a: argparse.Namespace, job_type: str, ids: list[str]) -> int:
    words = pending_filter(a)
    what = (
        f"{len(ids)} waiting job(s) of {job_type!r} by id"
        if ids
        else f"every waiting job of {job_type!r}" + (f" matching {' '.join(words)}" if words else "")
    )
    question = f"Delete {printable(what)}? Jobs running now are left to run."
    if not a.yes and not await _asked(q, job_type, question, f"not deleted: {printable(what)} would be deleted"):
        print("nothing deleted", file=sys.stderr)
        return 1
    n = await q.delete_pending(job_type, ids=ids or None, query=words or None, all=a.all)
    if a.json:
        print_json({"deleted": n})
    else:
        print(f"deleted {n:,} waiting job(s) of {printable(repr(job_type))}")
    return 0
