"""Sentinel: the primary found through the sentinels, checked by ROLE, and
followed through a failover."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from jobcore.redis import resp
from jobcore.redis.replies import as_bytes, text
from jobcore.redis.resp import Address, Arg, RespConnectionError, RespError, shared_task
from jobcore.redis.transport import Command, Standalone, Transport, raise_error_reply


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

    def _sentinel_address(self, host: str, port: int) -> Address:
        user, password = self.sentinel_auth
        return replace(self.base.at(host, port), db=0, username=user, password=password)

    async def primary(self) -> Standalone:
        p = self._primary
        if p is not None and p.is_usable:
            return p
        if self._finding is None or self._finding.done():
            self._finding = shared_task(self._find())
        return await asyncio.shield(self._finding)

    async def _find(self) -> Standalone:
        old = self._primary
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(self.connect_timeout, 2.0)
        last = "no sentinel answered"
        denied: RespError | None = None  # a sentinel refused this user: say so, not "unreachable"
        while True:
            for host, port in random.sample(self.sentinels, len(self.sentinels)):
                s = resp.Client(self._sentinel_address(host, port), connect_timeout=min(self.connect_timeout, 1.0))
                try:
                    addr = await s.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service, timeout=2.0)
                except (RespConnectionError, RespError) as exc:
                    last = f"sentinel {host}:{port}: {exc}"
                    if isinstance(exc, RespError) and exc.code == "NOPERM":
                        denied = RespError(f"{exc} (sentinel {host}:{port})", code="NOPERM")
                    continue
                finally:
                    await s.close()
                if not addr:
                    last = f"sentinel {host}:{port} knows no service {self.service!r}"
                    continue
                primary = Standalone(
                    self.base.at(text(addr[0]), int(addr[1])),
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
                        await old.close()
                    self._primary = primary
                    if self.watch and (self._watcher is None or self._watcher.done()):
                        self._watcher = asyncio.ensure_future(self._watch())
                    return primary
                last = f"{primary.address.where} is not a primary yet"
                await primary.close()
            if loop.time() > deadline:
                if denied is not None:
                    raise denied
                raise RespConnectionError(f"no primary for {self.service!r} from Sentinel ({last})", unsent=True)
            await asyncio.sleep(0.1)

    async def _watch(self) -> None:
        """Drop the primary the moment a sentinel announces a new one."""
        while True:
            for host, port in self.sentinels:
                conn = resp.Connection(self._sentinel_address(host, port), min(self.connect_timeout, 1.0))
                try:
                    await conn.open()
                    conn.listen(self._on_message)
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
            and as_bytes(message[2]).split(b" ")[0] == self.service.encode()
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
            if exc.code != "READONLY":
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
        readonly = [i for i, r in enumerate(replies) if isinstance(r, RespError) and r.code == "READONLY"]
        if readonly:
            p.close_now()
            again = await (await self.primary()).pipeline([commands[i] for i in readonly], raise_on_error=False)
            for i, r in zip(readonly, again, strict=True):
                replies[i] = r
        if raise_on_error:
            raise_error_reply(replies)
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
