"""Fairness across accounts on Redis: a type's settings written to each of its
partitions (each is fair on its own), what operators read of it, and the sweep
that gives back slots a job left without a settle. fetch.lua and settle.lua do
the turns themselves; jobcore/fair.py has the rules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jobcore.fair import AccountLoad, FairInfo, FairSettings, most_first
from jobcore.keys import Keys
from jobcore.redis import replies as rep
from jobcore.redis import scripts
from jobcore.redis.calls import guarded
from jobcore.redis.reads import Reader
from jobcore.redis.transport import Transport

SWEEP_STEP = 200  # held entries looked at per lane and sweep


class RedisFairness:
    """Mixed into RedisQueue: what it needs of it is below."""

    url: str
    keys: Keys
    _t: Transport

    if TYPE_CHECKING:

        async def _lanes_of(self, job_types: Sequence[str]) -> list[str]: ...

    _sweep_at: dict[str, str]
    _reads: Reader

    async def _fair_write(self, job_type: str, fields: dict[str, str]) -> None:
        names = await guarded(self.url, lambda: self._lanes_of([job_type]))
        calls = [scripts.fair_set(self.keys.of_type(n).stream, self.keys.fair(n), fields) for n in names]
        await guarded(self.url, lambda: self._t.run_scripts(calls))

    async def _fair_read(self, job_type: str, top: int) -> FairInfo:
        names = await guarded(self.url, lambda: self._lanes_of([job_type]))
        keys = self.keys
        replies = await self._reads.read_scripts(
            "fairness",
            lambda ro: [scripts.fair_read(keys.of_type(n).stream, keys.fair(n), top, read_only=ro) for n in names],
        )
        settings = FairSettings()
        accounts = blocked_count = queued = looked_at = 0
        waiting: dict[str, int] = {}
        running: dict[str, int] = {}
        blocked: list[AccountLoad] = []
        for k, (fields, nwait, w, r, b, nb, nq, looked) in enumerate(replies):
            if k == 0:
                settings = FairSettings.parse({rep.text(a): rep.text(v) for a, v in rep.pairs(fields)})
            accounts += int(nwait)
            blocked_count += int(nb)
            queued += int(nq)
            looked_at += int(looked)
            waiting.update((rep.text(a), int(float(rep.text(v)))) for a, v in rep.pairs(w))
            running.update((rep.text(a), int(float(rep.text(v)))) for a, v in rep.pairs(r))
            blocked += [AccountLoad(rep.text(a), int(w_), int(r_), int(lim)) for a, w_, r_, lim in b or []]
        return FairInfo(
            job_type,
            settings,
            accounts,
            sorted(waiting.items(), key=most_first)[:top],
            sorted(running.items(), key=most_first)[:top],
            sorted(blocked, key=lambda x: -x.waiting)[:top],
            blocked_count,
            queued,
            looked_at,
        )

    def _sweep_calls(self, names: Sequence[str]) -> list[scripts.Call]:
        """One step of each lane's sweep (fair_sweep.lua), sent with the orphans' look."""
        k, at = self.keys, self._sweep_at
        return [scripts.fair_sweep(k.of_type(n).stream, k.fair(n), at.get(n, "0"), SWEEP_STEP) for n in names]

    def _swept(self, names: Sequence[str], replies: Sequence[Any]) -> int:
        """The sweep's cursors kept; the jobs it put back on the queue (handed out,
        then gone from the pending list without a settle)."""
        back = 0
        for name, (cursor, _, requeued) in zip(names, replies, strict=True):
            self._sweep_at[name] = rep.text(cursor)
            back += int(requeued)
        return back
