"""`jobcore fair` and `jobcore limit`: fairness across accounts (jobcore/fair.py)."""

from __future__ import annotations

import argparse
from typing import Any

from jobcore.cli.output import print_json
from jobcore.display import printable
from jobcore.fair import FairInfo
from jobcore.queue import Queue


def fair_json(info: FairInfo, pending: int) -> dict[str, Any]:
    s = info.settings
    return {
        "type": info.job_type,
        "fair": s.on,
        "per_account": s.per_account,
        "limits": s.limits,
        "weights": s.weights,
        "accounts_waiting": info.accounts_waiting,
        "pending": pending,
        "not_taken_in": max(0, pending - info.queued),
        "top_waiting": [{"account": a, "waiting": n} for a, n in info.top_waiting],
        "top_running": [{"account": a, "running": n} for a, n in info.top_running],
        "blocked": [b._asdict() for b in info.blocked],
        "blocked_count": info.blocked_count,
    }


def fair_lines(info: FairInfo, pending: int) -> list[str]:
    """What `jobcore fair TYPE` prints: settings first, then who waits and runs.
    ``pending``: the type's jobs waiting, sorted by account or not yet."""
    s = info.settings
    name = printable(info.job_type)
    if not s.on:
        head = f"{name}: not fair (first in, first out)"
        if info.accounts_waiting:
            head += f"; {info.accounts_waiting:,} account(s) still have jobs waiting their turn from when it was"
        return [head]
    limit = f"at most {s.per_account:,} of an account's jobs run at once" if s.per_account else "no limit per account"
    lines = [f"{name}: fair (accounts take turns); {limit}"]
    for account in sorted({*s.limits, *s.weights}):
        own = []
        if account in s.limits:
            own.append(f"limit {s.limits[account]:,}")
        if account in s.weights:
            own.append(f"weight {s.weights[account]} (jobs per turn)")
        lines.append(f"  account {printable(account)}: {', '.join(own)}")
    fresh = max(0, pending - info.queued)
    if fresh:
        lines.append(f"{fresh:,} job(s) not yet sorted by account: the next fetch of a worker takes them in")
    if not info.accounts_waiting:
        lines.append("no account has jobs waiting their turn")
    else:
        most = ", ".join(f"{printable(a)} ({n:,})" for a, n in info.top_waiting)
        lines.append(f"{info.accounts_waiting:,} account(s) with jobs waiting; most: {most}")
    if info.top_running:
        lines.append("most running: " + ", ".join(f"{printable(a)} ({n:,})" for a, n in info.top_running))
    if info.blocked_count:
        shown = ", ".join(printable(b.account) for b in info.blocked)
        more = f" and {info.blocked_count - len(info.blocked):,} more" if info.blocked_count > len(info.blocked) else ""
        lines.append(f"at their limit, their next jobs waiting for a slot: {shown}{more}")
    return lines


async def cmd_fair(q: Queue, a: argparse.Namespace) -> int:
    if a.state is not None:
        await q.set_fair(a.type, a.state == "on")
    info = await q.fair_info(a.type)
    t = (await q.stats()).types.get(a.type)
    pending = t.pending if t else 0
    if a.json:
        print_json(fair_json(info, pending))
    else:
        for line in fair_lines(info, pending):
            print(line)
    return 0


async def cmd_limit(q: Queue, a: argparse.Namespace) -> int:
    changes = a.per_account is not None or a.max is not None or a.weight is not None
    if changes:
        await q.set_limit(a.type, a.per_account, account=a.account, max=a.max, weight=a.weight)
    info = await q.fair_info(a.type)
    if a.json:
        t = (await q.stats()).types.get(a.type)
        print_json(fair_json(info, t.pending if t else 0))
        return 0
    s = info.settings
    name = printable(a.type)
    if not s.on:
        print(f"{name}: not fair, so no limit applies (`jobcore fair {name} on`)")
        return 0
    print(
        f"{name}: "
        + (f"at most {s.per_account:,} of an account's jobs run at once" if s.per_account else "no limit per account")
    )
    for account, n in sorted(s.limits.items()):
        print(f"  account {printable(account)}: at most {n:,}")
    for account, w in sorted(s.weights.items()):
        print(f"  account {printable(account)}: weight {w}")
    return 0
