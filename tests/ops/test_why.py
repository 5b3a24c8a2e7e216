"""Why is it waiting (jobcore.ops.why): the pure explainer with constructed inputs,
then Queue.why against a real redis-server with a real worker."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec

from jobcore import Handlers, Job, Worker
from jobcore.ops.history import BUCKETS_MS, MinuteRow, TypeHistory, add_to_minute, build_history, runs_arg
from jobcore.ops.why import explain
from jobcore.records import InFlightJob, QueueStats, TypeStats, WorkerInfo
from jobcore.redis.backend import RedisQueue

NOW = datetime(2026, 12, 5, 10, 0, 0, tzinfo=UTC)
JOB = "0b6c1e2a-54f1-4f6e-9d1c-2c2b8d0f4a11"


def stats(**types: TypeStats) -> QueueStats:
    return QueueStats(types=dict(types), workers=0, taken_at=NOW)


def worker(
    wid: str, types: list[str], concurrency: int = 5, busy: int = 0, state: str = "alive", beat_s: float = 1.0
) -> WorkerInfo:
    return WorkerInfo(
        id=wid,
        host="h",
        pid=1,
        concurrency=concurrency,
        busy=busy,
        types=types,
        started_at=NOW - timedelta(hours=1),
        heartbeat_at=NOW - timedelta(seconds=beat_s),
        lease=15.0,
        state=state,  # type: ignore[arg-type]
    )


def row(
    wid: str, job_type: str = "launch", running_for: float = 1.0, n: int = 0, job_id: str | None = None
) -> InFlightJob:
    return InFlightJob(
        job_type, f"1700000000000-{n}", wid, NOW - timedelta(seconds=running_for), running_for, 1,
        job_id or f"00000000-0000-0000-0000-{n:012d}", 42, "000123", "org-9", 777, {},
    )  # fmt: skip


def history(job_type: str, bucket: int, runs: int) -> dict[str, TypeHistory]:
    buckets = tuple(runs if i == bucket else 0 for i in range(len(BUCKETS_MS) + 1))
    row = MinuteRow(at=NOW, processed=runs, buckets=buckets)
    return {job_type: TypeHistory(job_type=job_type, rows=(row,), processed=runs, buckets=buckets)}


def test_no_live_worker_serves_the_type() -> None:
    s = stats(launch=TypeStats("launch", pending=5, oldest_pending_age=90.0))
    why = explain("launch", s, [], [worker("w1", ["other"]), worker("w2", ["launch"], state="lost")], {})
    assert why.sentences[0] == "5 job(s) of launch wait, the oldest for 1m30s"
    assert why.sentences[1].startswith("no live worker serves launch")
    assert len(why.sentences) == 2 and why.job_type == "launch" and str(why).count("\n") == 1


def test_a_paused_type_says_so_through_the_pause_hook() -> None:
    @dataclass(frozen=True, slots=True)
    class Paused(TypeStats):
        paused: bool = True

    s = stats(launch=Paused("launch", pending=3))
    why = explain("launch", s, [], [worker("w1", ["launch"])], {})
    assert why.sentences[0] == "launch is paused: its jobs wait until it is resumed (jobcore resume launch)"
    assert not any("paused" in x for x in explain("launch", stats(launch=TypeStats("launch")), [], [], {}).sentences)


def test_all_slots_busy_with_when_one_frees_from_the_run_times() -> None:
    s = stats(launch=TypeStats("launch", pending=7, in_flight=10))
    rows = [row("w1", running_for=0.25, n=i) for i in range(5)] + [row("w2", running_for=5, n=9 + i) for i in range(5)]
    ws = [worker("w1", ["launch"], busy=5), worker("w2", ["launch", "other"], busy=5)]
    # The last hour's runs all in (1000, 2500] ms: p50 1750 ms, p95 2425 ms.
    why = explain("launch", s, rows, ws, history("launch", BUCKETS_MS.index(2500), 40))
    busy = [x for x in why.sentences if x.startswith("all 10 slots busy on 2 worker(s)")]
    assert busy == [
        "all 10 slots busy on 2 worker(s): a slot should free in about 1.5s "
        "(from the last hour's run times of the running jobs)"
    ]
    overdue = [row(w, running_for=60, n=i) for i, w in enumerate(["w1"] * 5 + ["w2"] * 5)]
    late = explain("launch", s, overdue, ws, history("launch", BUCKETS_MS.index(2500), 40))
    assert any("are all past their type's usual run time" in x for x in late.sentences)
    blind = explain("launch", s, rows, ws, {})
    assert any("no run times were recorded in the last hour" in x for x in blind.sentences)


def test_free_slots_and_nothing_waiting() -> None:
    s = stats(launch=TypeStats("launch", pending=2, in_flight=3))
    why = explain(
        "launch", s, [row("w1", n=i) for i in range(3)], [worker("w1", ["launch"], concurrency=10, busy=3)], {}
    )
    assert "7 of 10 slots are free on 1 worker(s) serving launch: its jobs should start within a fetch" in why.sentences
    idle = explain("launch", stats(launch=TypeStats("launch")), [], [worker("w1", ["launch"])], {})
    assert idle.sentences == ("nothing of launch is waiting or running",)
    gone = explain("nosuch", s, [], [], {})
    assert gone.sentences == ("no job of type nosuch is known (never enqueued nor served)",)


def test_jobs_held_ahead_in_a_prefetch_buffer() -> None:
    s = stats(launch=TypeStats("launch", pending=1, in_flight=5))
    rows = [row("w1", n=i) for i in range(5)]
    why = explain("launch", s, rows, [worker("w1", ["launch"], concurrency=2, busy=2)], {})
    assert (
        "worker w1 holds 3 job(s) ahead in its prefetch buffer (it runs 2 of 2 slots); they start there, not on an "
        "idle worker" in why.sentences
    )


def test_stale_and_lapsed_leases_say_when_the_jobs_come_back() -> None:
    s = stats(launch=TypeStats("launch", pending=0, in_flight=3))
    rows = [row("w1", n=0), row("w1", n=1), row("w2", n=2)]
    ws = [
        worker("w1", ["launch"], state="stale", beat_s=10),  # lease ends at 10:00:05
        worker("w2", ["launch"], state="lost", beat_s=20),  # lease ended at 09:59:55
        worker("w3", ["launch"], busy=0),  # alive: looks every 5 s
    ]
    why = explain("launch", s, rows, ws, {})
    assert (
        "worker w1 holding 2 job(s) of launch has a stale lease: if it does not come back they are re-delivered at "
        "about 10:00:10 UTC" in why.sentences
    )
    assert (
        "worker w2 holding 1 job(s) of launch has a lapsed lease (since 09:59:55 UTC): they are re-delivered at about "
        "10:00:05 UTC" in why.sentences
    )
    alone = explain("launch", s, rows, ws[:2], {})
    assert any(x.endswith("but no live worker serves launch to take them over") for x in alone.sentences)
    stale_only = explain("launch", stats(launch=TypeStats("launch", pending=4)), [], ws[:1], {})
    assert any(
        x.startswith("the worker(s) serving launch are stale (last heartbeat: w1 10.0s ago)")
        for x in stale_only.sentences
    )


def test_a_job_in_flight_by_its_id_or_prefix() -> None:
    s = stats(launch=TypeStats("launch", in_flight=4))
    rows = [row("w1", running_for=9 - i, n=i) for i in range(3)] + [row("w1", running_for=0.1, n=3, job_id=JOB)]
    ws = [worker("w1", ["launch"], concurrency=2, busy=2, beat_s=0.05)]
    why = explain(None, s, rows, ws, {}, job_id=JOB[:8])
    assert why.job_id == JOB and why.job_type == "launch"
    assert why.sentences[0] == f"job {JOB} of launch is in flight on worker w1 (attempt 1, taken 0.1s ago)"
    assert why.sentences[1].startswith("it is probably held ahead in worker w1's prefetch buffer: the worker holds 4")
    first = explain(None, s, rows, ws, {}, job_id="00000000-0000-0000-0000-000000000000")
    assert len(first.sentences) == 1  # the longest-running: one of the two it runs
    assert explain(None, s, rows, ws, {}, job_id="0b6c1e")
    assert explain(None, s, rows, ws, {}, job_id="0b6c1e").sentences[0].endswith("give at least 8 hex digits")
    assert "matches 3 jobs in flight" in explain(None, s, rows, ws, {}, job_id="00000000").sentences[0]
    missing = explain("launch", s, rows, ws, {}, job_id="ffffffff")
    assert missing.sentences[0] == "job ffffffff is not in flight: if it is pending, it waits for the reasons below"
    assert (
        explain(None, s, rows, ws, {}, job_id="ffffffff")
        .sentences[0]
        .endswith("give its type to see why that type's jobs wait")
    )


def test_it_always_says_something_true_when_nothing_waits() -> None:
    """3 running, none waiting: it said nothing at all (issue 19 item 6)."""
    s = stats(sleep=TypeStats("sleep", in_flight=3))
    rows = [row("w1", "sleep", running_for=41 - i, n=i) for i in range(3)]
    why = explain("sleep", s, rows, [worker("w1", ["sleep"], concurrency=10, busy=3)], {})
    assert why.sentences[0] == "nothing of sleep waits; 3 in flight, the oldest taken 41.0s ago"


def test_busy_slots_are_counted_from_the_jobs_in_flight_not_an_old_heartbeat() -> None:
    """The worker's record said busy 0 (a heartbeat before it took them); six jobs run."""
    s = stats(sleep=TypeStats("sleep", pending=2, in_flight=6))
    rows = [row("w1", "sleep", running_for=3, n=i) for i in range(6)]
    why = explain("sleep", s, rows, [worker("w1", ["sleep"], concurrency=6, busy=0, beat_s=4)], {})
    assert not any("slots are free" in x for x in why.sentences), why.sentences
    assert any(x.startswith("all 6 slots busy on 1 worker(s)") for x in why.sentences), why.sentences
    # And the other way: it said busy 6, but four of them have finished since.
    why = explain("sleep", s, rows[:2], [worker("w1", ["sleep"], concurrency=6, busy=6, beat_s=4)], {})
    assert "4 of 6 slots are free on 1 worker(s) serving sleep: its jobs should start within a fetch" in why.sentences


