"""Taking jobs: fetch.lua over the lanes a worker serves, blocking reads when
none wait (each on a connection of its own), handing back what a blocking read
took from a lane paused meanwhile, and leaving out lanes whose stream key holds
something else (corrupt data) so the other types are still served."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from jobcore.display import printable
from jobcore.errors import JobcoreError
from jobcore.keys import GROUP, FairKeys, Keys, split_lane
from jobcore.records import Outcome, Stale
from jobcore.redis import replies as rep
from jobcore.redis import resp, scripts
from jobcore.redis.calls import first_error, guarded
from jobcore.redis.transport import Transport
from jobcore.routes import Routes

T = TypeVar("T")
log = logging.getLogger("jobcore.queue")
CORRUPT_LANE_S = 60.0  # how long a lane whose stream key holds something else is left out

Taken = list[tuple[str, Any]]  # (lane, its entries as XREADGROUP gives them)


class Fetcher:
    """A queue's fetching: its blocking reads, and what it knows of its lanes
    (consumer group made, paused at the last look, corrupt)."""

    def __init__(
        self,
        transport: Transport,
        keys: Keys,
        url: str,
        routes: Routes,
        lanes_of: Callable[[Sequence[str]], Awaitable[list[str]]],
        settle: Callable[[str, Sequence[Outcome]], Awaitable[list[Stale]]],
        socket_timeout: float,
    ) -> None:
        self._t = transport
        self._keys = keys
        self._url = url
        self._routes = routes
        self._lanes_of = lanes_of
        self._settle = settle
        self._socket_timeout = socket_timeout
        self._turn = 0  # the type a fetch starts with, in turn
        # Blocking reads, each on a connection of its own, by the types it reads.
        self._waiters: dict[tuple[str, ...], asyncio.Task[Taken]] = {}
        self._readers: dict[tuple[str, ...], Transport] = {}  # their connections, kept between reads
        self._bad_lanes: dict[str, float] = {}  # lanes left out of fetches (corrupt keys), until when
        self._groups_ready: set[str] = set()
        self._paused_lanes: set[str] = set()  # lanes the last fetch found paused: no blocking read on them
        # Entries held that a blocking read in flight may have taken (its reply
        # not in yet), with those reads: not judged lost until they end.
        self._doubted: dict[tuple[str, bytes], list[asyncio.Task[Taken]]] = {}
        self._reading_as = ""  # the consumer the blocking reads read as
        # Fair lanes: the group's last-delivered id and the wake stream's last id at the last fetch.
        self._fair_at: dict[str, tuple[Any, Any]] = {}

    async def take(self, consumer: str, types: Sequence[str], count: int) -> Taken:
        """New entries, ``count`` at most in all. One fetch.lua over every stream
        where one call may span them; on a cluster one call per type (its own
        slot), sent to every node at once, each taking its share, in passes
        until ``count`` or every type gave what it had."""
        lanes = [self._lane_keys(t) for t in types]
        self._turn = (self._turn + 1) % len(lanes)
        if not self._t.single_slot:
            ((taken, paused, *fair),) = await self._t.run_scripts(
                [scripts.fetch(lanes, consumer, count, self._turn + 1)]
            )
            self._note_paused(types, {types[int(i) - 1] for i in paused})
            self._note_fair(types, {types[int(i) - 1]: (at, woke) for i, at, woke in (fair[0] if fair else [])})
            return [(types[int(i) - 1], entries) for i, entries in taken]
        order = [(self._turn + k) % len(types) for k in range(len(types))]
        pairs: Taken = []
        left, active = count, order
        while left > 0 and active:
            share, extra = divmod(left, len(active))
            asks = [(i, share + (1 if k < extra else 0)) for k, i in enumerate(active)]
            asks = [(i, n) for i, n in asks if n > 0]
            calls = [scripts.fetch([lanes[i]], consumer, n, 1) for i, n in asks]
            replies = await self._t.run_scripts(calls)
            active = []
            paused = {types[i] for (i, _), (_, p, *_) in zip(asks, replies, strict=True) if p}
            self._note_paused([types[i] for i, _ in asks], paused)
            fair = {
                types[i]: tuple(r[2][0][1:3]) for (i, _), r in zip(asks, replies, strict=True) if len(r) > 2 and r[2]
            }
            self._note_fair([types[i] for i, _ in asks], fair)
            for (i, n), (taken, *_) in zip(asks, replies, strict=True):
                got = sum(len(entries) for _, entries in taken)
                if got:
                    pairs.extend((types[i], entries) for _, entries in taken)
                    left -= got
                if got == n:
                    active.append(i)  # it may have more
        return pairs

    def _lane_keys(self, name: str) -> tuple[str, str, FairKeys]:
        k = self._keys.of_type(name)
        return k.stream, k.stats, self._keys.fair(name)

    def _note_fair(self, looked_at: Sequence[str], fair: dict[str, tuple[Any, Any]]) -> None:
        """Remember the fair lanes and where their next new entry will be: a
        blocking read of a fair lane only waits for it (fetch.lua hands it out),
        or for a slot given back (the wake stream's next entry)."""
        for name in looked_at:
            if name in fair:
                at, woke = fair[name]
                self._fair_at[name] = (at or self._fair_at.get(name, (b"$", b""))[0] or b"$", woke or b"$")
            else:
                self._fair_at.pop(name, None)

    def _note_paused(self, looked_at: Sequence[str], paused: set[str]) -> None:
        self._paused_lanes.difference_update(looked_at)
        self._paused_lanes.update(paused)

    def servable(self, names: list[str]) -> list[str]:
        """``names`` less the lanes left out for now (corrupt keys)."""
        if not self._bad_lanes:
            return names
        now = time.monotonic()
        for name, until in list(self._bad_lanes.items()):
            if until <= now:
                del self._bad_lanes[name]  # looked at again: it may have been mended
        return [n for n in names if n not in self._bad_lanes]

    async def skip_corrupt(self, names: Sequence[str]) -> None:
        """After a WRONGTYPE reply: find the lanes whose stream key holds something
        else (corrupt data) and leave them out for a while, so the other types
        are still served. Said once per lane, loudly."""
        replies = await self._t.pipeline([["TYPE", self._keys.of_type(n).stream] for n in names])
        for name, kind in zip(names, replies, strict=True):
            if rep.text(kind) not in ("stream", "none"):
                if name not in self._bad_lanes:
                    log.error(
                        "%s holds a %s, not a stream: type %s is not served until it is mended (looked at again "
                        "every %ds); its jobs, if any, are not lost by this",
                        printable(self._keys.of_type(name).stream),
                        printable(rep.text(kind)),
                        printable(repr(split_lane(name)[0])),
                        int(CORRUPT_LANE_S),
                    )
                self._bad_lanes[name] = time.monotonic() + CORRUPT_LANE_S

    async def create_groups(self, names: Sequence[str], cmds: list[list[Any]] | None = None) -> None:
        """The consumer group on each lane's stream (created empty if need be), and
        the types listed again: after a flush or a restart that lost the data,
        jobs enqueued since are served and seen at once."""
        cmds = list(cmds or [["SADD", self._keys.types, *dict.fromkeys(split_lane(n)[0] for n in names)]])
        head = len(cmds)
        cmds += [["XGROUP", "CREATE", self._keys.of_type(n).stream, GROUP, "0", "MKSTREAM"] for n in names]
        replies = await self._t.pipeline(cmds, raise_on_error=False)
        corrupt = [n for n, r in zip(names, replies[head:], strict=True) if rep.is_error(r, "WRONGTYPE")]
        error = first_error(replies, ("BUSYGROUP", "WRONGTYPE"))
        if error is not None:
            raise error
        if corrupt:
            await self.skip_corrupt(corrupt)
        self._groups_ready.update(n for n in names if n not in corrupt)

    async def run(self, names: Sequence[str], run: Callable[[], Awaitable[T]]) -> T:
        """``run``, creating the consumer group first if a lane has none yet (a
        partition added since, or Redis lost it)."""
        try:
            return await guarded(self._url, run)
        except JobcoreError as exc:
            if exc.code == "WRONGTYPE":
                await guarded(self._url, lambda: self.skip_corrupt(names))
                raise JobcoreError(f"{exc} (the corrupt key is left out from the next fetch)") from None
            if exc.code != "NOGROUP":
                raise
            todo = [n for n in names if n not in self._groups_ready] or list(names)
            await guarded(self._url, lambda: self.create_groups(todo))
            return await guarded(self._url, run)

    def reads_in_flight(self) -> list[tuple[tuple[str, ...], asyncio.Task[Taken]]]:
        """The blocking reads not ended yet (a snapshot for :meth:`not_delivered`)."""
        return [(group, task) for group, task in self._waiters.items() if not task.done()]

    def not_delivered(
        self,
        consumer: str,
        held: Sequence[tuple[str, Sequence[Any]]],
        before: list[tuple[tuple[str, ...], asyncio.Task[Taken]]],
    ) -> set[tuple[str, bytes]]:
        """Of ``held`` (lane, its pending rows, as read after ``before`` was taken),
        the entries a blocking read of this queue took and has not delivered yet,
        or may have taken: one in flight when the rows were read, and still
        (on a cluster a read per type goes on after a fetch returns). Such
        entries come with the next fetch: never judge them lost."""
        if consumer != self._reading_as:
            return set()  # another worker's jobs: none of this queue's reads hold them
        taken = {
            (lane, rep.as_bytes(entry_id))
            for task in self._waiters.values()
            if task.done() and not task.cancelled() and task.exception() is None
            for lane, entries in task.result()
            for entry_id, _ in entries
        }
        doubted: dict[tuple[str, bytes], list[asyncio.Task[Taken]]] = {}
        out: set[tuple[str, bytes]] = set()
        for lane, rows in held:
            # A read that ended since gave all it took (in ``taken`` until the next fetch).
            reading = [task for group, task in before if lane in group and not task.done()]
            for row in rows:
                key = (lane, rep.as_bytes(row[0]))
                if key in taken:
                    out.add(key)
                    continue
                # Doubted before: only the reads in flight then may hold it.
                still = [t for t in self._doubted.get(key, reading) if not t.done()]
                if still:
                    doubted[key] = still
                    out.add(key)
        self._doubted = doubted
        return out

    def waited(self) -> Taken:
        """What blocking reads that finished since the last fetch took."""
        pairs: Taken = []
        for group, task in list(self._waiters.items()):
            if task.done():
                del self._waiters[group]
                if not task.cancelled() and task.exception() is None:
                    pairs.extend(task.result())
        return pairs

    async def wait_for_jobs(self, consumer: str, types: Sequence[str], block_ms: int, count: int) -> Taken:
        """Blocking XREADGROUPs, one entry per stream at most: one over every type,
        or on a cluster one per type (a blocking read cannot span slots), each on
        its own connection. The first to get a job ends the wait; the others
        go on blocking, and what they take comes with the next fetch. A fair
        lane's wait takes nothing: when one ends, a fetch of ``count`` follows."""
        types = [t for t in types if t not in self._paused_lanes]
        self._reading_as = consumer
        if not types:  # every lane paused: look again (with the fetch script) after the wait
            await asyncio.sleep(block_ms / 1000)
            return []
        plain = [t for t in types if t not in self._fair_at]
        fair = [t for t in types if t in self._fair_at]
        groups = [(t,) for t in plain] if self._t.single_slot else [tuple(plain)] if plain else []
        fair_groups = [(t,) for t in fair] if self._t.single_slot else [tuple(fair)] if fair else []
        for group in groups:
            if group not in self._waiters:
                self._waiters[group] = asyncio.ensure_future(self._blocking_read(consumer, group, block_ms))
        for group in fair_groups:
            if group not in self._waiters:
                self._waiters[group] = asyncio.ensure_future(self._fair_wait(group, block_ms))
        groups += fair_groups
        waiting = [self._waiters[g] for g in groups]
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            await self.stop()
            raise
        pairs: Taken = []
        error: BaseException | None = None
        for group in groups:
            task = self._waiters[group]
            if task.done():
                del self._waiters[group]
                if task.exception() is None:
                    pairs.extend(task.result())
                else:
                    error = error or task.exception()
        if error is not None and not pairs:
            raise error  # a fetch error; with jobs in hand it shows on the next wait
        if not pairs and any(g in fair_groups for g in groups if g not in self._waiters):
            return await self.take(consumer, types, count)  # what woke a fair wait is handed out by a fetch
        return pairs

    async def _on_reader(self, group: tuple[str, ...], send: Callable[[Transport], Awaitable[T]]) -> T:
        """``send`` on the connection kept for ``group``'s blocking reads (made on first
        use). Any failure or cancel closes it: closing is what ends a blocked read on the server."""
        reader = self._readers.get(group)
        if reader is None:
            reader = self._readers[group] = self._t.dedicated()
        try:
            return await send(reader)
        except BaseException:
            del self._readers[group]
            if reader is not self._t:
                await reader.close()
            raise

    async def _blocking_read(self, consumer: str, types: tuple[str, ...], block_ms: int) -> Taken:
        streams = [self._keys.of_type(t).stream for t in types]
        # A blocked read answers within block_ms; only then does the socket timeout start.
        wait = self._socket_timeout + block_ms / 1000
        command: list[resp.Arg] = ["XREADGROUP", "GROUP", GROUP, consumer, "COUNT", 1, "BLOCK", block_ms, "STREAMS"]
        # Each lane's paused flag, read on the same connection right after the read
        # takes its entry (no extra round trip): a pause that landed while this
        # read was blocked hands the entry straight back, unstarted.
        flags: list[list[resp.Arg]] = [["HEXISTS", self._keys.of_type(t).stats, "paused"] for t in types]
        sent = [[*command, *streams, *([">"] * len(streams))], *flags]
        reply, *paused = await self._on_reader(types, lambda reader: reader.pipeline(sent, timeout=wait))
        by_stream = {s.encode(): t for s, t in zip(streams, types, strict=True)}
        if isinstance(reply, list) and reply and not isinstance(reply[0], list):
            reply = rep.pairs(reply)  # fakeredis answers a map (flattened by the adapter)
        got = [(by_stream[rep.as_bytes(stream)], entries) for stream, entries in reply or []]
        stopped = {t for t, p in zip(types, paused, strict=True) if p}
        if stopped and got:
            got = await self._hand_back_paused(consumer, got, stopped)
        return got

    async def _fair_wait(self, names: tuple[str, ...], block_ms: int) -> Taken:
        """Wait for a new entry in fair lanes without taking it (XREAD, no group):
        the fetch that follows takes it in and hands out whose turn it is."""
        streams = [self._keys.of_type(n).stream for n in names] + [self._keys.fair(n).wake for n in names]
        marks = [self._fair_at.get(n, (b"$", b"$")) for n in names]
        since = [at for at, _ in marks] + [woke for _, woke in marks]
        command: list[resp.Arg] = ["XREAD", "COUNT", 1, "BLOCK", block_ms, "STREAMS", *streams, *since]
        wait = self._socket_timeout + block_ms / 1000
        await self._on_reader(names, lambda reader: reader.call(*command, timeout=wait))
        return []

    async def _hand_back_paused(self, consumer: str, got: Taken, paused: set[str]) -> Taken:
        """Put entries a blocking read took from paused lanes back on their queue
        (not started, no attempt counted); keep the others."""
        self._paused_lanes.update(paused)
        back = [
            Outcome(split_lane(name)[0], rep.text(entry_id) + split_lane(name)[1], "release", 0)
            for name, entries in got
            if name in paused
            for entry_id, _ in entries
        ]
        await self._settle(consumer, back)
        return [(name, entries) for name, entries in got if name not in paused]

    async def stop(self) -> None:
        """End the blocking reads and close their connections."""
        waiters, self._waiters = list(self._waiters.values()), {}
        for task in waiters:
            task.cancel()
        for task in waiters:
            with contextlib.suppress(BaseException):
                await task
        readers, self._readers = list(self._readers.values()), {}
        for reader in readers:
            if reader is not self._t:
                await reader.close()
