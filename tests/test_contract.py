"""The queue contract, run against memory, fakeredis and a real redis-server."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import msgspec
import pytest

import jobcore
from jobcore import ArgsError, Identity, Job
from jobcore.model import decode_args, decode_envelope
from jobcore.records import Delivery, InFlightJob, Outcome, Stale

from .helpers import plant


class Launch(msgspec.Struct, kw_only=True):
    reservation_id: int
    note: str = ""


def launch(n: int, account_id: int = 1) -> Job[Launch]:
    return Job(
        type="launch",
        args=Launch(reservation_id=n),
        account_id=account_id,
        identity=Identity(account_number=f"acct-{account_id}", org_id="org-9"),
    )


async def ready(q: jobcore.Queue, *types: str) -> None:
    await q.register_types({t: {"type": "object"} for t in types})


async def test_enqueue_then_fetch_is_fifo_and_round_trips_every_field(queue: jobcore.Queue) -> None:
    await ready(queue, "launch")
    jobs = [launch(i) for i in range(5)]
    for j in jobs:
        assert await queue.enqueue(j) == j.id
    got = await queue.fetch("w1", ["launch"], 10, 0)
    assert [d.attempt for d in got] == [1] * 5
    envs = [decode_envelope(d.raw or b"") for d in got]
    assert [e.id for e in envs] == [j.id for j in jobs]
    first = envs[0]
    assert first.type == "launch" and first.account_id == 1
    assert first.identity == Identity(account_number="acct-1", org_id="org-9")
    assert decode_args(first.args, Launch) == Launch(reservation_id=0)
    assert abs(first.enqueued_at_ms / 1000 - time.time()) < 5


async def test_enqueue_many_spans_types_and_counts_show_in_stats(queue: jobcore.Queue) -> None:
    await ready(queue, "launch", "other")
    jobs = [launch(i) for i in range(7)] + [Job(type="other", args={"x": i}) for i in range(3)]
    ids = await queue.enqueue_many(jobs)
    assert ids == [j.id for j in jobs]
    stats = await queue.stats()
    assert stats.types["launch"].pending == 7
    assert stats.types["other"].pending == 3
    assert stats.pending == 10 and stats.in_flight == 0
    assert stats.types["launch"].oldest_pending_age is not None
    assert sorted(await queue.job_types()) == ["launch", "other"]


async def test_types_are_discoverable_before_any_worker(queue: jobcore.Queue) -> None:
    await queue.enqueue(Job(type="lonely", args={"a": 1}))
    assert "lonely" in await queue.job_types()
    stats = await queue.stats()
    assert stats.types["lonely"].pending == 1
    assert stats.types["lonely"].served_by == 0
    assert stats.unserved == ["lonely"]


async def test_fetch_records_in_flight_and_ack_counts_processed(queue: jobcore.Queue) -> None:
    await ready(queue, "launch")
    await queue.enqueue_many([launch(i) for i in range(3)])
    got = await queue.fetch("w1", ["launch"], 2, 0)
    assert len(got) == 2
    s = await queue.stats()
    assert (s.types["launch"].pending, s.types["launch"].in_flight) == (1, 2)
    stale = await queue.settle("w1", [Outcome("launch", d.entry_id, "ack") for d in got])
    assert stale == []
    s = await queue.stats()
    assert (s.types["launch"].pending, s.types["launch"].in_flight) == (1, 0)
    assert s.types["launch"].processed == 2


async def test_ack_from_a_worker_that_does_not_own_the_job_changes_nothing(queue: jobcore.Queue) -> None:
    await ready(queue, "launch")
    await queue.enqueue(launch(1))
    (d,) = await queue.fetch("owner", ["launch"], 1, 0)
    stale = await queue.settle("intruder", [Outcome("launch", d.entry_id, "ack")])
    assert stale == [Stale(d.entry_id, "owner")]  # who holds it now
    s = (await queue.stats()).types["launch"]
    assert (s.in_flight, s.processed) == (1, 0)


async def test_in_flight_lists_the_six_log_fields(queue: jobcore.Queue) -> None:
    await ready(queue, "launch")
    job = launch(777, account_id=42)
    await queue.enqueue(job)
    await queue.fetch("w-a", ["launch"], 1, 0)
    await asyncio.sleep(0.05)
    (row,) = await queue.in_flight()
    assert row.job_id == str(job.id) and row.job_type == "launch"
    assert (row.account_id, row.account_number, row.org_id) == (42, "acct-42", "org-9")
    assert row.reservation_id == 777
    assert row.worker == "w-a" and row.attempt == 1
    assert row.running_for >= 0.03
    assert row.args == {"reservation_id": 777, "note": ""}


async def test_failed_jobs_are_kept_with_the_error_and_can_be_requeued(queue: jobcore.Queue) -> None:
    await ready(queue, "launch")
    job = launch(5)
    await queue.enqueue(job)
    (d,) = await queue.fetch("w1", ["launch"], 1, 0)
    await queue.settle("w1", [Outcome("launch", d.entry_id, "fail", d.attempt, "Traceback...\nBoom")])
    s = (await queue.stats()).types["launch"]
    assert (s.failed, s.failed_kept, s.in_flight, s.pending) == (1, 1, 0, 0)
    (bad,) = await queue.failed("launch")
    assert bad.reason.endswith("Boom") and bad.job_id == str(job.id) and bad.worker == "w1"
    assert await queue.requeue("failed", "launch", [bad.id]) == 1
    assert await queue.failed("launch") == []
    (again,) = await queue.fetch("w2", ["launch"], 1, 0)
    assert decode_envelope(again.raw or b"").id == job.id
    assert again.attempt == 1


async def test_dead_jobs_keep_raw_bytes_and_reason_then_requeue_or_purge(queue: jobcore.Queue) -> None:
    await ready(queue, "launch")
    await plant(queue, "launch", b"\xff garbage")
    (d,) = await queue.fetch("w1", ["launch"], 1, 0)
    await queue.settle("w1", [Outcome("launch", d.entry_id, "dead", d.attempt, "corrupt envelope")])
    (bad,) = await queue.dead()
    assert (bad.raw, bad.reason, bad.job_type, bad.job_id) == (
        b"\xff garbage",
        "corrupt envelope",
        "launch",
        None,
    )
    assert bad.fields == {} and bad.to_dict()["fields"] == {}  # no other fields were in the entry
    assert (await queue.stats()).types["launch"].dead == 1
    assert await queue.requeue("dead", "launch") == 1
    assert (await queue.stats()).types["launch"].pending == 1
    (d,) = await queue.fetch("w1", ["launch"], 1, 0)
    assert d.raw == b"\xff garbage"
    await queue.settle("w1", [Outcome("launch", d.entry_id, "dead", d.attempt, "again")])
    assert await queue.purge("dead", "launch") == 1
    assert await queue.dead() == []
    assert (await queue.stats()).types["launch"].dead == 0


async def test_release_hands_the_job_back_without_burning_an_attempt(queue: jobcore.Queue) -> None:
    await ready(queue, "launch")
    await queue.enqueue(launch(1))
    (d,) = await queue.fetch("w1", ["launch"], 1, 0)
    await queue.settle("w1", [Outcome("launch", d.entry_id, "release", d.attempt)])
    s = (await queue.stats()).types["launch"]
    assert (s.pending, s.in_flight) == (1, 0)
    (d2,) = await queue.fetch("w2", ["launch"], 1, 0)
    assert d2.attempt == 1 and d2.raw == d.raw


async def test_blocked_fetch_wakes_as_soon_as_a_job_arrives(queue: jobcore.Queue) -> None:
    await ready(queue, "launch")
    fetch = asyncio.create_task(queue.fetch("w1", ["launch"], 1, 3000))
    await asyncio.sleep(0.1)
    assert not fetch.done()
    t0 = time.perf_counter()
    await queue.enqueue(launch(1))
    got = await asyncio.wait_for(fetch, 2)
    assert len(got) == 1
    assert time.perf_counter() - t0 < 0.5


async def test_idle_fetch_returns_empty_after_block(queue: jobcore.Queue) -> None:
    await ready(queue, "launch")
    t0 = time.perf_counter()
    assert await queue.fetch("w1", ["launch"], 5, 200) == []
    assert 0.15 < time.perf_counter() - t0 < 2


async def test_lost_worker_jobs_are_claimed_once_with_a_new_attempt(queue: jobcore.Queue) -> None:
    await ready(queue, "launch")
    await queue.enqueue_many([launch(i) for i in range(4)])
    assert await queue.heartbeat({"id": "dying", "types": ["launch"]}, 100)
    held = await queue.fetch("dying", ["launch"], 4, 0)
    assert len(held) == 4
    assert await queue.lost_workers() == []
    await asyncio.sleep(0.25)
    assert await queue.lost_workers() == ["dying"]
    (w,) = await queue.workers()
    assert w.state == "lost"
    # Two recoverers race: each job moves exactly once.
    (a, left_a), (b, left_b) = await asyncio.gather(
        queue.claim("r1", "launch", "dying", 10), queue.claim("r2", "launch", "dying", 10)
    )
    moved = [d.entry_id for d in a + b]
    assert sorted(moved) == sorted(d.entry_id for d in held)
    assert {d.attempt for d in a + b} == {2}
    assert (left_a, left_b) == (0, 0)
    assert await queue.owned("dying", ["launch"]) == []
    # The old owner's late ack changes nothing.
    stale = await queue.settle("dying", [Outcome("launch", held[0].entry_id, "ack")])
    assert [s.entry_id for s in stale] == [held[0].entry_id]
    await queue.forget_worker("dying", ["launch"])
    assert await queue.workers() == []


async def test_claim_respects_count_and_reports_what_is_left(queue: jobcore.Queue) -> None:
    await ready(queue, "launch")
    await queue.enqueue_many([launch(i) for i in range(5)])
    await queue.fetch("gone", ["launch"], 5, 0)
    got, left = await queue.claim("me", "launch", "gone", 2)
    assert (len(got), left) == (2, 3)
    assert len(await queue.owned("me", ["launch"])) == 2


async def test_claim_named_ids_only_takes_those_still_owned(queue: jobcore.Queue) -> None:
    await ready(queue, "launch")
    await queue.enqueue_many([launch(i) for i in range(3)])
    held = await queue.fetch("me", ["launch"], 3, 0)
    got, _ = await queue.claim("me", "launch", "me", 10, [held[1].entry_id, "1-1"])
    assert [d.entry_id for d in got] == [held[1].entry_id]
    assert got[0].attempt == 2


async def test_workers_show_heartbeat_and_types(queue: jobcore.Queue) -> None:
    await queue.heartbeat(
        {
            "id": "w9",
            "host": "h",
            "pid": 1,
            "concurrency": 4,
            "busy": 2,
            "types": ["a", "b"],
            "started_ms": int(time.time() * 1000),
            "heartbeat_interval_ms": 5000,
        },
        15000,
    )
    (w,) = await queue.workers()
    assert (w.id, w.host, w.concurrency, w.busy, w.types, w.state) == ("w9", "h", 4, 2, ["a", "b"], "alive")
    assert w.heartbeat_age < 2
    stats = await queue.stats()
    assert stats.workers == 1


async def test_schemas_published_by_register_types(queue: jobcore.Queue) -> None:
    schema = msgspec.json.schema(Launch)
    await queue.register_types({"launch": schema})
    assert (await queue.schemas())["launch"] == schema
    assert (await queue.stats()).types["launch"].has_schema


async def test_enqueue_refuses_args_that_do_not_fit_the_declared_type(queue: jobcore.Queue) -> None:
    queue.declare("launch", Launch)
    with pytest.raises(ArgsError, match="reservation_id"):
        await queue.enqueue(Job(type="launch", args={"reservation_id": "seven"}))
    with pytest.raises(ArgsError):
        await queue.enqueue(Job(type="launch", args={"note": "missing id"}))
    job_id = await queue.enqueue(Job(type="launch", args={"reservation_id": 7}))
    assert isinstance(job_id, uuid.UUID)
    assert (await queue.stats()).types["launch"].pending == 1


async def test_dead_and_failed_listing_is_paged_newest_first(queue: jobcore.Queue) -> None:
    await ready(queue, "launch")
    await queue.enqueue_many([launch(i) for i in range(5)])
    got = await queue.fetch("w", ["launch"], 5, 0)
    for d in got:
        await queue.settle("w", [Outcome("launch", d.entry_id, "dead", 1, f"r{d.entry_id}")])
    page1 = await queue.dead("launch", limit=2)
    page2 = await queue.dead("launch", limit=10, before=page1[-1].id)
    assert len(page1) == 2 and len(page2) == 3
    ids = [b.id for b in page1 + page2]
    assert len(set(ids)) == 5
    assert [b.reason for b in page1 + page2] == [f"r{d.entry_id}" for d in reversed(got)]


async def test_dashboard_reads_stats_in_flight_and_workers_together(queue: jobcore.Queue) -> None:
    await ready(queue, "launch", "other")
    await queue.enqueue_many([launch(i) for i in range(6)] + [Job(type="other", args={"n": 1})])
    await queue.heartbeat({"id": "w1", "types": ["launch"]}, 15000)
    await queue.fetch("w1", ["launch"], 3, 0)
    await asyncio.sleep(0.02)
    dash = await queue.dashboard(in_flight_limit=2)
    assert (dash.stats.types["launch"].pending, dash.stats.types["launch"].in_flight) == (3, 3)
    assert dash.stats.types["other"].pending == 1 and dash.stats.types["launch"].served_by == 1
    assert len(dash.in_flight) == 2 and {r.worker for r in dash.in_flight} == {"w1"}
    assert [w.id for w in dash.workers] == ["w1"]
    full = await queue.in_flight()
    assert [r.entry_id for r in dash.in_flight] == [r.entry_id for r in full[:2]]


def _rows(rows: list[InFlightJob]) -> list[InFlightJob]:
    """What the rows show apart from the clock (running_for and started_at move on)."""
    still = datetime.fromtimestamp(0, tz=UTC)
    return [
        msgspec.structs.replace(r, started_at=still, running_for=0.0)
        for r in sorted(rows, key=lambda r: (r.job_type, r.entry_id))
    ]


async def test_in_flight_is_empty_before_any_worker_reads_a_type(queue: jobcore.Queue) -> None:
    await queue.enqueue(launch(1))
    assert await queue.in_flight() == []
    assert (await queue.dashboard()).in_flight == []


async def test_in_flight_rows_follow_settles_takes_claims_and_requeues(queue: jobcore.Queue) -> None:
    await ready(queue, "launch")
    jobs = [launch(i) for i in range(5)]
    await queue.enqueue_many(jobs)
    first = await queue.fetch("w1", ["launch"], 3, 0)
    job_of = {d.entry_id: str(decode_envelope(d.raw or b"").id) for d in first}
    rows = await queue.in_flight()
    assert {(r.entry_id, r.worker, r.attempt, r.job_id) for r in rows} == {
        (d.entry_id, "w1", 1, job_of[d.entry_id]) for d in first
    }
    # Two settled, the rest taken by another worker: the rows follow.
    await queue.settle("w1", [Outcome("launch", d.entry_id, "ack") for d in first[:2]])
    more = await queue.fetch("w2", ["launch"], 5, 0)
    job_of.update({d.entry_id: str(decode_envelope(d.raw or b"").id) for d in more})
    rows = await queue.in_flight()
    assert {(r.entry_id, r.worker, r.attempt, r.job_id) for r in rows} == {
        (first[2].entry_id, "w1", 1, job_of[first[2].entry_id])
    } | {(d.entry_id, "w2", 1, job_of[d.entry_id]) for d in more}
    assert {r.job_id for r in rows} == {str(j.id) for j in jobs[2:]}
    # Claimed: the same job, a new worker and the next attempt.
    (c,), _ = await queue.claim("w3", "launch", "w1", 1)
    (row,) = [r for r in await queue.in_flight() if r.entry_id == c.entry_id]
    assert (row.worker, row.attempt, row.job_id) == ("w3", 2, job_of[c.entry_id])
    # Released after its second attempt and taken again: the attempts it had count.
    await queue.settle("w3", [Outcome("launch", c.entry_id, "release", c.attempt)])
    (again,) = await queue.fetch("w4", ["launch"], 1, 0)
    assert again.attempt == 2
    (row,) = [r for r in await queue.in_flight() if r.entry_id == again.entry_id]
    assert (row.worker, row.attempt, row.job_id) == ("w4", 2, job_of[c.entry_id])
    (c2,), _ = await queue.claim("w5", "launch", "w4", 1)
    assert c2.attempt == 3
    rows = await queue.in_flight()
    (row,) = [r for r in rows if r.entry_id == c2.entry_id]
    assert (row.worker, row.attempt, row.job_id) == ("w5", 3, job_of[c.entry_id])
    assert len(rows) == 3 and c.entry_id not in {r.entry_id for r in rows}
    assert _rows((await queue.dashboard(10)).in_flight) == _rows(rows)
    # All settled: nothing left to show.
    await queue.settle("w2", [Outcome("launch", d.entry_id, "ack") for d in more])
    await queue.settle("w5", [Outcome("launch", c2.entry_id, "ack")])
    assert await queue.in_flight() == []


async def test_fetch_takes_count_in_all_and_the_types_take_turns(queue: jobcore.Queue) -> None:
    await ready(queue, "launch", "other")
    await queue.enqueue_many([launch(i) for i in range(5)] + [Job(type="other", args=[i]) for i in range(5)])
    got = await queue.fetch("w1", ["launch", "other"], 4, 0)
    assert len(got) == 4  # not 4 of each
    firsts = [(await queue.fetch("w1", ["launch", "other"], 1, 0))[0].job_type for _ in range(4)]
    assert set(firsts) == {"launch", "other"}  # neither type starves the other
    rest = await queue.fetch("w1", ["launch", "other"], 10, 0)
    assert len(got) + len(firsts) + len(rest) == 10
    assert await queue.fetch("w1", ["launch", "other"], 10, 0) == []


async def test_a_long_lived_reader_shows_what_a_fresh_one_does(queue: jobcore.Queue) -> None:
    """A reader that refreshes again and again (a console) keeps what it decoded of
    each in-flight entry; its rows must match a new reader's at every step."""
    await ready(queue, "launch", "other")
    await plant(queue, "launch", b"\xff garbage")
    await plant(queue, "launch", None)
    # Entries of both types get the same ids when written in the same millisecond.
    await queue.enqueue_many([launch(i, account_id=i) for i in range(4)] + [Job(type="other", args=[1, 2])] * 2)
    fresh = queue.clone()

    async def same() -> list[InFlightJob]:
        await asyncio.sleep(0.002)
        mine, theirs = await queue.in_flight(), await fresh.in_flight()
        assert _rows(mine) == _rows(theirs)
        assert [r.entry_id for r in mine] == [r.entry_id for r in sorted(mine, key=lambda r: -r.running_for)]
        for a, b in zip(sorted(mine, key=lambda r: r.entry_id), sorted(theirs, key=lambda r: r.entry_id), strict=True):
            assert abs((a.started_at - b.started_at).total_seconds()) < 0.5
            assert abs(a.running_for - b.running_for) < 0.5
        return mine

    try:
        assert await same() == []
        taken = await queue.fetch("w1", ["launch"], 3, 0) + await queue.fetch("w1", ["other"], 3, 0)
        rows = await same()
        assert len(rows) == 5
        errors = sorted(r.error or "" for r in rows)
        assert errors[:4] == ["", "", "", "entry has no payload"]
        assert errors[4].startswith("unknown envelope version")
        await queue.settle("w1", [Outcome(d.job_type, d.entry_id, "ack") for d in taken if d.job_type == "other"])
        assert len(await same()) == 3
        await queue.fetch("w2", ["launch", "other"], 10, 0)
        await queue.claim("w3", "launch", "w1", 1)
        rows = await same()
        assert len(rows) == 6 and {r.worker for r in rows} == {"w1", "w2", "w3"}
        assert len(await queue.in_flight(2)) == 2
        assert len(await same()) == 6
    finally:
        if fresh is not queue:
            await fresh.close()


