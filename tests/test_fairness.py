"""Fairness across accounts (issue 20): the same contract on every backend and topology."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import msgspec
import pytest

import jobcore
from jobcore import Identity, Job
from jobcore.errors import NotFair
from jobcore.model import decode_envelope
from jobcore.records import Delivery, Outcome


class Launch(msgspec.Struct, kw_only=True):
    n: int


def job(account: int, n: int = 0, job_type: str = "launch") -> Job[Launch]:
    return Job(
        type=job_type,
        args=Launch(n=n),
        account_id=account,
        identity=Identity(account_number=f"a{account}", org_id="org"),
    )


async def ready(q: jobcore.Queue, job_type: str = "launch") -> None:
    await q.register_types({job_type: {"type": "object"}})


def accounts(got: list[Delivery]) -> list[int]:
    return [decode_envelope(d.raw or b"").account_id for d in got]


async def take(q: jobcore.Queue, n: int, consumer: str = "w1", job_type: str = "launch") -> list[Delivery]:
    """Up to n jobs, one fetch at a time (as n workers with a slot each would).
    On a cluster a fetch of one asks one partition, in turn: empty is not the end
    until every partition had its turn."""
    out: list[Delivery] = []
    empty = 0
    while len(out) < n and empty < 4:
        got = await q.fetch(consumer, [job_type], 1, 0)
        empty = 0 if got else empty + 1
        out += got
    return out


async def settle(q: jobcore.Queue, got: list[Delivery], consumer: str = "w1", kind: str = "ack") -> None:
    await q.settle(consumer, [Outcome(d.job_type, d.entry_id, kind, d.attempt) for d in got])  # type: ignore[arg-type]


async def test_a_fair_type_serves_accounts_in_turn_and_fifo_within_each(queue: jobcore.Queue) -> None:
    await ready(queue)
    await queue.set_fair("launch", True)
    await queue.enqueue_many([job(1, i) for i in range(50)])
    await queue.enqueue_many([job(2, i) for i in range(3)] + [job(3, i) for i in range(3)])
    got = await take(queue, 9)
    assert accounts(got) == [1, 2, 3, 1, 2, 3, 1, 2, 3]
    later = await take(queue, 100)
    assert accounts(later) == [1] * 47
    ns = [msgspec.msgpack.decode(decode_envelope(d.raw or b"").args)["n"] for d in got + later]
    by_account: dict[int, list[int]] = {}
    for a, n in zip(accounts(got + later), ns, strict=True):
        by_account.setdefault(a, []).append(n)
    assert by_account == {1: list(range(50)), 2: [0, 1, 2], 3: [0, 1, 2]}  # FIFO within each
    stats = (await queue.stats()).types["launch"]
    assert stats.fair and stats.pending == 0 and stats.in_flight == 56
    await settle(queue, got + later)
    assert (await queue.stats()).types["launch"].processed == 56


async def test_a_fetch_of_many_takes_as_many_turns_and_hands_out_each_job_once(queue: jobcore.Queue) -> None:
    """A fetch asking for n takes n: a lone account all of them, several accounts
    in turn; every job comes out once, none is left behind."""
    await ready(queue)
    await queue.set_fair("launch", True)
    ids = await queue.enqueue_many([job(1, i) for i in range(30)])
    got = await queue.fetch("w1", ["launch"], 10, 0)
    assert accounts(got) == [1] * 10
    ids += await queue.enqueue_many([job(2, i) for i in range(5)] + [job(3, i) for i in range(5)])
    turns = await queue.fetch("w1", ["launch"], 6, 0)
    assert accounts(turns) == [1, 2, 3, 1, 2, 3]
    rest: list[Delivery] = []
    while batch := await queue.fetch("w1", ["launch"], 7, 0):
        rest += batch
    everything = got + turns + rest
    assert len(everything) == 40
    assert sorted(str(decode_envelope(d.raw or b"").id) for d in everything) == sorted(map(str, ids))
    stats = (await queue.stats()).types["launch"]
    assert stats.pending == 0 and stats.in_flight == 40
    await settle(queue, everything)
    assert (await queue.stats()).types["launch"].processed == 40


async def test_a_plain_type_stays_fifo(queue: jobcore.Queue) -> None:
    await ready(queue)
    await queue.enqueue_many([job(1, i) for i in range(5)] + [job(2, 0)])
    assert accounts(await take(queue, 6)) == [1, 1, 1, 1, 1, 2]
    assert not (await queue.stats()).types["launch"].fair


async def test_waiting_jobs_count_as_pending_and_a_limit_holds(queue: jobcore.Queue) -> None:
    await ready(queue)
    await queue.set_fair("launch", True)
    await queue.set_limit("launch", per_account=2)
    await queue.enqueue_many([job(1, i) for i in range(10)] + [job(2, i) for i in range(10)])
    got = await take(queue, 20)
    assert sorted(accounts(got)) == [1, 1, 2, 2]  # never N+1: the rest wait
    s = (await queue.stats()).types["launch"]
    assert (s.pending, s.in_flight, s.accounts_waiting) == (16, 4, 2)
    assert s.oldest_pending_age is not None
    info = await queue.fair_info("launch")
    assert info.settings.per_account == 2 and sorted(b.account for b in info.blocked) == ["1", "2"]
    assert {b.account: (b.waiting, b.running, b.limit) for b in info.blocked} == {"1": (8, 2, 2), "2": (8, 2, 2)}
    why = await queue.why("launch")
    assert "account 1 is at its limit (2 of 2 running); 8 of its jobs wait for one of its slots" in why.sentences
    assert "fair: 2 account(s) have jobs waiting their turn, the most 1 (8)" in why.sentences
    assert dict(info.top_waiting) == {"1": 8, "2": 8} and dict(info.top_running) == {"1": 2, "2": 2}
    # A slot comes back when its job settles, failed and handed back included.
    ones = [d for d in got if accounts([d]) == [1]]
    await settle(queue, ones[:1])
    await settle(queue, ones[1:], kind="release")
    assert accounts(await take(queue, 5)) == [1, 1]
    # A raised limit frees slots at once; 0 removes it.
    await queue.set_limit("launch", per_account=3)
    assert sorted(accounts(await take(queue, 5))) == [1, 2]
    await queue.set_limit("launch", per_account=0)
    assert len(await take(queue, 100)) == 13  # 20 - 4 - 2 - 2 + the one handed back


async def test_a_worker_waiting_on_accounts_at_their_limit_wakes_when_a_slot_frees(queue: jobcore.Queue) -> None:
    """Every account at its limit: a blocking fetch waits, and a settle that gives a
    slot back wakes it (it does not sleep out its block while the slot idles)."""
    await ready(queue)
    await queue.set_fair("launch", True)
    await queue.set_limit("launch", per_account=1)
    await queue.enqueue_many([job(1, i) for i in range(3)])
    first = await take(queue, 3)
    assert accounts(first) == [1]
    waiting = asyncio.ensure_future(queue.fetch("w2", ["launch"], 1, 60_000))
    await asyncio.sleep(0.3)
    assert not waiting.done()  # nothing it may take: it blocks
    await settle(queue, first)
    # Woken by the slot, not by the end of its 60 s block.
    got = await asyncio.wait_for(waiting, 20)
    assert accounts(got) == [1]
    await settle(queue, got, consumer="w2")


async def test_a_first_limit_counts_every_job_already_running(queue: jobcore.Queue) -> None:
    """Jobs taken while a fair type had no limit (uncontended, read as a plain
    type's) hold slots once a limit is set: never N+1, even right after."""
    await ready(queue)
    await queue.set_fair("launch", True)
    await queue.enqueue_many([job(1, i) for i in range(3)])
    running = await queue.fetch("w1", ["launch"], 3, 0)  # all new fits: taken as a plain type's
    assert accounts(running) == [1, 1, 1]
    await queue.set_limit("launch", per_account=2)
    await queue.enqueue_many([job(1, i) for i in range(3, 6)])
    assert await take(queue, 3) == []  # 3 of account 1 run, over its limit of 2
    info = await queue.fair_info("launch")
    assert dict(info.top_running) == {"1": 3}
    await settle(queue, running[:2])
    assert accounts(await take(queue, 3)) == [1]  # 1 running: one slot free
    await settle(queue, running[2:])


async def test_an_account_of_its_own_limit_and_weight(queue: jobcore.Queue) -> None:
    await ready(queue)
    await queue.set_fair("launch", True)
    await queue.set_limit("launch", account=1, weight=3)
    await queue.set_limit("launch", per_account=100, account=2, max=1)
    await queue.enqueue_many(
        [job(1, i) for i in range(10)] + [job(2, i) for i in range(10)] + [job(3, i) for i in range(10)]
    )
    got = accounts(await take(queue, 12))
    assert got[:5] == [1, 1, 1, 2, 3]  # three turns in a row for account 1; account 2 at its own limit of 1
    assert Counter(got)[2] == 1


async def test_jobs_waiting_when_a_type_turns_fair_or_plain_are_served(queue: jobcore.Queue) -> None:
    await ready(queue)
    await queue.enqueue_many([job(1, i) for i in range(6)])
    await queue.set_fair("launch", True)
    await queue.enqueue_many([job(2, i) for i in range(2)])
    assert accounts(await take(queue, 4)) == [1, 2, 1, 2]
    await queue.set_fair("launch", False)
    await queue.enqueue_many([job(3, 0)])
    rest = await take(queue, 10)
    assert sorted(accounts(rest)) == [1, 1, 1, 1, 3]
    s = (await queue.stats()).types["launch"]
    assert s.pending == 0 and s.in_flight == 9


async def test_limits_need_a_fair_type(queue: jobcore.Queue) -> None:
    await ready(queue)
    await queue.enqueue(job(1))
    with pytest.raises(NotFair, match="not fair"):
        await queue.set_limit("launch", per_account=2)
    with pytest.raises(jobcore.UnknownJobType):
        await queue.set_fair("nosuch", True)


async def test_an_envelope_that_is_not_ours_is_served_in_an_account_of_its_own(queue: jobcore.Queue) -> None:
    from tests.helpers import plant

    await ready(queue)
    await queue.set_fair("launch", True)
    await queue.enqueue_many([job(1, i) for i in range(3)])
    await plant(queue, "launch", b"\x01garbage")
    got = await take(queue, 10)
    assert len(got) == 4 and b"\x01garbage" in [d.raw for d in got]


async def test_random_enqueues_are_served_round_robin_and_never_past_the_limit(queue: jobcore.Queue) -> None:
    rng = random.Random(7)
    await ready(queue)
    await queue.set_fair("launch", True)
    await queue.set_limit("launch", per_account=2)
    waiting: Counter[int] = Counter()
    running: dict[str, int] = {}
    for _ in range(6):
        batch = [job(rng.randint(1, 6), i) for i in range(rng.randint(1, 25))]
        waiting.update(j.account_id for j in batch)
        await queue.enqueue_many(batch)
        got = await take(queue, rng.randint(1, 8))
        for d in got:
            running[d.entry_id] = accounts([d])[0]
            waiting[accounts([d])[0]] -= 1
        per = Counter(running.values())
        assert max(per.values(), default=0) <= 2
        # Nobody idles: a job is handed out whenever an account under its limit has one waiting.
        assert all(per[a] == 2 for a, n in waiting.items() if n > 0) or len(got) > 0
        done = [d for d in got if rng.random() < 0.6]
        await settle(queue, done)
        for d in done:
            del running[d.entry_id]


async def test_declare_fair_sets_the_type_fair_before_its_first_job(queue: jobcore.Queue) -> None:
    queue.declare("launch", Launch, fair=True)
    await queue.enqueue_many([job(1, i) for i in range(4)] + [job(2, i) for i in range(2)])
    assert accounts(await take(queue, 4)) == [1, 2, 1, 2]
    assert (await queue.fair_info("launch")).settings.on


async def test_partitions_added_to_a_fair_type_are_fair_too(queue: jobcore.Queue) -> None:
    from jobcore.keys import partition_of

    await ready(queue)
    await queue.enqueue(job(1))
    await settle(queue, await take(queue, 1))  # nothing older holds the new partitions back
    await queue.set_fair("launch", True)
    await queue.set_limit("launch", per_account=5)
    await queue.set_partitions("launch", 3)
    await ready(queue)  # as a worker does when it starts: the new partitions' consumer groups
    # Two accounts of one new partition: served in turn there too.
    a, b = [n for n in range(2, 200) if partition_of(n, 3) == 2][:2]
    await queue.enqueue_many([job(a, i) for i in range(6)] + [job(b, i) for i in range(2)])
    got = accounts(await take(queue, 7))
    assert [x for x in got if x in (a, b)][:4] == [a, b, a, b]
    assert Counter(got)[a] <= 5


async def test_a_fair_job_whose_pending_entry_vanished_is_put_back_and_frees_its_slot(redis_url: str) -> None:
    import redis as redispy

    from jobcore.keys import GROUP, Keys
    from jobcore.redis.backend import RedisQueue

    q = RedisQueue(redis_url)
    try:
        await ready(q)
        await q.enqueue(job(1))
        await q.set_fair("launch", True)
        await q.set_limit("launch", per_account=1)
        await q.enqueue_many([job(1, i) for i in range(1, 3)])
        first = await take(q, 5)
        assert len(first) == 1  # the limit: one at a time
        r = redispy.Redis.from_url(redis_url)
        r.xgroup_delconsumer(Keys().of_type("launch").stream, GROUP, "w1")  # its pending entries gone, no settle
        r.close()
        assert await take(q, 5) == []  # the slot still looks taken
        assert await q.recover_orphans(["launch"]) == 1  # the sweep puts it back and frees the slot
        again = await take(q, 5, consumer="w2")
        assert len(again) == 1
        s = (await q.stats()).types["launch"]
        assert (s.pending, s.in_flight) == (2, 1)  # 3 jobs: none lost
    finally:
        await q.close()


async def test_without_a_limit_the_running_accounts_are_read_from_the_jobs_in_flight(queue: jobcore.Queue) -> None:
    await queue.register_types({"launch": {"type": "object"}})
    await queue.set_fair("launch", True)
    await queue.enqueue_many([job(a, n) for n, a in enumerate([1, 1, 1, 2, 2, 3])])
    taken = await take(queue, 4)  # in turn: 1, 2, 3, 1
    assert sorted(accounts(taken)) == [1, 1, 2, 3]
    info = await queue.fair_info("launch")
    assert dict(info.top_running) == {"1": 2, "2": 1, "3": 1}
    await settle(queue, taken[:1])
    assert dict((await queue.fair_info("launch")).top_running) == {"1": 1, "2": 1, "3": 1}
