"""Waiting jobs, browsed (issue 21): ``Queue.pending`` on every backend and
topology: oldest first, in-flight jobs left out, paged by ``after``, filtered
by the find words, partitioned and fair types, undecodable payloads listed."""

from __future__ import annotations

import msgspec
import pytest

import jobcore
from jobcore import Identity, Job
from jobcore.errors import BadQuery, TypeInUse, UnknownJobType
from jobcore.model import decode_envelope
from jobcore.ops.pending import PENDING_STEP
from jobcore.records import Delivery, Outcome

from .helpers import plant


class Launch(msgspec.Struct, kw_only=True):
    n: int


def job(account: int, n: int, job_type: str = "launch") -> Job[Launch]:
    return Job(
        type=job_type, args=Launch(n=n), account_id=account, identity=Identity(account_number=f"a{account}", org_id="o")
    )


async def all_pages(q: jobcore.Queue, job_type: str, limit: int, **kw: object) -> list[list[int]]:
    """Every page's args.n, following ``after`` to the end."""
    pages: list[list[int]] = []
    after = None
    while True:
        page = await q.pending(job_type, limit=limit, after=after, **kw)  # type: ignore[arg-type]
        pages.append([j.args["n"] for j in page.jobs])
        if page.after is None:
            return pages
        after = page.after


async def test_waiting_jobs_oldest_first_paged_without_the_ones_in_flight(queue: jobcore.Queue) -> None:
    await queue.register_types({"launch": {"type": "object"}})
    ids = await queue.enqueue_many([job(1 + n % 2, n) for n in range(7)])
    taken = await queue.fetch("w1", ["launch"], 2, 0)
    assert len(taken) == 2
    page = await queue.pending("launch", limit=3)
    assert [j.args["n"] for j in page.jobs] == [2, 3, 4]
    assert [j.job_id for j in page.jobs] == [str(i) for i in ids[2:5]]
    first = page.jobs[0]
    assert (first.where, first.job_type, first.account_id, first.account_number, first.org_id) == (
        "pending",
        "launch",
        1,
        "a1",
        "o",
    )
    assert first.at is not None and first.ref
    assert page.after == page.jobs[-1].ref
    rest = await queue.pending("launch", limit=3, after=page.after)
    assert [j.args["n"] for j in rest.jobs] == [5, 6] and rest.after is None
    assert await all_pages(queue, "launch", 2) == [[2, 3], [4, 5], [6]]
    # Filtered by the find words; a page never spans more than was asked.
    assert await all_pages(queue, "launch", 10, query="account:2") == [[3, 5]]
    assert [j.args["n"] for j in (await queue.pending("launch", query=["org:o", "acct:a1"])).jobs] == [2, 4, 6]


async def test_a_filter_says_how_far_it_looked_and_goes_on_from_there(queue: jobcore.Queue) -> None:
    await queue.register_types({"launch": {"type": "object"}})
    await queue.enqueue_many([job(1, n) for n in range(PENDING_STEP + 5)] + [job(2, -1)])
    page = await queue.pending("launch", limit=5, query="account:2")
    assert [j.args["n"] for j in page.jobs] == [-1] and page.after is None
    assert page.looked_at >= PENDING_STEP + 6


