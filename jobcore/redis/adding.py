"""Enqueue on Redis: each lane's payloads appended by one script call per
chunk (add.lua, or add_once.lua when a job carries an enqueue-once key), the
lane listed in the type set first, and a failure said in terms of which jobs
landed (calls.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from jobcore.errors import EnqueueError
from jobcore.keys import Keys, split_lane
from jobcore.model import decode_envelope
from jobcore.redis import replies as rep
from jobcore.redis import resp, scripts
from jobcore.redis.calls import enqueue_error, partly_enqueued
from jobcore.redis.cluster import PartlySent
from jobcore.redis.lanes import Lanes
from jobcore.redis.reads import Reader
from jobcore.redis.transport import ReplicasNotConfirmed, Transport
from jobcore.routes import Routes

log = logging.getLogger("jobcore.queue")
ADD_CHUNK = 2000  # payloads per script call: keeps each call short for Redis

Keyed = tuple[str, str, bytes]  # enqueue-once field ('' for none), job id, payload


class RedisAdding:
    """Mixed into RedisQueue: what it needs of it is below."""

    url: str
    keys: Keys
    routes: Routes
    replicas: int
    _t: Transport
    _confirm: tuple[int, int] | None
    _lanes: Lanes
    _reads: Reader
    _known_lanes: set[str]  # lanes this client has added to (and recorded)
    _known_types: set[str]  # types this client has written to the type set

    async def _add(self, job_type: str, payloads: list[bytes]) -> None:
        if job_type in self._known_lanes and len(payloads) == 1 and self._confirm is None:
            stream = self.keys.of_type(job_type).stream
            try:
                # NOMKSTREAM: gone only when Redis lost its data; the path below lists the type again.
                if await self._t.call("XADD", stream, "NOMKSTREAM", "*", "d", payloads[0]) is not None:
                    return
            except Exception as exc:
                raise enqueue_error(self.url, "job", exc) from None
            self._forget_lane(job_type)
        await self._add_many({job_type: payloads})

    def _forget_lane(self, name: str) -> None:
        self._known_lanes.discard(name)
        self._known_types.discard(split_lane(name)[0])

    async def _add_many(self, by_type: dict[str, list[bytes]]) -> None:
        calls: list[scripts.Call] = []
        spans: list[tuple[str, int]] = []  # each call's lane and first payload
        for job_type, payloads in by_type.items():
            stream = self.keys.of_type(job_type).stream
            for i in range(0, len(payloads), ADD_CHUNK):
                calls.append(scripts.add(stream, payloads[i : i + ADD_CHUNK]))
                spans.append((job_type, i))
        await self._store(by_type, calls, spans, lambda r: isinstance(r, int) and r < 0)

    async def _add_keyed(self, by_lane: dict[str, list[Keyed]], ttl_ms: int) -> dict[str, list[str]]:
        calls: list[scripts.Call] = []
        spans: list[tuple[str, int]] = []
        for name, jobs in by_lane.items():
            k = self.keys.of_type(name)
            for i in range(0, len(jobs), ADD_CHUNK):
                calls.append(scripts.add_once(k.stream, k.once, k.once_until, ttl_ms, jobs[i : i + ADD_CHUNK]))
                spans.append((name, i))
        by_type = {name: [payload for _, _, payload in jobs] for name, jobs in by_lane.items()}
        replies = await self._store(by_type, calls, spans, lambda r: isinstance(r, list) and r[0] == 1)
        firsts: dict[str, list[str]] = {name: [] for name in by_lane}
        for (name, _), reply in zip(spans, replies, strict=True):
            firsts[name] += [rep.text(x) for x in reply[1:]]
        return firsts

    async def _store(
        self,
        by_type: dict[str, list[bytes]],
        calls: list[scripts.Call],
        spans: list[tuple[str, int]],
        created: Callable[[Any], bool],
    ) -> list[Any]:
        """Run the add calls of ``by_type``'s payloads (``spans``: each call's
        lane and first index), listing new lanes first; ``created`` tells a
        reply whose call created the stream. Raises EnqueueError naming what landed."""
        n = sum(len(p) for p in by_type.values())
        first = self._lanes.registrations(by_type, self._known_lanes, self._known_types, self.routes.by_type)
        try:
            if first:
                # Before the jobs, with their confirmation: a confirmed job is always listed.
                await self._t.run_scripts(first, confirm=self._confirm)
        except ReplicasNotConfirmed as exc:
            ids = [decode_envelope(p).id for payloads in by_type.values() for p in payloads]  # error path only
            raise EnqueueError(
                f"{n} job(s) not enqueued: listing their type was not confirmed ({exc}); retry them", not_landed=ids
            ) from None
        except Exception as exc:
            raise enqueue_error(self.url, f"{n} job(s)", exc) from None
        try:
            replies = await self._t.run_scripts(calls, confirm=self._confirm, raise_on_error=False)
        except PartlySent as exc:
            # Some cluster nodes failed, the others stored their share: say which.
            lost = {spans[i]: (node, e) for i, (node, e) in exc.failed.items()}
            refused = {span: r for span, r in zip(spans, exc.replies, strict=True) if isinstance(r, resp.RespError)}
            short = self._confirm is not None and exc.acked < self._confirm[0]
            unconfirmed = (exc.acked, self.replicas) if short else None
            raise partly_enqueued(by_type, ADD_CHUNK, refused, lost, unconfirmed) from None
        except Exception as exc:
            raise enqueue_error(self.url, f"{n} job(s)", exc) from None
        refused = {span: r for span, r in zip(spans, replies, strict=True) if isinstance(r, resp.RespError)}
        if refused:
            raise partly_enqueued(by_type, ADD_CHUNK, refused)
        wiped = {name for (name, _), r in zip(spans, replies, strict=True) if created(r)}
        wiped.intersection_update(self._known_lanes)  # streams created though listed: Redis lost its data
        self._known_lanes.update(by_type)
        self._known_types.update(split_lane(name)[0] for name in by_type)
        self._reads.known_types.update(self._known_types)
        if wiped:
            await self._relist(wiped)
        return replies

    async def _relist(self, names: set[str]) -> None:
        """List again lanes whose streams Redis lost (their jobs have landed: a
        failure here is logged, and the next enqueue tries again)."""
        for name in names:
            self._forget_lane(name)
        calls = self._lanes.registrations(names, self._known_lanes, self._known_types, self.routes.by_type)
        try:
            await self._t.run_scripts(calls, confirm=self._confirm)
        except Exception as exc:
            log.warning("listing job types again after Redis lost its data failed (%s); the next enqueue retries", exc)
            return
        self._known_lanes.update(names)
        self._known_types.update(split_lane(name)[0] for name in names)
