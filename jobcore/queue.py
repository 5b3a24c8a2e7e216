"""The user's Queue: the producer's API (declare, enqueue) every backend shares,
with the operator's side (jobcore/ops/operations.py) and the worker's primitives
(jobcore/primitives.py) it inherits. Partition routing lives in ``routes``.
"""

from __future__ import annotations

import abc
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from jobcore.errors import ArgsError, EnqueueError, UnknownJobType
from jobcore.keys import partition_of
from jobcore.limits import MAX_PARTITIONS
from jobcore.model import (
    Job,
    UnknownFields,
    encode_envelope,
    encode_job,
    encode_msgpack,
    encode_valid_args,
    field_names,
    sending_trace,
    struct_args_decode,
    type_name,
)
from jobcore.ops.audit import audited
from jobcore.ops.operations import Operations
from jobcore.primitives import WorkerPrimitives
from jobcore.routes import Routes
from jobcore.schema import check_fields
from jobcore.views.tracing import sending

_CHECKED_TYPES_MAX = 10_000  # job type names remembered as valid, per queue
KEY_TTL_S = 24 * 3600.0  # how long an enqueue-once key holds by default
KEY_MAX = 512  # characters in an enqueue-once key


def once_field(account_id: int, key: Any) -> str:
    """Where an enqueue-once key is kept: per account within the type, so one
    tenant's key never stops another tenant's job."""
    if not isinstance(key, str) or not key or len(key) > KEY_MAX:
        raise EnqueueError(
            f"an enqueue key must be a non-empty string of at most {KEY_MAX} characters, got {key!r:.60}"
        )
    return f"{account_id}:{key}"