async def test_fair_and_partitioned_types_list_every_waiting_job_once(queue: jobcore.Queue) -> None:
    await queue.register_types({"launch": {"type": "object"}})
    await queue.set_partitions("launch", 3)
    await queue.set_fair("launch", True)
    await queue.enqueue_many([job(a, 10 * a + n) for a in (1, 2, 3, 4) for n in range(5)])
    taken: list[Delivery] = []
    for _ in range(20):  # on a cluster a fetch of one asks one partition, in turn: some come back empty
        if len(taken) < 4:
            taken += await queue.fetch("w1", ["launch"], 1, 0)
    assert len(taken) == 4
    listed = [n for page in await all_pages(queue, "launch", 3) for n in page]
    running = {msgspec.msgpack.decode(decode_envelope(d.raw or b"").args)["n"] for d in taken}
    assert sorted(listed) == sorted(
        (set(range(10, 15)) | set(range(20, 25)) | set(range(30, 35)) | set(range(40, 45))) - running
    )
    assert len(listed) == 16  # each once
    by_account: dict[int, list[int]] = {}
    for n in listed:
        by_account.setdefault(n // 10, []).append(n)
    assert all(ns == sorted(ns) for ns in by_account.values())  # oldest first within each account


async def test_an_undecodable_payload_is_listed_with_why(queue: jobcore.Queue) -> None:
    await queue.register_types({"launch": {"type": "object"}})
    await queue.enqueue(job(1, 0))
    await plant(queue, "launch", b"\xff not an envelope")
    page = await queue.pending("launch")
    assert [j.job_id is None for j in page.jobs] == [False, True]
    assert page.jobs[1].reason and "undecodable" in page.jobs[1].reason
    # A filter matches only jobs it can read.
    assert [j.args["n"] for j in (await queue.pending("launch", query="account:1")).jobs] == [0]


async def test_unknown_types_and_bad_words_are_refused(queue: jobcore.Queue) -> None:
    await queue.register_types({"launch": {"type": "object"}})
    await queue.enqueue(job(1, 0))
    with pytest.raises(UnknownJobType):
        await queue.pending("lanch")
    with pytest.raises(BadQuery):
        await queue.pending("launch", query="account:forty")
    with pytest.raises(BadQuery):
        await queue.pending("launch", query="type:other")
    with pytest.raises(BadQuery):
        await queue.pending("launch", limit=0)


async def test_delete_waiting_jobs_by_id_by_filter_and_all_never_one_in_flight(queue: jobcore.Queue) -> None:
    await queue.register_types({"launch": {"type": "object"}})
    ids = await queue.enqueue_many([job(1 + n % 2, n) for n in range(10)])
    running = await queue.fetch("w1", ["launch"], 1, 0)
    assert len(running) == 1  # job 0, in flight: never deleted
    # By whole id and by an 8+ hex prefix; the running one is left to run.
    assert await queue.delete_pending("launch", ids=[ids[0], ids[1], str(ids[2])[:8]]) == 2
    assert [j.args["n"] for j in (await queue.pending("launch")).jobs] == [3, 4, 5, 6, 7, 8, 9]
    assert await queue.delete_pending("launch", ids=[ids[1]]) == 0  # gone already
    assert await queue.delete_pending("launch", query="account:2") == 4  # 3, 5, 7, 9
    assert [j.args["n"] for j in (await queue.pending("launch")).jobs] == [4, 6, 8]
    stats = (await queue.stats()).types["launch"]
    assert (stats.pending, stats.in_flight) == (3, 1)
    assert await queue.delete_pending("launch", all=True) == 3
    assert (await queue.pending("launch")).jobs == []
    assert await queue.fetch("w1", ["launch"], 10, 0) == []
    await queue.settle("w1", [Outcome("launch", running[0].entry_id, "ack", 1)])
    assert (await queue.stats()).types["launch"].processed == 1
    with pytest.raises(BadQuery):
        await queue.delete_pending("launch")
    with pytest.raises(BadQuery):
        await queue.delete_pending("launch", ids=[ids[3]], all=True)


async def test_deleted_jobs_of_a_fair_type_are_never_handed_out(queue: jobcore.Queue) -> None:
    await queue.register_types({"launch": {"type": "object"}})
    await queue.set_fair("launch", True)
    await queue.enqueue_many([job(a, 10 * a + n) for a in (1, 2) for n in range(4)])
    first: list[Delivery] = []
    for _ in range(10):  # taken in by a fetch first: the rest wait in their accounts' turns
        if not first:
            first = await queue.fetch("w1", ["launch"], 1, 0)
    assert len(first) == 1
    assert await queue.delete_pending("launch", query="account:2") == 4
    rest: list[Delivery] = []
    for _ in range(20):
        rest += await queue.fetch("w1", ["launch"], 3, 0)
    got = sorted(msgspec.msgpack.decode(decode_envelope(d.raw or b"").args)["n"] for d in first + rest)
    assert got == [10, 11, 12, 13]
    stats = (await queue.stats()).types["launch"]
    assert (stats.pending, stats.in_flight) == (0, 4)


async def test_a_type_is_removed_only_when_nothing_of_it_waits_runs_or_is_served(queue: jobcore.Queue) -> None:
    await queue.register_types({"launch": {"type": "object"}})
    await queue.set_partitions("launch", 2)
    await queue.set_fair("launch", True)
    await queue.enqueue_many([job(a, a) for a in (1, 2, 3)])
    with pytest.raises(TypeInUse, match="3 job"):
        await queue.remove_type("launch")
    taken: list[Delivery] = []
    for _ in range(20):
        if len(taken) < 3:
            taken += await queue.fetch("w1", ["launch"], 1, 0)
    assert len(taken) == 3
    with pytest.raises(TypeInUse, match="in flight"):
        await queue.remove_type("launch")
    await queue.settle("w1", [Outcome("launch", d.entry_id, "dead", 1, "no") for d in taken])
    await queue.heartbeat({"id": "w1", "types": ["launch"]}, 10_000)
    with pytest.raises(TypeInUse, match="w1"):
        await queue.remove_type("launch")
    await queue.forget_worker("w1", ["launch"], force=True)
    await queue.remove_type("launch")
    assert "launch" not in await queue.job_types()
    assert "launch" not in (await queue.stats()).types and await queue.dead("launch") == []
    with pytest.raises(UnknownJobType):
        await queue.remove_type("launch")
    # Used again, it comes back, plain and empty.
    await queue.enqueue(job(1, 7))
    s = (await queue.stats()).types["launch"]
    assert (s.pending, s.fair, s.processed) == (1, False, 0)
    assert [j.args["n"] for j in (await queue.pending("launch")).jobs] == [7]
