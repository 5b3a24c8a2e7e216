"""Redis backend: one stream per job type, read through one consumer group.

The group's pending-entries list is the in-flight record: XREADGROUP takes a job
and records it in flight for the reading worker in one atomic command, with a
delivery count. Every other multi-key change is one Lua script (``lua/``).
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from operator import attrgetter, itemgetter
from typing import Any, Literal, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from . import resp
from .backend import (
    FAILED_KEEP,
    BadJob,
    Dashboard,
    Delivery,
    InFlightJob,
    Outcome,
    Queue,
    QueueStats,
    TypeStats,
    WorkerInfo,
    in_flight_job,
    make_bad_job,
)
from .errors import ConnectionFailed, EnqueueError, JobcoreError
from .keys import DEFAULT_NAMESPACE, GROUP, Keys
from .workerinfo import worker_info_from_record

T = TypeVar("T")
ADD_CHUNK = 2000  # payloads per script call: keeps each call short for Redis

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
)


@functools.cache
def _load(name: str) -> str:
    return resources.files("jobcore").joinpath("lua", f"{name}.lua").read_text()


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _redacted(url: str) -> str:
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


def _fields(flat: Any) -> dict[bytes, bytes]:
    if isinstance(flat, dict):
        return flat
    return {flat[i]: flat[i + 1] for i in range(0, len(flat) - 1, 2)}


async def _aw(value: Any) -> Any:
    """redis-py types some async commands as ``Awaitable[T] | T``; they are awaitables."""
    if inspect.isawaitable(value):
        return await value
    return value


def _base(value: bytes | None) -> int:
    """Deliveries an entry had before it was requeued (its ``a`` field); whatever
    else is stored there (poison written straight into Redis) counts as none,
    as claim.lua's ``tonumber(...) or 0`` does."""
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def _entry_key(entry_id: str) -> tuple[tuple[int, int], str]:
    """A stream entry id with the key it sorts by (ids are ``ms-seq``); an id that
    is not one sorts first and will simply not be found."""
    ms, _, seq = entry_id.partition("-")
    try:
        return (int(ms), int(seq or 0)), entry_id
    except ValueError:
        return (0, 0), "0-0"


def _server_ms(t: Sequence[Any]) -> int:
    return int(t[0]) * 1000 + int(t[1]) // 1000


