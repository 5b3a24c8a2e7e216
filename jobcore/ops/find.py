"""Finding jobs by what an operator holds: a job id from a log line, or a tenant.

The query language is a few ``key:value`` words, combined with AND:

=================  =============================================
``account:42``     account_id (a whole number)
``org:org-9``      org_id
``acct:000123``    account_number
``res:777``        reservation_id (compared as text)
``type:launch``    job type
``0190c4e2-...``   a whole job id, or its first 8 or more hex characters
=================  =============================================

Everything here is pure (no I/O): :func:`parse_query` turns words into a
:class:`JobQuery`, whose :meth:`JobQuery.matches` says whether a job's six log
fields fit it. :meth:`jobcore.Queue.find` does the searching and returns
:class:`FoundJob` records.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from jobcore.errors import BadQuery
from jobcore.limits import FIND_SKEW_MS
from jobcore.logs import LOG_FIELDS
from jobcore.records import BadJob, InFlightJob, args_and_reservation

MIN_PREFIX = 8  # hex characters of a job id prefix: fewer would match too much
_HEX = frozenset("0123456789abcdef")
_KEYS = {  # word key -> JobQuery field
    "account": "account_id",
    "org": "org_id",
    "acct": "account_number",
    "res": "reservation_id",
    "type": "job_type",
}
_WORDS_HELP = "account:N, org:ID, acct:NUMBER, res:ID, type:TYPE or a job id (its first 8+ hex characters)"

Where = Literal["pending", "in_flight", "dead", "failed", "not_found"]


@dataclass(frozen=True, slots=True)
class JobQuery:
    """What to look for; every field given must match (AND). ``job_id`` is a
    whole id; ``id_prefix`` the lowercase hex digits (no dashes) an id starts with."""

    job_id: uuid.UUID | None = None
    id_prefix: str | None = None
    account_id: int | None = None
    org_id: str | None = None
    account_number: str | None = None
    reservation_id: str | None = None
    job_type: str | None = None

    def matches(
        self,
        *,
        job_id: str | None,
        job_type: str | None,
        account_id: int | None,
        account_number: str | None,
        org_id: str | None,
        reservation_id: Any,
    ) -> bool:
        """Whether a job with these log fields fits every word of the query."""
        if self.job_id is not None and job_id != str(self.job_id):
            return False
        if self.id_prefix is not None and (job_id is None or not id_starts_with(job_id, self.id_prefix)):
            return False
        if self.job_type is not None and job_type != self.job_type:
            return False
        if self.account_id is not None and account_id != self.account_id:
            return False
        if self.org_id is not None and org_id != self.org_id:
            return False
        if self.account_number is not None and account_number != self.account_number:
            return False
        if self.reservation_id is None:
            return True
        return reservation_id is not None and str(reservation_id) == self.reservation_id

    def __str__(self) -> str:
        words = [str(self.job_id)] if self.job_id else [self.id_prefix] if self.id_prefix else []
        for key, name in _KEYS.items():
            value = getattr(self, name)
            if value is not None:
                words.append(f"{key}:{value}")
        return " ".join(w for w in words if w)


def id_digits(text: str) -> str:
    """A job id, or the start of one, as an operator types it: the hex digits it is compared by."""
    return text.lower().replace("-", "")


def id_starts_with(job_id: str, digits: str) -> bool:
    """Whether a stored job id starts with ``digits`` (as id_digits gives them)."""
    return job_id.replace("-", "").startswith(digits)


def parse_job_id(text: str) -> uuid.UUID | str:
    """A whole job id (with or without dashes) as a UUID, or a prefix of at least
    ``MIN_PREFIX`` hex characters as its lowercase digits. Raises BadQuery."""
    digits = id_digits(text.strip())
    if not digits or not set(digits) <= _HEX:
        raise BadQuery(f"not a job id: {text[:60]!r} (want hex digits, a whole id or its first {MIN_PREFIX}+)")
    if len(digits) == 32:
        return uuid.UUID(hex=digits)
    if len(digits) > 32:
        raise BadQuery(f"not a job id: {text[:60]!r} (longer than a whole id)")
    if len(digits) < MIN_PREFIX:
        raise BadQuery(f"job id prefix {text!r} is too short: give at least {MIN_PREFIX} hex characters")
    return digits


def parse_word(word: str) -> tuple[str, Any]:
    """One word as (JobQuery field, value). Raises BadQuery with a one-line reason."""
    key, colon, value = word.partition(":")
    if not colon:
        found = parse_job_id(word)
        return ("job_id", found) if isinstance(found, uuid.UUID) else ("id_prefix", found)
    name = _KEYS.get(key.strip().lower())
    if name is None:
        raise BadQuery(f"unknown find word {word[:60]!r}: use {_WORDS_HELP}")
    if not value:
        raise BadQuery(f"{key}: needs a value, as in {key}:VALUE")
    if name == "account_id":
        try:
            return name, int(value)
        except ValueError:
            raise BadQuery(f"account: takes a whole number (the account id), got {value[:40]!r}") from None
    return name, value


def parse_query(words: Iterable[str]) -> JobQuery:
    """Words (``account:42 type:launch``, or a job id) as one JobQuery.
    Raises BadQuery for a word that cannot be read, a key given twice, or none."""
    fields: dict[str, Any] = {}
    for word in words:
        for part in word.split():
            name, value = parse_word(part)
            if name in fields or (name in ("job_id", "id_prefix") and ({"job_id", "id_prefix"} & fields.keys())):
                raise BadQuery(f"{part[:60]!r}: a job id or key may be given once")
            fields[name] = value
    if not fields:
        raise BadQuery(f"nothing to find: give {_WORDS_HELP}")
    return JobQuery(**fields)


def uuid_time_ms(job_id: uuid.UUID) -> int | None:
    """The Unix time in ms a job id made by jobcore carries (a version-8 UUID,
    the time in its last 48 bits; jobcore.model.new_job_id); None for ids of other
    versions (given by a producer), which hold no time."""
    return job_id.int & 0xFFFF_FFFF_FFFF if job_id.version == 8 else None


@dataclass(frozen=True, slots=True)
class FoundJob:
    """Where one job is now, with its six log fields.

    ``where``: ``pending`` (waiting in its queue), ``in_flight`` (taken by
    ``worker``: running, or held ahead in its buffer), ``dead``, ``failed``, or
    ``not_found`` (a whole id found nowhere searched: still pending outside the
    window searched, finished and not kept, or never enqueued; no record of a
    processed job is kept, so it is never called processed). ``ref`` is the
    entry id (in flight, pending: ``ENTRY@p`` in partition p >= 1) or the
    dead/failed id that requeue and purge take."""

    where: Where
    job_id: str | None
    job_type: str | None = None
    ref: str | None = None
    account_id: int | None = None
    account_number: str | None = None
    org_id: str | None = None
    reservation_id: Any = None
    worker: str | None = None
    attempt: int | None = None
    at: datetime | None = None  # in flight: started; dead/failed: filed; pending: enqueued
    reason: str | None = None  # dead/failed: why
    args: Any = field(default=None, compare=False)

    def describe(self) -> str:
        """Where it is, in a few words (for a line of output)."""
        if self.where == "in_flight":
            return f"in flight on worker {self.worker} (entry {self.ref})"
        if self.where == "pending":
            return f"pending (entry {self.ref})"
        if self.where in ("dead", "failed"):
            return f"{self.where} (id {self.ref})"
        if self.job_id is None:
            return "not found"
        with contextlib.suppress(ValueError):
            if uuid_time_ms(uuid.UUID(self.job_id)) is not None:
                return (
                    f"not found in flight, dead or failed, nor pending in the window (±{FIND_SKEW_MS // 1000} s of "
                    "the id's time): it may still wait (its producer's clock off, or put back on the queue since), "
                    "or it finished and was not kept, or it was never enqueued"
                )
        return (
            "not found in flight, dead or failed (pending is not searched: the id carries no time): it may still "
            "wait, or it finished and was not kept, or it was never enqueued"
        )

    def log_fields(self) -> dict[str, Any]:
        """The six fields every log line of the job carries."""
        return {name: getattr(self, name) for name in LOG_FIELDS}

    def to_dict(self) -> dict[str, Any]:
        return {
            "where": self.where,
            "description": self.describe(),
            **self.log_fields(),
            "ref": self.ref,
            "worker": self.worker,
            "attempt": self.attempt,
            "at": self.at.isoformat() if self.at else None,
            "reason": self.reason,
            "args": self.args,
        }


CancelStatus = Literal[
    "cancelled",
    "ran_on",
    "cancelling",
    "finished",
    "handed_back",
    "moved",
    "requested",
    "worker_lost",
    "pending",
    "not_found",
]
FinishedAs = Literal["processed", "failed", "dead"]


@dataclass(frozen=True, slots=True)
class CancelResult:
    """What :meth:`jobcore.Queue.cancel` did, as the worker holding the job answered
    (it records its answer in the same script as the settle that files the job).

    ``cancelled``: the handler was stopped (or the job had not started) and the
    job is failed "cancelled by operator". ``ran_on``: recorded so too, but the
    handler could not be interrupted (sync, or it swallowed the cancel) and ran
    to its end. ``cancelling``: the worker took the request, but the handler is
    synchronous: the job is recorded as cancelled when it returns (``sync``).
    ``finished``: it finished first, as ``outcome`` says (processed, failed,
    dead); nothing was cancelled. ``handed_back``: its worker stopped and put it
    back on the queue first. ``moved``: the worker no longer held it (its lease
    lapsed; ``job`` says where it is now). ``requested``: asked, but the worker
    did not answer within ``CANCEL_CONFIRM_S`` (an older jobcore, a stalled
    worker): what happens is not known yet. ``worker_lost``: the worker holding
    it has lost its lease (nothing asked; another worker takes it over).
    ``pending``: it has not started (nothing was done). ``not_found``: not in
    flight, dead or failed, nor pending near its id's time (``job`` says so)."""

    status: CancelStatus
    job: FoundJob | None = None
    sync: bool = False
    outcome: FinishedAs | None = None
    waited_s: float = 0.0  # requested: how long the answer was waited for
    asked: bool = False  # a worker was asked (and, unless requested, answered)

    @property
    def message(self) -> str:
        j = self.job
        what = f"job {j.job_id}" + (f" ({j.job_type})" if j.job_type else "") if j and j.job_id else "job"
        worker = f"worker {j.worker}" if j and j.worker else "its worker"
        if self.status == "cancelled":
            return (
                f"{what} cancelled on {worker}: its handler was stopped and the job recorded as failed "
                '("cancelled by operator"); requeue it as any failed job'
            )
        if self.status == "ran_on":
            return (
                f"{what} recorded as cancelled (failed) by {worker}, but its handler could not be interrupted "
                "and ran to its end"
            )
        if self.status == "cancelling":
            return (
                f"{worker} took the cancel of {what}: its handler is synchronous and cannot be interrupted; "
                "the job is recorded as cancelled by operator when it returns"
            )
        if self.status == "finished":
            where = f" (id {j.ref})" if j and j.where in ("dead", "failed") and j.ref else ""
            if not self.asked:
                why = (j.reason or "").strip().splitlines() if j else []
                reason = f": {why[-1][:200]}" if why else ""
                return f"{what} is not in flight: it is {self.outcome}{where}{reason}; nothing was cancelled"
            ended = {"processed": "processed", "failed": "failed", "dead": "dead-lettered"}.get(self.outcome or "", "")
            return f"{what} not cancelled: it finished first on {worker}: {ended}{where}"
        if self.status == "handed_back":
            return f"{what} not cancelled: {worker} stopped and handed it back to the queue first (it waits again)"
        if self.status == "moved":
            return f"{what} not cancelled: the worker that ran it no longer holds it; now: {j.describe() if j else '?'}"
        if self.status == "requested":
            tail = (
                "; its handler is synchronous and cannot be interrupted: the job is recorded as cancelled "
                "when it returns"
                if self.sync
                else ""
            )
            return (
                f"cancel requested of {worker} for {what}; not yet confirmed: the worker did not answer within "
                f"{self.waited_s:g} s{tail} (`jobcore find` shows where the job is)"
            )
        if self.status == "worker_lost":
            return f"{what} is held by {worker}, which is lost: not cancelled (another worker takes it over)"
        if self.status == "pending":
            return f"{what} is not in flight: it is pending (not started yet); nothing was cancelled"
        if self.status == "not_found" and j is not None:
            return f"{what} is {j.describe()}; nothing was cancelled"
        return "no job with that id is in flight, dead or failed; nothing was cancelled"


