"""Fault 8: several workers recover the same expired leases at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

import jobcore
from jobcore import Job
from jobcore.memory import MemoryQueue
from jobcore.records import Outcome
from jobcore.redis.backend import RedisQueue

from .audit import Audit
from .handlers import Work
from .procs import Workers, figures, wait_for

N = 60


async def test_four_workers_recovering_one_lost_worker_take_each_job_once(
    workers: Workers, queue: RedisQueue, audit: Audit
) -> None:
    ids = await queue.enqueue_many([Job(type="work", args=Work(n=i, seconds=0.3)) for i in range(N)])
    await queue.register_types({"work": {}})
    assert await queue.heartbeat({"id": "ghost", "types": ["work"]}, 60_000)
    assert len(await queue.fetch("ghost", ["work"], N, 0)) == N
    procs = workers.start(4, concurrency=10, lease=1.0)

    async def all_up() -> bool:
        return len(await queue.workers()) == 5

    await wait_for(all_up, 30, "four workers", workers, procs)
    await queue.heartbeat({"id": "ghost", "types": ["work"]}, -1000)  # it dies: all four see it at once

    async def all_done() -> bool:
        s = await queue.stats()
        return s.processed >= N and s.in_flight == 0

    took = await wait_for(all_done, 60, "every recovered job", workers, procs)
    report = audit.report(ids)
    report.assert_all_processed()
    assert all(len(s) == 1 and s[0].attempt == 2 for s in report.starts.values())
    assert not report.duplicates
    claims = [line for p in procs for line in p.log().splitlines() if "recovered from lost worker ghost" in line]
    assert len(claims) == N
    recoverers = sum(1 for p in procs if "recovered from lost worker ghost" in p.log())
    assert recoverers >= 2
    assert "ghost" not in {w.id for w in await queue.workers()}
    figures(
        "two recoverers", jobs=N, workers=len(procs), recoverers=recoverers, claims=len(claims), seconds=round(took, 1)
    )


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[jobcore.Queue]:
    q: jobcore.Queue = MemoryQueue() if request.param == "memory" else RedisQueue(request.getfixturevalue("url"))
    await q.register_types({"work": {}})
    yield q
    await q.close()


async def test_racing_claims_move_each_job_exactly_once(backend: jobcore.Queue) -> None:
    q = backend
    await q.enqueue_many([Job(type="work", args={"n": i}) for i in range(200)])
    held = await q.fetch("ghost", ["work"], 200, 0)
    results = await asyncio.gather(*(q.claim(f"r{i}", "work", "ghost", 30) for i in range(10)))
    moved = [d.entry_id for got, _ in results for d in got]
    assert sorted(moved) == sorted(d.entry_id for d in held)
    assert len(set(moved)) == len(moved) == 200


async def test_claim_takes_at_most_the_suspects_asked_for_and_skips_the_rest(backend: jobcore.Queue) -> None:
    q = backend
    await q.enqueue_many([Job(type="work", args={"n": i}) for i in range(6)])
    held = await q.fetch("a", ["work"], 6, 0)
    # Three of them go through another worker and back: "a" then holds three
    # first deliveries and three third deliveries.
    await q.claim("b", "work", "a", 3)
    back, _ = await q.claim("a", "work", "b", 3)
    assert [d.attempt for d in back] == [3, 3, 3]
    # "a" dies. Its next deliveries: three second attempts, three fourth (suspects,
    # through their third death).
    got, left = await q.claim("c", "work", "a", 10, suspects=1, suspect_deaths=3)
    assert sorted((d.attempt, d.deaths) for d in got) == [(2, 1), (2, 1), (2, 1), (4, 3)]
    assert left == 2
    rest, left = await q.claim("c", "work", "a", 10, suspects=0, suspect_deaths=3)
    assert (rest, left) == ([], 2)
    last, left = await q.claim("d", "work", "a", 10)
    assert [d.attempt for d in last] == [4, 4] and left == 0
    assert {d.entry_id for d in got + last} == {d.entry_id for d in held}


async def test_jobs_of_a_worker_that_was_stopping_move_without_a_death_or_an_attempt(backend: jobcore.Queue) -> None:
    q = backend
    await q.enqueue_many([Job(type="work", args={"n": i}) for i in range(4)])
    held = await q.fetch("a", ["work"], 4, 0)
    assert [(d.attempt, d.deaths) for d in held] == [(1, 0)] * 4
    # "a" was stopping when its lease lapsed: no suspects among them, whatever the limit.
    got, left = await q.claim("b", "work", "a", 10, suspects=0, suspect_deaths=1, died=False)
    assert [(d.attempt, d.deaths) for d in got] == [(1, 0)] * 4 and left == 0
    # "b" dies: now it counts.
    again, _ = await q.claim("c", "work", "b", 10, died=True)
    assert [(d.attempt, d.deaths) for d in again] == [(2, 1)] * 4
    # "c" stops; "d" takes them: still one death, the second attempt.
    last, _ = await q.claim("d", "work", "c", 10, suspects=0, suspect_deaths=2, died=False)
    assert [(d.attempt, d.deaths) for d in last] == [(2, 1)] * 4
    assert [d.raw for d in last] == [d.raw for d in held]


async def test_a_release_with_attempt_0_does_not_count_the_delivery(backend: jobcore.Queue) -> None:
    q = backend
    await q.enqueue(Job(type="work", args={"n": 1}))
    (d,) = await q.fetch("a", ["work"], 1, 0)
    (again,), _ = await q.claim("b", "work", "a", 1)
    assert again.attempt == 2
    assert await q.settle("b", [Outcome("work", again.entry_id, "release", 0)]) == []
    (d3,) = await q.fetch("c", ["work"], 1, 0)
    assert d3.attempt == 2  # the first delivery counts; the handed-back one does not
    assert d3.raw == d.raw