class RedisQueue(Queue):
    def __init__(
        self,
        url: str,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        connect_timeout: float = 5.0,
        socket_timeout: float = 15.0,
        client_factory: Callable[[], aioredis.Redis] | None = None,
    ) -> None:
        super().__init__()
        self.url = url
        self.keys = Keys(namespace)

        def default_client() -> aioredis.Redis:
            client: aioredis.Redis = aioredis.Redis.from_url(
                url,
                decode_responses=False,
                socket_connect_timeout=connect_timeout,
                socket_timeout=socket_timeout,
                retry=Retry(NoBackoff(), 0),
                health_check_interval=30,
            )
            return client

        self._client_factory = client_factory or default_client
        self._own_client = client_factory is None
        self._r = self._client_factory()
        # Single enqueues go over a lean multiplexed connection: one XADD per job
        # costs about half of what redis-py's asyncio command path does.
        self._fast = (
            resp.Client(url, connect_timeout=connect_timeout, timeout=socket_timeout)
            if client_factory is None
            else None
        )
        self._scripts: dict[str, AsyncScript] = {name: self._r.register_script(_load(name)) for name in _SCRIPTS}
        self._lean_scripts = {name: resp.Script(_load(name)) for name in _SCRIPTS}
        # Blocking reads get their own lean connection (a blocked XREADGROUP
        # would hold up every command queued behind it on a shared one).
        self._fetcher = self._fast.dedicated() if self._fast is not None else None
        self._socket_timeout = socket_timeout
        self._connect_timeout = connect_timeout
        self._known_types: set[str] = set()
        self._fetch_turn = 0  # the type a fetch starts with, in turn
        # In-flight rows' entries as decoded once, by type and entry id (console reads).
        self._seen_entries: dict[str, dict[bytes, _Seen]] = {}
        self._groups_ready: set[str] = set()

    def clone(self) -> RedisQueue:
        # A clone of a queue on its own connections gets its own, lean ones included.
        q = RedisQueue(
            self.url,
            self.keys.namespace,
            connect_timeout=self._connect_timeout,
            socket_timeout=self._socket_timeout,
            client_factory=None if self._own_client else self._client_factory,
        )
        q._args_types = dict(self._args_types)
        return q

    def _lease_keeper_settings(self) -> dict[str, Any] | None:
        if not self._own_client:
            return None  # e.g. fakeredis: nothing another process could reach
        return {"url": self.url, "workers": self.keys.workers, "leases": self.keys.leases}

    def __repr__(self) -> str:
        return f"RedisQueue({_redacted(self.url)!r})"

    @property
    def redis(self) -> aioredis.Redis:
        """The underlying client (tests and tools; not part of the queue contract)."""
        return self._r

    async def _call(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            return await fn()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise ConnectionFailed(f"{what}: Redis at {_redacted(self.url)} is unreachable ({exc})") from None
        except (RedisError, resp.RespError) as exc:
            raise JobcoreError(f"{what}: Redis error: {exc}") from None

    async def _run_scripts(self, calls: list[tuple[str, list[Any], list[Any]]]) -> list[Any]:
        """Call scripts in one round trip: on the lean connection when there is
        one, else through redis-py (fakeredis)."""
        if self._fast is not None:
            return await self._fast.run_scripts([(self._lean_scripts[n], k, a) for n, k, a in calls])

        def build(pipe: Pipeline) -> None:
            for name, keys, args in calls:
                self._evalsha(pipe, name, keys, args)

        return await self._scripted(build)

    async def _scripted(self, build: Callable[[Pipeline], None], raise_on_error: bool = True) -> list[Any]:
        """Run a pipeline whose scripts are called by sha (redis-py would first ask
        SCRIPT EXISTS on every pipeline); load them once if Redis lost them. Only
        pipelines that are safe to send twice when every script was missing use this."""
        for attempt in (1, 2):
            async with self._r.pipeline(transaction=False) as pipe:
                build(pipe)
                try:
                    res: list[Any] = await pipe.execute(raise_on_error=raise_on_error)
                except NoScriptError:
                    if attempt == 2:
                        raise
                    await self._load_scripts()
                    continue
            if attempt == 1 and any(isinstance(r, NoScriptError) for r in res):
                await self._load_scripts()
                continue
            return res
        raise AssertionError("unreachable")

    def _evalsha(self, pipe: Pipeline, name: str, keys: Sequence[Any], args: Sequence[Any]) -> None:
        pipe.evalsha(self._scripts[name].sha, len(keys), *keys, *args)

    async def _load_scripts(self) -> None:
        async with self._r.pipeline(transaction=False) as pipe:
            for script in self._scripts.values():
                pipe.script_load(script.script)
            await pipe.execute()

    def _type_keys(self, job_type: str) -> list[str]:
        return list(_read_keys(self.keys, job_type))

    # ---- writes -----------------------------------------------------------

    async def _add(self, job_type: str, payloads: list[bytes]) -> None:
        if job_type in self._known_types and len(payloads) == 1:
            stream = self.keys.of_type(job_type).stream
            try:
                if self._fast is not None:
                    await self._fast.call("XADD", stream, "*", "d", payloads[0])
                else:
                    await self._r.xadd(stream, {b"d": payloads[0]})
            except Exception as exc:
                raise self._enqueue_error("job", exc) from None
            return
        await self._add_many({job_type: payloads})

    async def _add_many(self, by_type: dict[str, list[bytes]]) -> None:
        n = sum(len(p) for p in by_type.values())
        new = [t for t in by_type if t not in self._known_types]
        calls: list[tuple[str, list[Any], list[Any]]] = []
        for job_type, payloads in by_type.items():
            stream = self.keys.of_type(job_type).stream
            for i in range(0, len(payloads), ADD_CHUNK):
                calls.append(("add", [stream], payloads[i : i + ADD_CHUNK]))
        try:
            if new:
                if self._fast is not None:
                    await self._fast.call("SADD", self.keys.types, *new)
                else:
                    await _aw(self._r.sadd(self.keys.types, *new))
            await self._run_scripts(calls)
        except Exception as exc:
            raise self._enqueue_error(f"{n} job(s)", exc) from None
        self._known_types.update(by_type)

    def _enqueue_error(self, what: str, exc: Exception) -> Exception:
        """What to raise for a failed write: whether jobs may have landed (a lost
        connection cannot tell, an error reply can). Anything else is a bug: as is."""
        if isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError)):  # resp's connection errors too
            return EnqueueError(
                f"{what} not enqueued (or not confirmed): Redis at {_redacted(self.url)} is unreachable ({exc})"
            )
        if isinstance(exc, (RedisError, resp.RespError)):
            if str(exc).startswith("LOADING"):  # restarting: nothing was written
                return EnqueueError(
                    f"{what} not enqueued: Redis at {_redacted(self.url)} is unreachable while it loads ({exc})"
                )
            return EnqueueError(f"{what} not enqueued: Redis error: {exc}")
        return exc

    async def add_raw(self, job_type: str, fields: dict[bytes, bytes]) -> str:
        """Store an entry exactly as given (tests use it to plant poison data)."""
        await _aw(self._r.sadd(self.keys.types, job_type))
        entry = await self._r.xadd(self.keys.of_type(job_type).stream, fields)  # type: ignore[arg-type]
        return _s(entry)

    async def register_types(self, schemas: dict[str, dict[str, Any]]) -> None:
        async def run() -> None:
            async with self._r.pipeline(transaction=False) as pipe:
                pipe.sadd(self.keys.types, *schemas)
                pipe.hset(
                    self.keys.schemas,
                    mapping={t: json.dumps(s, sort_keys=True) for t, s in schemas.items()},
                )
                for job_type in schemas:
                    pipe.xgroup_create(self.keys.of_type(job_type).stream, GROUP, id="0", mkstream=True)
                results = await pipe.execute(raise_on_error=False)
            for res in results:
                if isinstance(res, ResponseError) and "BUSYGROUP" not in str(res):
                    raise res
                if isinstance(res, Exception) and not isinstance(res, ResponseError):
                    raise res

        if schemas:
            await self._call("register types", run)
            self._known_types.update(schemas)
            self._groups_ready.update(schemas)

    async def fetch(self, consumer: str, types: Sequence[str], count: int, block_ms: int) -> list[Delivery]:
        """Up to ``count`` new jobs across ``types``, taking turns between them
        (fetch.lua: XREADGROUP's COUNT applies to every stream it reads). With none
        waiting, block up to ``block_ms`` for the next: one per type at most."""
        streams = [self.keys.of_type(t).stream for t in types]
        self._fetch_turn = (self._fetch_turn + 1) % len(streams)
        take = ("fetch", streams, [GROUP, consumer, count, self._fetch_turn + 1])
        (taken,) = await self._fetch_call(types, lambda: self._run_scripts([take]))
        pairs = [(types[int(i) - 1], entries) for i, entries in taken]
        if not pairs and block_ms > 0:
            pairs = await self._fetch_call(types, lambda: self._wait_for_jobs(consumer, types, streams, block_ms))
        out: list[Delivery] = []
        for job_type, entries in pairs:
            for entry_id, fields in entries:
                if type(fields) is list and len(fields) == 2 and fields[0] == b"d":
                    out.append(Delivery(job_type, entry_id.decode(), fields[1], 1))  # the usual entry
                    continue
                f = _fields(fields) if fields is not None else {}
                out.append(Delivery(job_type, _s(entry_id), f.get(b"d"), _base(f.get(b"a")) + 1))
        return out

    async def _fetch_call(self, types: Sequence[str], run: Callable[[], Awaitable[T]]) -> T:
        """``run``, creating the consumer group first if a type has none yet."""
        try:
            return await self._call("fetch", run)
        except JobcoreError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.register_types({t: {} for t in types if t not in self._groups_ready})
            return await self._call("fetch", run)

    async def _wait_for_jobs(
        self, consumer: str, types: Sequence[str], streams: list[str], block_ms: int
    ) -> list[tuple[str, Any]]:
        """A blocking XREADGROUP on the fetch connection, one entry per stream."""
        if self._fetcher is not None:
            # A blocked read answers within block_ms; only then does the socket timeout start.
            wait = self._socket_timeout + block_ms / 1000
            command: list[resp.Arg] = ["XREADGROUP", "GROUP", GROUP, consumer, "COUNT", 1, "BLOCK", block_ms, "STREAMS"]
            reply = await self._fetcher.call(*command, *streams, *([">"] * len(streams)), timeout=wait)
        else:
            reply = await self._r.xreadgroup(GROUP, consumer, {s: ">" for s in streams}, count=1, block=block_ms)
        by_stream = {s.encode(): t for s, t in zip(streams, types, strict=True)}
        return [(by_stream[stream], entries) for stream, entries in reply or []]

    async def settle(self, consumer: str, outcomes: Sequence[Outcome]) -> list[str]:
        by_type: dict[str, list[Outcome]] = {}
        for o in outcomes:
            by_type.setdefault(o.job_type, []).append(o)
        calls: list[tuple[str, list[Any], list[Any]]] = []
        for job_type, group in by_type.items():
            ids = sorted((_entry_key(o.entry_id) for o in group), key=lambda k: k[0])
            args: list[Any] = [GROUP, consumer, FAILED_KEEP, ids[0][1], ids[-1][1]]
            for o in group:
                args += (o.kind, o.entry_id, o.attempt, o.text)
            calls.append(("settle", self._type_keys(job_type), args))
        results = await self._call("settle", lambda: self._run_scripts(calls))
        return [_s(i) for stale in results for i in stale]

    async def heartbeat(self, info: dict[str, Any], lease_ms: int) -> bool:
        record = json.dumps(dict(info, lease_ms=lease_ms), sort_keys=True)
        res = await self._call(
            "heartbeat",
            lambda: self._scripts["heartbeat"](
                keys=[self.keys.workers, self.keys.leases], args=[info["id"], record, lease_ms]
            ),
        )
        return bool(res)

    async def lost_workers(self) -> list[str]:
        res = await self._call("lost workers", lambda: self._scripts["lost"](keys=[self.keys.leases]))
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
        suspect_from: int = 2,
    ) -> tuple[list[Delivery], int]:
        limit = -1 if suspects is None else max(0, suspects)
        res = await self._call(
            "claim",
            lambda: self._scripts["claim"](
                keys=[self.keys.of_type(job_type).stream],
                args=[GROUP, consumer, owner, count, limit, suspect_from, *ids],
            ),
        )
        entries, left = res
        out = [Delivery(job_type, _s(e[0]), e[1] if e[1] is not None else None, int(e[2])) for e in entries]
        return out, int(left)

    async def owned(self, consumer: str, types: Sequence[str]) -> list[tuple[str, str]]:
        async def run() -> list[Any]:
            async with self._r.pipeline(transaction=False) as pipe:
                for t in types:
                    pipe.xpending_range(self.keys.of_type(t).stream, GROUP, "-", "+", 100_000, consumername=consumer)
                return await pipe.execute(raise_on_error=False)

        out: list[tuple[str, str]] = []
        for t, rows in zip(types, await self._call("owned", run), strict=True):
            if isinstance(rows, Exception):
                if isinstance(rows, ResponseError) and "NOGROUP" in str(rows):
                    continue
                raise ConnectionFailed(f"owned: {rows}")
            out.extend((t, _s(r["message_id"])) for r in rows)
        return out

    async def forget_worker(self, worker_id: str, types: Sequence[str], force: bool = False) -> None:
        if not force and await self.owned(worker_id, types):
            return
        if force:

            async def drop_consumers() -> None:
                async with self._r.pipeline(transaction=False) as pipe:
                    for t in types:
                        pipe.xgroup_delconsumer(self.keys.of_type(t).stream, GROUP, worker_id)
                    await pipe.execute(raise_on_error=False)

            await self._call("forget worker", drop_consumers)
        await self._call(
            "forget worker",
            lambda: self._scripts["forget"](
                keys=[self.keys.workers, self.keys.leases], args=[worker_id, "1" if force else "0"]
            ),
        )

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
        types, res = await self._read_replies(limit, with_stats=False)
        return await self._in_flight_rows(types, res[2:], _server_ms(res[0]), limit)

    async def _read(self, in_flight_limit: int) -> tuple[QueueStats, list[InFlightJob], list[WorkerInfo]]:
        """Stats (and, with a limit, in-flight rows) in one pipelined round trip;
        a second one only when types appeared that this client had not seen, or
        for the payloads of in-flight entries no earlier refresh has shown."""
        types, res = await self._read_replies(in_flight_limit, with_stats=True)
        now = _server_ms(res[0])
        n = len(types)
        workers = self._worker_infos(res[2], _score_pairs(res[3]), now)
        schemas = {_s(t) for t in res[4]}
        served: dict[str, int] = {}
        for w in workers:
            if w.state != "lost":
                for t in w.types:
                    served[t] = served.get(t, 0) + 1
        out: dict[str, TypeStats] = {}
        for t, row in zip(types, res[5 : 5 + n], strict=True):
            xlen, pel, oldest, counters, dead, failed_kept = row
            c = _fields(counters)
            age = None
            if oldest:
                age = max(0.0, (now - int(_s(oldest).split("-")[0])) / 1000)
            out[t] = TypeStats(
                job_type=t,
                pending=max(0, int(xlen) - int(pel)),
                in_flight=int(pel),
                processed=int(c.get(b"processed", 0)),
                failed=int(c.get(b"failed", 0)),
                dead=int(dead),
                failed_kept=int(failed_kept),
                oldest_pending_age=age,
                served_by=served.get(t, 0),
                has_schema=t in schemas,
            )
        live = sum(1 for w in workers if w.state != "lost")
        stats = QueueStats(types=out, workers=live, taken_at=datetime.fromtimestamp(now / 1000, tz=UTC))
        rows = await self._in_flight_rows(types, res[5 + n :], now, in_flight_limit) if in_flight_limit > 0 else []
        return stats, rows, workers

    async def _read_replies(self, in_flight_limit: int, *, with_stats: bool) -> tuple[list[str], list[Any]]:
        """The types and, in one round trip: server time, the type set, then (with
        stats) workers, leases, schemas and each type's stats script, then (with a
        limit) each type's first ``in_flight_limit`` pending-entry rows. Nothing
        here reads more than that, however long the queues."""
        k = self.keys

        def commands(types: list[str]) -> list[list[Any]]:
            cmds: list[list[Any]] = [["TIME"], ["SMEMBERS", k.types]]
            if with_stats:
                cmds += [["HGETALL", k.workers], ["ZRANGE", k.leases, 0, -1, "WITHSCORES"], ["HKEYS", k.schemas]]
                sha = self._scripts["stats"].sha
                cmds += [["EVALSHA", sha, 4, *_read_keys(k, t), GROUP] for t in types]
            if in_flight_limit > 0:
                cmds += [["XPENDING", _read_keys(k, t)[0], GROUP, "-", "+", in_flight_limit] for t in types]
            return cmds

        what = "stats" if with_stats else "in flight"
        types = sorted(self._known_types)
        res = await self._read_pipeline(what, commands(types))
        all_types = sorted(_s(t) for t in res[1])
        if set(all_types) - set(types):
            self._known_types.update(all_types)
            types = all_types
            res = await self._read_pipeline(what, commands(types))
        return types, res

    async def _read_pipeline(self, what: str, commands: list[list[Any]]) -> list[Any]:
        """Send read commands in one round trip, over the lean connection when there
        is one (a queue on fakeredis has none: redis-py then). Scripts go by sha
        and are loaded once if Redis lost them. A NOGROUP reply (no worker has
        read the type yet) reads as no rows; any other error reply raises."""
        fast = self._fast
        if fast is None:

            def build(pipe: Pipeline) -> None:
                for c in commands:
                    if c[0] == "XPENDING":  # redis-py parses the range form only when told
                        pipe.execute_command(*c, parse_detail=True)
                    else:
                        pipe.execute_command(*c)

            replies = await self._call(what, lambda: self._scripted(build, raise_on_error=False))
        else:

            async def run() -> list[Any]:
                replies = await fast.pipeline(commands, raise_on_error=False)
                if any(isinstance(r, resp.RespError) and str(r).startswith("NOSCRIPT") for r in replies):
                    await fast.pipeline([["SCRIPT", "LOAD", s.source] for s in self._lean_scripts.values()])
                    replies = await fast.pipeline(commands, raise_on_error=False)
                return replies

            try:
                replies = await self._call(what, run)
            except resp.RespError as exc:
                raise JobcoreError(f"{what}: Redis error: {exc}") from None
        for i, r in enumerate(replies):
            if isinstance(r, Exception):
                if "NOGROUP" not in str(r):
                    raise JobcoreError(f"{what}: Redis error: {r}")
                replies[i] = []
        return replies

    async def _in_flight_rows(self, types: list[str], per_type: list[Any], now: int, limit: int) -> list[InFlightJob]:
        """The ``limit`` longest-running jobs, from each type's pending-entry rows
        (entry id, worker, idle ms, deliveries). What a row shows of its entry is
        decoded once and kept while the entry stays in flight (it cannot change
        meanwhile), so a repeat refresh reads no payloads; entries no refresh
        has shown yet are read in one more round trip."""
        listed: dict[str, list[Any]] = {}
        for t, rows in zip(types, per_type, strict=True):
            if rows and isinstance(rows[0], dict):  # redis-py's parse
                rows = [(r["message_id"], r["consumer"], r["time_since_delivered"], r["times_delivered"]) for r in rows]
            if rows:
                listed[t] = rows
        shown = listed
        if sum(len(rows) for rows in listed.values()) > limit:
            # Only the longest-running: a stable sort keeps type, then entry order on ties.
            ranked = sorted(((r[2], t, r) for t, rows in listed.items() for r in rows), key=itemgetter(0), reverse=True)
            shown = {}
            for _, t, r in ranked[:limit]:
                shown.setdefault(t, []).append(r)
        missing: dict[str, list[bytes]] = {}
        for t, rows in shown.items():
            known = self._seen_entries.get(t, {})
            new = [r[0] for r in rows if r[0] not in known]
            if new:
                missing[t] = new
        if missing:
            await self._read_entries(missing)
        # From here on nothing awaits, so no other refresh changes the cache meanwhile.
        seen = self._seen_entries
        names: dict[bytes, str] = {}
        dates: dict[int, datetime] = {}
        out: list[InFlightJob] = []
        append = out.append
        for t, rows in shown.items():
            known = seen.get(t, {})
            for entry_id, consumer, idle, count in rows:
                s = known.get(entry_id)
                if s is None:
                    continue  # settled while this refresh read it
                started = now - idle
                if s.started_ms != started:
                    at = dates.get(started)
                    if at is None:
                        at = dates[started] = datetime.fromtimestamp(started / 1000, tz=UTC)
                    s.started_ms, s.started_at = started, at
                worker = names.get(consumer)
                if worker is None:
                    worker = names[consumer] = _s(consumer)
                append(InFlightJob(t, s.entry_id, worker, s.started_at, idle / 1000, count + s.base, *s.shown))
        out.sort(key=attrgetter("running_for"), reverse=True)  # stable, as above
        if sum(len(v) for v in seen.values()) > len(out):
            # Forget entries no longer in flight. A type's listing is its oldest
            # `limit` in flight: when it is full, entries past its last are unknown.
            for t in list(seen):
                rows = listed.get(t, [])
                keep = {r[0] for r in rows}
                last = _id_order(rows[-1][0]) if len(rows) >= limit else None
                left = {i: s for i, s in seen[t].items() if i in keep or (last is not None and _id_order(i) > last)}
                if left:
                    seen[t] = left
                else:
                    del seen[t]
        return out

    async def _read_entries(self, missing: dict[str, list[bytes]]) -> None:
        """Read and decode the entries of in-flight rows not seen before."""
        sha = self._scripts["in_flight"].sha
        calls: list[tuple[str, list[bytes]]] = []
        for t, ids in missing.items():
            for i in range(0, len(ids), IN_FLIGHT_CHUNK):
                calls.append((t, ids[i : i + IN_FLIGHT_CHUNK]))
        commands = [["EVALSHA", sha, 1, _read_keys(self.keys, t)[0], GROUP, *ids] for t, ids in calls]
        replies = await self._read_pipeline("in flight", commands)
        seen = self._seen_entries
        for (t, ids), entries in zip(calls, replies, strict=True):
            of_type = seen.setdefault(t, {})
            for entry_id, entry in zip(ids, entries, strict=True):
                if entry is None:
                    continue  # no longer in flight
                raw, base = entry
                # Decoded as the row shows it; only worker, times and attempt vary later.
                p = in_flight_job(t, _s(entry_id), "", 0, 0, raw or None, 0)
                shown = (p.job_id, p.account_id, p.account_number, p.org_id, p.reservation_id, p.args, p.error)
                of_type[entry_id] = _Seen(p.entry_id, _base(base), shown)

    @staticmethod
    def _worker_infos(records: Any, leases: Any, now: int) -> list[WorkerInfo]:
        deadline = {_s(w): int(score) for w, score in leases}
        out = []
        for wid, rec in _fields(records).items():
            try:
                data = json.loads(rec)
            except ValueError:
                data = {"id": _s(wid)}
            lease = deadline.get(_s(wid), 0)
            data.setdefault("heartbeat_ms", lease - int(data.get("lease_ms", 15000)))
            out.append(worker_info_from_record(data, lease, now))
        return sorted(out, key=lambda w: w.id)

    async def workers(self) -> list[WorkerInfo]:
        async def run() -> list[Any]:
            async with self._r.pipeline(transaction=False) as pipe:
                pipe.time()
                pipe.hgetall(self.keys.workers)
                pipe.zrange(self.keys.leases, 0, -1, withscores=True)
                return await pipe.execute()

        t, records, leases = await self._call("workers", run)
        return self._worker_infos(records, leases, _server_ms(t))

    async def job_types(self) -> list[str]:
        members: set[bytes] = await self._call("job types", lambda: _aw(self._r.smembers(self.keys.types)))
        types = sorted(_s(t) for t in members)
        self._known_types.update(types)
        return types

    async def schemas(self) -> dict[str, dict[str, Any]]:
        raw: dict[bytes, bytes] = await self._call("schemas", lambda: _aw(self._r.hgetall(self.keys.schemas)))
        out: dict[str, dict[str, Any]] = {}
        for t, s in raw.items():
            try:
                out[_s(t)] = json.loads(s)
            except ValueError:
                continue
        return out

    async def _list_bad(
        self, which: Literal["dead", "failed"], job_type: str | None, limit: int, before: str | None
    ) -> list[BadJob]:
        types = [job_type] if job_type else await self.job_types()

        def key(t: str) -> str:
            k = self.keys.of_type(t)
            return k.dead if which == "dead" else k.failed

        async def run() -> list[Any]:
            async with self._r.pipeline(transaction=False) as pipe:
                for t in types:
                    pipe.xrevrange(key(t), f"({before}" if before else "+", "-", count=limit)
                return await pipe.execute()

        rows = []
        for t, entries in zip(types, await self._call(which, run), strict=True):
            for entry_id, fields in entries:
                f = _fields(fields)
                rows.append(
                    make_bad_job(
                        t,
                        _s(entry_id),
                        _s(f.get(b"r", b"")),
                        f.get(b"d", b""),
                        int(f.get(b"n", 0)),
                        _s(f.get(b"w", b"")),
                    )
                )
        rows.sort(key=lambda r: tuple(int(x) for x in r.id.split("-")), reverse=True)
        return rows[:limit]

    async def dead(self, job_type: str | None = None, limit: int = 100, before: str | None = None) -> list[BadJob]:
        return await self._list_bad("dead", job_type, limit, before)

    async def failed(self, job_type: str | None = None, limit: int = 100, before: str | None = None) -> list[BadJob]:
        return await self._list_bad("failed", job_type, limit, before)

    def _bad_key(self, which: Literal["dead", "failed"], job_type: str) -> str:
        k = self.keys.of_type(job_type)
        return k.dead if which == "dead" else k.failed

    async def requeue(self, which: Literal["dead", "failed"], job_type: str, ids: Sequence[str] | None = None) -> int:
        keys = [self.keys.of_type(job_type).stream, self._bad_key(which, job_type)]
        if ids is not None:
            if not ids:
                return 0
            return int(await self._call("requeue", lambda: self._scripts["requeue"](keys=keys, args=list(ids))))
        total = 0
        while True:
            n = int(await self._call("requeue", lambda: self._scripts["requeue"](keys=keys, args=[])))
            total += n
            if n == 0:
                return total

    async def purge(self, which: Literal["dead", "failed"], job_type: str, ids: Sequence[str] | None = None) -> int:
        key = self._bad_key(which, job_type)
        if ids is not None:
            if not ids:
                return 0
            return int(await self._call("purge", lambda: self._r.xdel(key, *ids)))

        async def run() -> list[Any]:
            async with self._r.pipeline(transaction=True) as pipe:
                pipe.xlen(key)
                pipe.delete(key)
                return await pipe.execute()

        n, _ = await self._call("purge", run)
        return int(n)

    async def ping(self) -> None:
        await self._call("ping", self._r.ping)

    async def server_version(self) -> str:
        info = await self._call("server info", lambda: self._r.info("server"))
        return str(info.get("redis_version", "?"))

    async def close(self) -> None:
        if self._fast is not None:
            await self._fast.close()
        if self._fetcher is not None:
            await self._fetcher.close()
        await self._r.aclose()


