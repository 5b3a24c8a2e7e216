"""Redis Cluster: a slot map, each command sent to the master of its key's slot,
a pipeline split by node and sent to every node at once, and MOVED / ASK /
TRYAGAIN / CLUSTERDOWN followed (such a reply means the command did not run).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from jobcore import url as urls
from jobcore.keys import SLOTS, key_slot
from jobcore.redis.replies import as_bytes, text
from jobcore.redis.resp import Address, Arg, RespConnectionError, RespError, Script, shared_task
from jobcore.redis.transport import Command, Standalone, Transport, raise_error_reply

MAX_REDIRECTS = 5
KEY_SLOT_CACHE = 4096

# Commands whose first key is not their first argument; the rest either take it
# first or take no key (routed anywhere, or after the command before them).
_KEYLESS = frozenset(
    {b"TIME", b"INFO", b"PING", b"SCRIPT", b"CLUSTER", b"CLIENT", b"WAIT", b"ROLE", b"ECHO", b"ASKING", b"READONLY"}
)
# Replies that mean the command did not run: sent again shortly (a slot mid-migration,
# a failover in progress), or at once where a MOVED or ASK points.
_RETRIED = frozenset({"TRYAGAIN", "CLUSTERDOWN"})
_FOLLOWED = _RETRIED | {"MOVED", "ASK"}


class PartlySent(RespConnectionError):
    """A pipeline some nodes failed (down, or the connection lost) while the
    others answered: ``replies`` holds their replies in place (None where the
    node failed), ``failed`` each failed command's node and error, ``acked``
    the fewest replicas that confirmed the answered writes."""

    def __init__(self, replies: list[Any], failed: dict[int, tuple[str, RespConnectionError]], acked: int) -> None:
        errors = list(dict.fromkeys(f"{node}: {exc}" for node, exc in failed.values()))
        super().__init__("; ".join(errors), unsent=all(exc.unsent for _, exc in failed.values()))
        self.replies = replies
        self.failed = failed
        self.acked = acked


def key_of(command: Command) -> Arg | None:
    """The key a command is routed by in a cluster (all keys of one command or
    script share a slot in jobcore), or None for a command that takes none."""
    name = as_bytes(command[0]).upper()
    if name in _KEYLESS:
        return None
    if name in (b"EVALSHA", b"EVAL", b"EVALSHA_RO", b"EVAL_RO", b"FCALL", b"FCALL_RO"):
        return command[3] if int(command[2]) > 0 else None
    if name in (b"XREADGROUP", b"XREAD"):
        for i, arg in enumerate(command):
            if as_bytes(arg).upper() == b"STREAMS":
                return command[i + 1]
        return None
    return command[1] if len(command) > 1 else None


@dataclass(frozen=True, slots=True)
class Redirect:
    """A MOVED or ASK reply as data: the slot, and the node serving it now."""

    code: str  # "MOVED": for good (the map is refreshed); "ASK": this command, this once
    slot: int
    node: str  # "host:port"

    @classmethod
    def of(cls, err: RespError) -> Redirect | None:
        """The redirection an error reply carries ("MOVED 3999 10.0.0.2:6381"), None for another error."""
        if err.code not in ("MOVED", "ASK"):
            return None
        _, slot, node = str(err).split()[:3]
        return cls(err.code, int(slot), node)


# Every node a cluster client of this process has seen, by the seed it started
# from: a later client (a clone, a reconnect) whose seed has died still finds
# the cluster through them.
_SEEN_NODES: dict[str, list[str]] = {}


def nodes_seen(seed: str) -> list[str]:
    """The nodes ("host:port") a cluster client of this process found from ``seed``."""
    return _SEEN_NODES.get(seed, [])


class SlotMap:
    """Which master serves each slot, shared by a cluster client and its
    dedicated twins; refreshed from CLUSTER SLOTS when a node moved or failed."""

    def __init__(self, seeds: list[tuple[str, int]]) -> None:
        self.seeds = [f"{h}:{p}" for h, p in seeds]
        self.slots: list[str] = []
        self.masters: list[str] = []
        self.known: list[str] = []  # every node seen, replicas included
        self.stale = True
        self._refreshing: asyncio.Task[None] | None = None
        # Slots of keys seen (a type's few keys come again and again; CRC16 in Python is not free).
        self._key_slots: dict[Arg, int] = {}

    def node(self, key: Arg | None) -> str:
        if key is None:
            return self.masters[0]
        slot = self._key_slots.get(key)
        if slot is None:
            if len(self._key_slots) >= KEY_SLOT_CACHE:
                self._key_slots.clear()
            slot = self._key_slots[key] = key_slot(as_bytes(key))
        return self.slots[slot]

    def moved(self, slot: int, node: str) -> None:
        """A MOVED reply: the slot's new master now, the rest of the map on the next command."""
        self.slots[slot] = node
        self.stale = True

    async def refresh(self, cluster: Cluster) -> None:
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = shared_task(self._refresh(cluster))
        await asyncio.shield(self._refreshing)

    async def _refresh(self, cluster: Cluster) -> None:
        errors = []
        denied: RespError | None = None
        candidates = list(dict.fromkeys([*self.masters, *self.known, *self.seeds]))
        for addr in candidates:
            try:
                reply = await cluster.node(addr).call("CLUSTER", "SLOTS")
            except (RespConnectionError, RespError) as exc:
                if isinstance(exc, RespError) and exc.code == "NOPERM" and denied is None:
                    denied = RespError(f"{exc} (at {addr})", code="NOPERM")
                errors.append(f"{addr}: {exc}")
                continue
            slots = [""] * SLOTS
            masters: list[str] = []
            seed_host = urls.node(addr)[0]
            known: list[str] = []
            for start, end, primary, *replicas in reply:
                host = text(primary[0]) or seed_host
                node = f"{host}:{int(primary[1])}"
                if node not in masters:
                    masters.append(node)
                known += [node, *(f"{text(r[0]) or seed_host}:{int(r[1])}" for r in replicas)]
                slots[int(start) : int(end) + 1] = [node] * (int(end) - int(start) + 1)
            if "" in slots:
                errors.append(f"{addr}: not every slot is served")
                continue
            self.slots, self.masters, self.stale = slots, sorted(masters), False
            self.known = list(dict.fromkeys(known))
            for seed in self.seeds:
                _SEEN_NODES[seed] = self.known
            return
        if denied is not None:
            raise denied  # the user may not read the slot map: a permission problem, not a way down
        raise RespConnectionError("no cluster node answered: " + "; ".join(errors), unsent=True)