def in_flight_matches(q: JobQuery, row: InFlightJob) -> bool:
    """Whether a job in flight fits the query (find's rule; a console's filter uses it too)."""
    return q.matches(
        job_id=row.job_id,
        job_type=row.job_type,
        account_id=row.account_id,
        account_number=row.account_number,
        org_id=row.org_id,
        reservation_id=row.reservation_id,
    )


def found_in_flight(row: InFlightJob) -> FoundJob:
    """An in-flight row as find returns it (what a console's filter matches and shows)."""
    return FoundJob(
        "in_flight",
        row.job_id,
        row.job_type,
        row.entry_id,
        row.account_id,
        row.account_number,
        row.org_id,
        row.reservation_id,
        row.worker,
        row.attempt,
        row.started_at,
        row.error,
        row.args,
    )


def found_bad(where: Literal["dead", "failed"], bad: BadJob) -> FoundJob | None:
    """A dead or failed job as find returns it; None when its payload does not decode
    (it has no log fields to match or show)."""
    env = bad.envelope
    if env is None:
        return None
    args, reservation = args_and_reservation(env)
    return FoundJob(
        where,
        str(env.id),
        bad.job_type,
        bad.id,
        env.account_id,
        env.identity.account_number,
        env.identity.org_id,
        reservation,
        bad.worker,
        bad.attempt,
        bad.at,
        bad.reason,
        args,
    )
