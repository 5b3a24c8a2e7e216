"""The immutable records a queue returns and its worker hands back: deliveries,
outcomes, stats, in-flight rows, workers and bad jobs."""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

import msgspec

from jobcore.errors import PayloadError
from jobcore.model import (
    Envelope,
    decode_envelope,
)

SettleKind = Literal["ack", "fail", "dead", "release"]


def utc(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def args_and_reservation(env: Envelope) -> tuple[Any, Any]:
    """A job's args as plain data, and its reservation_id (None when it has none)."""
    args = env.args_json()
    return args, args.get("reservation_id") if isinstance(args, dict) else None


class Delivery(msgspec.Struct, frozen=True, gc=False):
    """A job handed to one consumer (worker); it stays in flight until settled."""

    job_type: str
    entry_id: str
    raw: bytes | None  # None when the stored entry has no payload at all
    attempt: int  # 1 on first delivery
    deaths: int = 0  # workers that died holding this job since it was last queued (stops are no deaths)


class Outcome(msgspec.Struct, frozen=True, gc=False):
    """How a delivery ends. ``text`` is the reason (dead) or error (fail). A
    release with ``attempt`` 0 hands back a delivery that never started (the
    backend works out how many deliveries came before it)."""

    job_type: str
    entry_id: str
    kind: SettleKind
    attempt: int = 1
    text: str = ""
    took: float = 0.0  # seconds it ran (ack, fail): the history's run times
    # Cancel requests this settle answers (Queue.cancel waits for it), and the
    # answer: cancelled, ran_on, processed, failed, dead or released.
    cancels: tuple[str, ...] = ()
    verdict: str = ""


class Stale(NamedTuple):
    """A settle that did not happen: the job was no longer this consumer's, or
    (``reason``) its record could not be written, so it stays in flight with it."""

    entry_id: str
    owner: str | None  # the consumer holding it now; None: in flight nowhere (settled, or Redis lost it)
    reason: str | None = None  # set: not settled for this reason, still held by this consumer
    job_type: str = ""  # with a reason: its type (entry ids repeat across types)


class Lease(enum.IntEnum):
    """What a heartbeat found (falsy only when the lease had lapsed)."""

    LAPSED = 0  # it had lapsed: others may have taken this worker's jobs
    HELD = 1
    NEW = 2  # no lease was there: a first heartbeat, or the record is gone (forgotten, or Redis lost it)


@dataclass(frozen=True, slots=True)
class TypeStats:
    job_type: str
    pending: int = 0
    in_flight: int = 0
    processed: int = 0
    failed: int = 0
    dead: int = 0
    failed_kept: int = 0
    oldest_pending_age: float | None = None  # seconds
    served_by: int = 0  # live workers that handle this type
    has_schema: bool = False
    partitions: int = 1
    pending_by_partition: tuple[int, ...] = ()  # pending per partition, when there are several
    problem: str | None = None  # corrupt data found where this type's keys are: its numbers are partial
    schema_versions: int = 0  # distinct args schemas among the live workers serving it (2+: they disagree)
    paused: bool = False  # paused by an operator (Queue.pause): workers take none of its jobs
    fair: bool = False  # workers take its jobs in turn across accounts (Queue.set_fair)
    accounts_waiting: int = 0  # in a fair type: how many accounts have jobs waiting
    failures: int = 0  # failed runs ever: a counter (``failed`` drops when failed jobs are requeued or purged)


@dataclass(frozen=True, slots=True)
class QueueStats:
    types: dict[str, TypeStats]
    workers: int
    taken_at: datetime

    @property
    def pending(self) -> int:
        return sum(t.pending for t in self.types.values())

    @property
    def in_flight(self) -> int:
        return sum(t.in_flight for t in self.types.values())

    @property
    def processed(self) -> int:
        return sum(t.processed for t in self.types.values())

    @property
    def failed(self) -> int:
        return sum(t.failed for t in self.types.values())

    @property
    def dead(self) -> int:
        return sum(t.dead for t in self.types.values())

    @property
    def unserved(self) -> list[str]:
        """Types with pending jobs that no live worker handles."""
        return [t.job_type for t in self.types.values() if t.pending and not t.served_by]

    def to_dict(self) -> dict[str, Any]:
        return {
            "taken_at": self.taken_at.isoformat(),
            "workers": self.workers,
            "totals": {
                "pending": self.pending,
                "in_flight": self.in_flight,
                "processed": self.processed,
                "failed": self.failed,
                "dead": self.dead,
            },
            "types": {
                name: {
                    "pending": t.pending,
                    "in_flight": t.in_flight,
                    "processed": t.processed,
                    "failed": t.failed,
                    "dead": t.dead,
                    "failed_kept": t.failed_kept,
                    "oldest_pending_age": t.oldest_pending_age,
                    "served_by": t.served_by,
                    "partitions": t.partitions,
                    **({"problem": t.problem} if t.problem else {}),
                    "schema_versions": t.schema_versions,
                    "paused": t.paused,
                    **({"pending_by_partition": list(t.pending_by_partition)} if t.partitions > 1 else {}),
                }
                for name, t in sorted(self.types.items())
            },
        }


class TypeCounts(NamedTuple):
    """One type's numbers as a backend reads them."""

    pending: int
    in_flight: int
    oldest_ms: int | None  # enqueue time of the oldest pending job
    processed: int
    failed: int
    dead: int
    failed_kept: int
    partitions: int = 1
    pending_by_partition: tuple[int, ...] = ()  # when partitions > 1 and counted apart
    problem: str | None = None
    paused: bool = False
    fair: bool = False  # jobs taken in turn across accounts (jobcore/fair.py)
    accounts_waiting: int = 0  # in a fair type: accounts with jobs waiting
    failures: int = 0  # failed runs ever (requeue and purge lower ``failed``, never this)


def add_counts(parts: Sequence[TypeCounts]) -> TypeCounts:
    """One type's numbers from those of its partitions."""
    if len(parts) == 1:
        return parts[0]
    oldest = [c.oldest_ms for c in parts if c.oldest_ms is not None]
    return TypeCounts(
        pending=sum(c.pending for c in parts),
        in_flight=sum(c.in_flight for c in parts),
        oldest_ms=min(oldest) if oldest else None,
        processed=sum(c.processed for c in parts),
        failed=sum(c.failed for c in parts),
        dead=sum(c.dead for c in parts),
        failed_kept=sum(c.failed_kept for c in parts),
        partitions=len(parts),
        pending_by_partition=tuple(c.pending for c in parts),
        problem="; ".join(c.problem for c in parts if c.problem) or None,
        paused=any(c.paused for c in parts),
        fair=any(c.fair for c in parts),
        accounts_waiting=sum(c.accounts_waiting for c in parts),
        failures=sum(c.failures for c in parts),
    )


def build_stats(
    counts: dict[str, TypeCounts], workers: Sequence[WorkerInfo], schemas: Collection[str], now_ms: int
) -> QueueStats:
    """Stats from what a backend read: the one place that says which workers
    count as serving a type (alive or stale, not lost)."""
    live = [w for w in workers if w.state != "lost"]
    served: dict[str, int] = {}
    versions: dict[str, set[str]] = {}
    for w in live:
        for t in w.types:
            served[t] = served.get(t, 0) + 1
            if t in w.schemas:
                versions.setdefault(t, set()).add(w.schemas[t])
    out = {
        t: TypeStats(
            job_type=t,
            pending=c.pending,
            in_flight=c.in_flight,
            processed=c.processed,
            failed=c.failed,
            dead=c.dead,
            failed_kept=c.failed_kept,
            oldest_pending_age=None if c.oldest_ms is None else max(0.0, (now_ms - c.oldest_ms) / 1000),
            served_by=served.get(t, 0),
            has_schema=t in schemas,
            partitions=c.partitions,
            problem=c.problem,
            schema_versions=len(versions.get(t, ())),
            pending_by_partition=c.pending_by_partition,
            paused=c.paused,
            fair=c.fair,
            accounts_waiting=c.accounts_waiting,
            failures=c.failures,
        )
        for t, c in counts.items()
    }
    return QueueStats(types=out, workers=len(live), taken_at=utc(now_ms))


@dataclass(frozen=True, slots=True)
class Dashboard:
    """What an operations view shows at once: stats, in-flight jobs, workers."""

    stats: QueueStats
    in_flight: list[InFlightJob]
    workers: list[WorkerInfo]


class InFlightJob(msgspec.Struct, frozen=True, gc=False):
    """A job being processed now, with its six log fields.

    A msgspec Struct, not a dataclass like the other records: a console refresh
    builds a thousand of these, and a Struct is built in C at a quarter of a frozen
    dataclass's cost. Immutable all the same; ``msgspec.structs.replace`` copies."""

    job_type: str
    entry_id: str
    worker: str
    started_at: datetime
    running_for: float  # seconds
    attempt: int
    job_id: str | None
    account_id: int | None
    account_number: str | None
    org_id: str | None
    reservation_id: Any
    args: Any  # plain data for display
    error: str | None = None  # set when the payload cannot be decoded


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    id: str
    host: str
    pid: int
    concurrency: int
    busy: int
    types: list[str]
    started_at: datetime
    heartbeat_at: datetime
    lease: float  # seconds
    state: Literal["alive", "stale", "lost"]
    processed: int = 0
    failed: int = 0
    schemas: dict[str, str] = field(default_factory=dict)  # served type -> args schema fingerprint
    stopping: bool = False  # it said it is stopping: its jobs, if left behind, count no death
    sync_types: list[str] = field(default_factory=list)  # served types whose handler is sync (cannot be cancelled)

    @property
    def heartbeat_age(self) -> float:
        return max(0.0, (datetime.now(tz=UTC) - self.heartbeat_at).total_seconds())


@dataclass(frozen=True, slots=True)
class BadJob:
    """A dead-lettered or failed job: the raw bytes are kept exactly as stored."""

    job_type: str
    id: str  # its id in the dead/failed set
    at: datetime
    reason: str
    raw: bytes
    attempt: int
    worker: str
    envelope: Envelope | None = field(default=None, compare=False)
    payload_error: str | None = field(default=None, compare=False)  # why ``raw`` did not decode
    # The entry's other fields (not jobcore's, e.g. planted by hand), kept as they were
    fields: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def job_id(self) -> str | None:
        return str(self.envelope.id) if self.envelope else None

    def to_dict(self) -> dict[str, Any]:
        env = self.envelope
        return {
            "job_type": self.job_type,
            "id": self.id,
            "at": self.at.isoformat(),
            "reason": self.reason,
            "attempt": self.attempt,
            "worker": self.worker,
            "job_id": self.job_id,
            "account_id": env.account_id if env else None,
            "args": env.args_json() if env else None,
            "raw_hex": None if env else self.raw[:256].hex(),
            "payload_error": self.payload_error,
            "fields": dict(self.fields),
        }


def make_bad_job(
    job_type: str,
    bad_id: str,
    reason: str,
    raw: bytes,
    attempt: int,
    worker: str,
    fields: dict[str, str] | None = None,
) -> BadJob:
    env: Envelope | None = None
    error = None
    try:
        env = decode_envelope(raw)
    except PayloadError as exc:
        error = str(exc)
    return BadJob(job_type, bad_id, _id_time(bad_id), reason, raw, attempt, worker, env, error, fields or {})


def _id_time(bad_id: str) -> datetime:
    """When a dead/failed entry was filed, from its id ("MS-SEQ"); the epoch for
    an id that holds no time a datetime can show."""
    ms = bad_id.split("-", 1)[0]
    try:
        return utc(int(ms)) if ms.isascii() and ms.isdigit() else utc(0)
    except (ValueError, OverflowError, OSError):  # beyond year 9999
        return utc(0)


def in_flight_job(
    job_type: str,
    entry_id: str,
    worker: str,
    idle_ms: int,
    attempt: int,
    raw: bytes | None,
    now_ms: int,
) -> InFlightJob:
    try:
        if raw is None:
            raise PayloadError("entry has no payload")
        env = decode_envelope(raw)
    except PayloadError as exc:
        return InFlightJob(
            job_type,
            entry_id,
            worker,
            utc(now_ms - idle_ms),
            idle_ms / 1000,
            attempt,
            None,
            None,
            None,
            None,
            None,
            None,
            error=str(exc),
        )
    args, reservation = args_and_reservation(env)
    return InFlightJob(
        job_type,
        entry_id,
        worker,
        utc(now_ms - idle_ms),
        idle_ms / 1000,
        attempt,
        str(env.id),
        env.account_id,
        env.identity.account_number,
        env.identity.org_id,
        reservation,
        args,
    )
