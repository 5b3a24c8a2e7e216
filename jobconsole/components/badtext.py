"""A dead or failed job in words: the reason pane, the reason column and the confirmations."""

from __future__ import annotations

import json

from rich.text import Text

from jobcore import BadJob
from jobcore.display import printable

from ..format import clip, clock


def last_line(reason: str) -> str:
    lines = [line for line in reason.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def describe_bad(job: BadJob, which: str) -> Text:
    """Who the job was for and what it carried, then the whole reason (a traceback for failures).
    Everything here was read from Redis: plain text, escapes shown escaped."""
    env = job.envelope
    t = Text()
    if env is None:
        t.append("undecodable payload", "bold red")
        t.append(f" ({len(job.raw)} bytes) · {which} id {printable(job.id)}\n", "dim")
        if job.payload_error:
            t.append(printable(job.payload_error), "red")
        t.append("\n\n")
    else:
        t.append(f"job_id {job.job_id}", "bold")
        t.append(f" · account_id {env.account_id}", "")
        if env.identity.account_number:
            t.append(f" · account_number {printable(env.identity.account_number)}")
        if env.identity.org_id:
            t.append(f" · org_id {printable(env.identity.org_id)}")
        t.append(f" · attempt {job.attempt} · worker {printable(job.worker or '?')}\n", "dim")
        t.append("args ", "bold")
        t.append(printable(json.dumps(env.args_json(), sort_keys=True, default=str)), "cyan")
        t.append("\n\n")
    reason = printable(job.reason, multiline=True) if job.reason else "(no reason recorded)"
    t.append(reason, style="red" if which == "dead" else "")
    return t


def name_bad(job: BadJob, which: str) -> str:
    """The one job a confirmation is about, in words an operator can check against the list."""
    env = job.envelope
    who = f"job {job.job_id}" if env else f"undecodable entry, {which} id {printable(job.id)}"
    lines = [f"  {printable(job.job_type)} {who}"]
    if env is not None:
        lines.append(f"  account_id {env.account_id} · attempt {job.attempt} · {which} at {clock(job.at)}Z")
    reason = last_line(job.reason)
    if reason:
        lines.append(f"  {clip(printable(reason), 58)}")
    return "\n".join(lines)
