"""A small asyncio Redis client for jobcore's hot paths.

One TCP (or unix, or TLS) connection carries any number of concurrent callers:
RESP replies come back in request order, so each write appends a future to a
FIFO and the reader resolves them in turn. There is no pool and no per-call
lock, which is what makes a single enqueue one cheap round trip. Blocking
commands get a connection of their own (``Client.dedicated()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import ssl
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import hiredis

from jobcore import url as urls

log = logging.getLogger("jobcore.redis")
_unverified_said: set[str] = set()  # servers already warned about, once per process

Arg = bytes | str | int | float


def error_code(message: str) -> str:
    """The code of an error reply: its first word when that is one (``NOGROUP``,
    ``MOVED``, ``NOPERM``, ...), else ``ERR``. Read once, here; nothing above matches text."""
    word = message.split(" ", 1)[0]
    return word if word.isascii() and word.isalpha() and word.isupper() else "ERR"


T = TypeVar("T")


class RespError(Exception):
    """An error reply from the server (``-ERR ...``); ``code`` is its code as data."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code if code is not None else error_code(message)


class RespConnectionError(ConnectionError):
    """The connection failed or was lost; the command may or may not have run
    (``unsent``: it was never written, so it certainly did not)."""

    def __init__(self, message: str, *, unsent: bool = False) -> None:
        super().__init__(message)
        self.unsent = unsent


class RespAuthError(RespConnectionError):
    """The server refused our credentials or database (AUTH, SELECT); ``code`` is the
    refusal's code (``WRONGPASS``, ``NOAUTH``, ``NOPERM``, ...)."""

    def __init__(self, message: str, *, code: str, reply: str = "", unsent: bool = False) -> None:
        super().__init__(message, unsent=unsent)
        self.code = code
        self.reply = reply  # the refusal as the server worded it


class RespTimeout(RespConnectionError):
    """No reply in time; the connection was dropped so replies cannot get out of step."""


@dataclass(frozen=True, slots=True)
class Address:
    host: str = "localhost"
    port: int = 6379
    path: str | None = None  # unix socket
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    tls_verify: bool = True
    tls_ca_certs: str | None = None
    tls_certfile: str | None = None
    tls_keyfile: str | None = None
    tls_check_hostname: bool | None = None  # None: when verifying certificates
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, url: urls.RedisUrl) -> Address:
        """The first server a parsed URL names (its socket, else its first host),
        with the URL's auth, TLS and db."""
        host, port = url.hosts[0] if url.hosts else ("localhost", urls.DEFAULT_PORT)
        return cls(
            host=host,
            port=port,
            path=url.path,
            db=url.db,
            username=url.username,
            password=url.password,
            tls=url.tls,
            tls_verify=url.tls_verify,
            tls_ca_certs=url.tls_ca_certs,
            tls_certfile=url.tls_certfile,
            tls_keyfile=url.tls_keyfile,
            tls_check_hostname=url.tls_check_hostname,
            extra=url.query,
        )

    def at(self, host: str, port: int) -> Address:
        """The same settings (auth, TLS, db) for another server: a cluster node, a
        primary found through Sentinel."""
        return replace(self, host=host, port=port, path=None)

    @property
    def where(self) -> str:
        return self.path if self.path else f"{self.host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        ctx = ssl.create_default_context(cafile=self.tls_ca_certs)
        if self.tls_certfile:
            ctx.load_cert_chain(self.tls_certfile, self.tls_keyfile)
        if not self.tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            if self.where not in _unverified_said:
                _unverified_said.add(self.where)
                log.warning("TLS to %s: its certificate is not verified (ssl_cert_reqs=none): any server "
                            "there is trusted with jobs and the password", self.where)  # fmt: skip
        elif self.tls_check_hostname is not None:
            ctx.check_hostname = self.tls_check_hostname
        return ctx


def parse_url(url: str) -> Address:
    """``redis://[user:pass@]host[:port][/db]``, ``rediss://...``, ``unix:///path[?db=N]``: one server."""
    parsed = urls.parse(url)
    if parsed.scheme not in urls.SINGLE_SCHEMES:
        raise ValueError(f"unsupported Redis URL scheme {parsed.scheme!r}")
    return Address.of(parsed)


def encode_command(args: Sequence[Arg]) -> bytes:
    """RESP for one command; bytes, str, int and float arguments only (TypeError else)."""
    return _pack(tuple(args))


# hiredis's stub types the argument as a 1-tuple; it takes any number of items.
_pack: Callable[[tuple[Arg, ...]], bytes] = hiredis.pack_command  # type: ignore[assignment]


