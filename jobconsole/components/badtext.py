"""A dead or failed job in words: the reason pane, the reason column and the confirmations."""

from __future__ import annotations

import json

from rich.text import Text

from jobcore import BadJob
from jobcore.display import FIELD_CHARS, PREVIEW_CHARS, clipped, preview, size

from ..format import clock, whole_command


def last_line(reason: str) -> str:
    """The last non-empty line, read from the end: a 20 MB reason costs its last lines."""
    tail = reason[-PREVIEW_CHARS:] if len(reason) > PREVIEW_CHARS else reason
    lines = [line for line in tail.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


FIELD = FIELD_CHARS  # of one field (an org_id, a worker id) in the pane and the questions: a line


def describe_bad(job: BadJob, which: str) -> Text:
    """Who the job was for and what it carried, then the whole reason (a traceback for failures).
    Everything here was read from Redis: plain text, escapes shown escaped, each value a
    bounded preview (a 20 MB job shows its first lines and says where the rest is)."""
    env = job.envelope
    whole = whole_command(job.job_id)
    t = Text()
    if env is None:
        t.append("undecodable payload", "bold red")
        t.append(f" ({size(len(job.raw))}) · {which} id {clipped(job.id, FIELD)}\n", "dim")
        if job.payload_error:
            t.append(preview(job.payload_error), "red")
        t.append("\n\n")
    else:
        t.append(f"job_id {job.job_id}", "bold")
        t.append(f" · account_id {env.account_id}", "")
        if env.identity.account_number:
            t.append(f" · account_number {clipped(env.identity.account_number, FIELD)}")
        if env.identity.org_id:
            t.append(f" · org_id {clipped(env.identity.org_id, FIELD)}")
        t.append(f" · attempt {job.attempt} · worker {clipped(job.worker or '?', FIELD)}\n", "dim")
        t.append("args ", "bold")
        args = json.dumps(env.args_json(), sort_keys=True, default=str)
        t.append(preview(args, whole=whole), "cyan")
        t.append("\n\n")
    reason = preview(job.reason, multiline=True, whole=whole) if job.reason else "(no reason recorded)"
    t.append(reason, style="red" if which == "dead" else "")
    if len(job.reason) > PREVIEW_CHARS:  # cut: what happened is said at the end
        t.append(f"\nits last line: {clipped(last_line(job.reason), 500)}", "bold")
    return t


def name_bad(job: BadJob, which: str) -> str:
    """The one job a confirmation is about, in words an operator can check against the list."""
    env = job.envelope
    who = f"job {job.job_id}" if env else f"undecodable entry, {which} id {clipped(job.id, FIELD)}"
    lines = [f"  {clipped(job.job_type, FIELD)} {who}"]
    if env is not None:
        lines.append(f"  account_id {env.account_id} · attempt {job.attempt} · {which} at {clock(job.at)}Z")
    reason = last_line(job.reason)
    if reason:
        lines.append(f"  {clipped(reason, 58)}")
    return "\n".join(lines)
