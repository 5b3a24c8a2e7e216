"""The one seam between the Redis backend and the wire: the :class:`Transport`
interface and its one-server implementation.

Every topology speaks the same small interface: one command, a pipeline, Lua
scripts by sha (loaded on NOSCRIPT), replica confirmation (WAIT) and a
dedicated connection for blocking reads. Production uses jobcore's lean
multiplexed client (``resp.py``) for a single server (:class:`Standalone`, here),
a Redis Cluster (``cluster.py``) and Sentinel (``sentinel.py``); ``auto.py``
picks one for a URL. ``redispy.py`` adapts a redis-py client (fakeredis in
tests, or a user's own client) to the same interface, so the backend has one
code path.

Replies are raw RESP2 values (bytes, ints, lists); error replies are
:class:`resp.RespError` (its ``code`` says which), lost connections
:class:`resp.RespConnectionError`.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

from jobcore.redis import resp
from jobcore.redis.resp import Arg, RespError, Script

Command = Sequence[Arg]


class ReplicasNotConfirmed(Exception):
    """Fewer replicas than asked acknowledged a write before the timeout."""

    def __init__(self, acked: int, wanted: int) -> None:
        super().__init__(f"only {acked} of {wanted} replica(s) acknowledged the write in time")
        self.acked = acked
        self.wanted = wanted


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
        redo = [i for i, r in enumerate(replies) if isinstance(r, RespError) and r.code == "NOSCRIPT"]
        if redo:
            await self.load_scripts(list({calls[i][0].sha: calls[i][0] for i in redo}.values()))
            again, acked_again = await self._send([commands[i] for i in redo], confirm)
            acked = min(acked, acked_again)
            for i, r in zip(redo, again, strict=True):
                replies[i] = r
        if raise_on_error:
            raise_error_reply(replies)
        if confirm is not None and acked < confirm[0]:
            raise ReplicasNotConfirmed(acked, confirm[0])
        return replies

    async def _send(self, commands: list[list[Arg]], confirm: tuple[int, int] | None) -> tuple[list[Any], int]:
        if confirm is None:
            return await self.pipeline(commands, raise_on_error=False), 0
        return await self.confirmed(commands, *confirm)


def raise_error_reply(replies: Sequence[Any]) -> None:
    """A pipeline's ``raise_on_error``: the first error reply among ``replies`` raised."""
    for r in replies:
        if isinstance(r, RespError):
            raise r


class Standalone(resp.Client, Transport):
    """One server (or a primary found by Sentinel): the lean client as it is."""

    def dedicated(self) -> Standalone:
        return Standalone(self.address, connect_timeout=self.connect_timeout, timeout=self.timeout)

    def describe(self) -> str:
        return "standalone"
