"""The small RESP client: URL parsing, encoding, pipelining, scripts, failures."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from jobcore.redis.resp import Client, RespConnectionError, RespError, RespTimeout, Script, encode_command, parse_url
from jobcore.redis.transport import Standalone
from tests.support.servers import RedisServer, free_port


def test_parse_url_forms() -> None:
    a = parse_url("redis://user:p%40ss@db.example:6380/3")
    assert (a.host, a.port, a.db, a.username, a.password, a.tls) == ("db.example", 6380, 3, "user", "p@ss", False)
    b = parse_url("rediss://:secret@h/0?ssl_cert_reqs=none")
    assert (b.tls, b.tls_verify, b.password, b.username, b.port) == (True, False, "secret", None, 6379)
    u = parse_url("unix:///run/redis.sock?db=2")
    assert (u.path, u.db) == ("/run/redis.sock", 2)
    assert parse_url("redis://localhost").db == 0
    for bad in ("http://x", "redis://h/notanumber", "unix://", "redis://h:99999999/0"):
        with pytest.raises(ValueError):
            parse_url(bad)


def test_encode_command() -> None:
    assert encode_command(["SET", b"k", 12, 1.5]) == b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n$3\r\n1.5\r\n"
    with pytest.raises(TypeError):
        encode_command(["SET", None])  # type: ignore[list-item]


async def test_calls_pipelines_errors_and_concurrency(redis_url: str) -> None:
    c = Client(redis_url)
    try:
        assert await c.call("PING") == b"PONG"
        assert await c.pipeline([["SET", "a", "1"], ["INCR", "a"], ["GET", "a"]]) == [b"OK", 2, b"2"]
        with pytest.raises(RespError, match=r"WRONGTYPE|not an integer"):
            await c.pipeline([["SET", "s", "x"], ["INCR", "s"]])
        mixed = await c.pipeline([["INCR", "s"], ["GET", "a"]], raise_on_error=False)
        assert isinstance(mixed[0], RespError) and mixed[1] == b"2"
        # Many callers share one connection; each gets its own reply.
        results = await asyncio.gather(*[c.call("ECHO", str(i)) for i in range(500)])
        assert results == [str(i).encode() for i in range(500)]
    finally:
        await c.close()


async def test_scripts_load_themselves_after_a_script_flush(redis_url: str) -> None:
    c = Standalone(redis_url)
    s = Script("return {KEYS[1], ARGV[1]}")
    try:
        assert await c.run_scripts([(s, ["k"], ["v"])]) == [[b"k", b"v"]]
        await c.call("SCRIPT", "FLUSH")
        assert await c.run_scripts([(s, ["k2"], [b"\x00\xff"])]) == [[b"k2", b"\x00\xff"]]
        with pytest.raises(RespError):
            await c.run_scripts([(Script("return redis.call('NOPE')"), [], [])])
    finally:
        await c.close()


async def test_unreachable_and_reconnect(tmp_path: Path) -> None:
    dead = Client(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=1)
    with pytest.raises(RespConnectionError, match="cannot connect"):
        await dead.call("PING")
    server = RedisServer(tmp_path / "r")
    server.start()
    c = Client(server.url)
    try:
        assert await c.call("PING") == b"PONG"
        server.kill()
        with pytest.raises(RespConnectionError):
            await c.call("PING")
        server.start()
        assert await c.call("PING") == b"PONG"  # reconnects by itself
        # A connection cut while a request waits fails that request...
        blocked = asyncio.create_task(c.call("BLPOP", "nothing", 5))
        await asyncio.sleep(0.1)
        killer = Client(server.url)
        assert await killer.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes") >= 1
        await killer.close()
        with pytest.raises(RespConnectionError, match="connection"):
            await blocked
        # ...and the next call reconnects.
        assert await c.call("PING") == b"PONG"
    finally:
        await c.close()
        server.cleanup()


async def test_a_silent_server_times_out_instead_of_hanging(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "r")
    server.start()
    c = Client(server.url, timeout=0.3)
    try:
        assert server.proc is not None
        server.proc.send_signal(__import__("signal").SIGSTOP)
        with pytest.raises(RespTimeout):
            await c.call("PING")
        server.proc.send_signal(__import__("signal").SIGCONT)
        assert await c.call("PING") == b"PONG"
    finally:
        await c.close()
        server.cleanup()


async def test_password_and_db_selection(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "r")
    server.start()
    admin = Client(server.url)
    try:
        await admin.call("CONFIG", "SET", "requirepass", "s3cret")
        with pytest.raises(RespError, match="NOAUTH"):
            await Client(server.url).call("PING")
        authed = Client(f"redis://:s3cret@127.0.0.1:{server.port}/5")
        await authed.call("SET", "k", "in-db-5")
        wrong = Client(f"redis://:wrong@127.0.0.1:{server.port}/0")
        with pytest.raises(RespConnectionError, match="refused the connection"):
            await wrong.call("PING")
        check = Client(f"redis://:s3cret@127.0.0.1:{server.port}/0")
        assert await check.call("GET", "k") is None
        assert await check.pipeline([["SELECT", 5], ["GET", "k"]]) == [b"OK", b"in-db-5"]
        for cl in (authed, wrong, check):
            await cl.close()
    finally:
        await admin.close()
        server.cleanup()


async def test_a_cancelled_call_fails_only_itself(redis_url: str) -> None:
    """An asyncio.timeout around one call in a busy service: the others on the
    same connection get their own replies, and the connection stays up."""
    c = Standalone(redis_url)
    try:
        await c.call("PING")
        conn = c._conn

        async def slow() -> Any:
            # BLPOP on a key nobody pushes: its reply comes only after 0.3 s.
            return await c.call("BLPOP", "never", 0.3)

        async def one(i: int) -> Any:
            return await c.call("ECHO", str(i))

        cancelled = asyncio.ensure_future(slow())
        others = [asyncio.ensure_future(one(i)) for i in range(200)]
        await asyncio.sleep(0.01)
        cancelled.cancel()
        later = [asyncio.ensure_future(one(i)) for i in range(200, 400)]
        results = await asyncio.gather(*others, *later)
        assert results == [str(i).encode() for i in range(400)]
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        assert c._conn is conn and conn.is_open

        # Timeouts from asyncio.timeout around concurrent pipelines, too.
        async def timed(i: int) -> Any:
            try:
                async with asyncio.timeout(0.001 if i % 7 == 0 else 5):
                    return await c.pipeline([["ECHO", f"a{i}"], ["ECHO", f"b{i}"]])
            except TimeoutError:
                return None

        got = await asyncio.gather(*[timed(i) for i in range(300)])
        for i, r in enumerate(got):
            assert r is None or r == [f"a{i}".encode(), f"b{i}".encode()]
        assert c._conn is conn and conn.is_open
        assert await c.call("ECHO", "after") == b"after"
    finally:
        await c.close()
