"""The one seam between the Redis backend and the wire.

Every topology speaks the same small interface: one command, a pipeline, Lua
scripts by sha (loaded on NOSCRIPT), replica confirmation (WAIT) and a
dedicated connection for blocking reads. Production uses jobcore's lean
multiplexed client (``resp.py``) for a single server, a Redis Cluster (slot map,
per-node connections, MOVED/ASK) and Sentinel (primary discovery, failover
following); ``RedisPyTransport`` adapts a redis-py client (fakeredis in tests,
or a user's own client) to the same interface, so the backend has one code path.

Replies are raw RESP2 values (bytes, ints, lists); error replies are
:class:`resp.RespError`, lost connections :class:`resp.RespConnectionError`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import hashlib
import random
from collections.abc import Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, unquote

from jobcore.keys import SLOTS, key_slot
from jobcore.redis import resp
from jobcore.redis.resp import Address, Arg, RespConnectionError, RespError, Script

Command = Sequence[Arg]
MAX_REDIRECTS = 5

# Commands whose first key is not their first argument; the rest either take it
# first or take no key (routed anywhere, or after the command before them).
_KEYLESS = frozenset(
    {b"TIME", b"INFO", b"PING", b"SCRIPT", b"CLUSTER", b"CLIENT", b"WAIT", b"ROLE", b"ECHO", b"ASKING", b"READONLY"}
)


class ReplicasNotConfirmed(Exception):
    """Fewer replicas than asked acknowledged a write before the timeout."""

    def __init__(self, acked: int, wanted: int) -> None:
        super().__init__(f"only {acked} of {wanted} replica(s) acknowledged the write in time")
        self.acked = acked
        self.wanted = wanted


# ---- cluster key slots -------------------------------------------------------


def _b(value: Arg) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def key_of(command: Command) -> Arg | None:
    """The key a command is routed by in a cluster (all keys of one command or
    script share a slot in jobcore), or None for a command that takes none."""
    name = _b(command[0]).upper()
    if name in _KEYLESS:
        return None
    if name in (b"EVALSHA", b"EVAL", b"EVALSHA_RO", b"EVAL_RO", b"FCALL", b"FCALL_RO"):
        return command[3] if int(command[2]) > 0 else None
    if name in (b"XREADGROUP", b"XREAD"):
        for i, arg in enumerate(command):
            if _b(arg).upper() == b"STREAMS":
                return command[i + 1]
        return None
    return command[1] if len(command) > 1 else None


# ---- URLs ----------------------------------------------------------------------


def _hosts(netloc: str) -> tuple[str | None, str | None, list[tuple[str, int]]]:
    user = password = None
    if "@" in netloc:
        cred, _, netloc = netloc.rpartition("@")
        u, _, p = cred.partition(":")
        user, password = (unquote(u) or None), (unquote(p) if p else None)
    hosts = []
    for part in netloc.split(","):
        if not part:
            continue
        host, _, port = part.rpartition(":") if ":" in part else (part, "", "")
        try:
            hosts.append((host or "localhost", int(port) if port else 6379))
        except ValueError:
            raise ValueError(f"bad port in {part!r}") from None
    if not hosts:
        raise ValueError("the URL names no host")
    return user, password, hosts


def _split(url: str) -> tuple[str, str, str, dict[str, str]]:
    scheme, _, rest = url.partition("://")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    return scheme.lower(), netloc, path, {k: v[-1] for k, v in parse_qs(query).items()}


def _base_address(scheme: str, user: str | None, password: str | None, db: int, query: dict[str, str]) -> Address:
    """Auth, TLS and db for every server of a multi-host URL, read as resp reads one URL."""
    plain = "rediss" if scheme.startswith("rediss") else "redis"
    q = "&".join(f"{k}={v}" for k, v in query.items())
    a = resp.parse_url(f"{plain}://localhost/{db}" + (f"?{q}" if q else ""))
    pw = password if password is not None else query.get("password")
    return replace(a, username=user, password=pw)


def redacted(url: str) -> str:
    """A Redis URL as it may be printed: jobcore.display's one rule for every URL."""
    from jobcore.display import redacted_url

    return redacted_url(url)


# ---- the interface -------------------------------------------------------------


