"""`jobcore fair` and `jobcore limit`: fairness across accounts (jobcore/fair.py)."""

from __future__ import annotations

import argparse
from typing import Any

from jobcore.cli.output import print_json
from jobcore.display import printable
from jobcore.fair import FairInfo, fair_lines, not_taken_in
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
        "not_taken_in": not_taken_in(info, pending),
        "top_waiting": [{"account": a, "waiting": n} for a, n in info.top_waiting],
        "top_running": [{"account": a, "running": n} for a, n in info.top_running],
        "blocked": [b._asdict() for b in info.blocked],
        "blocked_count": info.blocked_count,
    }


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
