"""Fairness across accounts with real worker processes: turns, limits across
processes, kill -9 of a worker holding limited jobs, a limit changed under load.
Each ends with the audit (every job in exactly one place)."""

from __future__ import annotations

from collections import defaultdict

from jobcore import Identity, Job
from jobcore.redis.backend import RedisQueue

from .audit import Audit, Run
from .handlers import Work
from .procs import Workers, figures, sigkill, wait_for


def job(account: int, n: int, seconds: float) -> Job[Work]:
    return Job(
        type="work",
        args=Work(n=n, seconds=seconds),
        account_id=account,
        identity=Identity(account_number=f"a{account}", org_id="org"),
    )


def peak_per_account(
    starts: dict[str, list[Run]], runs: dict[str, list[Run]], account_of: dict[str, int]
) -> dict[int, int]:
    """The most of each account's jobs that held a slot at once, from the handlers'
    own records: a job holds its slot from its first start to its last end (a
    killed worker's job keeps it until the worker that takes it over settles it)."""
    events: list[tuple[int, int, int]] = []  # (ms, +1/-1, account)
    for job_id, rs in starts.items():
        ends = [r.ms for r in runs.get(job_id, [])]
        events.append((min(r.ms for r in rs), 1, account_of[job_id]))
        events.append((max(ends) if ends else 2**62, -1, account_of[job_id]))
    now: dict[int, int] = defaultdict(int)
    peak: dict[int, int] = defaultdict(int)
    for _, step, account in sorted(events, key=lambda e: (e[0], e[1])):  # an end before a start at the same ms
        now[account] += step
        peak[account] = max(peak[account], now[account])
    return dict(peak)


async def test_small_accounts_start_within_a_few_turns_of_a_big_ones_backlog(
    workers: Workers, queue: RedisQueue, audit: Audit
) -> None:
    ids = [await queue.enqueue(job(1, -1, 0))]  # the type exists
    await queue.set_fair("work", True)
    big = [job(1, i, 0.01) for i in range(2000)]
    small = [job(a, i, 0.01) for a in range(2, 22) for i in range(5)]
    ids += await queue.enqueue_many(big)
    workers.start(2, concurrency=5)

    async def started() -> bool:
        return (await queue.stats()).processed >= 50

    await wait_for(started, 60, "the big account's jobs to run", workers)
    ids += await queue.enqueue_many(small)
    small_ids = {str(j.id) for j in small}

    async def small_done() -> bool:
        return all(j in audit.runs() for j in small_ids)

    await wait_for(small_done, 60, "the small accounts' jobs", workers)
    starts = audit.starts()
    first_small = min(r.ms for j in small_ids for r in starts[j])
    last_small = max(r.ms for j in small_ids for r in starts[j])
    big_ids = {str(j.id) for j in big}
    big_between = sum(1 for j in big_ids for r in starts.get(j, []) if first_small <= r.ms <= last_small)
    # In turn: about one of the big account's per round of the 20 small ones (5 rounds), not 1,950 ahead.
    assert big_between <= 40, big_between

    async def all_done() -> bool:
        s = await queue.stats()
        return s.processed >= 2101 and s.in_flight == 0

    await wait_for(all_done, 120, "every job", workers)
    report = audit.report(ids)
    report.assert_all_processed()
    figures("fair: small accounts behind a 2,000-job account", big_started_meanwhile=big_between)


async def test_a_limit_holds_across_three_worker_processes_and_a_kill_9_frees_its_slots(
    workers: Workers, queue: RedisQueue, audit: Audit
) -> None:
    ids = [await queue.enqueue(job(9, -1, 0))]
    await queue.set_fair("work", True)
    await queue.set_limit("work", per_account=2)
    jobs = [job(a, i, 0.3) for i in range(12) for a in (1, 2, 3)]
    ids += await queue.enqueue_many(jobs)
    account_of = {str(j.id): j.account_id for j in jobs}
    w1, w2, w3 = workers.start(3, concurrency=4, lease=1.0)

    async def w1_holds() -> bool:
        return any(r.worker == w1.id for r in await queue.in_flight())

    await wait_for(w1_holds, 60, "w1 to hold a job", workers)
    sigkill(w1)

    async def all_done() -> bool:
        s = await queue.stats()
        return s.processed >= len(jobs) + 1 and s.in_flight == 0

    await wait_for(all_done, 120, "every job, the killed worker's too", workers, [w2, w3])
    report = audit.report(ids)
    report.assert_all_processed()
    starts = {j: rs for j, rs in audit.starts().items() if j in account_of}
    runs = {j: rs for j, rs in report.runs.items() if j in account_of}
    peak = peak_per_account(starts, runs, account_of)
    assert max(peak.values()) <= 2, (peak, report.redelivered)
    info = await queue.fair_info("work")
    assert info.top_running == [] and info.accounts_waiting == 0  # no slot leaked
    figures("fair: limit 2 across 3 workers, one killed", peak=max(peak.values()), redelivered=len(report.redelivered))


async def test_a_limit_changed_under_load_is_followed_and_never_passed(
    workers: Workers, queue: RedisQueue, audit: Audit
) -> None:
    ids = [await queue.enqueue(job(9, -1, 0))]
    await queue.set_fair("work", True)
    await queue.set_limit("work", per_account=1)
    jobs = [job(1, i, 0.2) for i in range(40)]
    ids += await queue.enqueue_many(jobs)
    account_of = {str(j.id): 1 for j in jobs}
    workers.start(2, concurrency=6)

    async def some_done() -> bool:
        return (await queue.stats()).processed >= 6

    await wait_for(some_done, 60, "the first jobs", workers)
    await queue.set_limit("work", per_account=4)

    async def all_done() -> bool:
        s = await queue.stats()
        return s.processed >= len(jobs) + 1 and s.in_flight == 0

    await wait_for(all_done, 120, "every job", workers)
    report = audit.report(ids)
    report.assert_all_processed()
    starts = {j: rs for j, rs in audit.starts().items() if j in account_of}
    peak = peak_per_account(starts, report.runs, account_of)
    assert peak[1] == 4, peak  # the raised limit was used, and never passed
