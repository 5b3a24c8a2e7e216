"""The Redis backend's read side: what a long-lived reader (a console) keeps
between refreshes, and the rows it builds from that."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from jobcore import Job
from jobcore.records import InFlightJob, Outcome
from jobcore.redis.backend import RedisQueue
from jobcore.redis.inflight import InFlightCache
from tests.conftest import fake_queue


def test_in_flight_rows_are_immutable_values() -> None:
    at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    shown = ("job-1", 42, "acct-42", "org-9", 777, {"reservation_id": 777}, None)
    row = InFlightJob("launch", "1-0", "w1", at, 1.5, 2, *shown)
    assert row == InFlightJob("launch", "1-0", "w1", at, 1.5, 2, *shown) and row.error is None
    with pytest.raises(AttributeError):
        row.worker = "w2"  # type: ignore[misc]
    assert msgspec.structs.replace(row, worker="w2").worker == "w2" and row.worker == "w1"


async def test_a_repeat_refresh_reads_no_payloads_and_forgets_settled_entries(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    q = RedisQueue(redis_url)
    read: list[bytes] = []
    read_entries = q._reads._read_entries

    async def counted(missing: dict[str, list[bytes]]) -> None:
        read.extend(i for ids in missing.values() for i in ids)
        await read_entries(missing)

    monkeypatch.setattr(q._reads, "_read_entries", counted)
    try:
        await q.register_types({"a": {}, "b": {}})
        await q.enqueue_many([Job(type=t, args={"n": i}) for i in range(30) for t in ("a", "b")])
        taken = await q.fetch("w1", ["a"], 20, 0) + await q.fetch("w1", ["b"], 20, 0)
        assert len(await q.in_flight()) == 40
        assert len(read) == 40
        for _ in range(3):
            assert len(await q.in_flight()) == 40
            assert len((await q.dashboard(10)).in_flight) == 10
        assert len(read) == 40
        # Settled entries are forgotten; new ones are read once.
        await q.settle("w1", [Outcome(d.job_type, d.entry_id, "ack") for d in taken[:30]])
        more = await q.fetch("w2", ["a", "b"], 5, 0)
        rows = await q.in_flight()
        assert {r.entry_id for r in rows} == {d.entry_id for d in taken[30:] + more}
        assert sorted(read[40:]) == sorted(d.entry_id.encode() for d in more)
        assert len(q._reads._in_flight_cache) == len(rows)
        await q.settle("w1", [Outcome(d.job_type, d.entry_id, "ack") for d in taken[30:]])
        await q.settle("w2", [Outcome(d.job_type, d.entry_id, "ack") for d in more])
        assert await q.in_flight() == []
        assert len(q._reads._in_flight_cache) == 0
    finally:
        await q.close()


@pytest.mark.parametrize("backend", ["fakeredis", "redis"])
async def test_an_entry_settled_before_its_payload_is_read_is_left_out(
    backend: str, request: pytest.FixtureRequest
) -> None:
    q = fake_queue() if backend == "fakeredis" else RedisQueue(request.getfixturevalue("redis_url"))
    try:
        await q.register_types({"a": {}})
        await q.enqueue_many([Job(type="a", args={"n": i}) for i in range(2)])
        d1, d2 = await q.fetch("w1", ["a"], 2, 0)
        await q.settle("w1", [Outcome("a", d1.entry_id, "ack")])
        # As if a refresh had listed both just before the ack.
        await q._reads._read_entries({"a": [d1.entry_id.encode(), d2.entry_id.encode()]})
        assert q._reads._in_flight_cache.missing({"a": [[d1.entry_id.encode()], [d2.entry_id.encode()]]}) == {
            "a": [d1.entry_id.encode()]
        }
        # An entry deleted by hand while in flight shows as a row without payload.
        await q.transport.call("XDEL", q.keys.of_type("a").stream, d2.entry_id)
        q._reads._in_flight_cache = InFlightCache()
        (row,) = await q.in_flight()
        assert (row.entry_id, row.error, row.attempt) == (d2.entry_id, "entry has no payload", 1)
    finally:
        await q.close()


async def test_in_flight_rows_survive_redis_forgetting_the_scripts(redis_url: str) -> None:
    q = RedisQueue(redis_url)
    try:
        await q.register_types({"a": {}})
        await q.enqueue_many([Job(type="a", args={"n": i}) for i in range(3)])
        got = await q.fetch("w1", ["a"], 3, 0)
        await q.transport.call("SCRIPT", "FLUSH")
        dash = await q.dashboard()
        assert dash.stats.types["a"].in_flight == 3
        assert sorted(r.entry_id for r in dash.in_flight) == sorted(d.entry_id for d in got)
    finally:
        await q.close()


async def test_a_clone_has_connections_of_its_own_lean_ones_included(redis_url: str) -> None:
    q = RedisQueue(redis_url, socket_timeout=7.0)
    c = q.clone()
    try:
        assert c.transport is not q.transport
        assert c._socket_timeout == 7.0
        await c.enqueue(Job(type="launch", args={"reservation_id": 1}))
        assert (await q.stats()).types["launch"].pending == 1
    finally:
        await c.close()
        await q.close()


async def test_a_clone_of_a_fakeredis_queue_keeps_its_client_factory() -> None:
    q = fake_queue()
    c = q.clone()
    assert c._client_factory is q._client_factory and c.transport is not q.transport
    await c.close()
    await q.close()