def test_only_what_the_history_supports_is_claimed() -> None:
    """One of ten running jobs has a type with history: no word about 'all' of them."""
    s = stats(launch=TypeStats("launch", pending=3, in_flight=10))
    rows = [row("w1", running_for=60, n=0)] + [row("w1", "other", running_for=5, n=i) for i in range(1, 10)]
    ws = [worker("w1", ["launch", "other"], concurrency=10, busy=10)]
    why = explain("launch", s, rows, ws, history("launch", BUCKETS_MS.index(2500), 40))
    busy = next(x for x in why.sentences if x.startswith("all 10 slots busy"))
    assert "all past" not in busy
    assert busy.endswith(
        "1 of the 10 running jobs are past their type's usual run time (p95 of the last hour) and the other 9 have "
        "no run times in the last hour to go by: a slot frees when one of them ends or times out"
    )
    soon = explain("launch", s, [row("w1", running_for=1, n=0), *rows[1:]], ws, history("launch", 10, 40))
    assert any(
        x.endswith("(from the last hour's run times of 1 of the 10 running jobs; the other 9: none for their type)")
        for x in soon.sentences
    ), soon.sentences


def test_when_a_slot_frees_is_the_typical_run_time_less_what_the_jobs_have_run() -> None:
    """60 s jobs, the running ones 41 s in: it said 'about 2.4m' from coarse buckets."""
    runs = add_to_minute(None, 20, 0, 0, runs_arg([60.0] * 20))
    h = build_history([1], {"sleep": [{1: runs}]}).types
    s = stats(sleep=TypeStats("sleep", pending=4, in_flight=2))
    rows = [row("w1", "sleep", running_for=41, n=0), row("w1", "sleep", running_for=30, n=1)]
    why = explain("sleep", s, rows, [worker("w1", ["sleep"], concurrency=2, busy=2)], h)
    busy = next(x for x in why.sentences if x.startswith("all 2 slots busy"))
    left = float(busy.split("about ")[1].split("s ")[0])
    assert 15 <= left <= 21, busy  # 60 s less 41 s, within the history's 10 %


