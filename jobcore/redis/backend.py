"""Redis backend: one stream per job type, read through one consumer group.

The group's pending-entries list is the in-flight record: XREADGROUP takes a job
and records it in flight for the reading worker in one atomic command, with a
delivery count. Every other multi-key change is one Lua script (``lua/``, called
through the typed stubs of ``scripts.py``). Taking jobs is ``fetching.py``'s,
operators' reads ``reads.py``'s; this module holds the writes: enqueue, settle,
heartbeat, claim and the operator's actions.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Literal

from jobcore.display import printable
from jobcore.errors import ConnectionFailed, EnqueueError, JobcoreError, WorkerIdTaken
from jobcore.keys import DEFAULT_NAMESPACE, GROUP, REF_MARK, Keys, entry_order, split_lane, split_ref
from jobcore.limits import CANCEL_VERDICT_TTL_MS
from jobcore.ops.history import KEEP_MINUTES, TIMED, runs_arg
from jobcore.queue import Queue
from jobcore.records import BadJob, Dashboard, Delivery, InFlightJob, Lease, Outcome, QueueStats, Stale, WorkerInfo
from jobcore.redis import replies as rep
from jobcore.redis import resp, scripts, server
from jobcore.redis.adding import RedisAdding
from jobcore.redis.audit import RedisAudit
from jobcore.redis.auto import open_transport
from jobcore.redis.calls import enqueue_error, first_error, guarded
from jobcore.redis.fairness import RedisFairness
from jobcore.redis.fetching import Fetcher
from jobcore.redis.inflight import base_attempts
from jobcore.redis.lanes import Lanes
from jobcore.redis.reads import History, Reader, bad_key, type_keys
from jobcore.redis.redispy import RedisPyTransport
from jobcore.redis.retire import RedisRetire
from jobcore.redis.transport import ReplicasNotConfirmed, Transport
from jobcore.redis.waiting import RedisWaiting
from jobcore.url import parse as parse_url
from jobcore.url import redacted

log = logging.getLogger("jobcore.queue")
DEFAULT_REPLICA_TIMEOUT_MS = 500
ORPHANS_LOOKED_AT = 1000  # entries delivered to no one put back per lane and call
CANCEL_REQUEST_TTL_MS = 60_000  # a cancel request no worker took is dropped after this


def _replica_settings(url: str, replicas: int | None, timeout_ms: int | None) -> tuple[int, int]:
    query = parse_url(url).query
    try:
        n = replicas if replicas is not None else int(query.get("replicas", 0))
        ms = timeout_ms if timeout_ms is not None else int(query.get("replica_timeout_ms", DEFAULT_REPLICA_TIMEOUT_MS))
    except ValueError:
        raise ValueError("replicas and replica_timeout_ms in the Redis URL must be whole numbers") from None
    if n < 0 or ms <= 0:
        raise ValueError("replicas must be 0 or more and replica_timeout_ms more than 0")
    return n, ms


class RedisQueue(RedisAdding, RedisFairness, RedisWaiting, RedisRetire, RedisAudit, Queue):
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
        # One transport for every topology; a redis-py client (fakeredis) through the same interface.
        self._t: Transport = (
            RedisPyTransport(client_factory())
            if client_factory is not None
            else open_transport(url, connect_timeout=connect_timeout, timeout=socket_timeout)
        )
        self._socket_timeout = socket_timeout
        self._connect_timeout = connect_timeout
        self._known_lanes: set[str] = set()  # lanes this client has added to (and recorded)
        self._known_types: set[str] = set()  # types this client has written to the type set
        self._lanes = Lanes(self._t, self.keys, self._confirm)
        self._reads = Reader(self._t, self.keys, url, self.routes, self._lanes_of)
        self._fetching = Fetcher(self._t, self.keys, url, self.routes, self._lanes_of, self.settle, socket_timeout)
        self._sweep_at: dict[str, str] = {}  # each fair lane's sweep cursor

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
        q._settings_from(self)
        return q

    def lease_keeper_settings(self) -> dict[str, Any] | None:
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

    async def _partition_lanes(self, job_types: Sequence[str], declared: dict[str, int]) -> dict[str, tuple[str, ...]]:
        try:
            found = await self._lanes.read(job_types, declared)  # raw errors: callers say what failed
        except ReplicasNotConfirmed as exc:
            raise EnqueueError(f"the partition count not confirmed: {exc}; retry to be sure") from None
        self.routes.close(self._lanes.closed)
        return found

    def _routes_read(self) -> None:
        # The type set written again with the next enqueue: it may be gone (a flush, a restart).
        self._known_lanes.clear()
        self._known_types.clear()

    async def partitions(self, job_types: str | Sequence[str]) -> dict[str, int]:
        return await guarded(self.url, lambda: super(RedisQueue, self).partitions(job_types))

    def _enqueue_error(self, what: str, exc: Exception) -> Exception:
        return enqueue_error(self.url, what, exc)

    async def add_raw(self, job_type: str, fields: dict[bytes, bytes]) -> str:
        """Store an entry exactly as given (tests use it to plant poison data)."""
        flat = [x for kv in fields.items() for x in kv]
        await self._t.call("SADD", self.keys.types, job_type)
        return rep.text(await self._t.call("XADD", self.keys.of_type(job_type).stream, "*", *flat))

    # ---- the worker's primitives ------------------------------------------

    async def register_types(self, schemas: dict[str, dict[str, Any]]) -> None:
        if not schemas:
            return
        names = await guarded(self.url, lambda: self._lanes_of(list(schemas)))
        cmds: list[list[Any]] = [["SADD", self.keys.types, *schemas]]
        mapping = [x for t, sch in schemas.items() for x in (t, json.dumps(sch, sort_keys=True))]
        cmds.append(["HSET", self.keys.schemas, *mapping])
        try:
            await guarded(self.url, lambda: self._fetching.create_groups(names, cmds))
        except JobcoreError as exc:
            if exc.code != "OOM":
                raise
            # Redis is full: register by scripts allowed under OOM, or no worker
            # could start to drain it (a lane holding something else is left to the fetch).
            calls = [scripts.register(self.keys.types, self.keys.schemas, mapping)]
            calls += [scripts.create_group(self.keys.of_type(n).stream) for n in names]
            await guarded(self.url, lambda: self._t.run_scripts(calls))
        self._reads.known_types.update(schemas)

    async def fetch(self, consumer: str, types: Sequence[str], count: int, block_ms: int) -> list[Delivery]:
        """Up to ``count`` new jobs across ``types``, taking turns between them
        (fetch.lua: XREADGROUP's COUNT applies to every stream it reads). With none
        waiting, block up to ``block_ms`` for the next: one per type at most."""
        fetching = self._fetching
        pairs = fetching.waited()
        routes = self.routes
        names = routes.flat.get(tuple(types)) if time.monotonic() < routes.until else None
        if names is None:
            names = await guarded(self.url, lambda: self._lanes_of(types))
        names = fetching.servable(routes.open_lanes(names))
        if not pairs:
            pairs = await fetching.run(names, lambda: fetching.take(consumer, names, count))
        if not pairs and block_ms > 0:
            pairs = await fetching.run(names, lambda: fetching.wait_for_jobs(consumer, names, block_ms, count))
        out: list[Delivery] = []
        for name, entries in pairs:
            job_type, ref = split_lane(name)  # a partition's entries are known as "id@p"
            for entry_id, fields in entries:
                if type(fields) is list and len(fields) == 2 and fields[0] == b"d":
                    out.append(Delivery(job_type, entry_id.decode() + ref, fields[1], 1))  # the usual entry
                    continue
                f = rep.field_map(fields) if fields is not None else {}
                out.append(Delivery(job_type, rep.text(entry_id) + ref, f.get(b"d"), base_attempts(f.get(b"a")) + 1))
        return out

    async def stop_fetching(self) -> None:
        await self._fetching.stop()

    async def settle(self, consumer: str, outcomes: Sequence[Outcome]) -> list[Stale]:
        by_lane: dict[str, list[tuple[str, Outcome]]] = {}
        for o in outcomes:
            entry_id = o.entry_id
            name = o.job_type
            if REF_MARK in entry_id:
                entry_id, p = split_ref(entry_id)
                name = self.routes.lane(name, p)
            by_lane.setdefault(name, []).append((entry_id, o))
        calls: list[scripts.Call] = []
        keep = self.failed_keep
        for name, group in by_lane.items():
            ids = sorted((i for i, _ in group), key=entry_order)
            runs = runs_arg(o.took for _, o in group if o.kind in TIMED)
            done = ((o.kind, entry_id, o.attempt, o.text) for entry_id, o in group)
            answers = [(self.keys.cancel_verdict(name, r), e, o.verdict) for e, o in group for r in o.cancels]
            k, ttl = [*type_keys(self.keys, name), *self.keys.fair(name).all()], CANCEL_VERDICT_TTL_MS
            calls.append(scripts.settle(k, consumer, keep, ids[0], ids[-1], runs, KEEP_MINUTES, done, answers, ttl))
        results = await guarded(self.url, lambda: self._t.run_scripts(calls))
        out: list[Stale] = []
        for name, (stale, dropped, refused, notes) in zip(by_lane, results, strict=True):
            job_type, suffix = split_lane(name)
            if int(dropped):
                self._failed_list_full(job_type)
            for note in dict.fromkeys(printable(rep.text(n)) for n in notes):
                log.warning("settling jobs of %s: %s", printable(name), note)
            out += (Stale(rep.text(i) + suffix, rep.text(owner) if owner else None) for i, owner in stale)
            out += (Stale(rep.text(i) + suffix, consumer, printable(rep.text(why)), job_type) for i, why in refused)
        return out

    async def _script(self, call: scripts.Call) -> Any:
        (reply,) = await guarded(self.url, lambda: self._t.run_scripts([call]))
        return reply

    async def heartbeat(self, info: dict[str, Any], lease_ms: int) -> Lease:
        record = json.dumps(dict(info, lease_ms=lease_ms), sort_keys=True)
        instance = str(info.get("instance", ""))
        call = scripts.heartbeat(self.keys.workers, self.keys.leases, info["id"], record, lease_ms, instance)
        res = int(await self._script(call))
        if res < 0:
            raise WorkerIdTaken(f"another worker with id {info['id']!r} is alive (it holds a live lease)")
        return Lease(res)

    async def lost_workers(self) -> list[str]:
        return [rep.text(w) for w in await self._script(scripts.lost(self.keys.leases))]

    async def _served_lanes(self, types: Sequence[str]) -> list[str]:
        """The lanes of ``types`` a worker may touch now (corrupt ones left out)."""
        return self._fetching.servable(await guarded(self.url, lambda: self._lanes_of(types)))

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
        names = await self._served_lanes([job_type])
        wanted: dict[str, list[str]] = {}
        for ref in ids:
            entry_id, p = split_ref(ref)
            wanted.setdefault(self.routes.lane(job_type, p), []).append(entry_id)
        out: list[Delivery] = []
        left = 0
        # One lane at a time: what one takes lowers what the next may. With ids,
        # the other lanes are asked for none (only how many the owner holds there).
        for name in names:
            asked = wanted.get(name, [])
            take = 0 if wanted and not asked else max(0, count - len(out))
            k = self.keys.of_type(name)
            call = scripts.claim(k.stream, k.stats, consumer, owner, take, limit, suspect_deaths, died, asked)
            entries, still, paused = await self._script(call)
            suffix = split_lane(name)[1]
            got = [Delivery(job_type, rep.text(e[0]) + suffix, e[1], int(e[2]), int(e[3])) for e in entries]
            if limit > 0:
                limit = max(0, limit - sum(1 for d in got if d.deaths >= suspect_deaths))
            out += got
            if not int(paused):  # a paused type's jobs wait for resume: nothing to come back for
                left += int(still)
        return out, left

    async def owned(self, consumer: str, types: Sequence[str]) -> list[tuple[str, str]]:
        """Less what this queue's blocking reads took (or may have) and the next
        fetch delivers: those are held, not lost."""
        names = await self._served_lanes(types)
        reads = self._fetching.reads_in_flight()
        cmds: list[list[resp.Arg]] = [
            ["XPENDING", self.keys.of_type(n).stream, GROUP, "-", "+", 100_000, consumer] for n in names
        ]
        replies = await guarded(self.url, lambda: self._t.pipeline(cmds, raise_on_error=False))
        error = first_error(replies, ("NOGROUP", "WRONGTYPE"))
        if error is not None:
            raise ConnectionFailed(f"owned: {error}")
        # no group yet, or a corrupt key: nothing held there
        held = [(name, rows) for name, rows in zip(names, replies, strict=True) if not isinstance(rows, Exception)]
        coming = self._fetching.not_delivered(consumer, held, reads)
        out: list[tuple[str, str]] = []
        for name, rows in held:
            job_type, suffix = split_lane(name)
            out.extend((job_type, rep.text(r[0]) + suffix) for r in rows if (name, rep.as_bytes(r[0])) not in coming)
        return out

    async def forget_worker(self, worker_id: str, types: Sequence[str], force: bool = False) -> None:
        if force:
            # Its consumers go where they hold nothing; where one still holds jobs,
            # the worker keeps its record, so its lease lapses and others recover them.
            names = await self._served_lanes(types)
            calls = [scripts.drop_consumer(self.keys.of_type(n).stream, worker_id) for n in names]
            held = await guarded(self.url, lambda: self._t.run_scripts(calls))
            if any(int(h) for h in held):
                return
        elif await self.owned(worker_id, types):
            return
        await self._script(scripts.forget(self.keys.workers, self.keys.leases, worker_id, force))

    async def recover_orphans(self, types: Sequence[str]) -> int:
        names = await self._served_lanes(types)
        calls = [scripts.orphans(self.keys.of_type(n).stream, self.keys.fair(n), ORPHANS_LOOKED_AT) for n in names]
        calls += self._sweep_calls(names)  # fair jobs handed out that left the pending list unsettled
        replies = await guarded(self.url, lambda: self._t.run_scripts(calls))
        return sum(int(n) for n in replies[: len(names)]) + self._swept(names, replies[len(names) :])

    async def cancel_requests(self, consumer: str) -> list[tuple[str, str, str]]:
        got = await guarded(self.url, lambda: self._t.call("LPOP", self.keys.cancels(consumer), 100))
        out = []
        for item in got or []:
            job_type, _, rest = rep.text(item).partition("\n")
            ref, _, request = rest.partition("\n")
            out.append((job_type, ref, request))
        return out

    async def answer_cancel(self, job_type: str, ref: str, request: str, answer: str) -> None:
        # NX: an answer a settle wrote (cancelled, ran_on) is never overwritten by a late one.
        key = await self._reads.answer_key(job_type, ref, request)
        await guarded(self.url, lambda: self._t.call("SET", key, answer, "PX", CANCEL_VERDICT_TTL_MS, "NX"))

    # ---- reads (reads.py) -------------------------------------------------

    async def stats(self) -> QueueStats:
        return await self._reads.stats()

    async def dashboard(self, in_flight_limit: int = 100) -> Dashboard:
        return await self._reads.dashboard(in_flight_limit)

    async def in_flight(self, limit: int = 1000) -> list[InFlightJob]:
        return await self._reads.in_flight(limit)

    async def workers(self) -> list[WorkerInfo]:
        return await self._reads.workers()

    async def job_types(self) -> list[str]:
        return await self._reads.job_types()

    async def schemas(self) -> dict[str, dict[str, Any]]:
        return await self._reads.schemas()

    async def dead(self, job_type: str | None = None, limit: int = 100, before: str | None = None) -> list[BadJob]:
        return await self._reads.bad("dead", job_type, limit, before)

    async def failed(self, job_type: str | None = None, limit: int = 100, before: str | None = None) -> list[BadJob]:
        return await self._reads.bad("failed", job_type, limit, before)

    async def _history_read(self, job_types: Sequence[str] | None, minutes: int) -> History:
        return await self._reads.history(job_types, minutes)

    async def _pending_by_id(
        self, job_id: uuid.UUID, job_types: Sequence[str], at_ms: int, skew_ms: int
    ) -> list[tuple[str, str, bytes]]:
        return await self._reads.pending_by_id(job_id, job_types, at_ms, skew_ms)

    async def _cancel_answer(self, job_type: str, ref: str, request: str) -> str | None:
        return await self._reads.cancel_answer(job_type, ref, request)

    # ---- the server -------------------------------------------------------

    async def ping(self) -> None:
        await guarded(self.url, lambda: self._t.call("PING"))

    async def server_info(self) -> dict[str, str]:
        return await server.info(self._t, self.url)

    async def eviction_policies(self) -> set[str]:
        return await server.eviction_policies(self._t, self.url)

    async def server_version(self) -> str:
        return server.version_of(await self.server_info())

    async def close(self) -> None:
        await self.stop_fetching()
        await self._t.close()

    # ---- operator actions: requeue, purge, pause, cancel ------------------

    async def _by_lane(self, job_type: str, ids: Sequence[str] | None) -> dict[str, list[str] | None]:
        """Entry ids by the lane they are in (every lane, None: all of it)."""
        if ids is None:
            return dict.fromkeys(await guarded(self.url, lambda: self._lanes_of([job_type])))
        out: dict[str, list[str] | None] = {}
        for ref in ids:
            entry_id, p = split_ref(ref)
            found = out.setdefault(self.routes.lane(job_type, p), [])
            assert found is not None
            found.append(entry_id)
        return out

    async def _requeue(self, which: Literal["dead", "failed"], job_type: str, ids: Sequence[str] | None = None) -> int:
        total = 0
        ids = await self._bad_refs(which, job_type, ids)
        for name, entry_ids in (await self._by_lane(job_type, ids)).items():
            k = self.keys.of_type(name)
            bad, stats = bad_key(self.keys, which, name), k.stats if which == "failed" else None
            if entry_ids is not None:
                total += int(await self._script(scripts.requeue(k.stream, bad, entry_ids, stats)))
                continue
            while n := int(await self._script(scripts.requeue(k.stream, bad, [], stats))):
                total += n
        return total

    async def _purge(self, which: Literal["dead", "failed"], job_type: str, ids: Sequence[str] | None = None) -> int:
        total = 0
        ids = await self._bad_refs(which, job_type, ids)
        for name, entry_ids in (await self._by_lane(job_type, ids)).items():
            if entry_ids == []:
                continue  # no ids here: an empty list would read as all of them
            stats = self.keys.of_type(name).stats if which == "failed" else None
            call = scripts.purge(bad_key(self.keys, which, name), entry_ids or [], stats)
            total += int(await self._script(call))
        return total

    async def _set_paused(self, job_type: str, paused: bool) -> None:
        self.routes.merge({job_type: await guarded(self.url, lambda: self._lanes.set_paused(job_type, paused))})

    async def _request_cancel(self, worker: str, job_type: str, ref: str, request: str) -> bool:
        # As an older worker reads it (it cancels, without answering), then with the answer's id.
        items = [f"{job_type}\n{ref}", f"{job_type}\n{ref}\n{request}"]
        call = scripts.cancel(self.keys.leases, self.keys.cancels(worker), worker, items, CANCEL_REQUEST_TTL_MS)
        return bool(int(await self._script(call)))
