"""``jobcore audit``: the operator actions recorded, newest first."""

from __future__ import annotations

import argparse

from jobcore.cli.output import print_json
from jobcore.display import printable
from jobcore.queue import Queue


async def cmd_audit(q: Queue, a: argparse.Namespace) -> int:
    records = await q.audit(limit=a.limit, job_type=a.type)
    if a.json:
        print_json([r.to_dict() for r in records])
        return 0
    if not records:
        print("no operator action recorded" + (f" on {printable(repr(a.type))}" if a.type else ""))
    for r in records:
        count = "" if r.count is None else f" ({r.count:,})"
        on = f" {printable(r.job_type)}" if r.job_type else ""
        target = f" {printable(r.target)}" if r.target else ""
        when = r.at.strftime("%Y-%m-%d %H:%M:%S")
        print(f"{when}  {printable(r.actor)}  {printable(r.action)}{on}{target}{count}: {printable(r.outcome)}")
    return 0