class _Protocol(asyncio.Protocol):
    """Replies resolve waiters in order. One timer per connection watches the
    oldest waiter's deadline (replies come in order, so while it waits every
    later one does too): no timer per call."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.waiters: deque[asyncio.Future[Any]] = deque()
        self.deadlines: deque[tuple[float, float]] = deque()  # (loop time, limit) per waiter
        self.transport: asyncio.Transport | None = None
        self.lost: Exception | None = None
        self.loop = asyncio.get_running_loop()
        self.closed = self.loop.create_future()
        self._timer: asyncio.TimerHandle | None = None
        # A subscribed connection: replies nobody waits for (pub/sub messages) go here.
        self.on_push: Callable[[Any], None] | None = None

    def expect(self, futs: list[asyncio.Future[Any]], limit: float) -> None:
        deadline = self.loop.time() + limit
        self.waiters.extend(futs)
        self.deadlines.extend([(deadline, limit)] * len(futs))
        if self._timer is None:
            self._timer = self.loop.call_at(self.deadlines[0][0], self._check_deadline)

    def _check_deadline(self) -> None:
        self._timer = None
        if not self.deadlines:
            return
        deadline, limit = self.deadlines[0]
        if deadline <= self.loop.time():
            # Drop the connection so no late reply is read as another caller's.
            self._fail(RespTimeout(f"no reply from Redis within {limit:g}s"))
            if self.transport is not None:
                self.transport.close()
            return
        self._timer = self.loop.call_at(deadline, self._check_deadline)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while True:
            try:
                reply = self.reader.gets()
            except hiredis.ProtocolError as exc:
                self._fail(RespConnectionError(f"protocol error: {exc}"))
                if self.transport:
                    self.transport.close()
                return
            if reply is False:
                return
            if not self.waiters:
                if self.on_push is not None:
                    self.on_push(reply)
                continue
            fut = self.waiters.popleft()
            self.deadlines.popleft()
            if not fut.done():  # a cancelled caller's reply is dropped here, by position
                fut.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(RespConnectionError(f"connection lost: {exc}" if exc else "connection closed by server"))
        if not self.closed.done():
            self.closed.set_result(None)

    def _fail(self, exc: Exception) -> None:
        self.lost = exc
        self.deadlines.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_exception(exc)


class Connection:
    """One connection. ``send`` pipelines; replies resolve futures in order."""

    def __init__(self, address: Address, connect_timeout: float = 5.0) -> None:
        self.address = address
        self.connect_timeout = connect_timeout
        self._proto: _Protocol | None = None

    @property
    def is_open(self) -> bool:
        p = self._proto
        return p is not None and p.lost is None and p.transport is not None and not p.transport.is_closing()

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        a = self.address
        try:
            async with asyncio.timeout(self.connect_timeout):
                if a.path:
                    _, proto = await loop.create_unix_connection(_Protocol, a.path)
                else:
                    _, proto = await loop.create_connection(_Protocol, a.host, a.port, ssl=a.ssl_context())
        except TimeoutError:
            raise RespConnectionError(f"timed out connecting to {self._where()}", unsent=True) from None
        except ssl.SSLError as exc:
            raise RespConnectionError(
                f"TLS handshake with {self._where()} failed: {exc.reason or exc}", unsent=True
            ) from None
        except OSError as exc:
            raise RespConnectionError(
                f"cannot connect to {self._where()}: {exc.strerror or exc}", unsent=True
            ) from None
        self._proto = proto
        hello: list[list[Arg]] = []
        if a.password is not None:
            hello.append(["AUTH", a.username, a.password] if a.username else ["AUTH", a.password])
        if a.db:
            hello.append(["SELECT", a.db])
        if hello:
            for reply in await asyncio.gather(*self.send(hello)):
                if isinstance(reply, Exception):
                    self.close()
                    code = reply.code if isinstance(reply, RespError) else error_code(str(reply))
                    raise RespAuthError(
                        f"{self._where()} refused the connection: {reply}", code=code, reply=str(reply), unsent=True
                    )

    def _where(self) -> str:
        return self.address.where

    def send(self, commands: Sequence[Sequence[Arg]], timeout: float = 15.0) -> list[asyncio.Future[Any]]:
        """Write commands in one go; one future per reply, in order, each failed
        with RespTimeout (and the connection dropped) if no reply in ``timeout`` s."""
        p = self._proto
        if p is None or p.transport is None or p.lost is not None or p.transport.is_closing():
            raise RespConnectionError("not connected", unsent=True)
        data = b"".join([_pack(tuple(c)) for c in commands])  # TypeError before anything is sent
        futs = [p.loop.create_future() for _ in commands]
        p.expect(futs, timeout)
        p.transport.write(data)
        return futs

    def listen(self, on_push: Callable[[Any], None]) -> None:
        """Hand every reply nobody waits for (a subscribed connection's messages) to ``on_push``."""
        if self._proto is None:
            raise RespConnectionError("not connected", unsent=True)
        self._proto.on_push = on_push

    def close(self) -> None:
        p = self._proto
        if p is not None and p.transport is not None:
            p.transport.close()
            p._fail(RespConnectionError("connection closed"))

    async def wait_closed(self) -> None:
        if self._proto is not None:
            await self._proto.closed


class Script:
    """A Lua script called by EVALSHA, loaded on NOSCRIPT (e.g. after a restart)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    @property
    def body(self) -> str:
        """The source without its ``#!lua flags=...`` line (for servers that know none)."""
        if self.source.startswith("#!"):
            return self.source.partition("\n")[2]
        return self.source

    def command(self, keys: Sequence[Arg], args: Sequence[Arg]) -> list[Arg]:
        return ["EVALSHA", self.sha, len(keys), *keys, *args]


class Client:
    """A multiplexed connection that reconnects on demand.

    ``timeout`` bounds every reply: a server that stops answering gets its
    connection dropped (and the callers an error) instead of hanging them.
    """

    def __init__(self, target: str | Address, *, connect_timeout: float = 5.0, timeout: float = 15.0) -> None:
        self.address = parse_url(target) if isinstance(target, str) else target
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self._conn: Connection | None = None
        self._opening: asyncio.Task[Connection] | None = None

    async def _connection(self) -> Connection:
        conn = self._conn
        if conn is not None and conn.is_open:
            return conn
        if self._opening is None or self._opening.done():
            self._opening = shared_task(self._open())
        return await asyncio.shield(self._opening)

    async def _open(self) -> Connection:
        conn = Connection(self.address, self.connect_timeout)
        await conn.open()
        self._conn = conn
        return conn

    async def pipeline(
        self, commands: Sequence[Sequence[Arg]], *, timeout: float | None = None, raise_on_error: bool = True
    ) -> list[Any]:
        """Send commands in one write; return their replies in order."""
        if not commands:
            return []
        conn = self._conn
        if conn is None or not conn.is_open:
            conn = await self._connection()
        futs = conn.send(commands, self.timeout if timeout is None else timeout)
        replies = await self._wait(conn, futs)
        if raise_on_error:
            for r in replies:
                if isinstance(r, hiredis.ReplyError):
                    raise RespError(str(r))
        return [RespError(str(r)) if isinstance(r, hiredis.ReplyError) else r for r in replies]

    @staticmethod
    async def _wait(conn: Connection, futs: list[asyncio.Future[Any]]) -> list[Any]:
        try:
            if len(futs) == 1:
                return [await futs[0]]
            # Replies resolve in order (a lost connection fails them all): once
            # the last is in, all are.
            await futs[-1]
            return [f.result() for f in futs]
        except BaseException:
            # Cancelled: the replies still come and are dropped by position
            # (their futures are done), so the connection stays up for the others.
            for f in futs:
                f.cancel()
            _retrieved(futs)
            raise

    async def call(self, *args: Arg, timeout: float | None = None) -> Any:
        """One command, one reply: pipeline()'s path without its lists (the single
        enqueue is this call, so every step here counts)."""
        conn = self._conn
        if conn is None or not conn.is_open:
            conn = await self._connection()
        (fut,) = conn.send((args,), self.timeout if timeout is None else timeout)
        reply = await fut  # cancelled: the reply is dropped by position when it comes
        if isinstance(reply, hiredis.ReplyError):
            raise RespError(str(reply))
        return reply

    @property
    def is_usable(self) -> bool:
        """Connected and not dropped (a dropped client's next call reconnects)."""
        return self._conn is not None and self._conn.is_open

    def close_now(self) -> None:
        """Drop the connection at once: waiting callers get a connection error."""
        if self._conn is not None:
            self._conn.close()

    def dedicated(self) -> Client:
        """A client with its own connection, for blocking commands."""
        return Client(self.address, connect_timeout=self.connect_timeout, timeout=self.timeout)

    async def close(self) -> None:
        if self._opening is not None and not self._opening.done():
            self._opening.cancel()
            with contextlib.suppress(BaseException):
                await self._opening
        if self._conn is not None:
            self._conn.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._conn.wait_closed(), 1)
            self._conn = None


def shared_task(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """A task several callers await through ``asyncio.shield``: its failure is read
    when it ends, so one whose callers all gave up is theirs, not a logged leak."""
    task = asyncio.ensure_future(coro)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    return task


def _retrieved(futs: list[asyncio.Future[Any]]) -> None:
    """Mark the batch's failures as seen (the first one is raised to the caller)."""
    for f in futs:
        if f.done() and not f.cancelled():
            f.exception()


def parse_info(raw: Any) -> dict[str, str]:
    """INFO-style text ("key:value" lines, "#" section heads) as a dict."""
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and not key.startswith("#"):
            out[key.strip()] = value.strip()
    return out
