"""What operators read: stats, in-flight rows, the dashboard, workers, the dead
and failed lists, history and find. Every read is a fixed number of pipelined
round trips whose cost does not grow with queue length; the read scripts
(stats, in_flight, find_pending) go by EVALSHA_RO, so a read-only ACL user
reads the same way as everyone else."""

from __future__ import annotations

import functools
import json
import logging
import math
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from jobcore.display import printable
from jobcore.keys import GROUP, Keys, entry_order, lane, split_lane, split_ref, valid_lane
from jobcore.limits import MAX_PARTITIONS
from jobcore.ops.history import parse_minute, readable_minute, window
from jobcore.records import (
    BadJob,
    Dashboard,
    InFlightJob,
    QueueStats,
    TypeCounts,
    WorkerInfo,
    add_counts,
    build_stats,
    make_bad_job,
)
from jobcore.redis import replies as rep
from jobcore.redis import resp, scripts
from jobcore.redis.calls import checked_reads, first_error, guarded
from jobcore.redis.inflight import InFlightCache, base_attempts
from jobcore.redis.transport import Transport
from jobcore.routes import Routes
from jobcore.workerinfo import worker_info_from_record

FIND_CHUNK = 1000  # stream entries find_pending.lua looks at per call: keeps each call short
_NOT_RUN = ("NOSCRIPT", "ERR")  # a read script's call that did not run: the script lost, or EVALSHA_RO unknown
log = logging.getLogger("jobcore.queue")
IN_FLIGHT_CHUNK = 200  # entries read per script call: keeps each call short for Redis

History = tuple[list[int], dict[str, list[dict[int, list[int]]]]]


def lanes_from(job_type: str, stored: Any) -> tuple[str, ...]:
    """A type's lanes as stored (one name a line); a name that cannot be that
    partition's (corrupt data) reads as the partition's first candidate name."""
    names = rep.text(stored).split("\n")[:MAX_PARTITIONS] if stored else []
    return tuple(n if valid_lane(job_type, p, n) else lane(job_type, p) for p, n in enumerate(names)) or (job_type,)


MAX_COUNT_DIGITS = 15  # past this a stored count is not one jobcore wrote (and a float would lose it)


def stored_count(value: Any) -> int | None:
    """A counter as stored: a whole number jobcore could have written, or None
    (text, a float, a unicode digit, hundreds of digits: someone else's bytes)."""
    if value is None:
        return 0
    text = value.decode("ascii", errors="replace") if isinstance(value, bytes) else str(value)
    digits = text[1:] if text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()) or len(digits) > MAX_COUNT_DIGITS:
        return None
    return int(text)


def not_counts(key: str, values: dict[str, Any]) -> str | None:
    """The problem to show when some of ``values`` are not counts (each then reads 0)."""
    bad = [f"{name}={printable(rep.text(v)[:20])!r}" for name, v in values.items() if stored_count(v) is None]
    if not bad:
        return None
    return f"{key} holds values that are not a count ({', '.join(bad)}): read as 0"


_warned: set[str] = set()


def _warn_once(text: str) -> None:
    """Say once per process what a reader found that is not jobcore's (a console polls often)."""
    if text not in _warned:
        _warned.add(text)
        log.warning("%s", text)


def merged_lanes(job_type: str, own: Any, mirror: Any) -> tuple[str, ...]:
    """A type's lanes: its own record (``Keys.lanes``, in its slot), then those the
    namespace-wide hash (written by older versions too) lists past it."""
    mine = lanes_from(job_type, own) if own else ()
    other = lanes_from(job_type, mirror) if mirror else ()
    return mine + other[len(mine) :] or (job_type,)


def server_ms(t: Sequence[Any]) -> int:
    """TIME's reply in milliseconds."""
    return int(t[0]) * 1000 + int(t[1]) // 1000


@functools.lru_cache(maxsize=4096)
def type_keys(keys: Keys, job_type: str) -> tuple[str, str, str, str, str]:
    """A lane's stream, stats, dead, failed and history keys (settle.lua's KEYS), built once."""
    k = keys.of_type(job_type)
    return k.stream, k.stats, k.dead, k.failed, k.history