class Transport(abc.ABC):
    """What the backend needs of Redis, whatever the topology."""

    kind: str = "standalone"
    #: Every key of one command must share a slot (a cluster): no multi-type reads.
    single_slot: bool = False

    @abc.abstractmethod
    async def call(self, *args: Arg, timeout: float | None = None) -> Any:
        """One command; an error reply raises RespError."""

    @abc.abstractmethod
    async def pipeline(
        self, commands: Sequence[Command], *, raise_on_error: bool = True, timeout: float | None = None
    ) -> list[Any]:
        """Commands in one round trip (per node); replies in order."""

    @abc.abstractmethod
    def dedicated(self) -> Transport:
        """The same server(s) on connections of its own, for blocking commands."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    def describe(self) -> str:
        """The topology in a few words, for the console header and the CLI."""

    async def slot_owners(self) -> list[str] | None:
        """A cluster's master ("host:port") for each of its 16384 slots; None
        where one server holds every key."""
        return None

    async def on_every_master(self, *args: Arg) -> list[Any]:
        """One command (taking no key) on each master: the one server, or every
        master of a cluster."""
        return [await self.call(*args)]

    async def confirmed(self, commands: Sequence[Command], replicas: int, timeout_ms: int) -> tuple[list[Any], int]:
        """``commands`` then WAIT on the same connection: their replies, and how many
        replicas acknowledged them (the fewest, where several nodes took writes)."""
        replies = await self.pipeline([*commands, ["WAIT", replicas, timeout_ms]], raise_on_error=False)
        acked = replies.pop()
        return replies, acked if isinstance(acked, int) else 0

    async def load_scripts(self, scripts: Sequence[Script]) -> None:
        await self.pipeline([["SCRIPT", "LOAD", s.source] for s in scripts])

    async def run_scripts(
        self,
        calls: Sequence[tuple[Script, Sequence[Arg], Sequence[Arg]]],
        *,
        raise_on_error: bool = True,
        confirm: tuple[int, int] | None = None,
    ) -> list[Any]:
        """EVALSHA several scripts in one round trip, loading any the server lacks
        (a NOSCRIPT reply means that call did not run, so it is sent again).
        ``confirm=(replicas, timeout_ms)`` raises ReplicasNotConfirmed unless that
        many replicas acknowledged the writes."""
        commands = [s.command(k, a) for s, k, a in calls]
        replies, acked = await self._send(commands, confirm)
        redo = [i for i, r in enumerate(replies) if isinstance(r, RespError) and str(r).startswith("NOSCRIPT")]
        if redo:
            await self.load_scripts(list({calls[i][0].sha: calls[i][0] for i in redo}.values()))
            again, acked_again = await self._send([commands[i] for i in redo], confirm)
            acked = min(acked, acked_again)
            for i, r in zip(redo, again, strict=True):
                replies[i] = r
        if raise_on_error:
            for r in replies:
                if isinstance(r, RespError):
                    raise r
        if confirm is not None and acked < confirm[0]:
            raise ReplicasNotConfirmed(acked, confirm[0])
        return replies

    async def _send(self, commands: list[list[Arg]], confirm: tuple[int, int] | None) -> tuple[list[Any], int]:
        if confirm is None:
            return await self.pipeline(commands, raise_on_error=False), 0
        return await self.confirmed(commands, *confirm)


class Standalone(resp.Client, Transport):
    """One server (or a primary found by Sentinel): the lean client as it is."""

    def dedicated(self) -> Standalone:
        return Standalone(self.address, connect_timeout=self.connect_timeout, timeout=self.timeout)

    def describe(self) -> str:
        return "standalone"


# ---- Redis Cluster ---------------------------------------------------------------


def _redirect(err: RespError) -> tuple[str, int, str] | None:
    """("MOVED" | "ASK", slot, "host:port") for a redirection reply."""
    text = str(err)
    if text.startswith(("MOVED ", "ASK ")):
        kind, slot, addr = text.split()[:3]
        return kind, int(slot), addr
    return None


# Every node a cluster client of this process has seen, by the seed it started
# from: a later client (a clone, a reconnect) whose seed has died still finds
# the cluster through them.
_SEEN_NODES: dict[str, list[str]] = {}


KEY_SLOT_CACHE = 4096


class _SlotMap:
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
            slot = self._key_slots[key] = key_slot(_b(key))
        return self.slots[slot]

    async def refresh(self, cluster: Cluster) -> None:
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._refresh(cluster))
        await asyncio.shield(self._refreshing)

    async def _refresh(self, cluster: Cluster) -> None:
        errors = []
        candidates = list(dict.fromkeys([*self.masters, *self.known, *self.seeds]))
        for addr in candidates:
            try:
                reply = await cluster.node(addr).call("CLUSTER", "SLOTS")
            except (RespConnectionError, RespError) as exc:
                errors.append(f"{addr}: {exc}")
                continue
            slots = [""] * SLOTS
            masters: list[str] = []
            seed_host = addr.rpartition(":")[0]
            known: list[str] = []
            for start, end, primary, *replicas in reply:
                host = resp_str(primary[0]) or seed_host
                node = f"{host}:{int(primary[1])}"
                if node not in masters:
                    masters.append(node)
                known += [node, *(f"{resp_str(r[0]) or seed_host}:{int(r[1])}" for r in replicas)]
                slots[int(start) : int(end) + 1] = [node] * (int(end) - int(start) + 1)
            if "" in slots:
                errors.append(f"{addr}: not every slot is served")
                continue
            self.slots, self.masters, self.stale = slots, sorted(masters), False
            self.known = list(dict.fromkeys(known))
            for seed in self.seeds:
                _SEEN_NODES[seed] = self.known
            return
        raise RespConnectionError("no cluster node answered: " + "; ".join(errors), unsent=True)


def resp_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


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
        slot_map: _SlotMap | None = None,
    ) -> None:
        self.base = base
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.map = slot_map or _SlotMap(seeds)
        self._nodes: dict[str, Standalone] = {}

    def node(self, addr: str) -> Standalone:
        client = self._nodes.get(addr)
        if client is None:
            host, _, port = addr.rpartition(":")
            client = Standalone(
                replace(self.base.at(host, int(port)), db=0),
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
            for r in replies:
                if isinstance(r, RespError):
                    raise r
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

        try:
            if len(by_node) == 1:  # the usual single command: no task to gather
                ((node, idxs),) = by_node.items()
                await send(node, idxs)
            else:
                results = await asyncio.gather(*(send(n, i) for n, i in by_node.items()), return_exceptions=True)
                for r in results:
                    if isinstance(r, BaseException):
                        raise r
        except RespConnectionError:
            m.stale = True  # a node failed: its replica may be taking over
            raise
        for i, r in enumerate(replies):
            if isinstance(r, RespError) and (str(r).startswith(("MOVED ", "ASK ", "TRYAGAIN")) or _down(r)):
                replies[i], ack = await self._redirected(commands[i], r, confirm, timeout)
                acks.append(ack)
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
            where = _redirect(reply)
            if where is None:
                if not (str(reply).startswith("TRYAGAIN") or _down(reply)):
                    break
                # A slot mid-migration or a failover in progress: retry shortly.
                await asyncio.sleep(0.05 + random.random() * 0.1)
                await self.map.refresh(self)
                node = self.map.node(key_of(command))
                prefix: list[Command] = []
            else:
                kind, slot, node = where
                prefix = []
                if kind == "MOVED":
                    self.map.slots[slot] = node
                    self.map.stale = True
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


def _down(err: RespError) -> bool:
    return str(err).startswith("CLUSTERDOWN")


# ---- Sentinel ------------------------------------------------------------------


class Sentinel(Transport):
    """A primary found through Sentinel. The primary is asked for its ROLE before
    use; a lost connection, a READONLY reply or a ``+switch-master`` message makes
    the next command find the primary again. A command that certainly did not
    run (never sent, or refused as READONLY) is sent once more to the new one."""

    kind = "sentinel"

    def __init__(
        self,
        base: Address,
        sentinels: list[tuple[str, int]],
        service: str,
        *,
        sentinel_auth: tuple[str | None, str | None] = (None, None),
        connect_timeout: float = 5.0,
        timeout: float = 15.0,
        watch: bool = True,
    ) -> None:
        self.base = base
        self.sentinels = sentinels
        self.service = service
        self.sentinel_auth = sentinel_auth
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.watch = watch
        self._primary: Standalone | None = None
        self._finding: asyncio.Task[Standalone] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self.failovers = 0  # primaries followed after the first

    def _sentinel_address(self, host: str, port: int) -> Address:
        user, password = self.sentinel_auth
        return replace(self.base.at(host, port), db=0, username=user, password=password)

    async def primary(self) -> Standalone:
        p = self._primary
        if p is not None and p.is_usable:
            return p
        if self._finding is None or self._finding.done():
            self._finding = asyncio.ensure_future(self._find())
        return await asyncio.shield(self._finding)

    async def _find(self) -> Standalone:
        old = self._primary
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(self.connect_timeout, 2.0)
        last = "no sentinel answered"
        while True:
            for host, port in random.sample(self.sentinels, len(self.sentinels)):
                s = resp.Client(self._sentinel_address(host, port), connect_timeout=min(self.connect_timeout, 1.0))
                try:
                    addr = await s.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service, timeout=2.0)
                except (RespConnectionError, RespError) as exc:
                    last = f"sentinel {host}:{port}: {exc}"
                    continue
                finally:
                    await s.close()
                if not addr:
                    last = f"sentinel {host}:{port} knows no service {self.service!r}"
                    continue
                primary = Standalone(
                    self.base.at(resp_str(addr[0]), int(addr[1])),
                    connect_timeout=self.connect_timeout,
                    timeout=self.timeout,
                )
                try:
                    role = await primary.call("ROLE", timeout=2.0)
                except RespConnectionError as exc:
                    if isinstance(exc, resp.RespAuthError):
                        raise
                    last = f"primary {primary.address.where}: {exc}"
                    await primary.close()
                    continue
                if role and role[0] == b"master":
                    if old is not None:
                        self.failovers += 1
                        await old.close()
                    self._primary = primary
                    if self.watch and (self._watcher is None or self._watcher.done()):
                        self._watcher = asyncio.ensure_future(self._watch())
                    return primary
                last = f"{primary.address.where} is not a primary yet"
                await primary.close()
            if loop.time() > deadline:
                raise RespConnectionError(f"no primary for {self.service!r} from Sentinel ({last})", unsent=True)
            await asyncio.sleep(0.1)

    async def _watch(self) -> None:
        """Drop the primary the moment a sentinel announces a new one."""
        while True:
            for host, port in self.sentinels:
                conn = resp.Connection(self._sentinel_address(host, port), min(self.connect_timeout, 1.0))
                try:
                    await conn.open()
                    assert conn._proto is not None
                    conn._proto.on_push = self._on_message
                    conn.send([["SUBSCRIBE", "+switch-master"]])[0].cancel()
                    await conn.wait_closed()
                except (RespConnectionError, OSError):
                    pass
                finally:
                    conn.close()
                await asyncio.sleep(0.5)

    def _on_message(self, message: Any) -> None:
        if (
            isinstance(message, list)
            and len(message) == 3
            and message[0] == b"message"
            and _b(message[2]).split(b" ")[0] == self.service.encode()
        ):
            p = self._primary
            if p is not None:
                p.close_now()

    async def call(self, *args: Arg, timeout: float | None = None) -> Any:
        p = await self.primary()
        try:
            return await p.call(*args, timeout=timeout)
        except RespConnectionError as exc:
            if not exc.unsent:
                raise
        except RespError as exc:
            if not str(exc).startswith("READONLY"):
                raise
            p.close_now()
        return await (await self.primary()).call(*args, timeout=timeout)

    async def pipeline(
        self, commands: Sequence[Command], *, raise_on_error: bool = True, timeout: float | None = None
    ) -> list[Any]:
        p = await self.primary()
        try:
            replies = await p.pipeline(commands, raise_on_error=False, timeout=timeout)
        except RespConnectionError as exc:
            if not exc.unsent:
                raise
            replies = await (await self.primary()).pipeline(commands, raise_on_error=False, timeout=timeout)
        readonly = [i for i, r in enumerate(replies) if isinstance(r, RespError) and str(r).startswith("READONLY")]
        if readonly:
            p.close_now()
            again = await (await self.primary()).pipeline([commands[i] for i in readonly], raise_on_error=False)
            for i, r in zip(readonly, again, strict=True):
                replies[i] = r
        if raise_on_error:
            for r in replies:
                if isinstance(r, RespError):
                    raise r
        return replies

    async def confirmed(self, commands: Sequence[Command], replicas: int, timeout_ms: int) -> tuple[list[Any], int]:
        p = await self.primary()
        return await p.confirmed(commands, replicas, timeout_ms)

    def dedicated(self) -> Sentinel:
        return Sentinel(
            self.base,
            self.sentinels,
            self.service,
            sentinel_auth=self.sentinel_auth,
            connect_timeout=self.connect_timeout,
            timeout=self.timeout,
            watch=False,  # the blocking reader follows the same failovers through errors
        )

    def describe(self) -> str:
        p = self._primary
        return f"sentinel {self.service} → {p.address.where}" if p is not None else f"sentinel {self.service}"

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(BaseException):
                await self._watcher
        if self._finding is not None and not self._finding.done():
            self._finding.cancel()
        if self._primary is not None:
            await self._primary.close()
            self._primary = None


# ---- redis-py (fakeredis, or a client the user passes) ---------------------------


class RedisPyTransport(Transport):
    """A redis-py asyncio client behind the same interface, with its reply
    parsing switched off so replies are the same raw values as the lean client's."""

    def __init__(self, client: Any) -> None:
        self._r = client
        client.response_callbacks.clear()
        # fakeredis knows no "#!lua flags=" line: it gets the scripts without it, by their own sha.
        self._shas: dict[Arg, str] = {}

    async def call(self, *args: Arg, timeout: float | None = None) -> Any:
        try:
            return _resp2(await self._r.execute_command(*self._swap(args)))
        except Exception as exc:
            raise _from_redis_py(exc) from None

    def _swap(self, command: Command) -> Command:
        if command and command[0] == "EVALSHA" and command[1] in self._shas:
            return ["EVALSHA", self._shas[command[1]], *command[2:]]
        return command

    async def load_scripts(self, scripts: Sequence[Script]) -> None:
        for script in scripts:
            self._shas[script.sha] = hashlib.sha1(script.body.encode()).hexdigest()
        await self.pipeline([["SCRIPT", "LOAD", script.body] for script in scripts])

    async def pipeline(
        self, commands: Sequence[Command], *, raise_on_error: bool = True, timeout: float | None = None
    ) -> list[Any]:
        if not commands:
            return []
        commands = [self._swap(c) for c in commands]
        try:
            async with self._r.pipeline(transaction=False) as pipe:
                for c in commands:
                    pipe.execute_command(*c)
                replies: list[Any] = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            raise _from_redis_py(exc) from None
        out = [_from_redis_py(r) if isinstance(r, Exception) else _resp2(r) for r in replies]
        for r in out:
            if isinstance(r, RespConnectionError) or (raise_on_error and isinstance(r, RespError)):
                raise r
        return out

    def dedicated(self) -> RedisPyTransport:
        return self  # redis-py takes a pooled connection per blocking call

    def describe(self) -> str:
        return "standalone (redis-py client)"

    async def close(self) -> None:
        await self._r.aclose()


