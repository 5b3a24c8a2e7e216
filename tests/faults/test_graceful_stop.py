"""Fault 5: SIGTERM with jobs in flight."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable

import redis

from jobcore import Job
from jobcore.redis.backend import RedisQueue

from .audit import Audit
from .handlers import Work
from .procs import WorkerProc, Workers, figures, wait_for

GRACE = 1.5


async def test_sigterm_finishes_what_it_can_hands_back_the_rest_and_exits_0(
    workers: Workers, queue: RedisQueue, audit: Audit
) -> None:
    short = [Job(type="work", args=Work(n=i, seconds=0.5)) for i in range(2)]
    long = [Job(type="work", args=Work(n=10, seconds=6)), Job(type="sync_sleep", args=Work(n=11, seconds=6))]
    (w1,) = workers.start(1, concurrency=4, lease=1.0, grace=GRACE)
    first = await queue.enqueue_many([*short, *long])

    async def all_started() -> bool:
        return len(audit.starts()) == 4

    await wait_for(all_started, 30, "four jobs running", workers, [w1])
    queued = await queue.enqueue_many([Job(type="work", args=Work(n=100 + i, seconds=0.05)) for i in range(20)])
    w1.signal(signal.SIGTERM)
    t0 = time.monotonic()
    rc = await w1.wait(GRACE + 10)
    took = time.monotonic() - t0
    assert rc == 0, w1.tail()
    # Well before the long jobs would have ended (6 s): the thread running the
    # sync one was not waited for.
    assert took < GRACE + 2.5, f"exit took {took:.1f}s with a grace of {GRACE}s\n{w1.tail()}"

    report = audit.report([*first, *queued])
    report.assert_accounted()
    assert report.processed == {str(j.id) for j in short}
    assert report.pending == {str(j.id) for j in long} | {str(i) for i in queued}
    assert not report.in_flight
    assert set(report.starts) == {str(j.id) for j in [*short, *long]}, "a job started after SIGTERM"
    assert await queue.workers() == []

    # The handed-back jobs did not burn an attempt.
    (w2,) = workers.start(1, concurrency=4, lease=1.0)

    async def all_done() -> bool:
        return (await queue.stats()).processed >= 24

    await wait_for(all_done, 30, "the rest", workers, [w2])
    report = audit.report([*first, *queued])
    report.assert_all_processed()
    for j in long:
        assert [(r.attempt, r.worker) for r in report.runs[str(j.id)]] == [(1, w2.id)]
    figures("graceful stop", grace_s=GRACE, exit_s=round(took, 2), handed_back=len(long), finished_in_grace=len(short))


async def test_a_second_signal_hands_back_200_running_jobs_and_a_fresh_worker_runs_them_at_once(
    workers: Workers, queue: RedisQueue, audit: Audit
) -> None:
    jobs = [Job(type="work", args=Work(n=i, seconds=60)) for i in range(200)]
    (w1,) = workers.start(1, concurrency=200, lease=1.0, grace=30)
    ids = await queue.enqueue_many(jobs)

    async def all_started() -> bool:
        return len(audit.starts()) == 200

    await wait_for(all_started, 30, "200 jobs running", workers, [w1])
    w1.signal(signal.SIGTERM)
    await asyncio.sleep(0.3)
    w1.signal(signal.SIGTERM)  # "stop at once"
    t0 = time.monotonic()
    rc = await w1.wait(15)
    stop_s = time.monotonic() - t0
    assert rc == 0, w1.tail()
    stats = (await queue.stats()).types["work"]
    assert (stats.in_flight, stats.pending) == (0, 200), w1.tail()  # handed back, not left to a lapsing lease
    assert "200 job(s) handed back to the queue" in w1.log()

    (w2,) = workers.start(1, concurrency=200, lease=1.0)
    t1 = time.monotonic()

    async def all_again() -> bool:
        return sum(1 for runs in audit.starts().values() if any(r.worker == w2.id for r in runs)) == 200

    await wait_for(all_again, 30, "the 200 jobs running again on a fresh worker", workers, [w2])
    again_s = time.monotonic() - t1
    report = audit.report(ids)
    report.assert_accounted()
    assert len(report.in_flight) == 200 and not report.pending
    figures(
        "second signal at concurrency 200 (60 s jobs)",
        handed_back=200,
        stop_s=round(stop_s, 2),
        all_running_again_on_a_fresh_worker_s=round(again_s, 2),
    )


async def test_jobs_a_hard_stop_could_not_hand_back_are_taken_over_at_full_concurrency_without_a_death(
    workers: Workers, queue: RedisQueue, audit: Audit, url: str
) -> None:
    """200 jobs that lived through one real death (kill -9) are on a worker that
    is then stopped at once while Redis refuses writes, so nothing is handed
    back. A stop is no death: a fresh worker runs all 200 again at once, none
    of them a suspect (two deaths would make each one wait for the one before)."""
    jobs = [Job(type="work", args=Work(n=i, seconds=60)) for i in range(200)]
    (w1,) = workers.start(1, concurrency=200, lease=1.0)
    ids = await queue.enqueue_many(jobs)

    def running_on(w: WorkerProc) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return sum(1 for runs in audit.starts().values() if any(r.worker == w.id for r in runs)) == 200

        return check

    await wait_for(running_on(w1), 30, "200 jobs running", workers, [w1])
    w1.kill()
    (w2,) = workers.start(1, concurrency=200, lease=1.0, grace=30)
    await wait_for(running_on(w2), 30, "the 200 jobs recovered from the killed worker", workers, [w2])

    w2.signal(signal.SIGTERM)
    await asyncio.sleep(0.5)  # its record now says it is stopping
    with redis.Redis.from_url(url) as r:
        r.execute_command("CLIENT", "PAUSE", 4000, "WRITE")  # the hand-back cannot land
    w2.signal(signal.SIGTERM)  # "stop at once"
    assert await w2.wait(15) == 0, w2.tail()
    assert "stopping without settling 200 job(s)" in w2.log(), w2.tail()
    assert "handed back" not in w2.log()
    assert len(audit.report(ids).in_flight) == 200  # still under w2, whose lease lapses

    (w3,) = workers.start(1, concurrency=200, lease=1.0)
    t0 = time.monotonic()
    await wait_for(running_on(w3), 30, "the 200 jobs running again on a fresh worker", workers, [w3])
    again_s = time.monotonic() - t0
    audit.report(ids).assert_accounted()
    starts = audit.starts()
    for i in ids:
        # The second attempt again (w2's was interrupted by a stop, not a death).
        assert [(r.worker, r.attempt) for r in starts[str(i)]] == [(w1.id, 1), (w2.id, 2), (w3.id, 2)]
    assert "taken over from stopped worker" in w3.log()
    figures(
        "hard stop that could not hand back, 200 jobs (one death each before)",
        left_in_flight=200,
        all_running_again_on_a_fresh_worker_s=round(again_s, 2),
        incl_redis_paused_s=4.0,
    )
