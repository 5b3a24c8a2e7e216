"""Retiring a type on Redis (``Queue.remove_type``): each lane's keys removed by
remove_lane.lua while it holds no job, then the type's name and records in the
namespace (type set, schemas, partition count)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from jobcore.errors import TypeInUse
from jobcore.keys import Keys
from jobcore.redis import scripts
from jobcore.redis.calls import guarded
from jobcore.redis.reads import Reader, type_keys
from jobcore.redis.transport import Transport
from jobcore.routes import Routes


class RedisRetire:
    """Mixed into RedisQueue: what it needs of it is below."""

    url: str
    keys: Keys
    routes: Routes
    _t: Transport
    _known_lanes: set[str]
    _known_types: set[str]
    _reads: Reader

    if TYPE_CHECKING:

        async def _lanes_of(self, job_types: Sequence[str]) -> list[str]: ...

    async def _remove_type(self, job_type: str) -> None:
        names = await guarded(self.url, lambda: self._lanes_of([job_type]))
        k = self.keys
        calls = [
            scripts.remove_lane(
                type_keys(k, n),
                k.fair(n),
                [
                    k.of_type(n).once,
                    k.of_type(n).once_until,
                    *([k.lanes(job_type), k.gate(job_type)] if p == 0 else []),
                ],
            )
            for p, n in enumerate(names)
        ]
        left = await guarded(self.url, lambda: self._t.run_scripts(calls))
        held = sum(int(n) for n in left)
        if held:
            # Checked before, on the server: jobs came meanwhile (the empty lanes are gone, as they held nothing).
            raise TypeInUse(f"type {job_type!r} was not removed: {held:,} of its jobs wait or run")
        await guarded(
            self.url,
            lambda: self._t.pipeline(
                [
                    ["SREM", k.types, job_type],
                    ["HDEL", k.schemas, job_type],
                    ["HDEL", k.partitions, job_type],
                ]
            ),
        )
        self._known_types.discard(job_type)
        self._reads.known_types.discard(job_type)
        self._known_lanes.difference_update(names)
        self.routes.forget()
