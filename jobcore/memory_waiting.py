"""The memory backend's waiting jobs (find by id, ``Queue.pending``, deleting
them) and retiring a type: the same answers as on Redis, from its in-process book."""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Sequence
from typing import Any

from jobcore.errors import TypeInUse
from jobcore.keys import entry_order, split_lane


class MemoryWaiting:
    """Mixed into MemoryQueue: what it needs of it is below."""

    _types: dict[str, Any]  # job type -> memory._Type
    _schemas: dict[str, Any]
    _partitions: dict[str, int]
    _history: dict[str, Any]

    def _check_open(self) -> None:
        raise NotImplementedError

    def _append(self, job_type: str, raw: bytes | None, base: int) -> str:
        raise NotImplementedError

    def _type(self, job_type: str) -> Any:
        raise NotImplementedError

    async def _wake(self) -> None:
        raise NotImplementedError

    async def _add_keyed(self, by_lane: dict[str, list[tuple[str, str, bytes]]], ttl_ms: int) -> dict[str, list[str]]:
        self._check_open()
        now = int(time.time() * 1000)
        firsts: dict[str, list[str]] = {}
        for name, jobs in by_lane.items():
            job_type = split_lane(name)[0]  # one queue per type; a key's field names its account
            out = firsts[name] = []
            once = self._type(job_type).once
            while once and next(iter(once.values()))[1] <= now:  # lapsed keys, oldest first
                del once[next(iter(once))]
            for f, job_id, raw in jobs:
                held = once.get(f) if f else None
                if held is not None and held[1] > now:
                    out.append(held[0])
                    continue
                self._append(job_type, raw, 0)
                if f:
                    once.pop(f, None)  # to the end: the dict stays in lapse order
                    once[f] = (job_id, now + ttl_ms)
                out.append("")
        await self._wake()
        return firsts

    def _waiting_ids(self, job_type: str) -> list[str]:
        """A type's waiting entry ids, oldest first (as they sit in its stream on Redis)."""
        t = self._types.get(job_type)
        return sorted(t.book.pending(t.waiting), key=entry_order) if t else []

    async def _pending_by_id(
        self, job_id: uuid.UUID, job_types: Sequence[str], at_ms: int, skew_ms: int
    ) -> list[tuple[str, str, bytes]]:
        self._check_open()
        needle = job_id.bytes
        out = []
        for job_type in job_types:
            for entry_id in self._waiting_ids(job_type):
                raw = self._types[job_type].data[entry_id][0]
                # The same window as on Redis: an entry's id is the time it was added.
                if raw and needle in raw and abs(entry_order(entry_id)[0] - at_ms) <= skew_ms:
                    out.append((job_type, entry_id, raw))
        return out

    async def _waiting_window(
        self, job_type: str, after: str | None, count: int
    ) -> tuple[list[tuple[str, bytes | None]], str | None, int]:
        self._check_open()
        ids = self._waiting_ids(job_type)
        if after:
            ids = [i for i in ids if entry_order(i) > entry_order(after)]
        page = ids[:count]
        data = self._types[job_type].data if page else {}
        more = page[-1] if len(ids) > count else None
        return [(i, data[i][0]) for i in page], more, len(page)

    async def _delete_waiting(self, job_type: str, refs: Sequence[str]) -> int:
        self._check_open()
        t = self._types.get(job_type)
        if t is None:
            return 0
        # In flight: left to run; gone already: nothing to do.
        gone = {ref for ref in refs if ref in t.data and ref not in t.pel}
        if gone:
            t.waiting = deque(i for i in t.waiting if i not in gone)
            for account, q in t.book.queues.items():
                t.book.queues[account] = deque(i for i in q if i not in gone)  # emptied: leaves the ring at its turn
            for ref in gone:
                del t.data[ref]
        return len(gone)

    async def _remove_type(self, job_type: str) -> None:
        self._check_open()
        t = self._types.get(job_type)
        if t is not None and t.data:
            raise TypeInUse(f"type {job_type!r} was not removed: {len(t.data):,} of its jobs wait or run")
        for book in (self._types, self._schemas, self._partitions, self._history):
            book.pop(job_type, None)