# ---- on a real server, with a real worker ---------------------------------------


class Nap(msgspec.Struct):
    s: float = 0.2


async def test_why_on_redis_with_a_busy_worker_and_an_unserved_type(redis_url: str) -> None:
    handlers = Handlers()
    release = asyncio.Event()

    @handlers.handler("slow", Nap)
    async def slow(job: Job[Nap]) -> None:
        await release.wait()

    async with RedisQueue(redis_url) as q:
        await q.enqueue_many([Job(type="slow", args=Nap()) for _ in range(6)] + [Job(type="orphan", args={"x": 1})])
        w = Worker(RedisQueue(redis_url), handlers, concurrency=2, prefetch=0, lease=3)
        task = asyncio.create_task(w.run())
        try:
            for _ in range(200):
                if w.busy == 2 and any(x.busy == 2 for x in await q.workers()):
                    break
                await asyncio.sleep(0.05)
            why = await q.why("slow")
            assert why.sentences[0].startswith("4 job(s) of slow wait")
            assert any(x.startswith("all 2 slots busy on 1 worker(s): ") for x in why.sentences), why.sentences
            orphan = await q.why("orphan")
            assert any(x.startswith("no live worker serves orphan") for x in orphan.sentences)
            running = (await q.in_flight())[0]
            assert running.job_id is not None
            job = await q.why(job_id=running.job_id[:8])
            assert job.job_id == running.job_id
            assert job.sentences[0].startswith(f"job {running.job_id} of slow is in flight on worker {w.id}")
        finally:
            release.set()
            await w.stop()
            await task