async def test_scripts_reload_after_redis_forgets_them(redis_url: str) -> None:
    from jobcore.redis.backend import RedisQueue

    q = RedisQueue(redis_url)
    try:
        await ready(q, "launch")
        await q.transport.call("SCRIPT", "FLUSH")
        await q.enqueue_many([launch(i) for i in range(3)])
        got = await q.fetch("w", ["launch"], 3, 0)
        await q.transport.call("SCRIPT", "FLUSH")
        assert await q.settle("w", [Outcome("launch", d.entry_id, "ack") for d in got]) == []
        await q.transport.call("SCRIPT", "FLUSH")
        assert (await q.stats()).types["launch"].processed == 3
        await q.transport.call("SCRIPT", "FLUSH")
        assert (await q.dashboard()).stats.types["launch"].processed == 3
    finally:
        await q.close()


# ---- failure groups ------------------------------------------------------------


async def test_failure_groups_group_by_cause_and_requeue_or_purge_a_group(queue: jobcore.Queue) -> None:
    # Three partitions (on Redis three streams, with entry refs "ID@p"), nine accounts.
    await queue.set_partitions("grp", 3)
    await ready(queue, "grp")
    await queue.enqueue_many([Job(type="grp", args={"n": i}, account_id=i) for i in range(9)])
    got = await queue.fetch("w", ["grp"], 9, 0)
    assert len(got) == 9
    outcomes = []
    for i, d in enumerate(got):
        last = f"KeyError: 'k{i}'" if i % 3 == 2 else f"TimeoutError: account {i} took {30 + i}.{i}s"
        outcomes.append(Outcome("grp", d.entry_id, "fail", d.attempt, f"Traceback (most recent call last):\n{last}"))
    assert await queue.settle("w", outcomes) == []
    groups = await queue.failure_groups("failed")
    assert [(g.job_type, g.label, g.count) for g in groups] == [
        ("grp", "TimeoutError: account <n> took <n>s", 6),
        ("grp", "KeyError: <str>", 3),
    ]
    listed = await queue.failed("grp")
    timeouts, keys = groups
    assert set(timeouts.refs) == {b.id for b in listed if "TimeoutError" in b.reason}
    assert timeouts.example.id == timeouts.refs[0] and timeouts.newest == timeouts.example.at
    assert await queue.failure_groups("failed", "other") == [] and await queue.failure_groups("dead") == []

    assert await queue.requeue_group("failed", timeouts.key) == 6
    s = (await queue.stats()).types["grp"]
    assert (s.pending, s.failed_kept) == (6, 3)
    assert [g.key for g in await queue.failure_groups("failed", "grp")] == [keys.key]
    with pytest.raises(jobcore.JobcoreError, match="no failed group"):
        await queue.requeue_group("failed", timeouts.key)
    with pytest.raises(LookupError):
        await queue.purge_group("failed", keys.key, "other")
    assert await queue.purge_group("failed", keys.key, "grp") == 3
    assert await queue.failed("grp") == []


