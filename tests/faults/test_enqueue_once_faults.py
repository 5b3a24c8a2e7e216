"""Enqueue once under faults (issue 21): a producer whose call raised retries
it with the same key and never makes a second job, whether the reply was cut
after Redis ran the script or the replicas did not confirm it. Each test shows
the fault really happened: the same retry without a key makes a duplicate."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

import jobcore
from jobcore import EnqueueError, Job
from tests.support.servers import RedisServer


class Order(msgspec.Struct, kw_only=True):
    n: int


def order(n: int) -> Job[Order]:
    return Job(type="order", args=Order(n=n), account_id=7)


class ReplyCutter:
    """A TCP proxy to Redis that, once armed, passes the next request on and
    cuts the connection when Redis answers it: the write ran, its reply is lost."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.armed = False
        self.cuts = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        sr, sw = await asyncio.open_connection("127.0.0.1", self.port)

        async def up() -> None:
            while data := await cr.read(65536):
                sw.write(data)
                await sw.drain()

        async def down() -> None:
            while data := await sr.read(65536):
                if self.armed:
                    self.armed = False
                    self.cuts += 1
                    break  # Redis answered; the client never hears it
                cw.write(data)
                await cw.drain()

        tasks = [asyncio.ensure_future(up()), asyncio.ensure_future(down())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            t.cancel()
        for w in (cw, sw):
            w.close()


@pytest.fixture
async def cutter(server: RedisServer) -> AsyncIterator[tuple[ReplyCutter, str]]:
    proxy = ReplyCutter(server.port)
    port = await proxy.start()
    yield proxy, f"redis://127.0.0.1:{port}/0"
    await proxy.close()


async def pending(url: str) -> list[int]:
    async with jobcore.connect(url) as q:
        page = await q.pending("order", limit=100)
        return [j.args["n"] for j in page.jobs]


async def test_a_retry_after_the_reply_was_cut_makes_no_second_job(cutter: tuple[ReplyCutter, str], url: str) -> None:
    proxy, via = cutter
    q = jobcore.connect(via)
    try:
        await q.enqueue(order(0), key="warm")  # type listed, script loaded
        first = order(1)
        proxy.armed = True
        with pytest.raises(EnqueueError, match="not enqueued \\(or not confirmed\\)"):
            await q.enqueue(first, key="order-1")
        assert proxy.cuts == 1
        retry = order(1)  # the retried request builds its job anew: another id
        assert await q.enqueue(retry, key="order-1") == first.id
        # Without a key the same cut and retry make two jobs: the cut came after Redis ran it.
        proxy.armed = True
        with pytest.raises(EnqueueError):
            await q.enqueue(order(2))
        await q.enqueue(order(2))
    finally:
        await q.close()
    assert proxy.cuts == 2
    assert await pending(url) == [0, 1, 2, 2]


@pytest.fixture
def primary_and_replica(tmp_path: Path) -> AsyncIterator[tuple[RedisServer, RedisServer]]:
    primary = RedisServer(tmp_path / "primary")
    replica = RedisServer(tmp_path / "replica", replicaof=primary.port)
    try:
        primary.start()
        replica.start()
    except RuntimeError as exc:
        pytest.fail(f"cannot start a primary and its replica: {exc}", pytrace=False)
    yield primary, replica
    with contextlib.suppress(ProcessLookupError):
        if replica.proc is not None:
            replica.proc.send_signal(signal.SIGCONT)
    replica.cleanup()
    primary.cleanup()


async def linked(primary: RedisServer) -> None:
    for _ in range(100):
        if (
            int(primary.replication().get("connected_slaves", 0)) == 1
            and primary.replication()["slave0"].get("state") == "online"
        ):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the replica never linked")


async def test_with_replicas_1_and_the_replica_gone_retries_with_the_key_make_one_job(
    primary_and_replica: tuple[RedisServer, RedisServer],
) -> None:
    primary, replica = primary_and_replica
    await linked(primary)
    q = jobcore.connect(primary.url, replicas=1, replica_timeout_ms=1000)
    try:
        held = order(0)
        for _ in range(5):  # a loaded machine's replica may be late: retried with its key, as a producer would
            try:
                assert await q.enqueue(held, key="order-0") == held.id  # confirmed
                break
            except EnqueueError:
                await asyncio.sleep(0.5)
        else:
            raise AssertionError("the replica never confirmed a write")
        assert replica.proc is not None
        replica.proc.send_signal(signal.SIGSTOP)  # the replica hangs: no acknowledgement comes
        first = order(1)
        for _ in range(3):  # each retry unconfirmed, none adds a job
            with pytest.raises(EnqueueError, match="not confirmed"):
                await q.enqueue(order(1), key="order-1")
        with pytest.raises(EnqueueError, match="not confirmed"):
            await q.enqueue(order(2))  # the control: an unkeyed job lands unconfirmed...
        replica.proc.send_signal(signal.SIGCONT)
        await linked(primary)
        first_id = await q.enqueue(first, key="order-1")
        assert first_id != first.id  # the job of the first unconfirmed call, not this one
        await q.enqueue(order(2))  # ...and its retry is a second one
    finally:
        await q.close()
    assert await pending(primary.url) == [0, 1, 2, 2]
    async with jobcore.connect(replica.url) as on_replica:  # the replica holds the same
        page = await on_replica.pending("order", limit=100)
        assert [j.args["n"] for j in page.jobs] == [0, 1, 2, 2]
        assert next(j.job_id for j in page.jobs if j.args["n"] == 1) == str(first_id)