def _resp2(reply: Any) -> Any:
    """RESP2's shapes for what fakeredis answers in RESP3's: a map as a flat
    list, (member, score) pairs as a flat list."""
    if isinstance(reply, dict):
        return [x for kv in reply.items() for x in kv]
    first = reply[0] if reply and isinstance(reply, list) else None
    if isinstance(first, list) and len(first) == 2 and isinstance(first[1], float):
        return [x for pair in reply for x in pair]
    return reply


def _from_redis_py(exc: Exception) -> Exception:
    import redis.exceptions as rx

    if isinstance(exc, (rx.ConnectionError, rx.TimeoutError, OSError)):
        return RespConnectionError(str(exc))
    if isinstance(exc, rx.ResponseError):
        # redis-py strips the error code of replies it has a class for.
        prefix = {
            rx.NoScriptError: "NOSCRIPT",
            rx.ReadOnlyError: "READONLY",
            rx.BusyLoadingError: "LOADING",
            rx.NoPermissionError: "NOPERM",
        }
        for cls, code in prefix.items():
            if isinstance(exc, cls) and not str(exc).startswith(code):
                return RespError(f"{code} {exc}")
        return RespError(str(exc))
    return exc


# ---- opening ---------------------------------------------------------------------

SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster", "redis+sentinel", "rediss+sentinel")