async def test_dead_groups_keep_types_apart(queue: jobcore.Queue) -> None:
    await ready(queue, "a", "b")
    await queue.enqueue_many([Job(type=t, args={"n": i}) for t in ("a", "b") for i in range(2)])
    got = await queue.fetch("w", ["a", "b"], 4, 0)
    reason = "args do not fit Args: Expected `int`, got `str` - at `$.n`"
    await queue.settle("w", [Outcome(d.job_type, d.entry_id, "dead", 1, reason) for d in got])
    groups = await queue.failure_groups("dead")
    assert sorted((g.job_type, g.count, g.which) for g in groups) == [("a", 2, "dead"), ("b", 2, "dead")]
    assert len({g.key for g in groups}) == 2
    assert all(g.exception is None and g.reason == reason for g in groups)


# ---- history -------------------------------------------------------------------


async def test_history_counts_settled_outcomes_per_minute_across_partitions(queue: jobcore.Queue) -> None:
    await queue.set_partitions("hist", 2)
    await ready(queue, "hist", "quiet")
    await queue.enqueue_many([Job(type="hist", args={"n": i}, account_id=i) for i in range(6)])
    got = await queue.fetch("w", ["hist"], 6, 0)
    kinds = ["ack", "ack", "ack", "fail", "dead", "release"]
    took = [0.004, 0.004, 0.2, 0.03, 0.0, 0.0]
    outcomes = [Outcome("hist", d.entry_id, k, 1, "e", t) for d, k, t in zip(got, kinds, took, strict=True)]  # type: ignore[arg-type]
    # One of them settled by a worker that does not hold it: its outcome is not counted.
    stray = [Outcome("hist", got[0].entry_id, "ack", 1, "", 0.004)]
    assert await queue.settle("other", stray) != []
    assert await queue.settle("w", outcomes) == []
    history = await queue.history("hist", minutes=2)
    assert list(history.types) == ["hist"] and history.minutes == 2
    h = history.types["hist"]
    assert len(h.rows) == 2 and h.rows[-1].at == history.until
    assert (h.processed, h.failed, h.dead) == (3, 1, 1)
    assert h.runs == 5 and h.run_ms == 242  # four runs, plus the stray one's time: it ran
    assert h.p50_ms is not None and 2 < h.p50_ms <= 5 and h.p95_ms is not None and 100 < h.p95_ms <= 250
    every = await queue.history()
    assert {"hist", "quiet"} <= set(every.types) and every.types["quiet"].processed == 0
    assert len(every.types["hist"].rows) == 60 and every.types["hist"].processed == 3
    with pytest.raises(ValueError):
        await queue.history(minutes=0)


