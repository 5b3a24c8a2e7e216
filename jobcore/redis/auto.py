"""Which transport a URL gets: its scheme says Cluster or Sentinel; a
``redis://``, ``rediss://`` or ``unix://`` URL gets :class:`Auto`, which asks
the server on first use whether it is one node of a cluster."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from jobcore import url as urls
from jobcore.redis.cluster import Cluster, nodes_seen
from jobcore.redis.resp import Address, Arg, RespConnectionError, RespError, Script, shared_task
from jobcore.redis.sentinel import Sentinel
from jobcore.redis.transport import Command, Standalone, Transport


class Auto(Transport):
    """A ``redis://``, ``rediss://`` or ``unix://`` URL: a single server, or one node of a
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
            self._choosing = shared_task(self._detect())
        return await asyncio.shield(self._choosing)

    async def _detect(self) -> Transport:
        single = Standalone(self.address, connect_timeout=self.connect_timeout, timeout=self.timeout)
        chosen: Transport = single
        if self.address.path is None:
            seen = nodes_seen(self.address.where)
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
                seeds += [urls.node(a) for a in seen]
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
    """The transport for a URL (no I/O yet): see :mod:`jobcore.url` for its forms."""
    parsed = urls.parse(url)
    base = Address.of(parsed)
    if parsed.is_cluster:
        return Cluster(replace(base, db=0), list(parsed.hosts), connect_timeout=connect_timeout, timeout=timeout)
    if parsed.is_sentinel:
        assert parsed.service is not None  # the parser requires it
        return Sentinel(
            base,
            list(parsed.hosts),
            parsed.service,
            sentinel_auth=(parsed.sentinel_username, parsed.sentinel_password),
            connect_timeout=connect_timeout,
            timeout=timeout,
        )
    return Auto(base, connect_timeout=connect_timeout, timeout=timeout)
