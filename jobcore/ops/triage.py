"""Failures grouped by cause: a reason normalised so that failures which differ
only in ids, numbers or quoted values fall in one group.

Pure functions and records, no I/O: ``Queue.failure_groups`` reads the dead or
failed list and hands the rows to :func:`group_failures`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from jobcore.errors import JobcoreError
from jobcore.keys import entry_order

if TYPE_CHECKING:
    from jobcore.records import BadJob

REASON_MAX = 200  # characters of a normalised reason kept (a group's label, not its evidence)
KEY_HEX = 8  # hex digits of a group key: short enough to type, stable across processes

# Order matters: the most specific patterns first, so a UUID is not read as
# hex runs and numbers, nor an IP address as four numbers.
_PLACEHOLDERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\b"), "<id>"),
    (re.compile(r"\b\d{10,}-\d+(?:@\d+)?\b"), "<entry>"),
    # A quoted value starts and ends at a word's edge: the apostrophe of "worker's"
    # or "can't" is text, not a quote (else it swallows all up to the next quote).
    (re.compile(r"(?<!\w)[bBrRuU]{0,2}(?:'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\")(?!\w)"), "<str>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"), "<hex>"),
    (re.compile(r"[-+]?\b\d+(?:[.,]\d+)*(?:[eE][-+]?\d+)?"), "<n>"),
)
# A (dotted) class name whose last part is capitalised, then a colon: "KeyError: 'x'",
# "requests.exceptions.ConnectionError: ..."; alone on its line only with a telling suffix.
_EXCEPTION_LINE = re.compile(r"^((?:[A-Za-z_]\w*\.)*[A-Z]\w*):(?:\s+(.*))?$")
_BARE_EXCEPTION = re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Timeout)$")
_SPACES = re.compile(r"\s+")


def last_line(reason: str) -> str:
    """What a reason says happened: the last non-empty line (a traceback's
    exception line; a one-line reason as it is)."""
    for line in reversed(reason.splitlines()):
        if line.strip():
            return line.strip()
    return ""


def normalise_message(text: str) -> str:
    """``text`` with ids, entry ids, quoted values, addresses, hex and numbers
    replaced by placeholders, and runs of blanks made one space."""
    for pattern, placeholder in _PLACEHOLDERS:
        text = pattern.sub(placeholder, text)
    text = _SPACES.sub(" ", text).strip()
    return text if len(text) <= REASON_MAX else text[: REASON_MAX - 1] + "…"


def split_exception(line: str) -> tuple[str | None, str]:
    """(exception class, message) of an exception line such as
    ``TimeoutError: account 42 took 31.2s``; (None, line) for any other text."""
    m = _EXCEPTION_LINE.match(line)
    if m:
        return m.group(1), m.group(2) or ""
    if _BARE_EXCEPTION.match(line):
        return line, ""
    return None, line


def normalise(reason: str) -> tuple[str | None, str]:
    """A failure's cause: (exception class or None, normalised message)."""
    exc, message = split_exception(last_line(reason))
    return exc, normalise_message(message)


def group_key(job_type: str, exception: str | None, reason: str) -> str:
    """A short key for a group, the same in every process and release: a hash of
    type, exception class and normalised reason."""
    text = "\x00".join((job_type, exception or "", reason))
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:KEY_HEX]


class GroupNotFound(JobcoreError, LookupError):
    """No failure group has the key asked for (it may have been requeued or purged)."""


@dataclass(frozen=True, slots=True)
class FailureGroup:
    """Dead or failed jobs of one type that failed for one normalised cause."""

    key: str  # group_key(...): what `--group KEY` takes
    which: Literal["dead", "failed"]
    job_type: str
    exception: str | None  # the exception class, when the reason ends in one
    reason: str  # the normalised message (placeholders <id>, <n>, <str>, <hex>, <ip>, <entry>)
    count: int
    newest: datetime
    example: BadJob  # the newest job of the group, as listed
    refs: tuple[str, ...]  # entry references of every job in the group, newest first: requeue/purge take them

    @property
    def label(self) -> str:
        """``Exception: reason`` as one line."""
        if self.exception and self.reason:
            return f"{self.exception}: {self.reason}"
        return self.exception or self.reason

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "which": self.which,
            "job_type": self.job_type,
            "exception": self.exception,
            "reason": self.reason,
            "count": self.count,
            "newest": self.newest.isoformat(),
            "example": self.example.to_dict(),
            "refs": list(self.refs),
        }


def group_failures(which: Literal["dead", "failed"], rows: Iterable[BadJob]) -> list[FailureGroup]:
    """Rows grouped by type and cause, the largest group first (then the most
    recent). Each group's refs and example keep the order of ``rows``'s newest first."""
    found: dict[str, tuple[str, str | None, str, list[BadJob]]] = {}
    for row in rows:
        exc, reason = normalise(row.reason)
        key = group_key(row.job_type, exc, reason)
        if key not in found:
            found[key] = (row.job_type, exc, reason, [])
        found[key][3].append(row)
    groups = []
    for key, (job_type, exc, reason, members) in found.items():
        members.sort(key=lambda r: entry_order(r.id), reverse=True)
        groups.append(
            FailureGroup(
                key=key,
                which=which,
                job_type=job_type,
                exception=exc,
                reason=reason,
                count=len(members),
                newest=members[0].at,
                example=members[0],
                refs=tuple(r.id for r in members),
            )
        )
    groups.sort(key=lambda g: (-g.count, -g.newest.timestamp(), g.key))
    return groups