# ---- why -----------------------------------------------------------------------


async def test_why_reads_slots_prefetch_and_unserved_types(queue: jobcore.Queue) -> None:
    await ready(queue, "busy", "alone")
    await queue.enqueue_many([Job(type="busy", args={"n": i}) for i in range(5)] + [Job(type="alone", args={})])
    got = await queue.fetch("w1", ["busy"], 4, 0)  # two running, two held ahead
    assert len(got) == 4
    await asyncio.sleep(0.002)  # its record, published after it took them, counts them
    info = {"id": "w1", "types": ["busy"], "concurrency": 2, "busy": 2, "heartbeat_interval_ms": 5000}
    await queue.heartbeat(info, 15_000)
    why = await queue.why("busy")
    assert why.sentences[0] == "1 job(s) of busy wait, the oldest for " + why.sentences[0].rsplit(" ", 1)[-1]
    assert any(s.startswith("all 2 slots busy on 1 worker(s): ") for s in why.sentences)
    assert any(s.startswith("worker w1 holds 2 job(s) ahead in its prefetch buffer") for s in why.sentences)
    assert [s for s in (await queue.why("alone")).sentences if "no live worker" in s] == [
        "no live worker serves alone: its jobs wait until one starts (jobcore worker ... --types alone)"
    ]
    job_id = str(decode_envelope(got[0].raw or b"").id)
    assert (await queue.why(job_id=job_id[:8])).job_id == job_id
    with pytest.raises(ValueError):
        await queue.why()