# ---- read-side helpers ------------------------------------------------------

IN_FLIGHT_CHUNK = 200  # entries read per script call: keeps each call short for Redis
_NEVER = datetime.fromtimestamp(0, tz=UTC)


@dataclass(slots=True)
class _Seen:
    """What an in-flight row shows of its stream entry, decoded once. An entry
    cannot change while it is in flight (a release re-adds the job under a new
    id), so later refreshes read only who holds it, how long and how often."""

    entry_id: str
    base: int  # deliveries before the job was requeued (the entry's ``a`` field)
    shown: tuple[Any, ...]  # InFlightJob's fields from job_id on
    started_ms: int = -1  # the last started_at, kept: most refreshes compute the same
    started_at: datetime = _NEVER


@functools.lru_cache(maxsize=4096)
def _read_keys(keys: Keys, job_type: str) -> tuple[str, str, str, str]:
    """A type's stream, stats, dead and failed keys (as _type_keys), built once."""
    k = keys.of_type(job_type)
    return k.stream, k.stats, k.dead, k.failed


def _id_order(entry_id: bytes) -> tuple[int, int]:
    """A stream entry id (``ms-seq``) as what it sorts by."""
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or 0)


def _score_pairs(flat: Any) -> list[tuple[Any, float]]:
    """ZRANGE ... WITHSCORES as (member, score) pairs, from either client's reply."""
    if flat and isinstance(flat[0], (tuple, list)):
        return [(m, float(s)) for m, s in flat]
    return [(flat[i], float(flat[i + 1])) for i in range(0, len(flat) - 1, 2)]
