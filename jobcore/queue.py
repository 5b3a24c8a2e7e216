"""The user's Queue: the public API every backend shares, and below it the small
set of primitives each backend implements. The worker speaks only those primitives.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Literal

from jobcore.errors import AmbiguousJobId, ArgsError, EnqueueError, PayloadError, UnknownJobType
from jobcore.keys import partition_of
from jobcore.limits import (
    BAD_ALL,
    CHUNK,
    FAILED_KEEP,
    FIND_BAD_MAX,
    FIND_SKEW_MS,
    IN_FLIGHT_ALL,
    MAX_PARTITIONS,
    PARTITIONS_TTL_S,
)
from jobcore.model import (
    Job,
    decode_envelope,
    encode_envelope,
    encode_job,
    encode_msgpack,
    encode_valid_args,
    struct_args_decode,
)
from jobcore.ops.find import (
    CancelResult,
    FoundJob,
    JobQuery,
    found_bad,
    found_in_flight,
    in_flight_matches,
    parse_job_id,
    parse_query,
    uuid_time_ms,
)
from jobcore.ops.history import History, build_history, window
from jobcore.ops.triage import FailureGroup, GroupNotFound, group_failures
from jobcore.ops.why import Explanation, explain
from jobcore.records import (
    BadJob,
    Dashboard,
    Delivery,
    InFlightJob,
    Lease,
    Outcome,
    QueueStats,
    Stale,
    WorkerInfo,
    args_and_reservation,
    utc,
)

log = logging.getLogger("jobcore.queue")

_CHECKED_TYPES_MAX = 10_000  # job type names remembered as valid, per queue
_LIST_ID = re.compile(r"\d+-\d+(@\d+)?")  # an entry id, with its partition when not 0


class Queue(abc.ABC):
    """A job queue. Obtain one with :func:`jobcore.connect`."""

    url: str

    def __init__(self) -> None:
        self._args_types: dict[str, Any] = {}
        self._checked_types: set[str] = set()  # job type names that passed _check_type
        self._only_declared = False  # declare_handlers(): a type it did not declare is a mistake
        self._declared_partitions: dict[str, int] = {}  # to publish on the next read of the counts
        self._routes: dict[str, tuple[str, ...]] = {}  # each type's lanes (partitions), as last read
        self._routes_until = 0.0  # monotonic time when _routes are read again
        self.failed_keep = FAILED_KEEP  # failed jobs kept per type (the newest); older ones are dropped
        self._full_failed_lists: set[str] = set()

    # ---- public API -------------------------------------------------------

    def declare(self, job_type: str, args_type: Any = None, *, partitions: int | None = None) -> None:
        """Tell this queue the args type of ``job_type`` so enqueue checks args.
        ``partitions=N`` spreads the type over N streams (N hash tags, so over a
        cluster's shards), a job going to the partition of its account: the count
        is kept in Redis, where it only grows, and every producer and worker
        follows it within seconds."""
        if args_type is not None:
            self._args_types[job_type] = args_type
        if partitions is not None:
            if not isinstance(partitions, int) or not 1 <= partitions <= MAX_PARTITIONS:
                raise ValueError(f"partitions must be a whole number from 1 to {MAX_PARTITIONS}")
            self._check_type(job_type)
            self._declared_partitions[job_type] = partitions
            self._routes_until = 0.0  # publish it with the next enqueue

    async def set_partitions(self, job_type: str, partitions: int) -> int:
        """Declare ``partitions`` for ``job_type`` and publish it now; returns the
        count in force (a smaller one than already stored does not shrink it)."""
        self.declare(job_type, partitions=partitions)
        return (await self.partitions([job_type]))[job_type]

    async def partitions(self, job_types: Sequence[str]) -> dict[str, int]:
        """The partition count of each type (1 when it has none), publishing what
        this queue declared."""
        await self._learn_partitions(job_types)
        return {t: len(self._routes.get(t, (t,))) for t in job_types}

    async def _learn_partitions(self, job_types: Iterable[str]) -> None:
        types = sorted({*job_types, *self._routes, *self._declared_partitions})
        declared = self._declared_partitions
        self._declared_partitions = {}
        try:
            found = await self._partition_lanes(types, declared)
        except BaseException:
            self._declared_partitions = {**declared, **self._declared_partitions}
            raise
        self._routes.update(found)
        self._routes_until = time.monotonic() + PARTITIONS_TTL_S

    async def _route(self, job_type: str) -> tuple[str, ...]:
        """The lanes to route ``job_type``'s jobs to."""
        await self._learn_routes([job_type], "job")
        return self._routes.get(job_type, (job_type,))

    async def _learn_routes(self, job_types: Iterable[str], what: str) -> None:
        """_learn_partitions for an enqueue: a failure says nothing was enqueued."""
        try:
            await self._learn_partitions(job_types)
        except Exception as exc:
            raise self._enqueue_error(what, exc) from None
        self._routes_read()

    def _failed_list_full(self, job_type: str) -> None:
        """Say once per type that its failed list is at its cap and drops the oldest."""
        if job_type not in self._full_failed_lists:
            self._full_failed_lists.add(job_type)
            log.warning(
                "the failed list of type %r is full (%d kept): the oldest failed jobs are dropped from now on; "
                "requeue or purge them, or keep more (--failed-keep)",
                job_type,
                self.failed_keep,
            )

    def _routes_read(self) -> None:  # noqa: B027 - most backends keep nothing to renew
        """Called every time an enqueue has read the partition counts again."""

    def _enqueue_error(self, what: str, exc: Exception) -> Exception:
        """What to raise when a write of ``what`` failed with ``exc``."""
        return exc

    def declare_handlers(self, handlers: Any, *, allow_undeclared: bool = False) -> None:
        """Declare every type of a handler registry; from then on enqueueing a
        type it does not have raises EnqueueError (a typo, or a type of another
        service: pass ``allow_undeclared=True`` to send those unchecked)."""
        for job_type in handlers:
            self.declare(job_type, handlers.args_type(job_type))
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

    async def enqueue(self, job: Job[Any]) -> uuid.UUID:
        """Enqueue one job (one round trip; the first of a type, and one every
        10 s, also reads the type's partition count). Raises instead of losing it."""
        payload = self.encode(job)
        job_type = job.type
        names = self._routes.get(job_type)
        if names is None or time.monotonic() >= self._routes_until:
            names = await self._route(job_type)
        n = len(names)
        await self._add(names[partition_of(job.account_id, n)] if n > 1 else job_type, [payload])
        return job.id

    async def enqueue_many(self, jobs: Iterable[Job[Any]]) -> list[uuid.UUID]:
        """Enqueue many jobs in one round trip; all are validated before any is sent."""
        now_ms = int(time.time() * 1000)
        by_type: dict[str, list[bytes]] = {}
        ids: list[uuid.UUID] = []
        encode = self.encode
        checked = self._checked_types
        args_types = self._args_types
        decoders: dict[Any, Callable[[bytes], Any] | None] = {}
        if time.monotonic() >= self._routes_until:
            self._routes.clear()  # read again below, with the new types
        routes = self._routes
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
                    payload = encode_envelope(job, now_ms, raw)
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
                names = routes.get(job_type, (job_type,))
                for account_id, payload in held:
                    by_type.setdefault(names[partition_of(account_id, len(names))], []).append(payload)
        if by_type:
            await self._add_many(by_type)
        return ids

    def args_type(self, job_type: str) -> Any:
        try:
            return self._args_types[job_type]
        except KeyError:
            raise UnknownJobType(f"no args type declared for job type {job_type!r}") from None

    @abc.abstractmethod
    async def stats(self) -> QueueStats: ...

    @abc.abstractmethod
    async def in_flight(self, limit: int = 1000) -> list[InFlightJob]:
        """Jobs being processed now, longest-running first."""

    @abc.abstractmethod
    async def workers(self) -> list[WorkerInfo]: ...

    async def dashboard(self, in_flight_limit: int = 100) -> Dashboard:
        """Stats, the longest-running ``in_flight_limit`` jobs and the workers, read
        together (one round trip on Redis): what a console needs per refresh."""
        stats, rows, workers = await asyncio.gather(self.stats(), self.in_flight(in_flight_limit), self.workers())
        return Dashboard(stats, rows, workers)

    @abc.abstractmethod
    async def job_types(self) -> list[str]:
        """Every type ever enqueued or served."""

    @abc.abstractmethod
    async def schemas(self) -> dict[str, dict[str, Any]]:
        """Args JSON Schema per type, as published by workers."""

    @abc.abstractmethod
    async def dead(self, job_type: str | None = None, limit: int = 100, before: str | None = None) -> list[BadJob]:
        """Dead-lettered jobs, newest first."""

    @abc.abstractmethod
    async def failed(self, job_type: str | None = None, limit: int = 100, before: str | None = None) -> list[BadJob]:
        """Jobs whose handler raised (the most recent ones kept), newest first."""

    @abc.abstractmethod
    async def requeue(self, which: Literal["dead", "failed"], job_type: str, ids: Sequence[str] | None = None) -> int:
        """Put dead or failed jobs back on their queue (all of the type when ids is
        None). ``ids`` are their ids in the list, or job ids (see _bad_refs)."""

    @abc.abstractmethod
    async def purge(self, which: Literal["dead", "failed"], job_type: str, ids: Sequence[str] | None = None) -> int:
        """Delete dead or failed jobs for good (all of the type when ids is None);
        ``ids`` as for requeue."""

    async def _bad_refs(
        self, which: Literal["dead", "failed"], job_type: str, ids: Sequence[str] | None
    ) -> list[str] | None:
        """The list ids ``ids`` name: a list id as the lists show it (``ENTRY`` or
        ``ENTRY@p``) stands for itself, a whole job id for the entries holding that
        job (found by reading the type's list: dead and failed lists are bounded);
        anything else names nothing."""
        if ids is None:
            return None
        refs: list[str] = []
        wanted: set[str] = set()
        for i in ids:
            if _LIST_ID.fullmatch(i):
                refs.append(i)
                continue
            with contextlib.suppress(ValueError):
                wanted.add(str(uuid.UUID(i)))
        if wanted:
            rows = await (self.dead if which == "dead" else self.failed)(job_type, BAD_ALL)
            refs += [b.id for b in rows if b.job_id in wanted]
        return list(dict.fromkeys(refs))

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

    # ---- triage, history, why (one block: composed from the reads above) --

    async def failure_groups(self, which: Literal["dead", "failed"], job_type: str | None = None) -> list[FailureGroup]:
        """Dead or failed jobs (of ``job_type``, or of every type) grouped by type
        and normalised cause (jobcore.ops.triage), the largest group first. Reads the
        list in full, payloads included: one round trip, O(jobs listed) in Redis
        and here (the failed list holds at most ``failed_keep`` per type and
        partition; the dead list is as long as nobody requeues or purges it)."""
        rows = await (self.dead if which == "dead" else self.failed)(job_type, BAD_ALL)
        return group_failures(which, rows)

    async def failure_group(
        self, which: Literal["dead", "failed"], key: str, job_type: str | None = None
    ) -> FailureGroup:
        """The group of ``failure_groups`` with ``key``; GroupNotFound if none."""
        for group in await self.failure_groups(which, job_type):
            if group.key == key:
                return group
        of_type = f" of type {job_type!r}" if job_type else ""
        raise GroupNotFound(f"no {which} group {key!r}{of_type} (list them with `jobcore {which} groups`)")

    async def requeue_group(self, which: Literal["dead", "failed"], key: str, job_type: str | None = None) -> int:
        """Requeue every job of a failure group, as found now (jobs that join the
        group meanwhile stay); returns how many were requeued."""
        group = await self.failure_group(which, key, job_type)
        return await self._in_chunks(self.requeue, which, group)

    async def purge_group(self, which: Literal["dead", "failed"], key: str, job_type: str | None = None) -> int:
        """Delete every job of a failure group for good, as found now."""
        group = await self.failure_group(which, key, job_type)
        return await self._in_chunks(self.purge, which, group)

    async def history(self, job_type: str | None = None, minutes: int = 60) -> History:
        """Each type's (or ``job_type``'s) outcomes per minute over the last
        ``minutes`` minutes (1 to 1440, the current minute last), with run-time
        p50/p95 from the settles' histograms (jobcore/history.py). Workers write
        it as they settle, so it is there the moment anyone looks. Two round trips
        (Redis time, then one HMGET per type and partition of exactly those minutes)."""
        window(0, minutes)  # a bad count is refused before any I/O
        span, stored = await self._history_read(None if job_type is None else [job_type], minutes)
        return build_history(span, stored)

    async def why(self, job_type: str | None = None, *, job_id: str | None = None) -> Explanation:
        """Why ``job_type``'s jobs wait — or job ``job_id`` (whole, or its first
        8+ hex digits) when it is in flight — in plain sentences (jobcore/why.py):
        paused, no live worker, every slot busy and when one frees, held ahead in a
        prefetch buffer, a stale or lapsed lease and when its jobs come back. One
        dashboard read (up to IN_FLIGHT_ALL rows in flight) and the last hour's
        history, read together."""
        if not job_type and not job_id:
            raise ValueError("name a job type or a job id")
        dash, history = await asyncio.gather(self.dashboard(IN_FLIGHT_ALL), self.history(minutes=60))
        return explain(job_type, dash.stats, dash.in_flight, dash.workers, history.types, job_id)

    @abc.abstractmethod
    async def _history_read(
        self, job_types: Sequence[str] | None, minutes: int
    ) -> tuple[list[int], dict[str, list[dict[int, list[int]]]]]:
        """The window's minute numbers (backend time) and, per type (every known
        type when None), each partition's stored minutes within it."""

    @staticmethod
    async def _in_chunks(
        act: Callable[[Literal["dead", "failed"], str, Sequence[str]], Awaitable[int]],
        which: Literal["dead", "failed"],
        group: FailureGroup,
    ) -> int:
        # A large group in several calls, so no one script holds Redis for long.
        refs = group.refs
        return sum(
            [await act(which, group.job_type, refs[i : i + CHUNK]) for i in range(0, len(refs), CHUNK)]
        )

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Queue:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- primitives the worker uses --------------------------------------

    @abc.abstractmethod
    async def _add(self, job_type: str, payloads: list[bytes]) -> None:
        """Store payloads in one lane (a type, or partition ``type{p``; keys.lane)."""

    @abc.abstractmethod
    async def _add_many(self, by_type: dict[str, list[bytes]]) -> None:
        """Store payloads by lane, in one round trip."""

    @abc.abstractmethod
    async def _partition_lanes(self, job_types: Sequence[str], declared: dict[str, int]) -> dict[str, tuple[str, ...]]:
        """Publish ``declared`` counts (never lowering one) and return the lanes of
        each of ``job_types`` that enqueue routes to (partition 0 first; a type
        with one partition has the one lane named as the type)."""

    @abc.abstractmethod
    async def register_types(self, schemas: dict[str, dict[str, Any]]) -> None:
        """Make each type's queue ready for workers and publish its args schema."""

    @abc.abstractmethod
    async def fetch(self, consumer: str, types: Sequence[str], count: int, block_ms: int) -> list[Delivery]:
        """Take up to ``count`` new jobs in all, the types taking turns to go first;
        block up to ``block_ms`` when there are none.
        Taking a job and recording it in flight for ``consumer`` is one atomic step."""

    async def stop_fetching(self) -> None:  # noqa: B027 - most backends have nothing to end
        """End blocking reads still waiting for jobs (a worker that stops calls
        this before it hands back what it holds)."""

    @abc.abstractmethod
    async def settle(self, consumer: str, outcomes: Sequence[Outcome]) -> list[Stale]:
        """Settle deliveries atomically per job. Returns those ``consumer`` no
        longer owned (left untouched), with who holds each now, if anyone."""

    @abc.abstractmethod
    async def heartbeat(self, info: dict[str, Any], lease_ms: int) -> Lease:
        """Publish worker info and extend its lease. With ``info["instance"]``, raise
        WorkerIdTaken (and change nothing) while another instance of the same
        worker id holds a live lease."""

    async def eviction_policies(self) -> set[str]:
        """The maxmemory policies other than noeviction in force on the backend's
        servers (each master of a cluster): any of them may evict queued jobs."""
        return set()

    async def recover_orphans(self, types: Sequence[str]) -> int:
        """Put back on their queue jobs recorded as delivered but held by no one
        (a consumer deleted while it held them); returns how many."""
        return 0

    @abc.abstractmethod
    async def lost_workers(self) -> list[str]:
        """Workers whose lease has lapsed."""

    @abc.abstractmethod
    async def claim(
        self,
        consumer: str,
        job_type: str,
        owner: str,
        count: int,
        ids: Sequence[str] = (),
        *,
        suspects: int | None = None,
        suspect_deaths: int = 2,
        died: bool = True,
    ) -> tuple[list[Delivery], int]:
        """Move up to ``count`` in-flight jobs (or exactly ``ids``) from ``owner`` to
        ``consumer``, oldest first. When ``owner`` ``died``, each move is a new
        delivery and one more death the job lived through; when it was stopping
        (it said so before its lease lapsed), neither. With ``suspects``, at most
        that many of them may have lived through ``suspect_deaths`` deaths or more
        (the others are skipped and stay with ``owner``). Returns the deliveries
        and how many ``owner`` still holds (its consumer is removed when none)."""

    @abc.abstractmethod
    async def owned(self, consumer: str, types: Sequence[str]) -> list[tuple[str, str]]:
        """(type, entry id) of every job ``consumer`` holds in flight."""

    @abc.abstractmethod
    async def forget_worker(self, worker_id: str, types: Sequence[str], force: bool = False) -> None:
        """Remove a lost worker's record once it holds no jobs of ``types`` (a stopped
        worker, ``force``, also removes its consumers of ``types``)."""

    def clone(self) -> Queue:
        """A queue on the same backend for another thread's event loop."""
        return self

    def _lease_keeper_settings(self) -> dict[str, Any] | None:
        """What a lease keeper process (``jobcore/keeper.py``) needs to extend a
        worker's lease from outside the worker, or None when this backend cannot
        be reached from another process."""
        return None

    # ---- operator controls: pause, cancel, find ---------------------------

    async def pause(self, job_type: str) -> None:
        """Stop workers taking ``job_type``'s jobs: from the next fetch of every
        worker on (the fetch checks the flag atomically, in the type's own slot:
        every partition carries it). Running jobs finish; new jobs keep arriving
        and wait; a lost worker's jobs of the type stay with it until resume.
        Kept in Redis, so it outlives worker restarts. Raises UnknownJobType for a
        type never enqueued or served, PermissionDenied for a read-only user."""
        await self._check_known(job_type)
        await self._set_paused(job_type, True)

    async def resume(self, job_type: str) -> None:
        """Let workers take ``job_type``'s jobs again (idle ones within a second)."""
        await self._check_known(job_type)
        await self._set_paused(job_type, False)

    async def _check_known(self, job_type: str) -> None:
        if job_type not in await self.job_types():
            raise UnknownJobType(f"unknown job type {job_type!r}: no job of it was ever enqueued or served")

    async def find(self, query: JobQuery | str | Sequence[str], limit: int = 100) -> list[FoundJob]:
        """Where the jobs matching ``query`` are (words as in jobcore.ops.find, e.g.
        ``"account:42 type:launch"`` or a job id), at most ``limit``.

        In flight, dead and failed are searched in full (in flight is bounded by
        the workers' slots, failed by its cap; dead, the newest ``FIND_BAD_MAX``
        per type). Pending is searched only for a whole job id, and only near the
        time the id carries (model.new_job_id puts it there): the type's stream
        entries from ``FIND_SKEW_MS`` before to ``FIND_SKEW_MS`` after it, scanned
        on the server 1,000 at a time for the id's bytes, so the cost is the
        number of jobs enqueued in that window (about 2 ms per 1,000), not the
        queue's length; a job put back on the queue since (requeued, handed back)
        sits at the end, outside the window, and is not found there. A whole id found
        nowhere comes back as one ``not_found`` record (processed and not kept,
        or never enqueued). Raises BadQuery for words it cannot read."""
        q = query if isinstance(query, JobQuery) else parse_query([query] if isinstance(query, str) else query)
        types = [q.job_type] if q.job_type else await self.job_types()
        found: list[FoundJob] = []
        for row in await self.in_flight(IN_FLIGHT_ALL):
            if in_flight_matches(q, row):
                found.append(found_in_flight(row))
        if q.job_id is not None and not found:
            found += await self._find_pending(q, types)
        lists = await asyncio.gather(
            *(self.dead(t, FIND_BAD_MAX) for t in types), *(self.failed(t, FIND_BAD_MAX) for t in types)
        )
        n = len(types)
        labelled: list[tuple[Literal["dead", "failed"], BadJob]] = [
            ("dead" if i < n else "failed", b) for i, rows in enumerate(lists) for b in rows
        ]
        for which, bad in labelled:
            hit = found_bad(which, bad)
            if hit is not None and q.matches(**hit.log_fields()):
                found.append(hit)
        if q.job_id is not None and not found:
            found.append(FoundJob("not_found", str(q.job_id), q.job_type))
        return found[:limit]

    async def _find_pending(self, q: JobQuery, types: Sequence[str]) -> list[FoundJob]:
        """The pending job with ``q.job_id``, looked for near the time in its id."""
        assert q.job_id is not None
        at_ms = uuid_time_ms(q.job_id)
        if at_ms is None:
            return []  # not a time-ordered id: its place in a stream cannot be known
        out = []
        for job_type, ref, raw in await self._pending_by_id(q.job_id, types, at_ms, FIND_SKEW_MS):
            try:
                env = decode_envelope(raw)
            except PayloadError:
                continue
            args, reservation = args_and_reservation(env)
            if env.id == q.job_id:
                out.append(
                    FoundJob(
                        "pending",
                        str(env.id),
                        job_type,
                        ref,
                        env.account_id,
                        env.identity.account_number,
                        env.identity.org_id,
                        reservation,
                        at=utc(env.enqueued_at_ms),
                        args=args,
                    )
                )
        return out

    async def cancel(self, job_id: str | uuid.UUID) -> CancelResult:
        """Ask the worker running job ``job_id`` (a whole id or its first 8+ hex
        characters) to cancel it. The worker learns of it within a second
        (``CANCEL_POLL_S``), cancels the handler (an async one at once; a sync
        one cannot be interrupted, so it is recorded when it returns) and records
        the job as failed with reason "cancelled by operator"; requeue it as any
        failed job. No other job is touched. Raises BadQuery for an id it cannot
        read, AmbiguousJobId for a prefix of several jobs, PermissionDenied for a
        read-only user. The result says what happened (CancelResult.message)."""
        ref = job_id if isinstance(job_id, uuid.UUID) else parse_job_id(job_id)
        q = JobQuery(job_id=ref) if isinstance(ref, uuid.UUID) else JobQuery(id_prefix=ref)
        hits = await self.find(q, limit=IN_FLIGHT_ALL)
        ids = sorted({h.job_id for h in hits if h.job_id and h.where != "not_found"})
        if len(ids) > 1:
            shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
            raise AmbiguousJobId(f"job id prefix {job_id!s} matches {len(ids)} jobs ({shown}): give more of it")
        running = [h for h in hits if h.where == "in_flight"]
        if not running:
            if not hits:
                return CancelResult("not_found")
            return CancelResult("pending" if hits[0].where == "pending" else "finished", hits[0])
        job = running[0]
        assert job.worker is not None and job.job_type is not None and job.ref is not None
        if not await self._request_cancel(job.worker, job.job_type, job.ref):
            return CancelResult("worker_lost", job)
        sync = any(w.id == job.worker and job.job_type in w.sync_types for w in await self.workers())
        return CancelResult("requested", job, sync)

    @abc.abstractmethod
    async def _set_paused(self, job_type: str, paused: bool) -> None:
        """Set or clear the paused flag on every partition of ``job_type``."""

    @abc.abstractmethod
    async def _pending_by_id(
        self, job_id: uuid.UUID, job_types: Sequence[str], at_ms: int, skew_ms: int
    ) -> list[tuple[str, str, bytes]]:
        """(type, entry ref, payload) of pending (undelivered) entries of
        ``job_types`` whose payload holds ``job_id``'s bytes, among the entries
        added from ``at_ms - skew_ms`` to ``at_ms + skew_ms``."""

    @abc.abstractmethod
    async def _request_cancel(self, worker: str, job_type: str, ref: str) -> bool:
        """Ask ``worker`` to cancel its job ``ref`` of ``job_type``, atomically
        with a check that its lease is live; False (nothing asked) when it is not."""

    @abc.abstractmethod
    async def cancel_requests(self, consumer: str) -> list[tuple[str, str]]:
        """Take the (type, entry ref) cancel requests for ``consumer`` (a worker
        polls this every ``CANCEL_POLL_S``: no round trip per job)."""