# ---- operator controls: pause / resume, find, cancel --------------------------


async def test_a_paused_type_is_not_fetched_nor_claimed_and_stats_say_paused(queue: jobcore.Queue) -> None:
    await ready(queue, "launch", "other")
    await queue.enqueue_many([launch(1), launch(2), Job(type="other", args={"x": 1})])
    await queue.pause("launch")
    assert (await queue.stats()).types["launch"].paused
    assert not (await queue.stats()).types["other"].paused
    assert (await queue.stats()).to_dict()["types"]["launch"]["paused"] is True
    got = await queue.fetch("w1", ["launch", "other"], 10, 0)
    assert [d.job_type for d in got] == ["other"]
    assert await queue.fetch("w1", ["launch"], 10, 200) == []
    await queue.enqueue(launch(3))  # jobs keep arriving, and wait
    assert (await queue.stats()).types["launch"].pending == 3
    await queue.resume("launch")
    assert not (await queue.stats()).types["launch"].paused
    got = await queue.fetch("w1", ["launch"], 10, 0)
    assert len(got) == 3
    # A lost worker's jobs of a paused type stay with it until resume.
    await queue.pause("launch")
    taken, left = await queue.claim("w2", "launch", "w1", 10)
    assert taken == [] and left == 0
    await queue.resume("launch")
    taken, left = await queue.claim("w2", "launch", "w1", 10)
    assert len(taken) == 3 and left == 0