async def test_why_of_a_pending_or_dead_job_finds_its_type(redis_url: str) -> None:
    """`why --job` of a pending job said "give its type" though find locates it."""
    from jobcore.records import Outcome

    async with RedisQueue(redis_url) as q:
        waiting = await q.enqueue(Job(type="slow", args={"s": 1}))
        why = await q.why(job_id=str(waiting))
        assert why.job_id == str(waiting) and why.job_type == "slow"
        assert why.sentences[0] == f"job {waiting} of slow is pending: it waits for the reasons below"
        assert why.sentences[1] == "1 job(s) of slow wait, the oldest for " + why.sentences[1].rsplit(" ", 1)[-1]
        assert any(x.startswith("no live worker serves slow") for x in why.sentences)
        # A prefix finds no pending job (find looks for those by whole id only): it says what was searched.
        short = await q.why(job_id=str(waiting)[:8])
        assert short.sentences == (
            f"job {str(waiting)[:8]} is not in flight, dead or failed (a pending job is found by its whole id "
            "only): give its type to see why that type's jobs wait",
        )
        (d,) = await q.fetch("w", ["slow"], 1, 0)
        await q.settle("w", [Outcome("slow", d.entry_id, "dead", 1, "Boom: no")])
        dead = await q.why(job_id=str(waiting)[:8])
        (ref,) = [b.id for b in await q.dead("slow")]
        assert dead.job_id == str(waiting) and dead.sentences == (
            f"job {waiting} of slow is dead (id {ref}), not waiting: `jobcore dead requeue slow {ref}` puts it back "
            "on the queue (reason: Boom: no)",
        )


def test_jobs_taken_since_the_workers_last_heartbeat_are_not_called_held_ahead() -> None:
    """A worker's busy count is as old as its record: three jobs it took after
    its last heartbeat (busy 0 then) are probably running, not buffered."""
    s = stats(launch=TypeStats("launch", in_flight=3))
    rows = [row("w1", running_for=2.8, n=i) for i in range(3)]
    ws = [worker("w1", ["launch"], concurrency=10, busy=0, beat_s=4.0)]
    why = explain("launch", s, rows, ws, {})
    assert not any("prefetch" in x for x in why.sentences), why.sentences
    # Held when it last said it ran none of them: those are held ahead.
    ws = [worker("w1", ["launch"], concurrency=10, busy=0, beat_s=1.0)]
    why = explain("launch", s, rows, ws, {})
    assert any("holds 3 job(s) ahead in its prefetch buffer" in x for x in why.sentences), why.sentences