class Reader:
    """A queue's reads, and what they keep between refreshes: the types seen,
    the in-flight entries already decoded, whether the server runs read-only scripts."""

    def __init__(
        self,
        transport: Transport,
        keys: Keys,
        url: str,
        routes: Routes,
        lanes_of: Callable[[Sequence[str]], Awaitable[list[str]]],
    ) -> None:
        self._t = transport
        self._keys = keys
        self._url = url
        self._routes = routes
        self._lanes_of = lanes_of
        self.known_types: set[str] = set()  # every type this queue has seen (enqueue, reads)
        self._in_flight_cache = InFlightCache()  # what console reads decoded once
        self._read_only = True  # EVALSHA_RO; False once the server showed it has none

    # ---- stats, in flight, dashboard --------------------------------------------

    async def stats(self) -> QueueStats:
        stats, _, _ = await self._read(0)
        return stats

    async def dashboard(self, in_flight_limit: int) -> Dashboard:
        stats, rows, workers = await self._read(in_flight_limit)
        return Dashboard(stats, rows, workers)

    async def in_flight(self, limit: int) -> list[InFlightJob]:
        # The dashboard's round trip without the stats: time, types, pending rows.
        if limit <= 0:
            return []
        r = await self._read_replies(limit, with_stats=False)
        return await self._in_flight_rows(r.lanes, r.pending, r.now, limit)

    async def _read(self, in_flight_limit: int) -> tuple[QueueStats, list[InFlightJob], list[WorkerInfo]]:
        """Stats (and, with a limit, in-flight rows) in one round trip (per node,
        all nodes at once); a second one only when types appeared that this
        client had not seen, or for the payloads of in-flight entries no
        earlier refresh has shown."""
        r = await self._read_replies(in_flight_limit, with_stats=True)
        workers = worker_infos(r.workers, rep.score_pairs(r.leases), r.now)
        parts: dict[str, list[TypeCounts]] = {}
        for name, reply in zip(r.lanes, r.stats, strict=True):
            if isinstance(reply, Exception):
                problem = f"{self._keys.of_type(name).stream} or a key beside it is not what jobcore wrote ({reply})"
                parts.setdefault(split_lane(name)[0], []).append(TypeCounts(0, 0, None, 0, 0, 0, 0, problem=problem))
                continue
            xlen, pel, oldest, counters, dead, failed_kept, *more = reply
            c = rep.field_map(counters)
            got = {"processed": c.get(b"processed"), "failed": c.get(b"failed")}
            # Keys beside the stream of another type (a dead key holding a string): read as empty.
            wrong = [printable(rep.text(p)) for p in (more[0] if more else [])]
            fair, accounts = (int(more[1]) == 1, int(more[2])) if len(more) > 2 else (False, 0)
            found = "; ".join(filter(None, [*wrong, not_counts(self._keys.of_type(name).stats, got)])) or None
            parts.setdefault(split_lane(name)[0], []).append(
                TypeCounts(
                    pending=max(0, int(xlen) - int(pel)),
                    in_flight=int(pel),
                    oldest_ms=entry_order(oldest)[0] if oldest else None,
                    processed=stored_count(got["processed"]) or 0,
                    failed=stored_count(got["failed"]) or 0,
                    dead=int(dead),
                    failed_kept=int(failed_kept),
                    problem=found,
                    paused=b"paused" in c,
                    fair=fair,
                    accounts_waiting=accounts,
                    failures=stored_count(c.get(b"failures")) or 0,
                )
            )
        counts = {t: add_counts(p) for t, p in parts.items()}
        stats = build_stats(counts, workers, {rep.text(t) for t in r.schemas}, r.now)
        inflight = await self._in_flight_rows(r.lanes, r.pending, r.now, in_flight_limit) if in_flight_limit else []
        return stats, inflight, workers

    async def _read_replies(self, in_flight_limit: int, *, with_stats: bool) -> _Replies:
        """In one round trip: server time, the type set, the partition counts,
        then (with stats) workers, leases, schemas and each lane's stats script,
        then (with a limit) each lane's first ``in_flight_limit`` pending-entry
        rows. Nothing here reads more than that, however long the queues."""
        k = self._keys
        what = "stats" if with_stats else "in flight"

        def commands(names: list[str], types: list[str]) -> _Reads:
            reads = _Reads()
            reads.one("time", ["TIME"])
            reads.one("types", ["SMEMBERS", k.types])
            reads.one("partitions", ["HGETALL", k.partitions])
            reads.many("lanes", [["GET", k.lanes(t)] for t in types])  # each type's own record, in its slot
            if with_stats:
                reads.one("workers", ["HGETALL", k.workers])
                reads.one("leases", ["ZRANGE", k.leases, 0, -1, "WITHSCORES"])
                reads.one("schemas", ["HKEYS", k.schemas])
            if in_flight_limit > 0:
                limit = in_flight_limit
                reads.many("pending", [["XPENDING", type_keys(k, n)[0], GROUP, "-", "+", limit] for n in names])
            return reads

        def stats_calls(names: list[str]) -> Callable[[bool], list[scripts.Call]]:
            return lambda ro: [scripts.stats(*type_keys(k, n)[:4], k.fair(n), read_only=ro) for n in names]

        def lanes_now() -> list[str]:
            by_type = self._routes.by_type
            return [n for t in sorted(self.known_types) for n in by_type.get(t, (t,))]

        async def read(names: list[str], types: list[str]) -> dict[str, Any]:
            reads = commands(names, types)
            if not with_stats:
                return reads.named(await self._plain(what, reads.commands))
            plain, stats = await self._plain_and_scripts(what, reads.commands, stats_calls(names))
            return {**reads.named(plain), "stats": stats}

        # New types or lanes since this client last looked: read again with them
        # (a type first seen has its own lane record read the next time round).
        for _ in range(3):
            types = sorted(self.known_types)
            names = lanes_now()
            res = await read(names, types)
            all_types = {rep.text(t) for t in res["types"]}
            mirror = {rep.text(t): r for t, r in rep.pairs(res["partitions"])}
            stored = {t: merged_lanes(t, own, mirror.get(t)) for t, own in zip(types, res["lanes"], strict=True)}
            stored.update((t, lanes_from(t, r)) for t, r in mirror.items() if t not in stored)
            all_types.update(mirror)
            known = self._routes.lanes
            if not all_types - self.known_types and all(known(t)[: len(n)] == n for t, n in stored.items()):
                break
            self.known_types.update(all_types)
            self._routes.merge(stored)
        # A type gone from the type set (removed, or a flush) is shown no more: its
        # producer lists it again with its next enqueue, a worker when it starts.
        self.known_types.intersection_update(all_types)
        return _Replies(
            lanes=names,
            now=server_ms(res["time"]),
            workers=res.get("workers", []),
            leases=res.get("leases", []),
            schemas=res.get("schemas", []),
            stats=res.get("stats", []),
            pending=res.get("pending", []),
        )

    async def _plain(self, what: str, commands: list[list[Any]]) -> list[Any]:
        """Read commands in one round trip, by the read rule (calls.checked_reads)."""
        return checked_reads(what, await guarded(self._url, lambda: self._t.pipeline(commands, raise_on_error=False)))

    async def _plain_and_scripts(
        self, what: str, commands: list[list[Any]], make: Callable[[bool], list[scripts.Call]]
    ) -> tuple[list[Any], list[Any]]:
        """Read commands and read scripts in one pipeline (one round trip), by the
        read rule. A script call that did not run (NOSCRIPT: the server lost it;
        or EVALSHA_RO unknown) goes again through run_scripts, which loads it."""
        calls = make(self._read_only)
        n = len(commands)
        sent = [*commands, *(script.command(keys, args) for script, keys, args in calls)]
        replies = await guarded(self._url, lambda: self._t.pipeline(sent, raise_on_error=False))
        plain, scripted = replies[:n], replies[n:]
        if any(isinstance(r, resp.RespError) and r.code in _NOT_RUN for r in scripted):
            scripted = await guarded(self._url, lambda: self._run_scripts(make))
        return checked_reads(what, plain), checked_reads(what, scripted)

    async def read_scripts(self, what: str, make: Callable[[bool], list[scripts.Call]]) -> list[Any]:
        """Read scripts in one round trip, by the read rule (calls.checked_reads)."""
        return checked_reads(what, await guarded(self._url, lambda: self._run_scripts(make)))

    async def _run_scripts(self, make: Callable[[bool], list[scripts.Call]]) -> list[Any]:
        calls = make(self._read_only)
        if not calls:
            return []
        replies = await self._t.run_scripts(calls, raise_on_error=False)
        if self._read_only and any(rep.is_error(r, "ERR") for r in replies):
            # EVALSHA_RO unknown (fakeredis; Redis before 7.0): plain EVALSHA from now on.
            self._read_only = False
            replies = await self._t.run_scripts(make(False), raise_on_error=False)
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
        calls: list[tuple[str, list[bytes]]] = []
        for t, ids in missing.items():
            for i in range(0, len(ids), IN_FLIGHT_CHUNK):
                calls.append((t, ids[i : i + IN_FLIGHT_CHUNK]))
        k = self._keys
        replies = await self.read_scripts(
            "in flight", lambda ro: [scripts.in_flight(type_keys(k, t)[0], ids, read_only=ro) for t, ids in calls]
        )
        for (t, ids), entries in zip(calls, replies, strict=True):
            self._in_flight_cache.store(t, ids, entries)

    # ---- workers, types, schemas ------------------------------------------------

    async def workers(self) -> list[WorkerInfo]:
        cmds: list[list[resp.Arg]] = [
            ["TIME"],
            ["HGETALL", self._keys.workers],
            ["ZRANGE", self._keys.leases, 0, -1, "WITHSCORES"],
        ]
        t, records, leases = await guarded(self._url, lambda: self._t.pipeline(cmds))
        return worker_infos(records, rep.score_pairs(leases), server_ms(t))

    async def job_types(self) -> list[str]:
        members = await guarded(self._url, lambda: self._t.call("SMEMBERS", self._keys.types))
        types = sorted(rep.text(t) for t in members)
        self.known_types.update(types)
        return types

    async def schemas(self) -> dict[str, dict[str, Any]]:
        raw = await guarded(self._url, lambda: self._t.call("HGETALL", self._keys.schemas))
        out: dict[str, dict[str, Any]] = {}
        for t, sch in rep.pairs(raw):
            try:
                out[rep.text(t)] = json.loads(sch)
            except ValueError:
                continue
        return out

    # ---- dead and failed lists, history -------------------------------------------

    async def bad(
        self, which: Literal["dead", "failed"], job_type: str | None, limit: int, before: str | None
    ) -> list[BadJob]:
        """The dead or failed list (of ``job_type``, or every type), newest first."""
        types = [job_type] if job_type else await self.job_types()
        names = await guarded(self._url, lambda: self._lanes_of(types))
        start = f"({split_ref(before)[0]}" if before else "+"
        cmds: list[list[resp.Arg]] = [
            ["XREVRANGE", bad_key(self._keys, which, n), start, "-", "COUNT", limit] for n in names
        ]
        rows = []
        for name, entries in zip(names, await guarded(self._url, lambda: self._t.pipeline(cmds)), strict=True):
            t, suffix = split_lane(name)
            for entry_id, fields in entries:
                f = rep.field_map(fields or [])
                rows.append(
                    make_bad_job(
                        t,
                        rep.text(entry_id) + suffix,
                        rep.text(f.get(b"r", b"")),
                        f.get(b"d", b""),
                        base_attempts(f.get(b"n")),
                        rep.text(f.get(b"w", b"")),
                        {rep.text(k[2:]): rep.text(v) for k, v in f.items() if k.startswith(b"o.")},
                    )
                )
        rows.sort(key=lambda r: entry_order(r.id), reverse=True)
        return rows[:limit]

    async def history(self, job_types: Sequence[str] | None, minutes: int) -> History:
        async def run() -> History:
            t, members = await self._t.pipeline([["TIME"], ["SMEMBERS", self._keys.types]])
            types = sorted({rep.text(m) for m in members}) if job_types is None else list(job_types)
            span = window(server_ms(t), minutes)
            names = await self._lanes_of(types) if types else []
            fields = [str(m) for m in span]
            cmds: list[list[resp.Arg]] = [["HMGET", type_keys(self._keys, n)[4], *fields] for n in names]
            replies = await self._t.pipeline(cmds, raise_on_error=False) if cmds else []
            error = first_error(replies, ("WRONGTYPE",))
            if error is not None:
                raise error
            stored: dict[str, list[dict[int, list[int]]]] = {t: [] for t in types}
            for name, values in zip(names, replies, strict=True):
                if isinstance(values, Exception):
                    continue  # not a hash of ours (corrupt data): no history for that partition
                got = {m: parse_minute(v) for m, v in zip(span, values, strict=True) if v is not None}
                if not all(readable_minute(v) for v in values if v is not None):
                    _warn_once(f"{type_keys(self._keys, name)[4]} holds values that are not counts: read as 0")
                stored[split_lane(name)[0]].append(got)
            return span, stored

        return await guarded(self._url, run)

    # ---- find -------------------------------------------------------------------

    async def pending_by_id(
        self, job_id: uuid.UUID, job_types: Sequence[str], at_ms: int, skew_ms: int
    ) -> list[tuple[str, str, bytes]]:
        names = await guarded(self._url, lambda: self._lanes_of(job_types))
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
                    out += [(job_type, rep.text(e) + suffix, d) for e, d in found]
                    if more:
                        nxt[name] = f"({rep.text(more)}"
                todo = nxt
            if out:
                break
        return out

    async def cancel_answer(self, job_type: str, ref: str, request: str) -> str | None:
        """The answer a worker recorded to cancel ``request`` of job ``ref`` (ops cancel waits for it)."""
        key = await self.answer_key(job_type, ref, request)
        got = await guarded(self._url, lambda: self._t.call("GET", key))
        return None if got is None else rep.text(got)

    async def answer_key(self, job_type: str, ref: str, request: str) -> str:
        """Where the answer to cancel ``request`` of job ``ref`` is kept: in the job's lane slot."""
        names = await guarded(self._url, lambda: self._lanes_of([job_type]))
        p = split_ref(ref)[1]
        return self._keys.cancel_verdict(names[p] if p < len(names) else self._routes.lane(job_type, p), request)

    async def _find_chunks(self, starts: dict[str, str], end: str, needle: bytes) -> list[Any]:
        """find_pending.lua's replies for each lane from its start."""
        k = self._keys

        def make(ro: bool) -> list[scripts.Call]:
            return [
                scripts.find_pending(k.of_type(n).stream, start, end, FIND_CHUNK, needle, read_only=ro)
                for n, start in starts.items()
            ]

        async def run() -> list[Any]:
            replies = await self._run_scripts(make)
            error = first_error(replies)
            if error is not None:
                raise error
            return replies

        return await guarded(self._url, run)


def bad_key(keys: Keys, which: Literal["dead", "failed"], job_type: str) -> str:
    k = keys.of_type(job_type)
    return k.dead if which == "dead" else k.failed


def worker_infos(records: Any, leases: list[tuple[Any, float]], now: int) -> list[WorkerInfo]:
    deadline = {rep.text(w): int(score) if math.isfinite(score) else 0 for w, score in leases}
    out = []
    for wid, rec in rep.field_map(records).items():
        try:
            data = json.loads(rec)
        except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
            data = None
        if not isinstance(data, dict):
            data = {"id": rep.text(wid)}  # not a record of ours: listed by its id alone
        data.setdefault("id", rep.text(wid))
        out.append(worker_info_from_record(data, deadline.get(rep.text(wid), 0), now))
    return sorted(out, key=lambda w: w.id)


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