async def test_pause_of_an_unknown_type_is_an_error(queue: jobcore.Queue) -> None:
    with pytest.raises(jobcore.UnknownJobType, match="unknown job type 'nope'"):
        await queue.pause("nope")
    with pytest.raises(jobcore.UnknownJobType):
        await queue.resume("nope")


async def test_pause_covers_every_partition_even_ones_added_later(queue: jobcore.Queue) -> None:
    queue.declare("launch", partitions=2)
    await queue.enqueue_many([launch(i, account_id=a) for i, a in enumerate(range(20))])
    await ready(queue, "launch")
    await queue.pause("launch")
    await queue.set_partitions("launch", 3)
    await queue.enqueue_many([launch(i, account_id=a) for i, a in enumerate(range(20, 40))])
    await ready(queue, "launch")
    assert await queue.fetch("w1", ["launch"], 100, 0) == []
    await queue.resume("launch")
    got = await queue.fetch("w1", ["launch"], 100, 0)
    # Partition 2 opens once 0 and 1 have run what they held at the raise (FIFO per account).
    await queue.settle("w1", [Outcome("launch", d.entry_id, "ack", d.attempt) for d in got])
    queue.routes.expire()
    assert len(got + await queue.fetch("w1", ["launch"], 100, 0)) == 40


async def test_find_tells_where_each_job_is_with_its_six_fields(queue: jobcore.Queue) -> None:
    await ready(queue, "launch")
    running, failing, waiting = launch(1, account_id=42), launch(2, account_id=42), launch(3, account_id=7)
    await queue.enqueue_many([running, failing])
    (d1, d2) = await queue.fetch("w1", ["launch"], 2, 0)
    await queue.settle("w1", [Outcome("launch", d2.entry_id, "fail", 1, "ValueError: boom")])
    await queue.enqueue(waiting)

    (hit,) = await queue.find(str(running.id))
    assert (hit.where, hit.worker, hit.ref, hit.job_type) == ("in_flight", "w1", d1.entry_id, "launch")
    assert hit.log_fields() == {
        "account_id": 42,
        "account_number": "acct-42",
        "org_id": "org-9",
        "job_id": str(running.id),
        "job_type": "launch",
        "reservation_id": 1,
    }
    (hit,) = await queue.find(str(running.id)[:8] + str(running.id)[9:13])
    assert hit.where == "in_flight"
    (hit,) = await queue.find(str(failing.id))
    assert (hit.where, hit.reason, hit.attempt) == ("failed", "ValueError: boom", 1)
    (hit,) = await queue.find([str(waiting.id)])
    assert (hit.where, hit.account_id, hit.reservation_id) == ("pending", 7, 3)
    assert (await queue.fetch("w1", ["launch"], 1, 0))[0].entry_id == hit.ref
    (gone,) = await queue.find(str(uuid.uuid4()))
    assert gone.where == "not_found"
    by_account = await queue.find("account:42")
    assert sorted(h.where for h in by_account) == ["failed", "in_flight"]
    assert [h.where for h in await queue.find("account:42 res:2")] == ["failed"]
    assert await queue.find("account:42 type:other") == []
    assert [h.where for h in await queue.find("org:org-9 acct:acct-7")] == ["in_flight"]
    with pytest.raises(jobcore.BadQuery):
        await queue.find("colour:red")


