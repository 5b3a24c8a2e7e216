"""Enqueue once by key (issue 21) on every backend and topology: a second
enqueue of a type with a live key for the same account adds nothing and
returns the first job's id; keys are per account, lapse after their window,
go with the type when it is removed, and are checked before anything is sent."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import pytest

import jobcore
from jobcore import EnqueueError, Identity, Job
from jobcore.model import decode_envelope
from jobcore.records import Outcome


class Order(msgspec.Struct, kw_only=True):
    n: int


def order(n: int, account: int = 1, job_type: str = "order") -> Job[Order]:
    return Job(type=job_type, args=Order(n=n), account_id=account, identity=Identity(account_number=f"a{account}"))


async def waiting(q: jobcore.Queue, job_type: str = "order") -> list[tuple[int, int]]:
    """(account, n) of each waiting job, oldest first."""
    page = await q.pending(job_type, limit=1000)
    return [(j.account_id, j.args["n"]) for j in page.jobs]


async def test_a_second_enqueue_with_the_same_key_adds_nothing_and_returns_the_first_id(queue: jobcore.Queue) -> None:
    first = order(1)
    assert await queue.enqueue(first, key="order-77") == first.id
    again = order(2)
    assert await queue.enqueue(again, key="order-77") == first.id
    other = order(3)
    assert await queue.enqueue(other, key="order-78") == other.id
    plain = order(4)
    assert await queue.enqueue(plain) == plain.id
    assert await waiting(queue) == [(1, 1), (1, 3), (1, 4)]


async def test_keys_are_per_account_and_per_type(queue: jobcore.Queue) -> None:
    a, b, c = order(1, account=1), order(2, account=2), order(3, account=1, job_type="refund")
    for j in (a, b, c):
        assert await queue.enqueue(j, key="k") == j.id
    assert await waiting(queue) == [(1, 1), (2, 2)]
    assert await waiting(queue, "refund") == [(1, 3)]


async def test_enqueue_many_takes_a_key_per_job_in_order_duplicates_within_the_batch_too(
    queue: jobcore.Queue,
) -> None:
    held = order(0)
    await queue.enqueue(held, key="k0")
    jobs = [order(n) for n in range(1, 7)]
    keys = ["k1", None, "k0", "k1", None, "k2"]
    ids = await queue.enqueue_many(jobs, keys=keys)
    assert ids == [jobs[0].id, jobs[1].id, held.id, jobs[0].id, jobs[4].id, jobs[5].id]
    assert await waiting(queue) == [(1, 0), (1, 1), (1, 2), (1, 5), (1, 6)]
    with pytest.raises(ValueError, match="one entry per job"):
        await queue.enqueue_many([order(9)], keys=["a", "b"])


async def test_a_partitioned_type_keeps_each_key_with_its_account_partition(queue: jobcore.Queue) -> None:
    assert await queue.set_partitions("order", 4) == 4
    jobs = [order(n, account=n % 6) for n in range(12)]
    ids = await queue.enqueue_many(jobs, keys=[f"k{n % 6}" for n in range(12)])
    assert ids == [jobs[n % 6].id for n in range(12)]
    assert sorted(await waiting(queue)) == sorted((n, n) for n in range(6))


async def test_the_key_holds_after_its_job_ran_and_lapses_after_its_window(queue: jobcore.Queue) -> None:
    queue.key_ttl_ms = 1_500
    await queue.register_types({"order": {"type": "object"}})
    first = order(1)
    await queue.enqueue(first, key="k")
    got = await queue.fetch("w1", ["order"], 1, 0)
    await queue.settle("w1", [Outcome("order", got[0].entry_id, "ack", 1)])
    assert await queue.enqueue(order(2), key="k") == first.id  # ran, and still held
    assert (await queue.stats()).types["order"].pending == 0
    await asyncio.sleep(1.6)
    late = order(3)
    assert await queue.enqueue(late, key="k") == late.id
    assert await queue.enqueue(order(4), key="k") == late.id
    assert await waiting(queue) == [(1, 3)]


async def test_removing_a_type_removes_its_keys(queue: jobcore.Queue) -> None:
    first = order(1)
    await queue.enqueue(first, key="k")
    assert await queue.delete_pending("order", all=True) == 1
    assert await queue.enqueue(order(2), key="k") == first.id  # deleted, the key still held
    await queue.remove_type("order")
    again = order(3)
    assert await queue.enqueue(again, key="k") == again.id
    assert await waiting(queue) == [(1, 3)]


@pytest.mark.parametrize("bad", ["", 7, "x" * 513])
async def test_a_bad_key_is_refused_before_any_job_of_the_batch_is_sent(queue: jobcore.Queue, bad: object) -> None:
    with pytest.raises(EnqueueError, match="enqueue key must be a non-empty string"):
        await queue.enqueue_many([order(1), order(2)], keys=["fine", bad])  # type: ignore[list-item]
    assert "order" not in await queue.job_types()


async def test_a_keyed_payload_is_the_same_envelope_as_an_unkeyed_one(queue: jobcore.Queue) -> None:
    await queue.register_types({"order": {"type": "object"}})
    j = order(5)
    await queue.enqueue(j, key="k")
    got = await queue.fetch("w1", ["order"], 1, 0)
    env = decode_envelope(got[0].raw or b"")
    assert env.id == j.id and env.account_id == 1 and env.type == "order"


def test_the_key_window_comes_from_connect_or_the_url() -> None:
    assert jobcore.connect("memory://").key_ttl_ms == 24 * 3600 * 1000
    assert jobcore.connect("memory://?key_ttl_s=90").key_ttl_ms == 90_000
    assert jobcore.connect("redis://127.0.0.1:1/0?key_ttl_s=5", key_ttl=60).key_ttl_ms == 60_000
    with pytest.raises(ValueError, match="key_ttl_s in the queue URL must be a number"):
        jobcore.connect("memory://?key_ttl_s=soon")
    with pytest.raises(ValueError, match="from 1 s to 366 days"):
        jobcore.connect("memory://", key_ttl=0)


def test_sync_queue_enqueues_once_too() -> None:
    with jobcore.SyncQueue("memory://") as q:
        a = order(1)
        assert q.enqueue(a, key="k") == a.id
        assert q.enqueue(order(2), key="k") == a.id
        assert q.enqueue_many([order(3), order(4)], keys=["k", None])[0] == a.id
        assert isinstance(q.enqueue_many([order(5)], keys=["j"])[0], uuid.UUID)