class Auto(Transport):
    """A ``redis://`` or ``rediss://`` URL: a single server, or one node of a
    cluster (found by INFO cluster on first use, then every call goes straight
    to the transport it chose)."""

    def __init__(self, address: Address, *, connect_timeout: float, timeout: float) -> None:
        self.address = address
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.chosen: Transport | None = None
        self._choosing: asyncio.Task[Transport] | None = None

    async def _choose(self) -> Transport:
        if self.chosen is not None:
            return self.chosen
        if self._choosing is None or self._choosing.done():
            self._choosing = asyncio.ensure_future(self._detect())
        return await asyncio.shield(self._choosing)

    async def _detect(self) -> Transport:
        single = Standalone(self.address, connect_timeout=self.connect_timeout, timeout=self.timeout)
        chosen: Transport = single
        if self.address.path is None:
            seen = _SEEN_NODES.get(self.address.where, [])
            try:
                info = await single.call("INFO", "cluster")
            except RespError:
                info = b""  # INFO refused for this user: take it as a single server
            except RespConnectionError as exc:
                await single.close()
                if not (exc.unsent and seen):
                    raise
                info = b"cluster_enabled:1"  # the seed is down, but its cluster was seen
            except BaseException:
                await single.close()
                raise
            if b"cluster_enabled:1" in info:
                await single.close()
                seeds = [(self.address.host, self.address.port)]
                seeds += [(a.rpartition(":")[0], int(a.rpartition(":")[2])) for a in seen]
                chosen = Cluster(self.address, seeds, connect_timeout=self.connect_timeout, timeout=self.timeout)
        self.chosen = chosen
        # From here on, calls go straight to the chosen transport.
        self.call = chosen.call  # type: ignore[method-assign]
        self.pipeline = chosen.pipeline  # type: ignore[method-assign]
        self.confirmed = chosen.confirmed  # type: ignore[method-assign]
        self.load_scripts = chosen.load_scripts  # type: ignore[method-assign]
        self.kind, self.single_slot = chosen.kind, chosen.single_slot
        return chosen

    async def call(self, *args: Arg, timeout: float | None = None) -> Any:
        return await (await self._choose()).call(*args, timeout=timeout)

    async def pipeline(
        self, commands: Sequence[Command], *, raise_on_error: bool = True, timeout: float | None = None
    ) -> list[Any]:
        return await (await self._choose()).pipeline(commands, raise_on_error=raise_on_error, timeout=timeout)

    async def confirmed(self, commands: Sequence[Command], replicas: int, timeout_ms: int) -> tuple[list[Any], int]:
        return await (await self._choose()).confirmed(commands, replicas, timeout_ms)

    async def load_scripts(self, scripts: Sequence[Script]) -> None:
        await (await self._choose()).load_scripts(scripts)

    async def resolve(self) -> Transport:
        return await self._choose()

    async def slot_owners(self) -> list[str] | None:
        return await (await self._choose()).slot_owners()

    async def on_every_master(self, *args: Arg) -> list[Any]:
        return await (await self._choose()).on_every_master(*args)

    def dedicated(self) -> Transport:
        if self.chosen is not None:
            return self.chosen.dedicated()
        return Auto(self.address, connect_timeout=self.connect_timeout, timeout=self.timeout)

    def describe(self) -> str:
        return self.chosen.describe() if self.chosen is not None else "standalone"

    async def close(self) -> None:
        if self._choosing is not None and not self._choosing.done():
            self._choosing.cancel()
            with contextlib.suppress(BaseException):
                await self._choosing
        if self.chosen is not None:
            await self.chosen.close()