async def test_find_looks_for_a_pending_id_in_every_partition(queue: jobcore.Queue) -> None:
    queue.declare("launch", partitions=3)
    jobs = [launch(i, account_id=i) for i in range(12)]
    await queue.enqueue_many(jobs)
    for j in jobs:
        (hit,) = await queue.find(str(j.id))
        assert (hit.where, hit.account_id, hit.reservation_id) == ("pending", j.account_id, j.args.reservation_id)


async def test_cancel_asks_the_owning_worker_and_reports_its_answer(
    queue: jobcore.Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobcore.ops.operations, "CANCEL_CONFIRM_S", 0.3)
    await ready(queue, "launch")
    await queue.heartbeat({"id": "w1", "types": ["launch"], "sync_types": ["launch"]}, 10_000)
    a, b, c, d = launch(1), launch(2), launch(3), launch(4)
    await queue.enqueue_many([a, b, d])
    (da, db, dd) = await queue.fetch("w1", ["launch"], 3, 0)
    await queue.enqueue(c)

    # The worker's settle answers, in the same script: cancelled.
    asking = asyncio.ensure_future(queue.cancel(str(a.id)))
    requests = await _cancel_requests(queue, "w1")
    # First as a worker of an older jobcore reads it, then with the id of the answer.
    assert [(t, ref) for t, ref, _ in requests] == [("launch", da.entry_id)] * 2
    assert requests[0][2] == "" and requests[1][2]
    ask = requests[1][2]
    cancelled = Outcome("launch", da.entry_id, "fail", 1, "cancelled by operator", cancels=(ask,), verdict="cancelled")
    await queue.settle("w1", [cancelled])
    res = await asking
    assert (res.status, res.job and res.job.worker) == ("cancelled", "w1") and "recorded as failed" in res.message
    await queue.answer_cancel("launch", da.entry_id, ask, "processed")  # a late answer changes nothing
    assert await queue._cancel_answer("launch", da.entry_id, ask) == "cancelled"
    assert await queue.cancel_requests("w1") == []  # taken once
    assert await queue.cancel_requests("w2") == []

    # Settled before the worker took the request: the worker answers what it became.
    asking = asyncio.ensure_future(queue.cancel(str(b.id)))
    ((_, ref, _), (_, _, ask)) = await _cancel_requests(queue, "w1")
    await queue.settle("w1", [Outcome("launch", db.entry_id, "ack")])
    await queue.answer_cancel("launch", ref, ask, "processed")
    res = await asking
    assert (res.status, res.outcome) == ("finished", "processed") and "finished first on worker w1" in res.message

    # No answer in time: asked, not confirmed (and the sync handler is said).
    res = await queue.cancel(str(d.id))
    assert (res.status, res.sync, res.job and res.job.worker) == ("requested", True, "w1")
    assert "cancel requested of worker w1" in res.message and "not yet confirmed" in res.message
    (_, _, ask) = (await queue.cancel_requests("w1"))[1]
    # A settle of a job this worker no longer holds answers "moved".
    await queue.settle("w2", [Outcome("launch", dd.entry_id, "ack", cancels=(ask,), verdict="processed")])
    assert await queue._cancel_answer("launch", dd.entry_id, ask) == "moved"

    assert (await queue.cancel(str(c.id))).status == "pending"
    res = await queue.cancel(str(b.id))  # processed: nothing kept says so
    assert res.status == "not_found" and "processed" not in res.message
    assert (await queue.cancel("ffffffff")).status == "not_found"
    with pytest.raises(jobcore.BadQuery):
        await queue.cancel("abc")


async def _cancel_requests(queue: jobcore.Queue, worker: str) -> list[tuple[str, str, str]]:
    """The cancel requests for ``worker``, as its poll takes them."""
    deadline = time.monotonic() + 5
    while not (got := await queue.cancel_requests(worker)):
        assert time.monotonic() < deadline, "no cancel request came"
        await asyncio.sleep(0.01)
    return got


async def test_cancel_of_an_ambiguous_prefix_or_a_lost_worker_changes_nothing(queue: jobcore.Queue) -> None:
    await ready(queue, "launch")
    await queue.heartbeat({"id": "w1", "types": ["launch"]}, 10_000)
    await queue.heartbeat({"id": "gone", "types": ["launch"]}, 1)
    jobs = [
        Job(type="launch", args=Launch(reservation_id=i), id=uuid.UUID(f"0190c4e2-0000-8000-8000-00000000000{i}"))
        for i in range(2)
    ]
    await queue.enqueue_many(jobs)
    await queue.fetch("w1", ["launch"], 1, 0)
    await queue.fetch("gone", ["launch"], 1, 0)
    with pytest.raises(jobcore.AmbiguousJobId, match="matches 2 jobs"):
        await queue.cancel("0190c4e2")
    await asyncio.sleep(0.01)
    res = await queue.cancel(str(jobs[1].id))
    assert res.status == "worker_lost" and "lost" in res.message
    assert await queue.cancel_requests("gone") == []


