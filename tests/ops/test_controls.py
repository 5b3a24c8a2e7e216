"""Operator controls driven against running workers: pause under load, cancel
one running job among several (async and sync handlers). Memory and a real
private redis-server."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

import jobcore
from jobcore import Handlers, Job, Worker, model
from jobcore.memory import MemoryQueue
from jobcore.records import Outcome
from jobcore.redis.backend import RedisQueue
from tests.helpers import read_only_queue, running, wait_until


class Work(msgspec.Struct, kw_only=True):
    n: int


@pytest.fixture(params=["memory", "redis"])
async def q(request: pytest.FixtureRequest) -> AsyncIterator[jobcore.Queue]:
    queue: jobcore.Queue = (
        MemoryQueue() if request.param == "memory" else RedisQueue(request.getfixturevalue("redis_url"))
    )
    yield queue
    await queue.close()


async def test_no_job_of_a_paused_type_starts_after_pause_returns(q: jobcore.Queue) -> None:
    handlers = Handlers()
    started: list[tuple[float, int]] = []

    @handlers.handler("work", Work)
    async def work(job: Job[Work]) -> None:
        started.append((time.monotonic(), job.args.n))
        await asyncio.sleep(0.005)

    # Every fetch, with when it began: what a fetch begun after the pause took.
    fetches: list[tuple[float, list[str]]] = []
    fetch = q.fetch

    async def watched(consumer: str, types: Any, count: int, block_ms: int) -> Any:
        began = time.monotonic()
        got = await fetch(consumer, types, count, block_ms)
        fetches.append((began, [d.job_type for d in got]))
        return got

    q.fetch = watched  # type: ignore[method-assign]
    await q.enqueue_many([Job(type="work", args=Work(n=i)) for i in range(3000)])
    async with running(Worker(q, handlers, concurrency=8, prefetch=0, lease=3)):
        await wait_until(lambda: _true(len(started) >= 200), timeout=20)
        await q.pause("work")
        paused_at = time.monotonic()
        n_at_pause = len(started)
        await q.enqueue_many([Job(type="work", args=Work(n=i)) for i in range(3000, 3100)])  # they arrive, and wait
        await asyncio.sleep(1.5)
        assert not any(began > paused_at and "work" in taken for began, taken in fetches)
        late = [n for at, n in started if at > paused_at]
        assert len(late) <= 8  # only jobs taken before pause() returned, at most one per slot
        assert not [n for at, n in started if at > paused_at + 0.2]
        stats = (await q.stats()).types["work"]
        assert stats.paused and stats.in_flight == 0 and stats.pending == 3100 - len(started)
        assert n_at_pause < 3000
        await q.resume("work")
        await wait_until(lambda: _processed(q, "work", 3100), timeout=60)
    assert sorted(n for _, n in started) == list(range(3100))


async def test_cancel_stops_only_the_one_running_job_async_and_sync(q: jobcore.Queue) -> None:
    handlers = Handlers()
    release = asyncio.Event()
    sync_release = threading.Event()
    cancelled: list[int] = []

    @handlers.handler("slow", Work)
    async def slow(job: Job[Work]) -> None:
        try:
            await asyncio.wait_for(release.wait(), 30)
        except asyncio.CancelledError:
            cancelled.append(job.args.n)
            raise

    @handlers.handler("blocking", Work)
    def blocking(job: Job[Work]) -> None:
        sync_release.wait(30)

    jobs = [Job(type="slow", args=Work(n=i)) for i in range(4)]
    jobs += [Job(type="blocking", args=Work(n=i)) for i in range(2)]
    await q.enqueue_many(jobs)
    async with running(Worker(q, handlers, concurrency=10, prefetch=0, lease=3)) as worker:
        await wait_until(lambda: _in_flight(q, 6), timeout=10)
        asked = time.monotonic()
        res = await q.cancel(str(jobs[1].id)[:8])
        # The answer comes once the worker has filed the job: it is failed already.
        assert res.status == "cancelled" and not res.sync and res.job and res.job.worker == worker.id, res.message
        assert "recorded as failed" in res.message
        assert time.monotonic() - asked < 1.5
        assert await _failed(q, "slow", 1)
        assert cancelled == [1]
        (failed,) = await q.failed("slow")
        assert failed.reason == "cancelled by operator" and failed.job_id == str(jobs[1].id)
        assert len(await q.in_flight()) == 5

        res = await q.cancel(str(jobs[4].id))
        # The worker has taken the request (it said so); the thread runs on.
        assert res.status == "cancelling" and res.sync and "cannot be interrupted" in res.message
        assert len(await q.in_flight()) == 5
        sync_release.set()
        release.set()
        await wait_until(lambda: _failed(q, "blocking", 1), timeout=10)
        await wait_until(lambda: _processed(q, "slow", 3), timeout=10)
        await wait_until(lambda: _processed(q, "blocking", 1), timeout=10)
        (failed,) = await q.failed("blocking")
        assert failed.reason.startswith("cancelled by operator (the handler could not be interrupted")
        assert failed.job_id == str(jobs[4].id)
        assert cancelled == [1]
        # The cancel of a job that finished says what is known; requeue works as for any failed job.
        res = await q.cancel(str(jobs[0].id))
        assert res.status == "not_found" and "processed" not in res.message, res.message
        res = await q.cancel(str(jobs[1].id))
        assert (res.status, res.outcome) == ("finished", "failed") and res.job and res.job.where == "failed"
        assert await q.requeue("failed", "slow") == 1
        await wait_until(lambda: _processed(q, "slow", 4), timeout=10)


async def _true(value: bool) -> bool:
    return value


async def _processed(q: jobcore.Queue, job_type: str, n: int) -> bool:
    t = (await q.stats()).types.get(job_type)
    return t is not None and t.processed >= n


async def _failed(q: jobcore.Queue, job_type: str, n: int) -> bool:
    t = (await q.stats()).types.get(job_type)
    return t is not None and t.failed >= n


async def _in_flight(q: jobcore.Queue, n: int) -> bool:
    return len(await q.in_flight()) >= n


async def test_a_read_only_user_finds_jobs_but_may_not_pause_or_cancel(redis_url: str) -> None:
    q = RedisQueue(redis_url)
    try:
        async with read_only_queue(redis_url) as ro:
            await q.register_types({"work": {}})
            jobs = [Job(type="work", args=Work(n=i), account_id=42) for i in range(3)]
            await q.enqueue_many(jobs)
            await q.heartbeat({"id": "w1", "types": ["work"]}, 15_000)
            await q.fetch("w1", ["work"], 1, 0)
            assert [h.where for h in await ro.find(str(jobs[0].id))] == ["in_flight"]
            assert [h.where for h in await ro.find(str(jobs[2].id))] == ["pending"]
            assert len(await ro.find("account:42")) == 1
            with pytest.raises(jobcore.errors.PermissionDenied, match="permission denied for this Redis user"):
                await ro.pause("work")
            with pytest.raises(jobcore.errors.PermissionDenied, match="permission denied for this Redis user"):
                await ro.cancel(str(jobs[0].id))
            assert not (await q.stats()).types["work"].paused
            assert await q.cancel_requests("w1") == []
    finally:
        await q.close()


# ---- cancel answers what happened (issue 18, case 13) ----------------------------


@pytest.fixture(params=["memory", "redis", "cluster"])
async def anyq(request: pytest.FixtureRequest) -> AsyncIterator[jobcore.Queue]:
    if request.param == "memory":
        queue: jobcore.Queue = MemoryQueue()
    else:
        queue = RedisQueue(request.getfixturevalue("redis_url" if request.param == "redis" else "cluster_url"))
    yield queue
    await queue.close()


async def test_cancel_answers_what_happened_to_short_jobs(anyq: jobcore.Queue) -> None:
    """Jobs of 50-300 ms, each cancelled while it runs: every answer is true.
    "cancelled" only when the handler was stopped and the job is failed as
    cancelled; "finished first" with the outcome the job really had."""
    q = anyq
    handlers = Handlers()
    completed: set[int] = set()
    stopped: set[int] = set()
    done_at: dict[int, float] = {}  # when each handler ended, stopped or not
    answered_at: dict[int, float] = {}
    rng = random.Random(18)
    runs = {n: rng.uniform(0.05, 0.3) for n in range(40)}

    @handlers.handler("short", Work)
    async def short(job: Job[Work]) -> None:
        try:
            await asyncio.sleep(runs[job.args.n])
        except asyncio.CancelledError:
            stopped.add(job.args.n)
            raise
        finally:
            done_at[job.args.n] = time.monotonic()
        if job.args.n % 5 == 4:
            raise RuntimeError("fails on its own")  # a job that fails first is "finished: failed"
        completed.add(job.args.n)

    await q.set_partitions("short", 2)  # entries of a partition too (refs ENTRY@1, their own slot)
    jobs = [Job(type="short", args=Work(n=n), account_id=n) for n in range(40)]
    await q.enqueue_many(jobs)
    number = {str(j.id): j.args.n for j in jobs}
    answers: dict[int, jobcore.CancelResult] = {}
    tasks: list[asyncio.Task[None]] = []

    async def ask(job_id: str) -> None:
        answers[number[job_id]] = await q.cancel(job_id)
        answered_at[number[job_id]] = time.monotonic()

    async with running(Worker(q, handlers, concurrency=4, prefetch=0, lease=5)):
        asked: set[str] = set()
        deadline = time.monotonic() + 60
        while len(asked) < len(jobs) and time.monotonic() < deadline:
            for row in await q.in_flight():
                if row.job_id and row.job_id not in asked:
                    asked.add(row.job_id)
                    tasks.append(asyncio.create_task(ask(row.job_id)))
            await asyncio.sleep(0.01)
        await asyncio.gather(*tasks)
        await wait_until(lambda: _settled(q, "short", len(jobs)), timeout=20)
    failed = {f.job_id: f.reason for f in await q.failed("short", limit=100)}
    stats = (await q.stats()).types["short"]
    # Every job exactly once: processed (its handler completed) or failed (stopped, or raised).
    assert (stats.processed, stats.failed, stats.pending, stats.in_flight) == (
        len(completed),
        40 - len(completed),
        0,
        0,
    )
    assert len(failed) == 40 - len(completed) and not completed & stopped
    lies: list[str] = []
    for job in jobs:
        n, res = job.args.n, answers.get(job.args.n)
        if res is None:
            continue
        said_cancelled = res.status == "cancelled" or (res.status == "requested" and "cancelled within" in res.message)
        outcome = getattr(res, "outcome", None)
        if said_cancelled and not (n in stopped and failed.get(str(job.id)) == "cancelled by operator"):
            lies.append(f"{n}: said cancelled, but the handler {'completed' if n in completed else 'failed'}")
        if res.status == "finished" and outcome == "processed" and n not in completed:
            lies.append(f"{n}: said processed, but it was not")
        if res.status == "finished" and outcome == "failed" and (n in stopped or str(job.id) not in failed):
            lies.append(f"{n}: said failed on its own, but it was not")
        if res.status == "not_found":
            # True of a job that finished (processed jobs are not kept) before the cancel
            # reached it: on a loaded machine (CI once) a 50 ms job can, between the
            # in-flight read and the cancel. Never of one the cancel stopped.
            if n in stopped or not done_at.get(n, float("inf")) <= answered_at[n]:
                lies.append(f"{n}: said not found, but it was running then")
        elif res.status not in ("cancelled", "finished", "requested") and not said_cancelled:
            lies.append(f"{n}: {res.status}: {res.message}")
    assert len(answers) >= 30
    assert not lies, f"{len(lies)} of {len(answers)} answers untrue: {lies[:8]}"
    # "Not yet confirmed" is true too, but every worker here answers within the wait unless the machine crawls.
    unconfirmed = [n for n, r in answers.items() if r.status == "requested"]
    assert len(unconfirmed) <= len(answers) // 4, unconfirmed
    assert any(r.status == "cancelled" for r in answers.values())
    assert any(r.status == "finished" for r in answers.values())


async def _settled(q: jobcore.Queue, job_type: str, n: int) -> bool:
    t = (await q.stats()).types.get(job_type)
    return t is not None and t.processed + t.failed >= n and t.in_flight == 0


# ---- find's verdict when a producer's clock is off (issue 18, case 14) ---------------


async def test_a_pending_job_from_a_producer_30s_ahead_is_never_called_processed(
    anyq: jobcore.Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    q = anyq
    ahead = model._time_ns
    monkeypatch.setattr(model, "_time_ns", lambda: ahead() + 30_000_000_000)  # the producer's clock: 30 s ahead
    job = Job(type="later", args=Work(n=1))
    monkeypatch.setattr(model, "_time_ns", ahead)
    await q.enqueue(job)
    await q.register_types({"later": {}})
    (hit,) = await q.find(str(job.id))
    if hit.where == "not_found":
        text = hit.describe()
        assert "processed" not in text and "may still wait" in text and "±10 s of the id's time" in text, text
    else:
        assert hit.where == "pending"
    res = await q.cancel(str(job.id))
    assert res.status in ("pending", "not_found") and "processed" not in res.message, res.message
    if res.status == "not_found":
        assert "may still wait" in res.message
    # A job found nowhere at all is not called processed either: nothing kept says so.
    gone = "0000000000008000800000000000000a"
    (hit,) = await q.find(gone)
    assert hit.where == "not_found" and "processed" not in hit.describe().replace("processed jobs are not kept", "")


async def test_a_cancel_request_of_an_older_jobcore_still_cancels(redis_url: str) -> None:
    """A request as jobcore wrote it before answers ("TYPE\\nENTRY", no id): the
    job is cancelled; nobody waits for an answer, so none is written."""
    q = RedisQueue(redis_url)
    handlers = Handlers()
    release = asyncio.Event()

    @handlers.handler("slow", Work)
    async def slow(job: Job[Work]) -> None:
        await asyncio.wait_for(release.wait(), 30)

    try:
        await q.enqueue(Job(type="slow", args=Work(n=1)))
        async with running(Worker(q, handlers, concurrency=2, prefetch=0, lease=3)) as worker:
            await wait_until(lambda: _in_flight(q, 1), timeout=10)
            (row,) = await q.in_flight()
            await q._t.call("RPUSH", q.keys.cancels(worker.id), f"slow\n{row.entry_id}")
            await wait_until(lambda: _failed(q, "slow", 1), timeout=5)
            (failed,) = await q.failed("slow")
            assert failed.reason == "cancelled by operator"
            release.set()
    finally:
        await q.close()


@pytest.fixture(params=["fakeredis", "redis", "cluster"])
async def rq(request: pytest.FixtureRequest) -> AsyncIterator[RedisQueue]:
    from tests.conftest import fake_queue

    kind = request.param
    queue = fake_queue() if kind == "fakeredis" else RedisQueue(request.getfixturevalue(f"{kind}_url"))
    yield queue
    await queue.close()


async def test_pause_and_resume_reach_partitions_added_since_the_admin_last_looked(rq: RedisQueue) -> None:
    """Issue 18 case 8: an admin whose partition view is a few seconds old (one
    partition) pauses a type just raised to 3; resume has the mirror case."""
    admin, other, worker = rq, rq.clone(), rq.clone()
    try:
        await admin.enqueue(Job(type="work", args=Work(n=0), account_id=0))  # admin's view: 1 partition
        stale = admin.clone()
        await stale.enqueue(Job(type="work", args=Work(n=0), account_id=0))  # so is this one's
        assert await other.set_partitions("work", 3) == 3
        await worker.register_types({"work": {}})
        # Partition 0 runs what it held at the raise; then the new partitions open.
        first = await worker.fetch("w", ["work"], 100, 0)
        await worker.settle("w", [Outcome("work", d.entry_id, "ack", d.attempt) for d in first])
        worker.routes.expire()
        assert await worker.fetch("w", ["work"], 100, 0) == [] and not getattr(worker.routes, "closed", None)
        await other.enqueue_many([Job(type="work", args=Work(n=i), account_id=i) for i in range(1, 31)])
        assert len(admin.routes.lanes("work")) == 1  # within the 10 s it trusts its view

        await admin.pause("work")
        assert await worker.fetch("w", ["work"], 100, 0) == []
        assert len(stale.routes.lanes("work")) == 1
        await stale.resume("work")
        got = await worker.fetch("w", ["work"], 100, 0)
        assert len(got) == 30 and {d.entry_id.partition("@")[2] for d in got} == {"", "1", "2"}
        await stale.close()
    finally:
        await other.close()
        await worker.close()
