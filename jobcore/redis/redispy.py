"""A redis-py asyncio client behind the :class:`Transport` interface: fakeredis
in tests, or a client the user passes. The edge of the wire layer: redis-py's
replies and exceptions become the lean client's (raw RESP2 values,
:class:`RespError` with its code, :class:`RespConnectionError`) here, so nothing
above knows which transport it has."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from typing import Any

from jobcore.redis.resp import Arg, RespConnectionError, RespError, Script
from jobcore.redis.transport import Command, Transport


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


@functools.cache
def _stripped_codes() -> dict[type, str]:
    """redis-py's classes for the error replies whose code it strips from the text."""
    import redis.exceptions as rx

    return {
        rx.NoScriptError: "NOSCRIPT",
        rx.ReadOnlyError: "READONLY",
        rx.NoPermissionError: "NOPERM",
        rx.OutOfMemoryError: "OOM",
        rx.ExecAbortError: "EXECABORT",
        rx.MovedError: "MOVED",
        rx.AskError: "ASK",
        rx.TryAgainError: "TRYAGAIN",
        rx.MasterDownError: "MASTERDOWN",
        rx.ClusterDownError: "CLUSTERDOWN",
        rx.ClusterCrossSlotError: "CROSSSLOT",
    }


def _from_redis_py(exc: Exception) -> Exception:
    import redis.exceptions as rx

    # LOADING and the AUTH refusals are ConnectionErrors in redis-py: lost connections here too.
    if isinstance(exc, (rx.ConnectionError, rx.TimeoutError, OSError)):
        return RespConnectionError(str(exc))
    if isinstance(exc, rx.ResponseError):
        codes = _stripped_codes()
        for cls in type(exc).__mro__:  # the most specific class: MovedError before AskError
            code = codes.get(cls)
            if code is not None:
                # The code as data; the text as the server sent it, for the messages that quote it.
                return RespError(f"{code} {exc}", code=code)
        return RespError(str(exc))  # its code is still in the text: read as the lean client reads it
    return exc
