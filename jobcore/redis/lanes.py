"""Each type's lanes (its partitions) as Redis keeps them, and the writes that
list a type and its lanes. The record of a type's lanes (``Keys.lanes``) lives
in the type's own slot and is written with the enqueue's replica confirmation,
so whatever a failover keeps of the jobs, it keeps of their listing too; the
namespace-wide hash (``Keys.partitions``) is still written for processes of
older versions and read as a fallback. Pause and resume read the record in the
same script that flips partition 0's flag (pause.lua), never a cached view."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from jobcore.keys import Keys, placed_lanes, split_lane
from jobcore.redis import replies as rep
from jobcore.redis import resp, scripts
from jobcore.redis.reads import lanes_from, merged_lanes
from jobcore.redis.transport import Transport

# A raise closes its new lanes until the old ones have run every job added up
# to this long after it (the jobs they held at the raise; a producer that has
# not read the new count yet, for up to 10 s, is README's "for a moment").
GATE_FENCE_MS = 0


class Lanes:
    def __init__(self, transport: Transport, keys: Keys, confirm: tuple[int, int] | None) -> None:
        self._t = transport
        self._keys = keys
        self._confirm = confirm
        self._read_only = True  # EVALSHA_RO for drained.lua; False once the server showed it has none
        self.closed: dict[str, tuple[str, ...]] = {}  # gated types' closed lanes, as last read

    async def read(self, job_types: Sequence[str], declared: dict[str, int]) -> dict[str, tuple[str, ...]]:
        """The lanes of ``job_types`` and of the declared types, growing those
        declared larger than stored (never shrinking). Raw errors."""
        types = list(dict.fromkeys([*job_types, *declared]))
        if not types:
            return {}
        k = self._keys
        # Plain reads first (a read-only user can still route and watch): each
        # type's own record and gate, and the namespace-wide hash older versions wrote.
        cmds: list[list[resp.Arg]] = [["HMGET", k.partitions, *types]]
        cmds += [["GET", k.lanes(t)] for t in types]
        cmds += [["HMGET", k.gate(t), "from", "fence"] for t in types]
        mirror, *rest = await self._t.pipeline(cmds)
        own, gates = rest[: len(types)], rest[len(types) :]
        found = {t: merged_lanes(t, o, m) for t, o, m in zip(types, own, mirror, strict=True)}
        grow = {t: n for t, n in declared.items() if n > len(found[t])}
        if grow:
            await self._grow(found, grow)
            gates = await self._t.pipeline([["HMGET", k.gate(t), "from", "fence"] for t in types])
        self.closed = await self._closed(found, dict(zip(types, gates, strict=True)))
        return found

    async def _grow(self, found: dict[str, tuple[str, ...]], grow: dict[str, int]) -> None:
        k = self._keys
        # On a cluster, new partitions go where the type has the fewest.
        slots = await self._t.slot_owners()
        proposed = {t: placed_lanes(t, found[t], n, slots) for t, n in grow.items()}
        # In the type's own slot, confirmed as an enqueue is.
        calls = [
            scripts.lanes(k.lanes(t), k.of_type(t).stats, k.gate(t), names, len(found[t]), GATE_FENCE_MS)
            for t, names in proposed.items()
        ]
        replies = await self._t.run_scripts(calls, confirm=self._confirm)
        before = {t: found[t] for t in grow}
        found.update((t, lanes_from(t, r[0])) for t, r in zip(grow, replies, strict=True))
        # The namespace-wide copy, for processes of older versions (not relied on).
        await self._t.run_scripts([scripts.partitions(k.partitions, {t: "\n".join(found[t]) for t in grow})])
        # A paused type's new lanes are paused too (lanes.lua read the flag in the same step).
        paused = [t for t, r in zip(grow, replies, strict=True) if int(r[1])]
        await self.set_flag([n for t in paused for n in found[t][len(before[t]) :]], True)
        # A fair type's new lanes get its settings (partition 0's, its turns in progress left out).
        settings = await self._t.pipeline([["HGETALL", k.fair(t).config] for t in grow])
        copies = []
        for t, flat in zip(grow, settings, strict=True):
            fields = {rep.text(a): rep.text(v) for a, v in rep.pairs(flat) if not rep.text(a).startswith("t:")}
            copies += (
                [scripts.fair_set(k.of_type(n).stream, k.fair(n), fields) for n in found[t][len(before[t]) :]]
                if fields
                else []
            )
        if copies:
            await self._t.run_scripts(copies)

    async def _closed(self, found: dict[str, tuple[str, ...]], gates: dict[str, Any]) -> dict[str, tuple[str, ...]]:
        """Each gated type's lanes still closed: those past ``from`` until every
        lane before it has run what it held at the fence (then the gate is dropped)."""
        closed: dict[str, tuple[str, ...]] = {}
        for t, (start, fence) in gates.items():
            if start is None or fence is None:
                continue
            old = found[t][: max(1, int(start))]
            calls = [scripts.drained(self._keys.of_type(n).stream, fence, read_only=self._read_only) for n in old]
            replies = await self._t.run_scripts(calls, raise_on_error=False)
            if self._read_only and any(isinstance(r, resp.RespError) for r in replies):
                self._read_only = False  # no EVALSHA_RO here: the plain twin
                calls = [scripts.drained(self._keys.of_type(n).stream, fence, read_only=False) for n in old]
                replies = await self._t.run_scripts(calls)
            if all(r == 1 for r in replies):
                with contextlib.suppress(resp.RespError):  # a read-only user: the next writer drops it
                    await self._t.run_scripts([scripts.ungate(self._keys.gate(t), fence)])
                continue
            closed[t] = found[t][len(old) :]
        return closed

    async def set_paused(self, job_type: str, paused: bool) -> tuple[str, ...]:
        """Partition 0's flag and the lanes recorded in Redis now, in one step
        (pause.lua); then every other lane's flag. Returns the lanes."""
        k = self._keys
        call = scripts.pause(k.of_type(job_type).stats, k.lanes(job_type), paused)
        cmds: list[list[resp.Arg]] = [["HGET", k.partitions, job_type]]
        (own,), (mirror,) = await asyncio.gather(self._t.run_scripts([call]), self._t.pipeline(cmds))
        names = merged_lanes(job_type, own, mirror)
        await self.set_flag(names[1:], paused)
        return names

    async def set_flag(self, names: Sequence[str], paused: bool) -> None:
        """Set or clear the paused flag of these lanes."""
        stats = [self._keys.of_type(n).stats for n in names]
        if stats:
            await self._t.pipeline([["HSET", s, "paused", 1] if paused else ["HDEL", s, "paused"] for s in stats])

    def registrations(
        self,
        names: Iterable[str],
        known_lanes: Collection[str],
        known_types: Collection[str],
        lanes_of: dict[str, tuple[str, ...]],
    ) -> list[scripts.Call]:
        """The writes that list the lanes ``names`` before jobs go to them, for
        those not in ``known_lanes`` (written by this client since it last read the
        partition counts): the type set, and each partitioned type's own record."""
        k = self._keys
        new = [name for name in names if name not in known_lanes]
        types = [t for t in dict.fromkeys(split_lane(name)[0] for name in new) if t not in known_types]
        calls = [scripts.types(k.types, types)] if types else []
        for t in dict.fromkeys(split_lane(name)[0] for name in new):
            if len(lanes_of.get(t, ())) > 1:
                calls.append(scripts.lanes(k.lanes(t), k.of_type(t).stats, k.gate(t), lanes_of[t]))
        return calls
