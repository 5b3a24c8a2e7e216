"""Fault 4: a worker frozen past its lease (SIGSTOP) comes back (SIGCONT)."""

from __future__ import annotations

import asyncio
import signal
import time

from jobcore import Job
from jobcore.redis.backend import RedisQueue

from .audit import Audit
from .handlers import Work
from .procs import WorkerProc, Workers, figures, wait_for

LEASE = 1.0


async def test_a_stale_worker_coming_back_changes_nothing(workers: Workers, queue: RedisQueue, audit: Audit) -> None:
    w1, w2 = workers.start(2, concurrency=5, lease=LEASE)
    jobs = [Job(type="work", args=Work(n=i, seconds=2.0)) for i in range(10)]
    ids = await queue.enqueue_many(jobs)

    async def w1_busy() -> bool:
        return sum(r.worker == w1.id for r in await queue.in_flight()) >= 3

    await wait_for(w1_busy, 30, "w1 to hold jobs", workers, [w1, w2])
    w1.signal(signal.SIGSTOP)
    stopped_at = time.time()
    held = {r.job_id for r in await queue.in_flight() if r.worker == w1.id}

    async def taken_over() -> bool:
        rows = await queue.in_flight()
        return held <= {r.job_id for r in rows if r.worker == w2.id} | set(audit.runs())

    await wait_for(taken_over, 20, "w2 to take w1's jobs", workers, [w2])
    await asyncio.sleep(0.2)
    w1.signal(signal.SIGCONT)
    stopped_for = time.time() - stopped_at  # its handlers finish now, while w2 runs the same jobs

    async def all_done() -> bool:
        s = await queue.stats()
        return s.processed >= len(jobs) and s.in_flight == 0 and s.pending == 0

    await wait_for(all_done, 30, "all jobs", workers, [w1, w2])

    # Its results are dropped: the jobs are w2's now, or already settled by w2.
    async def tried() -> bool:
        log = w1.log()
        return await _has(log, "lease lost for") or await _has(log, "are in flight nowhere any more")

    await wait_for(tried, 10, "w1 to try its stale acks", workers, [w1])
    report = audit.report(ids)
    report.assert_all_processed()  # exactly one ack per job: the stale ones changed nothing
    assert report.redelivered == held
    assert set(report.duplicates) <= held
    assert all(r.attempt == 2 for j in held for r in report.runs[j] if r.worker == w2.id)
    figures(
        "stale worker (SIGSTOP past lease, SIGCONT)",
        jobs=len(jobs),
        held_by_stopped=len(held),
        redelivered=len(report.redelivered),
        ran_twice=len(report.duplicates),
        acked=report.acked,
        stopped_s=round(stopped_for, 1),
    )
    # The stale worker carries on serving.
    more = await queue.enqueue_many([Job(type="work", args=Work(n=100 + i, seconds=0.05)) for i in range(40)])

    async def more_done() -> bool:
        return (await queue.stats()).processed >= len(jobs) + len(more)

    await wait_for(more_done, 30, "the next jobs", workers, [w1, w2])
    report = audit.report([*ids, *more])
    report.assert_all_processed()
    assert any(r.worker == w1.id for j in map(str, more) for r in report.runs.get(j, []))


async def _has(text: str, needle: str) -> bool:
    return needle in text


async def test_a_worker_whose_id_was_taken_while_it_was_frozen_stops_serving_at_once(
    workers: Workers, queue: RedisQueue, audit: Audit
) -> None:
    """A (--id svc-1) is frozen past its lease; B starts with the same id (the
    lease had lapsed, so it may); A comes back. A must serve no more under an id
    that is B's now: it settles and hands back nothing, and exits with one line."""
    (a,) = workers.start(1, concurrency=5, lease=LEASE, name="svc-")
    assert a.id == "svc-1"
    jobs = [Job(type="work", args=Work(n=i, seconds=0.5)) for i in range(40)]
    ids = await queue.enqueue_many(jobs)

    async def a_busy() -> bool:
        return sum(r.worker == "svc-1" for r in await queue.in_flight()) >= 3

    await wait_for(a_busy, 30, "A to hold jobs", workers, [a])
    a.signal(signal.SIGSTOP)
    held = {r.job_id for r in await queue.in_flight() if r.worker == "svc-1"}

    async def a_lapsed() -> bool:
        return "svc-1" in await queue.lost_workers()

    await wait_for(a_lapsed, 20, "A's lease to lapse", workers)
    # B: the same id and options, its own log and audit name.
    b = WorkerProc("svc-1", list(a.args), workers.env("svc-1b"), workers.logdir / "svc-1b.log")
    workers.procs.append(b)

    async def b_serving() -> bool:
        return "worker svc-1 serving" in b.log()

    await wait_for(b_serving, 20, "B to start under A's id", workers, [b])
    a.signal(signal.SIGCONT)
    resumed_ms = int(time.time() * 1000)
    rc = await a.wait(10)
    lines = a.log().strip().splitlines()
    assert rc == 1, a.tail()
    assert lines[-1].startswith("jobcore: error: worker id 'svc-1' was taken by another process"), a.tail()
    assert any("stops serving at once" in line for line in lines), a.tail()

    async def all_done() -> bool:
        s = await queue.stats()
        return s.processed >= len(jobs) and s.in_flight == 0 and s.pending == 0

    await wait_for(all_done, 60, "B to run every job", workers, [b])
    b.signal(signal.SIGTERM)
    assert await b.wait(10) == 0, b.tail()
    report = audit.report(ids)
    report.assert_all_processed()  # one ack each: A acked nothing after it came back
    # Only what A ran when it froze may have run twice (A's handlers finished
    # after SIGCONT; their results were dropped), and never more than twice.
    assert set(report.duplicates) <= held, (report.duplicates, held)
    assert all(n == 2 for n in report.duplicates.values()), report.duplicates
    # A took nothing after it came back: any job it started then was one it held
    # when it froze (its handler's start record may be written after SIGCONT).
    late = [s for rs in audit.starts().values() for s in rs if s.worker == "svc-1" and s.ms >= resumed_ms]
    assert {s.job_id for s in late} <= held, f"A started {len(late)} job(s) it did not hold after it came back"
    assert await queue.workers() == []
    figures(
        "twin id after a freeze",
        jobs=len(jobs),
        held_by_frozen=len(held),
        ran_twice=len(report.duplicates),
        a_exit_code=rc,
    )