def open_transport(url: str, *, connect_timeout: float = 5.0, timeout: float = 15.0) -> Transport:
    """The transport for a URL (no I/O yet):

    - ``redis://``, ``rediss://``, ``unix://``: one server, or a cluster when the
      server says it is a cluster node;
    - ``redis+cluster://h1:p1,h2:p2[/0]``: a cluster, from these seed nodes;
    - ``redis+sentinel://[user:pass@]h1:26379,h2:26379/SERVICE[/DB]``
      (``?sentinel_password=`` and ``?sentinel_username=`` for the sentinels).
    """
    scheme = url.partition("://")[0].lower()
    if scheme not in SCHEMES:
        raise ValueError(f"unsupported Redis URL scheme {scheme!r}")
    if scheme in ("redis", "rediss", "unix"):
        return Auto(resp.parse_url(url), connect_timeout=connect_timeout, timeout=timeout)
    scheme, netloc, path, query = _split(url)
    user, password, hosts = _hosts(netloc)
    parts = [p for p in path.split("/") if p]
    if scheme.endswith("+cluster"):
        if parts and parts != ["0"]:
            raise ValueError("a Redis Cluster has only database 0")
        base = _base_address(scheme, user, password, 0, query)
        return Cluster(base, hosts, connect_timeout=connect_timeout, timeout=timeout)
    if not parts:
        raise ValueError("a Sentinel URL names its service: redis+sentinel://host:26379/SERVICE[/DB]")
    try:
        db = int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        raise ValueError(f"bad database number {parts[1]!r} in Redis URL") from None
    base = _base_address(scheme, user, password, db, query)
    auth = (query.get("sentinel_username"), query.get("sentinel_password"))
    return Sentinel(
        base, hosts, unquote(parts[0]), sentinel_auth=auth, connect_timeout=connect_timeout, timeout=timeout
    )