class Queue(Operations, WorkerPrimitives):
    """A job queue. Obtain one with :func:`jobcore.connect`."""

    url: str

    def __init__(self) -> None:
        super().__init__()
        self._args_types: dict[str, Any] = {}
        self._known_fields: dict[str, tuple[str, ...] | None] = {}  # by type: model.field_names
        self._checked_types: set[str] = set()  # job type names that passed _check_type
        self._only_declared = False  # declare_handlers(): a type it did not declare is a mistake
        self.routes = Routes()  # each type's lanes (partitions), as last read
        self._fair_declared: dict[str, bool] = {}  # declare(fair=...) not yet written
        self.key_ttl_ms = int(KEY_TTL_S * 1000)  # how long an enqueue-once key holds (connect's key_ttl)

    # ---- public API -------------------------------------------------------

    def declare(
        self,
        job_type: str,
        args_type: Any = None,
        *,
        partitions: int | None = None,
        unknown_fields: UnknownFields = "dead",
        fair: bool | None = None,
    ) -> None:
        """Tell this queue the args type of ``job_type`` so enqueue checks args: a
        field the type does not know is refused by name (UnknownArgsFields) unless
        ``unknown_fields="ignore"``, as the type's handler registration says.
        ``partitions=N`` spreads the type over N streams (N hash tags, so over a
        cluster's shards), a job going to the partition of its account: the count
        is kept in Redis, where it only grows, and every producer and worker
        follows it within seconds. ``fair=True`` (or False) sets the type fair
        across accounts (set_fair) in Redis before this queue's first job of it,
        or when a worker on this queue starts."""
        if fair is not None:
            self._check_type(job_type)
            self._fair_declared[job_type] = fair
        if args_type is not None:
            if unknown_fields not in ("dead", "ignore"):
                raise ValueError("unknown_fields must be 'dead' or 'ignore'")
            self._args_types[job_type] = args_type
            self._known_fields[job_type] = field_names(args_type, unknown_fields)
        if partitions is not None:
            if not isinstance(partitions, int) or not 1 <= partitions <= MAX_PARTITIONS:
                raise ValueError(f"partitions must be a whole number from 1 to {MAX_PARTITIONS}")
            self._check_type(job_type)
            self.routes.declare(job_type, partitions)

    @audited("partitions")
    async def set_partitions(self, job_type: str, partitions: int) -> int:
        """Declare ``partitions`` for ``job_type`` and publish it now; returns the
        count in force (a smaller one than already stored does not shrink it)."""
        self.declare(job_type, partitions=partitions)
        return (await self.partitions([job_type]))[job_type]

    async def partitions(self, job_types: str | Sequence[str]) -> dict[str, int]:
        """The partition count of each type (1 when it has none), publishing what
        this queue declared. One type may be given as a plain string."""
        if isinstance(job_types, str):
            job_types = [job_types]
        await self._learn_partitions(job_types)
        return {t: len(self.routes.lanes(t)) for t in job_types}

    async def _learn_partitions(self, job_types: Iterable[str]) -> None:
        """Publish the declared counts and read the lanes of ``job_types`` (and of
        every type known) into ``routes``."""
        types, declared = self.routes.to_learn(job_types)
        try:
            found = await self._partition_lanes(types, declared)
        except BaseException:
            self.routes.undeclared(declared)
            raise
        self.routes.learned(found)
        for t in [t for t in types if t in self._fair_declared]:
            await self._fair_write(t, {"on": "1" if self._fair_declared[t] else ""})
            del self._fair_declared[t]

    async def _lanes_of(self, types: Sequence[str]) -> list[str]:
        """The lanes of ``types`` (each type's partitions), read again when stale."""
        if self.routes.stale(types):
            await self._learn_partitions(types)
        return self.routes.lanes_of(types)

    async def _route(self, job_type: str) -> tuple[str, ...]:
        """The lanes to route ``job_type``'s jobs to."""
        await self._learn_routes([job_type], "job")
        return self.routes.lanes(job_type)

    async def _learn_routes(self, job_types: Iterable[str], what: str) -> None:
        """_learn_partitions for an enqueue: a failure says nothing was enqueued."""
        try:
            await self._learn_partitions(job_types)
        except Exception as exc:
            raise self._enqueue_error(what, exc) from None
        self._routes_read()

    def _routes_read(self) -> None:
        """Called every time an enqueue has read the partition counts again."""

    def _enqueue_error(self, what: str, exc: Exception) -> Exception:
        """What to raise when a write of ``what`` failed with ``exc``."""
        return exc

    def declare_handlers(self, handlers: Any, *, allow_undeclared: bool = False) -> None:
        """Declare every type of a handler registry; from then on enqueueing a
        type it does not have raises EnqueueError (a typo, or a type of another
        service: pass ``allow_undeclared=True`` to send those unchecked)."""
        for job_type in handlers:
            reg = handlers.get(job_type)
            self.declare(job_type, reg.args_type, unknown_fields=reg.unknown_fields)
        self._only_declared = not allow_undeclared

    def encode(self, job: Job[Any], now_ms: int | None = None) -> bytes:
        """Validate a job's args against its declared type and encode it."""
        if not isinstance(job, Job):
            raise EnqueueError(f"expected a jobcore.Job, got {type(job).__name__}")
        job_type = job.type
        if job_type.__class__ is not str or job_type not in self._checked_types:
            self._check_type(job_type)
        args_type = self._args_types.get(job_type)
        if args_type is not None:
            if isinstance(job.args, dict):  # conversion would drop a field it does not know
                check_fields(job_type, type_name(args_type), job.args, self._known_fields.get(job_type))
            return encode_job(job, encode_valid_args(job.args, args_type), now_ms)
        if self._only_declared:
            known = ", ".join(sorted(self._args_types)) or "none"
            raise EnqueueError(
                f"job type {job_type!r} is not one of the handler registry's types ({known}): "
                "declare it, or connect with allow_undeclared=True to send it unchecked"
            )
        if job.args is None:
            raise ArgsError(f"job {job_type!r} has no args")
        return encode_job(job, None, now_ms)

    def _check_type(self, job_type: Any) -> None:
        """Raise EnqueueError for a job type name that is not allowed; remember the
        names that are, so a batch checks each name once."""
        if not job_type or not isinstance(job_type, str):
            raise EnqueueError("job type must be a non-empty string")
        if len(job_type) > 200 or any(c in job_type for c in "{}\n\r"):
            raise EnqueueError(f"job type {job_type!r} is not allowed (no braces or newlines)")
        if job_type.__class__ is str and len(self._checked_types) < _CHECKED_TYPES_MAX:
            self._checked_types.add(job_type)

    async def enqueue(self, job: Job[Any], *, key: str | None = None) -> uuid.UUID:
        """Enqueue one job (one round trip; the first of a type, and one every
        10 s, also reads the type's partition count). Raises instead of losing it.
        With ``key``, at most one job of this type and account per key is added
        while the key holds (``key_ttl``, 24 h by default): a second enqueue adds
        nothing and returns the first job's id, also when the first call raised."""
        with sending(getattr(job, "type", None)):
            if key is not None:
                return (await self._enqueue_keyed([job], [key]))[0]
            payload = self.encode(job)
            job_type = job.type
            routes = self.routes
            names = routes.by_type.get(job_type)
            if names is None or time.monotonic() >= routes.until:
                names = await self._route(job_type)
            n = len(names)
            await self._add(names[partition_of(job.account_id, n)] if n > 1 else job_type, [payload])
            return job.id

    async def _enqueue_keyed(self, jobs: Sequence[Job[Any]], keys: Sequence[str | None]) -> list[uuid.UUID]:
        """Enqueue ``jobs``, each with its enqueue-once key or None, in one round
        trip; a job whose key holds returns the id of the job that took it."""
        if len(keys) != len(jobs):
            raise ValueError(f"keys must have one entry per job: {len(keys)} keys for {len(jobs)} jobs")
        now_ms = int(time.time() * 1000)
        payloads = [self.encode(job, now_ms) for job in jobs]  # every job checked before any is sent
        fields = ["" if k is None else once_field(job.account_id, k) for job, k in zip(jobs, keys, strict=True)]
        types = {job.type for job in jobs}
        if self.routes.stale(types):
            await self._learn_routes(types, f"{len(jobs)} job(s)")
        by_lane: dict[str, list[tuple[str, str, bytes]]] = {}
        places: list[tuple[str, int]] = []
        for job, f, payload in zip(jobs, fields, payloads, strict=True):
            lane = self.routes.account_lane(job.type, job.account_id)
            held = by_lane.setdefault(lane, [])
            places.append((lane, len(held)))
            held.append((f, str(job.id), payload))
        firsts = await self._add_keyed(by_lane, self.key_ttl_ms) if by_lane else {}
        return [
            uuid.UUID(first) if (first := firsts[lane][i]) else job.id
            for job, (lane, i) in zip(jobs, places, strict=True)
        ]

    async def enqueue_many(
        self, jobs: Iterable[Job[Any]], *, keys: Iterable[str | None] | None = None
    ) -> list[uuid.UUID]:
        """Enqueue many jobs in one round trip; all are validated before any is sent.
        ``keys``: one enqueue-once key (or None) per job, as ``enqueue``'s ``key``;
        each job's place in the returned list holds its id or, for a key that
        holds, the id of the job that took it."""
        with sending(None):
            if keys is not None:
                jobs = list(jobs)
                return await self._enqueue_keyed(jobs, list(keys))
            return await self._enqueue_many(jobs)

    async def _enqueue_many(self, jobs: Iterable[Job[Any]]) -> list[uuid.UUID]:
        now_ms = int(time.time() * 1000)
        trace = sending_trace.get()  # the sending span's context, read once for the batch
        by_type: dict[str, list[bytes]] = {}
        ids: list[uuid.UUID] = []
        encode = self.encode
        checked = self._checked_types
        args_types = self._args_types
        decoders: dict[Any, Callable[[bytes], Any] | None] = {}
        if time.monotonic() >= self.routes.until:
            self.routes.forget()  # read again below, with the new types
        routes = self.routes.by_type
        unrouted: dict[str, list[tuple[int, bytes]]] = {}  # by type not yet known: (account, payload)
        for job in jobs:
            # The usual job (a Job of a type name already checked, with args of
            # exactly the declared Struct type) is encoded right here, as encode()
            # would: the same bytes, one Python call per job instead of five.
            # Anything else, or any error, goes through encode(), which raises it.
            decode = None
            if job.__class__ is Job:
                job_type = job.type
                args = job.args
                if job_type.__class__ is str and job_type in checked and args.__class__ is args_types.get(job_type):
                    try:
                        decode = decoders[args.__class__]
                    except KeyError:
                        decode = decoders[args.__class__] = struct_args_decode(args.__class__)
            if decode is None:
                payload = encode(job, now_ms)
                job_type = job.type
            else:
                try:
                    raw = encode_msgpack(args)
                    decode(raw)
                    payload = encode_envelope(job, now_ms, raw, trace)
                except Exception:
                    payload = encode(job, now_ms)
            names = routes.get(job_type)
            if names is None or len(names) > 1:
                if names is None:
                    unrouted.setdefault(job_type, []).append((job.account_id, payload))
                    ids.append(job.id)
                    continue
                job_type = names[partition_of(job.account_id, len(names))]
            payloads = by_type.get(job_type)
            if payloads is None:
                payloads = by_type[job_type] = []
            payloads.append(payload)
            ids.append(job.id)
        if unrouted:
            await self._learn_routes(unrouted, f"{len(ids)} job(s)")
            for job_type, held in unrouted.items():
                for account_id, payload in held:
                    by_type.setdefault(self.routes.account_lane(job_type, account_id), []).append(payload)
        if by_type:
            await self._add_many(by_type)
        return ids

    def args_type(self, job_type: str) -> Any:
        try:
            return self._args_types[job_type]
        except KeyError:
            raise UnknownJobType(f"no args type declared for job type {job_type!r}") from None

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise ConnectionFailed when the backend cannot be reached."""

    @abc.abstractmethod
    async def server_version(self) -> str: ...

    def topology(self) -> str:
        """Where the queue lives, in a few words ("memory", "standalone",
        "cluster, 3 masters", "sentinel SERVICE → host:port"); it follows a
        failover, so ask again rather than keep it."""
        return "memory"

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Queue:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- what a backend implements for the producer ------------------------

    @abc.abstractmethod
    async def _add(self, job_type: str, payloads: list[bytes]) -> None:
        """Store payloads in one lane (a type, or partition ``type{p``; keys.lane)."""

    @abc.abstractmethod
    async def _add_many(self, by_type: dict[str, list[bytes]]) -> None:
        """Store payloads by lane, in one round trip."""

    @abc.abstractmethod
    async def _add_keyed(self, by_lane: dict[str, list[tuple[str, str, bytes]]], ttl_ms: int) -> dict[str, list[str]]:
        """Store (enqueue-once field or '', job id, payload) by lane in one round
        trip, a job whose field holds a live key not at all; per lane and job,
        '' when added, else the id of the job holding the key."""

    @abc.abstractmethod
    async def _partition_lanes(self, job_types: Sequence[str], declared: dict[str, int]) -> dict[str, tuple[str, ...]]:
        """Publish ``declared`` counts (never lowering one) and return the lanes of
        each of ``job_types`` that enqueue routes to (partition 0 first; a type
        with one partition has the one lane named as the type)."""

    def clone(self) -> Queue:
        """A queue on the same backend for another thread's event loop."""
        return self

    def _settings_from(self, other: Queue) -> None:
        """Take ``other``'s declared args types and failed-list cap (for a clone)."""
        self._args_types = dict(other._args_types)
        self.key_ttl_ms = other.key_ttl_ms
        self.keep_failed(other.failed_keep)