async def test_a_fetch_blocked_before_a_pause_does_not_take_a_job_that_arrives_after_it(queue: jobcore.Queue) -> None:
    await ready(queue, "launch")
    await queue.enqueue(launch(0))
    await queue.fetch("w1", ["launch"], 10, 0)  # the type is known to be unpaused
    waiting = asyncio.ensure_future(queue.fetch("w1", ["launch"], 10, 1500))
    await asyncio.sleep(0.2)
    await queue.pause("launch")
    job = launch(1)
    await queue.enqueue(job)
    assert await waiting == []
    stats = (await queue.stats()).types["launch"]
    assert (stats.pending, stats.in_flight) == (1, 1)
    (hit,) = await queue.find(str(job.id))
    assert hit.where == "pending"
    await queue.resume("launch")
    (got,) = await queue.fetch("w2", ["launch"], 10, 1000)
    assert (got.attempt, decode_envelope(got.raw or b"").id) == (1, job.id)


async def test_partitions_of_one_type_given_as_a_string(queue: jobcore.Queue) -> None:
    """``partitions("noop")`` is one type, not three one-letter types."""
    queue.declare("noop", dict, partitions=2)
    await queue.enqueue(Job(type="noop", args={}))
    assert await queue.partitions("noop") == {"noop": 2}
    assert await queue.partitions(["noop", "other"]) == {"noop": 2, "other": 1}


async def test_dead_jobs_are_named_by_a_job_id_prefix_as_find_takes_it(queue: jobcore.Queue) -> None:
    """requeue and purge take a job id's first 8+ hex digits, as find and cancel do;
    a prefix that fits two jobs names neither, and says so."""
    await ready(queue, "launch")
    base = uuid.uuid4().hex
    twins = [uuid.UUID(hex=base[:12] + f"{n:x}" + base[13:]) for n in (1, 2)]  # one 12-digit prefix
    other = uuid.UUID(hex="f" * 8 + base[8:])
    jobs = [Job(type="launch", args=Launch(reservation_id=n), id=i) for n, i in enumerate([*twins, other])]
    await queue.enqueue_many(jobs)
    got = await queue.fetch("w1", ["launch"], 3, 0)
    await queue.settle("w1", [Outcome("launch", d.entry_id, "dead", d.attempt, "bad") for d in got])
    assert await queue.purge("dead", "launch", [other.hex[:8]]) == 1
    assert {b.job_id for b in await queue.dead()} == {str(t) for t in twins}
    with pytest.raises(jobcore.AmbiguousJobId, match="start of 2 dead jobs of launch"):
        await queue.requeue("dead", "launch", [base[:12]])
    assert await queue.requeue("dead", "launch", [str(twins[0])[:18]]) == 1  # dashes as a log line has them
    assert {b.job_id for b in await queue.dead()} == {str(twins[1])}


async def _fail_all(q: jobcore.Queue, job_type: str, n: int) -> None:
    await q.enqueue_many([Job(type=job_type, args={"n": i}, account_id=i) for i in range(n)])
    got: list[Delivery] = []
    for _ in range(10):  # partitions on a cluster are fetched a slot at a time
        if len(got) < n:
            got += await q.fetch("w", [job_type], n - len(got), 0)
    assert len(got) == n
    await q.settle("w", [Outcome(job_type, d.entry_id, "fail", 1, "boom") for d in got])


async def test_failed_minus_kept_is_what_the_cap_dropped_after_requeue_and_purge(queue: jobcore.Queue) -> None:
    """`failed` counts the failed jobs held or dropped by the cap: requeue and purge
    take theirs off it in the same step, so "N (M kept)" means N - M were dropped
    (issue 19 item 9: it read "12 (9 kept)" after 3 were requeued)."""
    await queue.set_partitions("p", 3)
    await ready(queue, "t", "p")
    queue.keep_failed(5)

    def failed(t: str) -> tuple[int, int]:
        return stats.types[t].failed, stats.types[t].failed_kept

    await _fail_all(queue, "t", 8)
    stats = await queue.stats()
    assert failed("t") == (8, 5)  # 3 dropped
    ids = [b.id for b in await queue.failed("t")]
    assert await queue.requeue("failed", "t", ids[:2]) == 2
    assert await queue.purge("failed", "t", ids[2:3]) == 1
    stats = await queue.stats()
    assert failed("t") == (5, 2)
    assert await queue.purge("failed", "t", None) == 2
    stats = await queue.stats()
    assert failed("t") == (3, 0) and stats.types["t"].pending == 2
    # Requeued jobs that fail again count again; a dead list's requeue touches no counter.
    got = await queue.fetch("w", ["t"], 2, 0)
    await queue.settle("w", [Outcome("t", d.entry_id, "fail", 1, "again") for d in got])
    stats = await queue.stats()
    assert failed("t") == (5, 2)
    assert await queue.requeue("failed", "t", None) == 2
    stats = await queue.stats()
    assert failed("t") == (3, 0)
    # Partitions: each partition's counter follows its own list.
    queue.keep_failed(1000)
    await _fail_all(queue, "p", 9)
    stats = await queue.stats()
    assert failed("p") == (9, 9)
    refs = [b.id for b in await queue.failed("p")]
    assert await queue.purge("failed", "p", refs[:4]) == 4
    assert await queue.requeue("failed", "p", refs[4:]) == 5
    stats = await queue.stats()
    assert failed("p") == (0, 0)
