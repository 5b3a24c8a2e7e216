"""Redis backend: one stream per job type, read through one consumer group.

The group's pending-entries list is the in-flight record: XREADGROUP takes a job
and records it in flight for the reading worker in one atomic command, with a
delivery count. Every other multi-key change is one Lua script (``lua/``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qs, urlsplit

from jobcore.display import printable
from jobcore.errors import ConnectionFailed, EnqueueError, JobcoreError, PermissionDenied, RedisRefused, WorkerIdTaken
from jobcore.keys import (
    DEFAULT_NAMESPACE,
    GROUP,
    REF_MARK,
    Keys,
    entry_order,
    lane,
    placed_lanes,
    split_lane,
    split_ref,
    valid_lane,
)
from jobcore.limits import MAX_PARTITIONS
from jobcore.model import decode_envelope
from jobcore.ops.history import KEEP_MINUTES, TIMED, parse_minute, runs_arg, window
from jobcore.queue import Queue
from jobcore.records import (
    BadJob,
    Dashboard,
    Delivery,
    InFlightJob,
    Lease,
    Outcome,
    QueueStats,
    Stale,
    TypeCounts,
    WorkerInfo,
    add_counts,
    build_stats,
    make_bad_job,
)
from jobcore.redis import resp
from jobcore.redis.auto import open_transport
from jobcore.redis.inflight import InFlightCache, base_attempts
from jobcore.redis.redispy import RedisPyTransport
from jobcore.redis.transport import ReplicasNotConfirmed, Transport
from jobcore.url import redacted
from jobcore.workerinfo import worker_info_from_record

T = TypeVar("T")
log = logging.getLogger("jobcore.queue")
ADD_CHUNK = 2000  # payloads per script call: keeps each call short for Redis
DEFAULT_REPLICA_TIMEOUT_MS = 500

_SCRIPTS = (
    "add",
    "fetch",
    "settle",
    "claim",
    "stats",
    "in_flight",
    "heartbeat",
    "lost",
    "forget",
    "requeue",
    "purge",
    "partitions",
    "drop_consumer",
    "orphans",
    "cancel",
    "find_pending",
)
CORRUPT_LANE_S = 60.0  # how long a lane whose stream key holds something else is left out
ORPHANS_LOOKED_AT = 1000  # entries delivered to no one put back per lane and call
FIND_CHUNK = 1000  # stream entries find_pending.lua looks at per call: keeps each call short
CANCEL_REQUEST_TTL_MS = 60_000  # a cancel request no worker took is dropped after this


@functools.cache
def _load(name: str) -> str:
    return resources.files("jobcore.redis").joinpath("lua", f"{name}.lua").read_text()


@functools.cache
def _script(name: str) -> resp.Script:
    return resp.Script(_load(name))


def _s(value: Any) -> str:
    # Text planted in Redis need not be UTF-8: shown with U+FFFD, never raising.
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _fields(flat: Any) -> dict[bytes, bytes]:
    if isinstance(flat, dict):
        return flat
    return {flat[i]: flat[i + 1] for i in range(0, len(flat) - 1, 2)}


def _pairs(flat: Any) -> list[tuple[Any, Any]]:
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat) - 1, 2)]


def _wrong_type(reply: Any) -> bool:
    return isinstance(reply, resp.RespError) and str(reply).startswith("WRONGTYPE")


def _lanes_from(job_type: str, stored: Any) -> tuple[str, ...]:
    """A type's lanes as stored (one name a line); a name that cannot be that
    partition's (corrupt data) reads as the partition's first candidate name."""
    names = _s(stored).split("\n")[:MAX_PARTITIONS] if stored else []
    return tuple(n if valid_lane(job_type, p, n) else lane(job_type, p) for p, n in enumerate(names)) or (job_type,)


def _server_ms(t: Sequence[Any]) -> int:
    return int(t[0]) * 1000 + int(t[1]) // 1000


def _replica_settings(url: str, replicas: int | None, timeout_ms: int | None) -> tuple[int, int]:
    query = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
    try:
        n = replicas if replicas is not None else int(query.get("replicas", 0))
        ms = timeout_ms if timeout_ms is not None else int(query.get("replica_timeout_ms", DEFAULT_REPLICA_TIMEOUT_MS))
    except ValueError:
        raise ValueError("replicas and replica_timeout_ms in the Redis URL must be whole numbers") from None
    if n < 0 or ms <= 0:
        raise ValueError("replicas must be 0 or more and replica_timeout_ms more than 0")
    return n, ms


class RedisQueue(Queue):
    def __init__(
        self,
        url: str,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        connect_timeout: float = 5.0,
        socket_timeout: float = 15.0,
        client_factory: Callable[[], Any] | None = None,
        replicas: int | None = None,
        replica_timeout_ms: int | None = None,
    ) -> None:
        super().__init__()
        self.url = url
        self.keys = Keys(namespace)
        self.replicas, self.replica_timeout_ms = _replica_settings(url, replicas, replica_timeout_ms)
        self._confirm = (self.replicas, self.replica_timeout_ms) if self.replicas else None
        self._client_factory = client_factory
        # One transport for every topology; a redis-py client (fakeredis) goes
        # through the same interface.
        self._t: Transport = (
            RedisPyTransport(client_factory())
            if client_factory is not None
            else open_transport(url, connect_timeout=connect_timeout, timeout=socket_timeout)
        )
        self._scripts = {name: _script(name) for name in _SCRIPTS}
        self._socket_timeout = socket_timeout
        self._connect_timeout = connect_timeout
        self._known_types: set[str] = set()
        self._known_lanes: set[str] = set()  # lanes this client has added to
        self._lanes_cache: dict[tuple[str, ...], list[str]] = {}  # served types -> their lanes
        self._fetch_turn = 0  # the type a fetch starts with, in turn
        # Blocking reads, each on a connection of its own, by the types it reads.
        self._waiters: dict[tuple[str, ...], asyncio.Task[list[tuple[str, Any]]]] = {}
        self._readers: dict[tuple[str, ...], Transport] = {}  # their connections, kept between reads
        self._in_flight_cache = InFlightCache()  # what console reads decoded once
        self._plain_reads = False  # set once scripts are refused to this user (read-only ACL)
        self._bad_lanes: dict[str, float] = {}  # lanes left out of fetches (corrupt keys), until when
        self._groups_ready: set[str] = set()
        self._paused_lanes: set[str] = set()  # lanes the last fetch found paused: no blocking read on them

    def clone(self) -> RedisQueue:
        # A clone of a queue on its own connections gets its own transport.
        q = RedisQueue(
            self.url,
            self.keys.namespace,
            connect_timeout=self._connect_timeout,
            socket_timeout=self._socket_timeout,
            client_factory=self._client_factory,
            replicas=self.replicas,
            replica_timeout_ms=self.replica_timeout_ms,
        )
        q._args_types = dict(self._args_types)
        q.failed_keep = self.failed_keep
        return q

    def _lease_keeper_settings(self) -> dict[str, Any] | None:
        if self._client_factory is not None:
            return None  # e.g. fakeredis: nothing another process could reach
        return {"url": self.url, "workers": self.keys.workers, "leases": self.keys.leases}

    def __repr__(self) -> str:
        return f"RedisQueue({redacted(self.url)!r})"

    @property
    def transport(self) -> Transport:
        """The transport (tests and tools; not part of the queue contract)."""
        return self._t

    def topology(self) -> str:
        return self._t.describe()

    async def _call(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            return await fn()
        except resp.RespAuthError as exc:
            raise ConnectionFailed(
                f"Redis at {redacted(self.url)} refused the connection ({exc})", cause=str(exc), code=exc.code
            ) from None
        except (resp.RespConnectionError, OSError) as exc:
            raise ConnectionFailed(f"Redis at {redacted(self.url)} is unreachable ({exc})", cause=str(exc)) from None
        except resp.RespError as exc:
            # ``what`` names the step for a debugger, not for the user's message.
            if exc.code == "NOPERM":
                raise PermissionDenied(f"permission denied for this Redis user ({exc})", reply=str(exc)) from None
            raise RedisRefused(f"Redis error: {exc}", code=exc.code, reply=str(exc)) from None

    async def _run_scripts(self, calls: list[tuple[str, list[Any], list[Any]]], **kw: Any) -> list[Any]:
        """Call scripts in one round trip (per node)."""
        return await self._t.run_scripts([(self._scripts[n], k, a) for n, k, a in calls], **kw)

    async def _script(self, what: str, name: str, keys: list[Any], args: list[Any]) -> Any:
        (reply,) = await self._call(what, lambda: self._run_scripts([(name, keys, args)]))
        return reply

    def _type_keys(self, job_type: str) -> list[str]:
        """The keys settle.lua takes: stream, stats, dead, failed, history."""
        return [*_read_keys(self.keys, job_type), _history_key(self.keys, job_type)]

    # ---- writes -----------------------------------------------------------

    async def _add(self, job_type: str, payloads: list[bytes]) -> None:
        if job_type in self._known_lanes and len(payloads) == 1 and self._confirm is None:
            stream = self.keys.of_type(job_type).stream
            try:
                await self._t.call("XADD", stream, "*", "d", payloads[0])
            except Exception as exc:
                raise self._enqueue_error("job", exc) from None
            return
        await self._add_many({job_type: payloads})

    async def _add_many(self, by_type: dict[str, list[bytes]]) -> None:
        n = sum(len(p) for p in by_type.values())
        new = list(dict.fromkeys(split_lane(name)[0] for name in by_type if name not in self._known_lanes))
        calls: list[tuple[str, list[Any], list[Any]]] = []
        spans: list[tuple[str, int]] = []  # each call's lane and first payload
        for job_type, payloads in by_type.items():
            stream = self.keys.of_type(job_type).stream
            for i in range(0, len(payloads), ADD_CHUNK):
                calls.append(("add", [stream], payloads[i : i + ADD_CHUNK]))
                spans.append((job_type, i))
        try:
            if new:
                await self._t.call("SADD", self.keys.types, *new)
            replies = await self._run_scripts(calls, confirm=self._confirm, raise_on_error=False)
        except Exception as exc:
            raise self._enqueue_error(f"{n} job(s)", exc) from None
        refused = {span: r for span, r in zip(spans, replies, strict=True) if isinstance(r, resp.RespError)}
        if refused:
            raise self._partly_enqueued(by_type, refused)
        self._known_lanes.update(by_type)
        self._known_types.update(new)

    def _partly_enqueued(
        self, by_type: dict[str, list[bytes]], refused: Mapping[tuple[str, int], Exception]
    ) -> EnqueueError:
        """Each add call is all or none: the refused calls' jobs were not stored,
        every other one was. Ids are read back from the payloads (error path only)."""
        landed: list[uuid.UUID] = []
        not_landed: list[uuid.UUID] = []
        for name, payloads in by_type.items():
            for i, p in enumerate(payloads):
                (not_landed if (name, i - i % ADD_CHUNK) in refused else landed).append(decode_envelope(p).id)
        reason = next(iter(refused.values()))
        n = len(landed) + len(not_landed)
        if not landed:
            return EnqueueError(f"{n} job(s) not enqueued: Redis error: {reason}", not_landed=not_landed)
        return EnqueueError(
            f"{len(not_landed)} of {n} job(s) not enqueued (Redis error: {reason}); the other {len(landed)} were: "
            "retry only EnqueueError.not_landed",
            landed=landed,
            not_landed=not_landed,
        )

    async def _partition_lanes(self, job_types: Sequence[str], declared: dict[str, int]) -> dict[str, tuple[str, ...]]:
        # Raw errors: callers say what failed (an enqueue, a fetch, a read).
        types = list(dict.fromkeys([*job_types, *declared]))
        if not types:
            return {}
        # A plain read first: a read-only user can still route and watch.
        raw = await self._t.call("HMGET", self.keys.partitions, *types)
        found = {t: _lanes_from(t, r) for t, r in zip(types, raw, strict=True)}
        grow = {t: n for t, n in declared.items() if n > len(found[t])}
        if grow:
            # On a cluster, new partitions go where the type has the fewest.
            slots = await self._t.slot_owners()
            flat = [x for t, n in grow.items() for x in (t, "\n".join(placed_lanes(t, found[t], n, slots)))]
            (stored,) = await self._run_scripts([("partitions", [self.keys.partitions], flat)])
            before = {t: found[t] for t in grow}
            found.update((t, _lanes_from(t, r)) for t, r in zip(grow, stored, strict=True))
            await self._inherit_pause(before, {t: found[t] for t in grow})
        self._lanes_cache.clear()
        return found

    def _routes_read(self) -> None:
        # Write each lane's type to the type set again with the next enqueue: it
        # may be gone (a flush, a restart without persistence) while this client thought it known.
        self._known_lanes.clear()

    async def _lanes_of(self, types: Sequence[str]) -> list[str]:
        """The lanes of ``types`` (each type's partitions), as last read."""
        if time.monotonic() >= self._routes_until or any(t not in self._routes for t in types):
            await self._learn_partitions(types)
        key = tuple(types)
        found = self._lanes_cache.get(key)
        if found is None:
            found = self._lanes_cache[key] = [name for t in types for name in self._routes.get(t, (t,))]
        return found

    def _lane(self, job_type: str, partition: int) -> str:
        """Partition ``partition``'s lane, by the names last read."""
        names = self._routes.get(job_type, ())
        return names[partition] if partition < len(names) else lane(job_type, partition)

    async def partitions(self, job_types: Sequence[str]) -> dict[str, int]:
        return await self._call("partitions", lambda: super(RedisQueue, self).partitions(job_types))

    def _enqueue_error(self, what: str, exc: Exception) -> Exception:
        """What to raise for a failed write: whether jobs may have landed (a lost
        connection cannot tell, an error reply can). Anything else is a bug: as is."""
        if isinstance(exc, ReplicasNotConfirmed):
            return EnqueueError(
                f"{what} not confirmed: {exc} (the write may or may not survive a failover; retry to be sure)"
            )
        if isinstance(exc, (resp.RespConnectionError, OSError)):
            return EnqueueError(
                f"{what} not enqueued (or not confirmed): Redis at {redacted(self.url)} is unreachable ({exc})"
            )
        if isinstance(exc, resp.RespError):
            if str(exc).startswith("LOADING"):  # restarting: nothing was written
                return EnqueueError(
                    f"{what} not enqueued: Redis at {redacted(self.url)} is unreachable while it loads ({exc})"
                )
            return EnqueueError(f"{what} not enqueued: Redis error: {exc}")
        return exc

    async def add_raw(self, job_type: str, fields: dict[bytes, bytes]) -> str:
        """Store an entry exactly as given (tests use it to plant poison data)."""
        flat = [x for kv in fields.items() for x in kv]
        await self._t.call("SADD", self.keys.types, job_type)
        return _s(await self._t.call("XADD", self.keys.of_type(job_type).stream, "*", *flat))

    async def register_types(self, schemas: dict[str, dict[str, Any]]) -> None:
        if not schemas:
            return
        names = await self._call("register types", lambda: self._lanes_of(list(schemas)))

        async def run() -> None:
            cmds: list[list[Any]] = [["SADD", self.keys.types, *schemas]]
            mapping = [x for t, sch in schemas.items() for x in (t, json.dumps(sch, sort_keys=True))]
            cmds.append(["HSET", self.keys.schemas, *mapping])
            await self._create_groups(names, cmds)

        await self._call("register types", run)
        self._known_types.update(schemas)

    async def _create_groups(self, names: Sequence[str], cmds: list[list[Any]] | None = None) -> None:
        """The consumer group on each lane's stream (created empty if need be), and
        the types listed again: after a flush or a restart that lost the data,
        jobs enqueued since are served and seen at once."""
        cmds = list(cmds or [["SADD", self.keys.types, *dict.fromkeys(split_lane(n)[0] for n in names)]])
        head = len(cmds)
        cmds += [["XGROUP", "CREATE", self.keys.of_type(n).stream, GROUP, "0", "MKSTREAM"] for n in names]
        replies = await self._t.pipeline(cmds, raise_on_error=False)
        corrupt = [n for n, r in zip(names, replies[head:], strict=True) if _wrong_type(r)]
        for res in replies:
            if isinstance(res, resp.RespError) and "BUSYGROUP" not in str(res) and not _wrong_type(res):
                raise res
        if corrupt:
            await self._skip_corrupt(corrupt)
        self._groups_ready.update(n for n in names if n not in corrupt)

    async def fetch(self, consumer: str, types: Sequence[str], count: int, block_ms: int) -> list[Delivery]:
        """Up to ``count`` new jobs across ``types``, taking turns between them
        (fetch.lua: XREADGROUP's COUNT applies to every stream it reads). With none
        waiting, block up to ``block_ms`` for the next: one per type at most."""
        pairs = self._waited()
        names = self._lanes_cache.get(tuple(types)) if time.monotonic() < self._routes_until else None
        if names is None:
            names = await self._call("fetch", lambda: self._lanes_of(types))
        if self._bad_lanes:
            names = self._servable(names)
        if not pairs:
            pairs = await self._fetch_call(names, lambda: self._take(consumer, names, count))
        if not pairs and block_ms > 0:
            pairs = await self._fetch_call(names, lambda: self._wait_for_jobs(consumer, names, block_ms))
        out: list[Delivery] = []
        for name, entries in pairs:
            job_type, ref = split_lane(name)  # a partition's entries are known as "id@p"
            for entry_id, fields in entries:
                if type(fields) is list and len(fields) == 2 and fields[0] == b"d":
                    out.append(Delivery(job_type, entry_id.decode() + ref, fields[1], 1))  # the usual entry
                    continue
                f = _fields(fields) if fields is not None else {}
                out.append(Delivery(job_type, _s(entry_id) + ref, f.get(b"d"), base_attempts(f.get(b"a")) + 1))
        return out

    async def _take(self, consumer: str, types: Sequence[str], count: int) -> list[tuple[str, Any]]:
        """New entries, ``count`` at most in all. One fetch.lua over every stream
        where one call may span them; on a cluster one call per type (its own
        slot), sent to every node at once, each taking its share, in passes
        until ``count`` or every type gave what it had."""
        streams = [self.keys.of_type(t).stream for t in types]
        stats = [self.keys.of_type(t).stats for t in types]
        self._fetch_turn = (self._fetch_turn + 1) % len(streams)
        if not self._t.single_slot:
            take = ("fetch", [*streams, *stats], [GROUP, consumer, count, self._fetch_turn + 1])
            ((taken, paused),) = await self._run_scripts([take])
            self._note_paused(types, {types[int(i) - 1] for i in paused})
            return [(types[int(i) - 1], entries) for i, entries in taken]
        order = [(self._fetch_turn + k) % len(types) for k in range(len(types))]
        pairs: list[tuple[str, Any]] = []
        left, active = count, order
        while left > 0 and active:
            share, extra = divmod(left, len(active))
            asks = [(i, share + (1 if k < extra else 0)) for k, i in enumerate(active)]
            asks = [(i, n) for i, n in asks if n > 0]
            calls = [("fetch", [streams[i], stats[i]], [GROUP, consumer, n, 1]) for i, n in asks]
            replies = await self._run_scripts(calls)
            active = []
            paused = {types[i] for (i, _), (_, p) in zip(asks, replies, strict=True) if p}
            self._note_paused([types[i] for i, _ in asks], paused)
            for (i, n), (taken, _) in zip(asks, replies, strict=True):
                got = sum(len(entries) for _, entries in taken)
                if got:
                    pairs.extend((types[i], entries) for _, entries in taken)
                    left -= got
                if got == n:
                    active.append(i)  # it may have more
        return pairs

    def _note_paused(self, looked_at: Sequence[str], paused: set[str]) -> None:
        self._paused_lanes.difference_update(looked_at)
        self._paused_lanes.update(paused)

    async def _served_lanes(self, what: str, types: Sequence[str]) -> list[str]:
        """The lanes of ``types`` a worker may touch now (corrupt ones left out)."""
        return self._servable(await self._call(what, lambda: self._lanes_of(types)))

    def _servable(self, names: Sequence[str]) -> list[str]:
        now = time.monotonic()
        for name, until in list(self._bad_lanes.items()):
            if until <= now:
                del self._bad_lanes[name]  # looked at again: it may have been mended
        return [n for n in names if n not in self._bad_lanes]

    async def _skip_corrupt(self, names: Sequence[str]) -> None:
        """After a WRONGTYPE reply: find the lanes whose stream key holds something
        else (corrupt data) and leave them out for a while, so the other types
        are still served. Said once per lane, loudly."""
        replies = await self._t.pipeline([["TYPE", self.keys.of_type(n).stream] for n in names])
        for name, kind in zip(names, replies, strict=True):
            if _s(kind) not in ("stream", "none"):
                if name not in self._bad_lanes:
                    log.error(
                        "%s holds a %s, not a stream: type %s is not served until it is mended (looked at again "
                        "every %ds); its jobs, if any, are not lost by this",
                        printable(self.keys.of_type(name).stream),
                        printable(_s(kind)),
                        printable(repr(split_lane(name)[0])),
                        int(CORRUPT_LANE_S),
                    )
                self._bad_lanes[name] = time.monotonic() + CORRUPT_LANE_S

    async def _fetch_call(self, names: Sequence[str], run: Callable[[], Awaitable[T]]) -> T:
        """``run``, creating the consumer group first if a lane has none yet (a
        partition added since, or Redis lost it)."""
        try:
            return await self._call("fetch", run)
        except JobcoreError as exc:
            if "WRONGTYPE" in str(exc):
                await self._call("fetch", lambda: self._skip_corrupt(names))
                raise JobcoreError(f"{exc} (the corrupt key is left out from the next fetch)") from None
            if "NOGROUP" not in str(exc):
                raise
            todo = [n for n in names if n not in self._groups_ready] or list(names)
            await self._call("fetch", lambda: self._create_groups(todo))
            return await self._call("fetch", run)

    def _waited(self) -> list[tuple[str, Any]]:
        """What blocking reads that finished since the last fetch took."""
        pairs: list[tuple[str, Any]] = []
        for group, task in list(self._waiters.items()):
            if task.done():
                del self._waiters[group]
                if not task.cancelled() and task.exception() is None:
                    pairs.extend(task.result())
        return pairs

    async def _wait_for_jobs(self, consumer: str, types: Sequence[str], block_ms: int) -> list[tuple[str, Any]]:
        """Blocking XREADGROUPs, one entry per stream at most: one over every type,
        or on a cluster one per type (a blocking read cannot span slots), each on
        its own connection. The first to get a job ends the wait; the others
        go on blocking, and what they take comes with the next fetch."""
        types = [t for t in types if t not in self._paused_lanes]
        if not types:  # every lane paused: look again (with the fetch script) after the wait
            await asyncio.sleep(block_ms / 1000)
            return []
        groups = [(t,) for t in types] if self._t.single_slot else [tuple(types)]
        for group in groups:
            if group not in self._waiters:
                self._waiters[group] = asyncio.ensure_future(self._blocking_read(consumer, group, block_ms))
        waiting = [self._waiters[g] for g in groups]
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            await self.stop_fetching()
            raise
        pairs: list[tuple[str, Any]] = []
        error: BaseException | None = None
        for group in groups:
            task = self._waiters[group]
            if task.done():
                del self._waiters[group]
                if task.exception() is None:
                    pairs.extend(task.result())
                else:
                    error = error or task.exception()
        if error is not None and not pairs:
            raise error  # a fetch error; with jobs in hand it shows on the next wait
        return pairs

    async def _blocking_read(self, consumer: str, types: tuple[str, ...], block_ms: int) -> list[tuple[str, Any]]:
        streams = [self.keys.of_type(t).stream for t in types]
        reader = self._readers.get(types)
        if reader is None:
            reader = self._readers[types] = self._t.dedicated()
        # A blocked read answers within block_ms; only then does the socket timeout start.
        wait = self._socket_timeout + block_ms / 1000
        command: list[resp.Arg] = ["XREADGROUP", "GROUP", GROUP, consumer, "COUNT", 1, "BLOCK", block_ms, "STREAMS"]
        # Each lane's paused flag, read on the same connection right after the read
        # takes its entry (no extra round trip): a pause that landed while this
        # read was blocked hands the entry straight back, unstarted.
        flags: list[list[resp.Arg]] = [["HEXISTS", self.keys.of_type(t).stats, "paused"] for t in types]
        try:
            reply, *paused = await reader.pipeline(
                [[*command, *streams, *([">"] * len(streams))], *flags], timeout=wait
            )
        except BaseException:
            # Closing the connection is what ends a blocked read on the server.
            del self._readers[types]
            if reader is not self._t:
                await reader.close()
            raise
        by_stream = {s.encode(): t for s, t in zip(streams, types, strict=True)}
        if isinstance(reply, list) and reply and not isinstance(reply[0], list):
            reply = _pairs(reply)  # fakeredis answers a map (flattened by the adapter)
        got = [(by_stream[_b(stream)], entries) for stream, entries in reply or []]
        stopped = {t for t, p in zip(types, paused, strict=True) if p}
        if stopped and got:
            got = await self._hand_back_paused(consumer, got, stopped)
        return got

    async def _hand_back_paused(
        self, consumer: str, got: list[tuple[str, Any]], paused: set[str]
    ) -> list[tuple[str, Any]]:
        """Put entries a blocking read took from paused lanes back on their queue
        (not started, no attempt counted); keep the others."""
        self._paused_lanes.update(paused)
        back = [
            Outcome(split_lane(name)[0], _s(entry_id) + split_lane(name)[1], "release", 0)
            for name, entries in got
            if name in paused
            for entry_id, _ in entries
        ]
        await self.settle(consumer, back)
        return [(name, entries) for name, entries in got if name not in paused]

    async def stop_fetching(self) -> None:
        waiters, self._waiters = list(self._waiters.values()), {}
        for task in waiters:
            task.cancel()
        for task in waiters:
            with contextlib.suppress(BaseException):
                await task
        readers, self._readers = list(self._readers.values()), {}
        for reader in readers:
            if reader is not self._t:
                await reader.close()

    async def settle(self, consumer: str, outcomes: Sequence[Outcome]) -> list[Stale]:
        by_lane: dict[str, list[tuple[str, Outcome]]] = {}
        for o in outcomes:
            entry_id = o.entry_id
            name = o.job_type
            if REF_MARK in entry_id:
                entry_id, p = split_ref(entry_id)
                name = self._lane(name, p)
            by_lane.setdefault(name, []).append((entry_id, o))
        calls: list[tuple[str, list[Any], list[Any]]] = []
        for name, group in by_lane.items():
            ids = sorted((i for i, _ in group), key=entry_order)
            runs = runs_arg(o.took for _, o in group if o.kind in TIMED)
            args: list[Any] = [GROUP, consumer, self.failed_keep, ids[0], ids[-1], runs, KEEP_MINUTES]
            for entry_id, o in group:
                args += (o.kind, entry_id, o.attempt, o.text)
            calls.append(("settle", self._type_keys(name), args))
        results = await self._call("settle", lambda: self._run_scripts(calls))
        for name, (_, dropped) in zip(by_lane, results, strict=True):
            if int(dropped):
                self._failed_list_full(split_lane(name)[0])
        return [
            Stale(_s(i) + split_lane(name)[1], _s(owner) if owner else None)
            for name, (stale, _) in zip(by_lane, results, strict=True)
            for i, owner in stale
        ]

    async def heartbeat(self, info: dict[str, Any], lease_ms: int) -> Lease:
        record = json.dumps(dict(info, lease_ms=lease_ms), sort_keys=True)
        instance = str(info.get("instance", ""))
        res = int(
            await self._script(
                "heartbeat",
                "heartbeat",
                [self.keys.workers, self.keys.leases],
                [info["id"], record, lease_ms, instance],
            )
        )
        if res < 0:
            raise WorkerIdTaken(f"another worker with id {info['id']!r} is alive (it holds a live lease)")
        return Lease(res)

    async def lost_workers(self) -> list[str]:
        res = await self._script("lost workers", "lost", [self.keys.leases], [])
        return [_s(w) for w in res]

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
        limit = -1 if suspects is None else max(0, suspects)
        names = await self._served_lanes("claim", [job_type])
        wanted: dict[str, list[str]] = {}
        for ref in ids:
            entry_id, p = split_ref(ref)
            wanted.setdefault(self._lane(job_type, p), []).append(entry_id)
        out: list[Delivery] = []
        left = 0
        # One lane at a time: what one takes lowers what the next may. With ids,
        # the other lanes are asked for none (only how many the owner holds there).
        for name in names:
            asked = wanted.get(name, [])
            take = 0 if wanted and not asked else max(0, count - len(out))
            res = await self._script(
                "claim",
                "claim",
                [self.keys.of_type(name).stream, self.keys.of_type(name).stats],
                [GROUP, consumer, owner, take, limit, suspect_deaths, 1 if died else 0, *asked],
            )
            entries, still, paused = res
            suffix = split_lane(name)[1]
            got = [Delivery(job_type, _s(e[0]) + suffix, e[1], int(e[2]), int(e[3])) for e in entries]
            if limit > 0:
                limit = max(0, limit - sum(1 for d in got if d.deaths >= suspect_deaths))
            out += got
            if not int(paused):  # a paused type's jobs wait for resume: nothing to come back for
                left += int(still)
        return out, left

    async def owned(self, consumer: str, types: Sequence[str]) -> list[tuple[str, str]]:
        names = await self._served_lanes("owned", types)
        cmds: list[list[resp.Arg]] = [
            ["XPENDING", self.keys.of_type(n).stream, GROUP, "-", "+", 100_000, consumer] for n in names
        ]
        replies = await self._call("owned", lambda: self._t.pipeline(cmds, raise_on_error=False))
        out: list[tuple[str, str]] = []
        for name, rows in zip(names, replies, strict=True):
            if isinstance(rows, Exception):
                if "NOGROUP" in str(rows) or _wrong_type(rows):
                    continue
                raise ConnectionFailed(f"owned: {rows}")
            job_type, suffix = split_lane(name)
            out.extend((job_type, _s(r[0]) + suffix) for r in rows)
        return out

    async def forget_worker(self, worker_id: str, types: Sequence[str], force: bool = False) -> None:
        if force:
            # Its consumers go where they hold nothing; where one still holds jobs,
            # the worker keeps its record, so its lease lapses and others recover them.
            names = await self._served_lanes("forget worker", types)
            calls = [("drop_consumer", [self.keys.of_type(n).stream], [GROUP, worker_id]) for n in names]
            held = await self._call("forget worker", lambda: self._run_scripts(calls))
            if any(int(h) for h in held):
                return
        elif await self.owned(worker_id, types):
            return
        await self._script(
            "forget worker", "forget", [self.keys.workers, self.keys.leases], [worker_id, "1" if force else "0"]
        )

    async def recover_orphans(self, types: Sequence[str]) -> int:
        names = await self._served_lanes("recover", types)
        calls = [("orphans", [self.keys.of_type(n).stream], [GROUP, ORPHANS_LOOKED_AT]) for n in names]
        return sum(int(n) for n in await self._call("recover", lambda: self._run_scripts(calls)))

    # ---- reads ------------------------------------------------------------

    async def stats(self) -> QueueStats:
        stats, _, _ = await self._read(0)
        return stats

    async def dashboard(self, in_flight_limit: int = 100) -> Dashboard:
        stats, rows, workers = await self._read(in_flight_limit)
        return Dashboard(stats, rows, workers)

    async def in_flight(self, limit: int = 1000) -> list[InFlightJob]:
        # The dashboard's round trip without the stats: time, types, pending rows.
        if limit <= 0:
            return []
        r = await self._read_replies(limit, with_stats=False)
        return await self._in_flight_rows(r.lanes, r.pending, r.now, limit)

    async def _read(self, in_flight_limit: int) -> tuple[QueueStats, list[InFlightJob], list[WorkerInfo]]:
        """Stats (and, with a limit, in-flight rows) in one pipelined round trip
        (per node, all nodes at once); a second one only when types appeared that
        this client had not seen, or for the payloads of in-flight entries no
        earlier refresh has shown."""
        r = await self._read_replies(in_flight_limit, with_stats=True)
        workers = self._worker_infos(r.workers, _score_pairs(r.leases), r.now)
        parts: dict[str, list[TypeCounts]] = {}
        for name, reply in zip(r.lanes, r.stats, strict=True):
            if isinstance(reply, Exception):
                problem = f"{self.keys.of_type(name).stream} or a key beside it is not what jobcore wrote ({reply})"
                parts.setdefault(split_lane(name)[0], []).append(TypeCounts(0, 0, None, 0, 0, 0, 0, problem=problem))
                continue
            xlen, pel, oldest, counters, dead, failed_kept = reply
            c = _fields(counters)
            parts.setdefault(split_lane(name)[0], []).append(
                TypeCounts(
                    pending=max(0, int(xlen) - int(pel)),
                    in_flight=int(pel),
                    oldest_ms=entry_order(oldest)[0] if oldest else None,
                    processed=int(c.get(b"processed", 0)),
                    failed=int(c.get(b"failed", 0)),
                    dead=int(dead),
                    failed_kept=int(failed_kept),
                    paused=b"paused" in c,
                )
            )
        counts = {t: add_counts(p) for t, p in parts.items()}
        stats = build_stats(counts, workers, {_s(t) for t in r.schemas}, r.now)
        inflight = await self._in_flight_rows(r.lanes, r.pending, r.now, in_flight_limit) if in_flight_limit else []
        return stats, inflight, workers

    async def _read_replies(self, in_flight_limit: int, *, with_stats: bool) -> _Replies:
        """In one round trip: server time, the type set, the partition counts,
        then (with stats) workers, leases, schemas and each lane's stats script,
        then (with a limit) each lane's first ``in_flight_limit`` pending-entry
        rows. Nothing here reads more than that, however long the queues."""
        k = self.keys

        def commands(names: list[str]) -> _Reads:
            reads = _Reads()
            reads.one("time", ["TIME"])
            reads.one("types", ["SMEMBERS", k.types])
            reads.one("partitions", ["HGETALL", k.partitions])
            if with_stats:
                reads.one("workers", ["HGETALL", k.workers])
                reads.one("leases", ["ZRANGE", k.leases, 0, -1, "WITHSCORES"])
                reads.one("schemas", ["HKEYS", k.schemas])
                if self._plain_reads:
                    # A user without scripts: each lane's numbers by plain reads (and one more trip).
                    for n in names:
                        stream, stats, dead, failed = _read_keys(k, n)
                        reads.many(f"plain:{n}", [["XLEN", stream], ["XINFO", "GROUPS", stream], ["HGETALL", stats],
                                                 ["XLEN", dead], ["XLEN", failed]])  # fmt: skip
                else:
                    sha = self._scripts["stats"].sha
                    reads.many("stats", [["EVALSHA", sha, 4, *_read_keys(k, n), GROUP] for n in names])
            if in_flight_limit > 0:
                limit = in_flight_limit
                reads.many("pending", [["XPENDING", _read_keys(k, n)[0], GROUP, "-", "+", limit] for n in names])
            return reads

        def lanes_now() -> list[str]:
            return [n for t in sorted(self._known_types) for n in self._routes.get(t, (t,))]

        what = "stats" if with_stats else "in flight"

        async def read(names: list[str]) -> dict[str, Any]:
            reads = commands(names)
            try:
                return reads.named(await self._read_pipeline(what, reads.commands))
            except PermissionDenied:
                if not with_stats or self._plain_reads:
                    raise
                self._plain_reads = True  # scripts refused (a read-only user): read plainly from now on
                reads = commands(names)
                return reads.named(await self._read_pipeline(what, reads.commands))

        names = lanes_now()
        res = await read(names)
        all_types = {_s(t) for t in res["types"]}
        stored = {t: _lanes_from(t, r) for t, r in ((_s(t), r) for t, r in _pairs(res["partitions"]))}
        if all_types - self._known_types or any(self._routes.get(t, (t,)) != n for t, n in stored.items()):
            # New types or partitions since this client last looked: read again with them.
            self._known_types.update(all_types)
            self._routes.update(stored)
            self._lanes_cache.clear()
            names = lanes_now()
            res = await read(names)
        if with_stats and self._plain_reads:
            res["stats"] = await self._plain_stats(what, names, res)
        return _Replies(
            lanes=names,
            now=_server_ms(res["time"]),
            workers=res.get("workers", []),
            leases=res.get("leases", []),
            schemas=res.get("schemas", []),
            stats=res.get("stats", []),
            pending=res.get("pending", []),
        )

    async def _plain_stats(self, what: str, names: list[str], res: dict[str, Any]) -> list[Any]:
        """stats.lua's replies from plain reads: the oldest pending entry is one
        XRANGE step past the group's last-delivered id, read in one more trip."""
        rows = []
        for n in names:
            xlen, groups, counters, dead, failed = res[f"plain:{n}"]
            pel, last = 0, "0-0"
            for g in groups if isinstance(groups, list) else []:
                f = _fields(g)
                if f.get(b"name") == GROUP.encode():
                    pel, last = int(f.get(b"pending", 0)), _s(f.get(b"last-delivered-id", b"0-0"))
            rows.append([xlen if isinstance(xlen, int) else 0, pel, last, counters, dead, failed])
        ask = [i for i, r in enumerate(rows) if r[0] > r[1]]
        cmds = [["XRANGE", _read_keys(self.keys, names[i])[0], f"({rows[i][2]}", "+", "COUNT", 1] for i in ask]
        for i, got in zip(ask, await self._read_pipeline(what, cmds) if cmds else [], strict=True):
            rows[i][2] = got[0][0] if got else None
        for i, r in enumerate(rows):
            if i not in ask:
                r[2] = None
        return rows

    async def _read_pipeline(self, what: str, commands: list[list[Any]]) -> list[Any]:
        """Send read commands in one round trip (scripts by sha, loaded once if
        Redis lost them). A NOGROUP reply (no worker has read the type yet)
        reads as no rows; a WRONGTYPE reply (a key of ours holding something
        else: corrupt data) is left in place as the error, for the caller to
        show; any other error reply raises."""
        scripts = {s.sha.encode(): s for s in self._scripts.values()}

        async def run() -> list[Any]:
            replies = await self._t.pipeline(commands, raise_on_error=False)
            if any(isinstance(r, resp.RespError) and str(r).startswith("NOSCRIPT") for r in replies):
                used = {_b(c[1]) for c in commands if c[0] == "EVALSHA"}
                await self._t.load_scripts([scripts[sha] for sha in used if sha in scripts])
                replies = await self._t.pipeline(commands, raise_on_error=False)
            return replies

        replies = await self._call(what, run)
        for i, r in enumerate(replies):
            if isinstance(r, Exception):
                if str(r).startswith("NOPERM"):
                    raise PermissionDenied(f"{what}: permission denied for this Redis user ({r})")
                if str(r).startswith("WRONGTYPE") or "WRONGTYPE" in str(r).split("script:")[0]:
                    continue
                if "NOGROUP" not in str(r):
                    raise JobcoreError(f"{what}: Redis error: {r}")
                replies[i] = []
        return replies

    async def _in_flight_rows(self, lanes: list[str], per_lane: list[Any], now: int, limit: int) -> list[InFlightJob]:
        """The ``limit`` longest-running jobs, from each lane's pending-entry rows;
        only entries no earlier refresh has shown are read (one more round trip)."""
        cache = self._in_flight_cache
        listed, shown = cache.select(lanes, per_lane, limit)
        missing = cache.missing(shown)
        if missing:
            await self._read_entries(missing)
        # From here on nothing awaits, so no other refresh changes the cache meanwhile.
        out = cache.rows(shown, now)
        cache.forget(listed, limit, len(out))
        return out

    async def _read_entries(self, missing: dict[str, list[bytes]]) -> None:
        """Read the entries of in-flight rows not seen before, into the cache."""
        sha = self._scripts["in_flight"].sha
        calls: list[tuple[str, list[bytes]]] = []
        for t, ids in missing.items():
            for i in range(0, len(ids), IN_FLIGHT_CHUNK):
                calls.append((t, ids[i : i + IN_FLIGHT_CHUNK]))
        replies = None
        if not self._plain_reads:
            commands = [["EVALSHA", sha, 1, _read_keys(self.keys, t)[0], GROUP, *ids] for t, ids in calls]
            try:
                replies = await self._read_pipeline("in flight", commands)
            except PermissionDenied:
                self._plain_reads = True  # scripts refused (a read-only user)
        if replies is None:
            replies = await self._plain_entries(calls)
        for (t, ids), entries in zip(calls, replies, strict=True):
            self._in_flight_cache.store(t, ids, entries)

    async def _plain_entries(self, calls: list[tuple[str, list[bytes]]]) -> list[Any]:
        """in_flight.lua's replies from plain reads, for a user without scripts."""
        cmds = [["XRANGE", _read_keys(self.keys, t)[0], i, i] for t, ids in calls for i in ids]
        got = iter(await self._read_pipeline("in flight", cmds))
        out = []
        for _, ids in calls:
            entries: list[list[bytes | None] | None] = []
            for _ in ids:
                e = next(got)
                if e:
                    f = _fields(e[0][1] or [])
                    entries.append([f.get(b"d"), f.get(b"a")])
                else:
                    entries.append(None)
            out.append(entries)
        return out

    @staticmethod
    def _worker_infos(records: Any, leases: Any, now: int) -> list[WorkerInfo]:
        deadline = {_s(w): int(score) if math.isfinite(score) else 0 for w, score in leases}
        out = []
        for wid, rec in _fields(records).items():
            try:
                data = json.loads(rec)
            except ValueError:
                data = None
            if not isinstance(data, dict):
                data = {"id": _s(wid)}  # not a record of ours: listed by its id alone
            data.setdefault("id", _s(wid))
            out.append(worker_info_from_record(data, deadline.get(_s(wid), 0), now))
        return sorted(out, key=lambda w: w.id)

    async def workers(self) -> list[WorkerInfo]:
        cmds: list[list[resp.Arg]] = [
            ["TIME"],
            ["HGETALL", self.keys.workers],
            ["ZRANGE", self.keys.leases, 0, -1, "WITHSCORES"],
        ]
        t, records, leases = await self._call("workers", lambda: self._t.pipeline(cmds))
        return self._worker_infos(records, _score_pairs(leases), _server_ms(t))

    async def job_types(self) -> list[str]:
        members = await self._call("job types", lambda: self._t.call("SMEMBERS", self.keys.types))
        types = sorted(_s(t) for t in members)
        self._known_types.update(types)
        return types

    async def schemas(self) -> dict[str, dict[str, Any]]:
        raw = await self._call("schemas", lambda: self._t.call("HGETALL", self.keys.schemas))
        out: dict[str, dict[str, Any]] = {}
        for t, sch in _pairs(raw):
            try:
                out[_s(t)] = json.loads(sch)
            except ValueError:
                continue
        return out

    async def _list_bad(
        self, which: Literal["dead", "failed"], job_type: str | None, limit: int, before: str | None
    ) -> list[BadJob]:
        types = [job_type] if job_type else await self.job_types()
        names = await self._call(which, lambda: self._lanes_of(types))
        start = f"({split_ref(before)[0]}" if before else "+"
        cmds: list[list[resp.Arg]] = [["XREVRANGE", self._bad_key(which, n), start, "-", "COUNT", limit] for n in names]
        rows = []
        for name, entries in zip(names, await self._call(which, lambda: self._t.pipeline(cmds)), strict=True):
            t, suffix = split_lane(name)
            for entry_id, fields in entries:
                f = _fields(fields or [])
                rows.append(
                    make_bad_job(
                        t,
                        _s(entry_id) + suffix,
                        _s(f.get(b"r", b"")),
                        f.get(b"d", b""),
                        base_attempts(f.get(b"n")),
                        _s(f.get(b"w", b"")),
                    )
                )
        rows.sort(key=lambda r: entry_order(r.id), reverse=True)
        return rows[:limit]

    async def dead(self, job_type: str | None = None, limit: int = 100, before: str | None = None) -> list[BadJob]:
        return await self._list_bad("dead", job_type, limit, before)

    async def failed(self, job_type: str | None = None, limit: int = 100, before: str | None = None) -> list[BadJob]:
        return await self._list_bad("failed", job_type, limit, before)

    def _bad_key(self, which: Literal["dead", "failed"], job_type: str) -> str:
        k = self.keys.of_type(job_type)
        return k.dead if which == "dead" else k.failed

    async def _by_lane(self, what: str, job_type: str, ids: Sequence[str] | None) -> dict[str, list[str] | None]:
        """Entry ids by the lane they are in (every lane, None: all of it)."""
        if ids is None:
            return dict.fromkeys(await self._call(what, lambda: self._lanes_of([job_type])))
        out: dict[str, list[str] | None] = {}
        for ref in ids:
            entry_id, p = split_ref(ref)
            found = out.setdefault(self._lane(job_type, p), [])
            assert found is not None
            found.append(entry_id)
        return out

    async def requeue(self, which: Literal["dead", "failed"], job_type: str, ids: Sequence[str] | None = None) -> int:
        total = 0
        ids = await self._bad_refs(which, job_type, ids)
        for name, entry_ids in (await self._by_lane("requeue", job_type, ids)).items():
            keys = [self.keys.of_type(name).stream, self._bad_key(which, name)]
            if entry_ids is not None:
                total += int(await self._script("requeue", "requeue", keys, entry_ids))
                continue
            while n := int(await self._script("requeue", "requeue", keys, [])):
                total += n
        return total

    async def purge(self, which: Literal["dead", "failed"], job_type: str, ids: Sequence[str] | None = None) -> int:
        total = 0
        ids = await self._bad_refs(which, job_type, ids)
        for name, entry_ids in (await self._by_lane("purge", job_type, ids)).items():
            key = self._bad_key(which, name)
            if entry_ids is not None:
                command: list[resp.Arg] = ["XDEL", key, *entry_ids]
                total += int(await self._call("purge", lambda: self._t.call(*command)))  # noqa: B023 - awaited here
            else:
                total += int(await self._script("purge", "purge", [key], []))
        return total

    async def _history_read(
        self, job_types: Sequence[str] | None, minutes: int
    ) -> tuple[list[int], dict[str, list[dict[int, list[int]]]]]:
        async def run() -> tuple[list[int], dict[str, list[dict[int, list[int]]]]]:
            t, members = await self._t.pipeline([["TIME"], ["SMEMBERS", self.keys.types]])
            types = sorted({_s(m) for m in members}) if job_types is None else list(job_types)
            span = window(_server_ms(t), minutes)
            names = await self._lanes_of(types) if types else []
            fields = [str(m) for m in span]
            cmds: list[list[resp.Arg]] = [["HMGET", _history_key(self.keys, n), *fields] for n in names]
            replies = await self._t.pipeline(cmds, raise_on_error=False) if cmds else []
            stored: dict[str, list[dict[int, list[int]]]] = {t: [] for t in types}
            for name, values in zip(names, replies, strict=True):
                if isinstance(values, Exception):
                    if _wrong_type(values):
                        continue  # not a hash of ours (corrupt data): no history for that partition
                    raise values
                got = {m: parse_minute(v) for m, v in zip(span, values, strict=True) if v is not None}
                stored[split_lane(name)[0]].append(got)
            return span, stored

        return await self._call("history", run)

    async def ping(self) -> None:
        await self._call("ping", lambda: self._t.call("PING"))

    async def server_info(self) -> dict[str, str]:
        """INFO server of the node that answers (the cluster's first master)."""
        raw = await self._call("server info", lambda: self._t.call("INFO", "server"))
        return resp.parse_info(raw)

    async def eviction_policies(self) -> set[str]:
        try:
            replies = await self._t.on_every_master("INFO", "memory")
        except resp.RespError:
            return set()  # INFO refused to this user: nothing to tell
        except (resp.RespConnectionError, OSError) as exc:
            raise ConnectionFailed(f"Redis at {redacted(self.url)} is unreachable ({exc})") from None
        policies = {resp.parse_info(r).get("maxmemory_policy", "noeviction") for r in replies}
        return {p for p in policies if p != "noeviction"}

    async def server_version(self) -> str:
        info = await self.server_info()
        if info.get("server_name") == "valkey" and "valkey_version" in info:
            return f"Valkey {info['valkey_version']}"
        return f"Redis {info.get('redis_version', '?')}"

    async def close(self) -> None:
        await self.stop_fetching()
        await self._t.close()

    # ---- operator controls: pause, cancel, find ---------------------------

    async def _set_paused(self, job_type: str, paused: bool) -> None:
        names = await self._call("pause", lambda: self._lanes_of([job_type]))
        stats = [self.keys.of_type(n).stats for n in names]
        cmds: list[list[resp.Arg]] = [["HSET", k, "paused", 1] if paused else ["HDEL", k, "paused"] for k in stats]
        await self._call("pause" if paused else "resume", lambda: self._t.pipeline(cmds))

    async def _inherit_pause(self, before: dict[str, tuple[str, ...]], after: dict[str, tuple[str, ...]]) -> None:
        """New partitions of a paused type are paused too (partition 0 says)."""
        grown = [t for t in after if len(after[t]) > len(before.get(t, (t,)))]
        if not grown:
            return
        flags = await self._t.pipeline([["HEXISTS", self.keys.of_type(t).stats, "paused"] for t in grown])
        cmds: list[list[resp.Arg]] = [
            ["HSET", self.keys.of_type(n).stats, "paused", 1]
            for t, flag in zip(grown, flags, strict=True)
            if flag
            for n in after[t][len(before.get(t, (t,))) :]
        ]
        if cmds:
            await self._t.pipeline(cmds)

    async def _pending_by_id(
        self, job_id: uuid.UUID, job_types: Sequence[str], at_ms: int, skew_ms: int
    ) -> list[tuple[str, str, bytes]]:
        names = await self._call("find", lambda: self._lanes_of(job_types))
        # The likely stretch first (an entry is added after its id is made), then the rest.
        stretches = [(max(0, at_ms - 1000), at_ms + skew_ms), (max(0, at_ms - skew_ms), max(0, at_ms - 1000) - 1)]
        out: list[tuple[str, str, bytes]] = []
        for low, high in stretches:
            todo = {n: f"{low}-0" for n in names} if high >= low else {}
            while todo and not out:
                replies = await self._find_chunks(todo, f"{high}-{2**64 - 1}", job_id.bytes)
                nxt: dict[str, str] = {}
                for name, (more, found) in zip(todo, replies, strict=True):
                    job_type, suffix = split_lane(name)
                    out += [(job_type, _s(e) + suffix, d) for e, d in found]
                    if more:
                        nxt[name] = f"({_s(more)}"
                todo = nxt
            if out:
                break
        return out

    async def _find_chunks(self, starts: dict[str, str], end: str, needle: bytes) -> list[Any]:
        """find_pending.lua's replies for each lane from its start; for a user
        without scripts (read-only), the same from plain reads (the entries travel)."""
        if not self._plain_reads:
            calls = [
                ("find_pending", [self.keys.of_type(n).stream], [GROUP, start, end, FIND_CHUNK, needle])
                for n, start in starts.items()
            ]
            try:
                return await self._call("find", lambda: self._run_scripts(calls))
            except PermissionDenied:
                self._plain_reads = True
        cmds = [["XRANGE", self.keys.of_type(n).stream, start, end, "COUNT", FIND_CHUNK] for n, start in starts.items()]
        out: list[Any] = []
        for name, entries in zip(starts, await self._read_pipeline("find", cmds), strict=True):
            if isinstance(entries, Exception):  # not a stream (corrupt data): nothing to find there
                out.append((None, []))
                continue
            stream = self.keys.of_type(name).stream
            hits = [(e, d) for e, f in entries if needle in (d := _fields(f or []).get(b"d", b""))]
            asks: list[list[Any]] = [["XPENDING", stream, GROUP, e, e, 1] for e, _ in hits]
            held = await self._read_pipeline("find", asks) if asks else []
            more = entries[-1][0] if len(entries) == FIND_CHUNK else None
            out.append((more, [h for h, p in zip(hits, held, strict=True) if not p]))
        return out

    async def _request_cancel(self, worker: str, job_type: str, ref: str) -> bool:
        request = f"{job_type}\n{ref}"
        keys = [self.keys.leases, self.keys.cancels(worker)]
        return bool(int(await self._script("cancel", "cancel", keys, [worker, request, CANCEL_REQUEST_TTL_MS])))

    async def cancel_requests(self, consumer: str) -> list[tuple[str, str]]:
        got = await self._call("cancel requests", lambda: self._t.call("LPOP", self.keys.cancels(consumer), 100))
        out = []
        for item in got or []:
            job_type, _, ref = _s(item).partition("\n")
            out.append((job_type, ref))
        return out


# ---- read-side helpers ------------------------------------------------------

IN_FLIGHT_CHUNK = 200  # entries read per script call: keeps each call short for Redis


class _Reads:
    """Commands of one pipelined read, each reply named by what it is."""

    def __init__(self) -> None:
        self.commands: list[list[Any]] = []
        self._slots: dict[str, slice | int] = {}

    def one(self, name: str, command: list[Any]) -> None:
        self._slots[name] = len(self.commands)
        self.commands.append(command)

    def many(self, name: str, commands: list[list[Any]]) -> None:
        self._slots[name] = slice(len(self.commands), len(self.commands) + len(commands))
        self.commands += commands

    def named(self, replies: list[Any]) -> dict[str, Any]:
        return {name: replies[at] for name, at in self._slots.items()}


@dataclass(frozen=True, slots=True)
class _Replies:
    """A dashboard read's replies, by what they are."""

    lanes: list[str]  # each type's partitions: a type, or "type{p" (keys.lane)
    now: int  # Redis server time, ms
    workers: Any  # HGETALL workers
    leases: Any  # ZRANGE leases WITHSCORES
    schemas: Any  # HKEYS schemas
    stats: list[Any]  # per lane: stats.lua's reply
    pending: list[Any]  # per lane: XPENDING rows


def _b(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


@functools.lru_cache(maxsize=4096)
def _read_keys(keys: Keys, job_type: str) -> tuple[str, str, str, str]:
    """A type's stream, stats, dead and failed keys (as _type_keys), built once."""
    k = keys.of_type(job_type)
    return k.stream, k.stats, k.dead, k.failed


@functools.lru_cache(maxsize=4096)
def _history_key(keys: Keys, job_type: str) -> str:
    return keys.of_type(job_type).history


def _score_pairs(flat: Any) -> list[tuple[Any, float]]:
    """ZRANGE ... WITHSCORES as (member, score) pairs."""
    return [(m, float(score)) for m, score in _pairs(flat)]
