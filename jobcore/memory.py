"""In-process backend with the same contract as Redis: for development and tests.

It keeps the same structure as the Redis backend (a stream of entries per type,
a pending-entries list of in-flight jobs per consumer, dead and failed sets) so
the two behave alike, including encoding every payload to bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from jobcore.errors import ConnectionFailed, WorkerIdTaken
from jobcore.fair import FairBook, FairInfo
from jobcore.keys import entry_order, lanes, split_lane
from jobcore.limits import CANCEL_VERDICT_TTL_MS
from jobcore.memory_audit import MemoryAudit
from jobcore.memory_waiting import MemoryWaiting
from jobcore.ops.history import MINUTE_MS, TIMED, MinuteTable, runs_arg, window
from jobcore.queue import Queue
from jobcore.records import (
    BadJob,
    Delivery,
    InFlightJob,
    Lease,
    Outcome,
    QueueStats,
    Stale,
    TypeCounts,
    WorkerInfo,
    build_stats,
    in_flight_job,
    make_bad_job,
)
from jobcore.workerinfo import worker_info_from_record


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True)
class _Held:
    consumer: str
    delivered_ms: int
    count: int


@dataclass(slots=True)
class _Bad:
    reason: str
    raw: bytes
    attempt: int
    worker: str


@dataclass(slots=True)
class _Type:
    data: dict[str, tuple[bytes | None, int]] = field(default_factory=dict)  # id -> (raw, base)
    waiting: deque[str] = field(default_factory=deque)  # never delivered, FIFO
    pel: dict[str, _Held] = field(default_factory=dict)
    processed: int = 0
    failed_total: int = 0
    failures: int = 0  # failed runs ever (stats' failures)
    dead: OrderedDict[str, _Bad] = field(default_factory=OrderedDict)
    failed: OrderedDict[str, _Bad] = field(default_factory=OrderedDict)
    paused: bool = False
    book: FairBook = field(default_factory=FairBook)  # fairness across accounts: what its fair keys hold on Redis
    once: dict[str, tuple[str, int]] = field(default_factory=dict)  # enqueue-once field -> (job id, lapse ms)


class MemoryQueue(MemoryWaiting, MemoryAudit, Queue):
    def __init__(self, url: str = "memory://") -> None:
        super().__init__()
        self.url = url
        self._types: dict[str, _Type] = {}
        self._fetch_turn = 0  # the type a fetch starts with, in turn
        self._schemas: dict[str, dict[str, Any]] = {}
        self._partitions: dict[str, int] = {}
        self._workers: dict[str, dict[str, Any]] = {}
        self._leases: dict[str, int] = {}
        self._last_ms = 0
        self._seq = 0
        self._cond: asyncio.Condition | None = None
        self._closed = False
        self._history: dict[str, MinuteTable] = {}  # by type: what each type's history hash holds on Redis
        self._cancels: dict[str, list[tuple[str, str, str]]] = {}  # worker id -> cancel requests
        self._answers: dict[tuple[str, str, str], tuple[str, int]] = {}  # cancel request -> (answer, expiry ms)

    # ---- helpers ----------------------------------------------------------

    def _type(self, job_type: str) -> _Type:
        t = self._types.get(job_type)
        if t is None:
            t = self._types[job_type] = _Type()
        return t

    def _next_id(self) -> str:
        ms = _now_ms()
        if ms <= self._last_ms:
            ms = self._last_ms
            self._seq += 1
        else:
            self._last_ms, self._seq = ms, 0
        return f"{ms}-{self._seq}"

    def _condition(self) -> asyncio.Condition:
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    async def _wake(self) -> None:
        cond = self._condition()
        async with cond:
            cond.notify_all()

    def _append(self, job_type: str, raw: bytes | None, base: int) -> str:
        t = self._type(job_type)
        entry_id = self._next_id()
        t.data[entry_id] = (raw, base)
        t.waiting.append(entry_id)
        return entry_id

    def _check_open(self) -> None:
        if self._closed:
            raise ConnectionFailed("the memory queue is closed")

    # ---- writes -----------------------------------------------------------

    async def _add(self, job_type: str, payloads: list[bytes]) -> None:
        await self._add_many({job_type: payloads})

    async def _add_many(self, by_type: dict[str, list[bytes]]) -> None:
        self._check_open()
        for name, payloads in by_type.items():
            job_type = split_lane(name)[0]  # one queue per type, whatever its partitions
            for raw in payloads:
                self._append(job_type, raw, 0)
        await self._wake()

    async def _partition_lanes(self, job_types: Sequence[str], declared: dict[str, int]) -> dict[str, tuple[str, ...]]:
        self._check_open()
        for job_type, n in declared.items():
            self._partitions[job_type] = max(n, self._partitions.get(job_type, 1))
        return {t: tuple(lanes(t, self._partitions.get(t, 1))) for t in {*job_types, *declared}}

    def add_raw(self, job_type: str, raw: bytes | None) -> str:
        """Store bytes as they are (tests use it to plant corrupt payloads)."""
        return self._append(job_type, raw, 0)

    async def register_types(self, schemas: dict[str, dict[str, Any]]) -> None:
        self._check_open()
        for job_type, schema in schemas.items():
            self._type(job_type)
            self._schemas[job_type] = schema

    async def fetch(self, consumer: str, types: Sequence[str], count: int, block_ms: int) -> list[Delivery]:
        self._check_open()
        deadline = time.monotonic() + block_ms / 1000
        cond = self._condition()
        async with cond:
            while True:
                out = self._take(consumer, types, count)
                remaining = deadline - time.monotonic()
                if out or block_ms <= 0 or remaining <= 0 or self._closed:
                    return out
                try:
                    await asyncio.wait_for(cond.wait(), remaining)
                except TimeoutError:
                    return self._take(consumer, types, count)

    def _take(self, consumer: str, types: Sequence[str], count: int) -> list[Delivery]:
        out: list[Delivery] = []
        now = _now_ms()
        if not types:
            return out
        self._fetch_turn = (self._fetch_turn + 1) % len(types)
        for k in range(len(types)):
            left = count - len(out)
            if left <= 0:
                break
            job_type = types[(self._fetch_turn + k) % len(types)]
            t = self._types.get(job_type)
            if t is None or t.paused:
                continue
            for entry_id in t.book.take(t.waiting, t.data, left):
                raw, base = t.data[entry_id]
                t.pel[entry_id] = _Held(consumer, now, 1)
                out.append(Delivery(job_type, entry_id, raw, base + 1))
        return out

    async def settle(self, consumer: str, outcomes: Sequence[Outcome]) -> list[Stale]:
        self._check_open()
        stale: list[Stale] = []
        released = False
        for o in outcomes:
            t = self._types.get(o.job_type)
            held = t.pel.get(o.entry_id) if t else None
            if t is None or held is None or held.consumer != consumer:
                stale.append(Stale(o.entry_id, held.consumer if held else None))
                self._answer(o, "moved", overwrite=True)
                continue
            self._answer(o, o.verdict, overwrite=True)  # in the same step as the settle, as settle.lua does
            del t.pel[o.entry_id]
            if t.book.settled(o.entry_id):
                released = True  # a slot back: wake a waiting fetch
            raw, base = t.data.pop(o.entry_id, (None, 0))
            if o.kind == "ack":
                t.processed += 1
            elif o.kind == "fail":
                t.failed_total += 1
                t.failures += 1
                t.failed[self._next_id()] = _Bad(o.text, raw or b"", o.attempt, consumer)
                if len(t.failed) > self.failed_keep:
                    self._failed_list_full(o.job_type)
                while len(t.failed) > self.failed_keep:
                    t.failed.popitem(last=False)
            elif o.kind == "dead":
                t.dead[self._next_id()] = _Bad(o.text, raw or b"", o.attempt, consumer)
            else:  # release: back to the queue, this delivery not counted
                done = o.attempt - 1 if o.attempt > 0 else base + held.count - 1
                self._append(o.job_type, raw, max(0, done))
                released = True
        if released:
            await self._wake()
        self._add_history(outcomes, stale)
        return stale

    def _add_history(self, outcomes: Sequence[Outcome], stale: Sequence[Stale]) -> None:
        """What settle.lua adds to each type's history: the outcomes settled, and
        the run time of every job that ran (a stale one's too)."""
        not_settled = {s.entry_id for s in stale}
        by_type: dict[str, list[Outcome]] = {}
        for o in outcomes:
            if o.job_type in self._types:
                by_type.setdefault(o.job_type, []).append(o)
        minute = _now_ms() // MINUTE_MS
        for job_type, done in by_type.items():
            kinds = [o.kind for o in done if o.entry_id not in not_settled]
            table = self._history.setdefault(job_type, MinuteTable({}))
            runs = runs_arg(o.took for o in done if o.kind in TIMED)
            table.add(minute, kinds.count("ack"), kinds.count("fail"), kinds.count("dead"), runs)

    async def heartbeat(self, info: dict[str, Any], lease_ms: int) -> Lease:
        self._check_open()
        now = _now_ms()
        wid = str(info["id"])
        previous = self._leases.get(wid)
        other = self._workers.get(wid, {}).get("instance")
        if previous is not None and previous >= now and other and info.get("instance") not in (None, "", other):
            raise WorkerIdTaken(f"another worker with id {wid!r} is alive (its lease runs {previous - now} ms more)")
        record = dict(info, heartbeat_ms=now, lease_ms=lease_ms)
        self._workers[wid] = record
        self._leases[wid] = now + lease_ms
        if previous is None:
            return Lease.NEW
        return Lease.HELD if previous >= now else Lease.LAPSED

    async def lost_workers(self) -> list[str]:
        now = _now_ms()
        return [w for w, deadline in self._leases.items() if deadline < now]

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
        self._check_open()
        t = self._types.get(job_type)
        if t is None or t.paused:
            return [], 0  # a paused type's jobs stay with the lost worker until resume
        step = 1 if died else 0
        if ids:
            chosen = [e for e in ids if e in t.pel and t.pel[e].consumer == owner][:count]
        else:
            chosen = []
            room = suspects
            for e in sorted((e for e, h in t.pel.items() if h.consumer == owner), key=entry_order):
                if len(chosen) >= count:
                    break
                if room is not None and t.pel[e].count + step - 1 >= suspect_deaths:
                    if room <= 0:
                        continue
                    room -= 1
                chosen.append(e)
        out: list[Delivery] = []
        now = _now_ms()
        for entry_id in chosen:
            held = t.pel[entry_id]
            held.consumer, held.delivered_ms, held.count = consumer, now, held.count + step
            raw, base = t.data.get(entry_id, (None, 0))
            out.append(Delivery(job_type, entry_id, raw, base + held.count, held.count - 1))
        left = sum(1 for h in t.pel.values() if h.consumer == owner)
        return out, left

    async def owned(self, consumer: str, types: Sequence[str]) -> list[tuple[str, str]]:
        self._check_open()
        return [
            (job_type, e)
            for job_type in types
            if (t := self._types.get(job_type)) is not None
            for e, h in t.pel.items()
            if h.consumer == consumer
        ]

    async def forget_worker(self, worker_id: str, types: Sequence[str], force: bool = False) -> None:
        if not force:
            for job_type in types:
                t = self._types.get(job_type)
                if t and any(h.consumer == worker_id for h in t.pel.values()):
                    return
            if self._leases.get(worker_id, 0) >= _now_ms():
                return  # it came back (or never left): it keeps its record, as on Redis
        self._workers.pop(worker_id, None)
        self._leases.pop(worker_id, None)

    # ---- reads ------------------------------------------------------------

    async def stats(self) -> QueueStats:
        self._check_open()
        now = _now_ms()
        counts = {
            job_type: TypeCounts(
                pending=len(t.waiting) + t.book.waiting(),
                in_flight=len(t.pel),
                oldest_ms=min((entry_order(i)[0] for i in t.book.heads(t.waiting)), default=None),
                processed=t.processed,
                failed=t.failed_total,
                dead=len(t.dead),
                failed_kept=len(t.failed),
                partitions=self._partitions.get(job_type, 1),
                paused=t.paused,
                fair=t.book.settings.on,
                accounts_waiting=len(t.book.queues),
                failures=t.failures,
            )
            for job_type, t in self._types.items()
        }
        return build_stats(counts, await self.workers(), self._schemas, now)

    async def in_flight(self, limit: int = 1000) -> list[InFlightJob]:
        self._check_open()
        now = _now_ms()
        rows = [
            in_flight_job(
                job_type,
                e,
                h.consumer,
                now - h.delivered_ms,
                t.data.get(e, (None, 0))[1] + h.count,
                t.data.get(e, (None, 0))[0],
                now,
            )
            for job_type, t in self._types.items()
            for e, h in t.pel.items()
        ]
        rows.sort(key=lambda r: r.running_for, reverse=True)
        return rows[:limit]

    async def workers(self) -> list[WorkerInfo]:
        self._check_open()
        now = _now_ms()
        return sorted(
            (worker_info_from_record(rec, self._leases.get(wid, 0), now) for wid, rec in self._workers.items()),
            key=lambda w: w.id,
        )

    async def job_types(self) -> list[str]:
        return sorted(self._types)

    async def schemas(self) -> dict[str, dict[str, Any]]:
        return dict(self._schemas)

    def _bad(self, which: Literal["dead", "failed"], job_type: str) -> OrderedDict[str, _Bad]:
        t = self._types.get(job_type) or _Type()  # a read makes no type
        return t.dead if which == "dead" else t.failed

    def _list_bad(
        self, which: Literal["dead", "failed"], job_type: str | None, limit: int, before: str | None
    ) -> list[BadJob]:
        types = [job_type] if job_type else sorted(self._types)
        rows = [
            make_bad_job(jt, bid, b.reason, b.raw, b.attempt, b.worker)
            for jt in types
            for bid, b in self._bad(which, jt).items()
            if before is None or entry_order(bid) < entry_order(before)
        ]
        rows.sort(key=lambda r: entry_order(r.id), reverse=True)
        return rows[:limit]

    async def dead(self, job_type: str | None = None, limit: int = 100, before: str | None = None) -> list[BadJob]:
        self._check_open()
        return self._list_bad("dead", job_type, limit, before)

    async def failed(self, job_type: str | None = None, limit: int = 100, before: str | None = None) -> list[BadJob]:
        self._check_open()
        return self._list_bad("failed", job_type, limit, before)

    async def _requeue(self, which: Literal["dead", "failed"], job_type: str, ids: Sequence[str] | None = None) -> int:
        self._check_open()
        ids = await self._bad_refs(which, job_type, ids)
        bad = self._bad(which, job_type)
        chosen = list(bad) if ids is None else [i for i in ids if i in bad]
        for bid in chosen:
            self._append(job_type, bad.pop(bid).raw, 0)
        self._uncount(which, job_type, len(chosen))
        if chosen:
            await self._wake()
        return len(chosen)

    async def _purge(self, which: Literal["dead", "failed"], job_type: str, ids: Sequence[str] | None = None) -> int:
        self._check_open()
        ids = await self._bad_refs(which, job_type, ids)
        bad = self._bad(which, job_type)
        chosen = list(bad) if ids is None else [i for i in ids if i in bad]
        for bid in chosen:
            del bad[bid]
        self._uncount(which, job_type, len(chosen))
        return len(chosen)

    def _uncount(self, which: Literal["dead", "failed"], job_type: str, n: int) -> None:
        """Failed jobs requeued or purged leave the failed counter, as requeue.lua and
        purge.lua do: it counts those held or dropped by the cap."""
        if which == "failed" and job_type in self._types:
            t = self._types[job_type]
            t.failed_total = max(0, t.failed_total - n)

    async def _history_read(
        self, job_types: Sequence[str] | None, minutes: int
    ) -> tuple[list[int], dict[str, list[dict[int, list[int]]]]]:
        self._check_open()
        span = window(_now_ms(), minutes)
        types = sorted(self._types) if job_types is None else list(job_types)
        stored = {t: [self._history[t].minutes] if t in self._history else [] for t in types}
        return span, stored

    async def ping(self) -> None:
        self._check_open()

    async def server_version(self) -> str:
        return "memory"

    async def close(self) -> None:
        self._closed = True
        if self._cond is not None:
            with contextlib.suppress(RuntimeError):  # loop already gone
                await self._wake()

    def __repr__(self) -> str:
        return f"MemoryQueue({json.dumps(self.url)})"

    # ---- operator controls: pause, cancel, find ---------------------------

    async def _set_paused(self, job_type: str, paused: bool) -> None:
        self._check_open()
        self._type(job_type).paused = paused
        if not paused:
            await self._wake()

    async def _fair_write(self, job_type: str, fields: dict[str, str]) -> None:
        self._check_open()
        self._type(job_type).book.configure(fields)
        await self._wake()

    async def _fair_read(self, job_type: str, top: int) -> FairInfo:
        self._check_open()
        return self._type(job_type).book.info(job_type, top)

    async def _request_cancel(self, worker: str, job_type: str, ref: str, request: str) -> bool:
        self._check_open()
        if self._leases.get(worker, 0) < _now_ms():
            return False
        self._cancels.setdefault(worker, []).extend([(job_type, ref, ""), (job_type, ref, request)])  # as on Redis
        return True

    async def cancel_requests(self, consumer: str) -> list[tuple[str, str, str]]:
        self._check_open()
        return self._cancels.pop(consumer, [])

    async def answer_cancel(self, job_type: str, ref: str, request: str, answer: str) -> None:
        self._check_open()
        self._answer(Outcome(job_type, ref, "ack", cancels=(request,)), answer, overwrite=False)

    async def _cancel_answer(self, job_type: str, ref: str, request: str) -> str | None:
        self._check_open()
        got = self._answers.get((job_type, ref, request))
        return got[0] if got and got[1] > _now_ms() else None

    def _answer(self, o: Outcome, answer: str, *, overwrite: bool) -> None:
        """Record the answer to each cancel ``o`` carries (expiring as on Redis)."""
        now = _now_ms()
        for request in o.cancels:
            key = (o.job_type, o.entry_id, request)
            if overwrite or key not in self._answers or self._answers[key][1] <= now:
                self._answers[key] = (answer, now + CANCEL_VERDICT_TTL_MS)
        if o.cancels:
            self._answers = {k: v for k, v in self._answers.items() if v[1] > now}
