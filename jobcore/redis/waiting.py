"""Waiting jobs on Redis (``Queue.pending``): a type's stream entries not in
flight, oldest first across its partitions, read a stretch at a time on the
server (waiting.lua), so a page costs what it shows plus the jobs in flight
between them, never the queue's length."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from jobcore.keys import Keys, entry_order, split_lane, split_ref
from jobcore.redis import replies as rep
from jobcore.redis import scripts
from jobcore.redis.calls import guarded
from jobcore.redis.reads import Reader
from jobcore.redis.transport import Transport

DELETE_STEP = 1_000  # entry ids per delete_waiting.lua call

Row = tuple[tuple[int, int], int, str, bytes | None]  # (entry order, partition, reference, payload)


class RedisWaiting:
    """Mixed into RedisQueue: what it needs of it is below."""

    url: str
    keys: Keys
    _reads: Reader
    _t: Transport

    if TYPE_CHECKING:

        async def _lanes_of(self, job_types: Sequence[str]) -> list[str]: ...

    async def _waiting_window(
        self, job_type: str, after: str | None, count: int
    ) -> tuple[list[tuple[str, bytes | None]], str | None, int]:
        names = await guarded(self.url, lambda: self._lanes_of([job_type]))
        entry, part = split_ref(after) if after else ("", -1)

        def start(p: int) -> str:
            # The cursor's partition and those before it go on after its entry;
            # later ones from it (the same id there sorts after the cursor).
            if not after:
                return "-"
            return f"({entry}" if p <= part else entry

        k = self.keys
        replies = await self._reads.read_scripts(
            "waiting jobs",
            lambda ro: [
                scripts.waiting(k.of_type(n).stream, start(p), count, read_only=ro) for p, n in enumerate(names)
            ],
        )
        rows: list[Row] = []
        ends: list[tuple[tuple[int, int], int, str]] = []  # where each lane with more to read stopped
        looked = 0
        for p, (name, (more, found, scanned)) in enumerate(zip(names, replies, strict=True)):
            suffix = split_lane(name)[1]
            looked += int(scanned)
            for entry_id, payload in found:
                ref = rep.text(entry_id) + suffix
                rows.append((entry_order(ref), p, ref, payload if isinstance(payload, bytes) else None))
            if more:
                ends.append((entry_order(rep.text(more)), p, rep.text(more) + suffix))
        rows.sort(key=lambda r: (r[0], r[1]))
        if not ends:
            return [(ref, raw) for _, _, ref, raw in rows], None, looked
        # A lane with more to read may hold entries before another lane's later
        # rows: this stretch ends where the first such lane stopped.
        order, part_at, marker = min(ends)
        kept = [(ref, raw) for o, p, ref, raw in rows if (o, p) <= (order, part_at)]
        return kept, marker, looked

    async def _delete_waiting(self, job_type: str, refs: Sequence[str]) -> int:
        names = await guarded(self.url, lambda: self._lanes_of([job_type]))
        by_lane: dict[str, list[str]] = {}
        for ref in refs:
            entry, p = split_ref(ref)
            if p < len(names):
                by_lane.setdefault(names[p], []).append(entry)
        calls = [
            scripts.delete_waiting(self.keys.of_type(name).stream, ids[i : i + DELETE_STEP])
            for name, ids in by_lane.items()
            for i in range(0, len(ids), DELETE_STEP)
        ]
        replies = await guarded(self.url, lambda: self._t.run_scripts(calls)) if calls else []
        return sum(int(r) for r in replies)