class Cluster(Transport):
    """A Redis Cluster: each command goes to the master of its key's slot; a
    pipeline is split by node and sent to every node at once."""

    kind = "cluster"
    single_slot = True

    def __init__(
        self,
        base: Address,
        seeds: list[tuple[str, int]],
        *,
        connect_timeout: float = 5.0,
        timeout: float = 15.0,
        slot_map: SlotMap | None = None,
    ) -> None:
        self.base = base
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.map = slot_map or SlotMap(seeds)
        self._nodes: dict[str, Standalone] = {}

    def node(self, addr: str) -> Standalone:
        client = self._nodes.get(addr)
        if client is None:
            client = Standalone(
                replace(self.base.at(*urls.node(addr)), db=0),
                connect_timeout=self.connect_timeout,
                timeout=self.timeout,
            )
            self._nodes[addr] = client
        return client

    async def masters(self) -> list[str]:
        if self.map.stale:
            await self.map.refresh(self)
        return list(self.map.masters)

    async def slot_owners(self) -> list[str] | None:
        if self.map.stale:
            await self.map.refresh(self)
        return list(self.map.slots)

    async def on_every_master(self, *args: Arg) -> list[Any]:
        return list(await asyncio.gather(*(self.node(m).call(*args) for m in await self.masters())))

    async def call(self, *args: Arg, timeout: float | None = None) -> Any:
        (reply,) = await self.pipeline([args], timeout=timeout)
        return reply

    async def pipeline(
        self, commands: Sequence[Command], *, raise_on_error: bool = True, timeout: float | None = None
    ) -> list[Any]:
        replies, _ = await self._pipeline(commands, None, timeout)
        if raise_on_error:
            raise_error_reply(replies)
        return replies

    async def confirmed(self, commands: Sequence[Command], replicas: int, timeout_ms: int) -> tuple[list[Any], int]:
        return await self._pipeline(commands, (replicas, timeout_ms), None)

    async def _pipeline(
        self, commands: Sequence[Command], confirm: tuple[int, int] | None, timeout: float | None
    ) -> tuple[list[Any], int]:
        if not commands:
            return [], confirm[0] if confirm else 0
        m = self.map
        if m.stale:
            await m.refresh(self)
        by_node: dict[str, list[int]] = {}
        prev: str | None = None
        for i, c in enumerate(commands):
            key = key_of(c)
            node = m.node(key) if key is not None else (prev or m.node(None))
            prev = node
            by_node.setdefault(node, []).append(i)
        replies: list[Any] = [None] * len(commands)
        acks: list[int] = []

        async def send(node: str, idxs: list[int]) -> None:
            cmds = [commands[i] for i in idxs]
            if confirm is not None:
                cmds.append(["WAIT", *confirm])
            got = await self.node(node).pipeline(cmds, raise_on_error=False, timeout=timeout)
            if confirm is not None:
                ack = got.pop()
                acks.append(ack if isinstance(ack, int) else 0)
            for i, r in zip(idxs, got, strict=True):
                replies[i] = r

        failed: dict[int, tuple[str, RespConnectionError]] = {}
        try:
            if len(by_node) == 1:  # the usual single command: no task to gather
                ((node, idxs),) = by_node.items()
                await send(node, idxs)
            else:
                results = await asyncio.gather(*(send(n, i) for n, i in by_node.items()), return_exceptions=True)
                for r in results:
                    if isinstance(r, BaseException) and not isinstance(r, RespConnectionError):
                        raise r
                lost = [(n, i, r) for (n, i), r in zip(by_node.items(), results, strict=True) if r is not None]
                if len(lost) == len(by_node):
                    raise lost[0][2]
                # Others answered: what they did is known, and is said (a partly enqueued batch).
                failed = {k: (n, r) for n, i, r in lost for k in i if isinstance(r, RespConnectionError)}
                m.stale = m.stale or bool(failed)
        except RespConnectionError:
            m.stale = True  # a node failed: its replica may be taking over
            raise
        for i, r in enumerate(replies):
            if isinstance(r, RespError) and r.code in _FOLLOWED:
                replies[i], ack = await self._redirected(commands[i], r, confirm, timeout)
                acks.append(ack)
        if failed:
            raise PartlySent(replies, failed, min(acks) if acks else 0)
        return replies, min(acks) if acks else 0

    async def _redirected(
        self, command: Command, err: RespError, confirm: tuple[int, int] | None, timeout: float | None
    ) -> tuple[Any, int]:
        """Follow MOVED (the slot's new master; the map is refreshed) and ASK (the
        importing node, this once): such a reply means the command did not run."""
        reply: Any = err
        for _ in range(MAX_REDIRECTS):
            if not isinstance(reply, RespError):
                break
            where = Redirect.of(reply)
            if where is None:
                if reply.code not in _RETRIED:
                    break
                await asyncio.sleep(0.05 + random.random() * 0.1)
                await self.map.refresh(self)
                node = self.map.node(key_of(command))
                prefix: list[Command] = []
            else:
                node = where.node
                prefix = []
                if where.code == "MOVED":
                    self.map.moved(where.slot, node)
                else:
                    prefix = [["ASKING"]]
            cmds: list[Command] = [*prefix, command]
            if confirm is not None:
                cmds.append(["WAIT", *confirm])
            got = await self.node(node).pipeline(cmds, raise_on_error=False, timeout=timeout)
            reply = got[len(prefix)]
            if confirm is not None and not isinstance(reply, RespError):
                ack = got[-1]
                return reply, ack if isinstance(ack, int) else 0
        return reply, 0

    async def load_scripts(self, scripts: Sequence[Script]) -> None:
        cmds = [["SCRIPT", "LOAD", s.source] for s in scripts]
        await asyncio.gather(*(self.node(n).pipeline(cmds) for n in await self.masters()))

    def dedicated(self) -> Cluster:
        return Cluster(self.base, [], connect_timeout=self.connect_timeout, timeout=self.timeout, slot_map=self.map)

    def describe(self) -> str:
        n = len(self.map.masters)
        return f"cluster, {n} master{'s' if n != 1 else ''}" if n else "cluster"

    async def close(self) -> None:
        nodes, self._nodes = list(self._nodes.values()), {}
        await asyncio.gather(*(c.close() for c in nodes))
