"""Fault 9: poison written straight into Redis, and a type nobody serves yet."""

from __future__ import annotations

from jobcore import Job
from jobcore.model import ENVELOPE_VERSION, encode_job
from jobcore.redis.backend import RedisQueue

from .audit import Audit
from .handlers import Work
from .procs import Workers, figures, wait_for

GOOD = 1000


async def test_poison_is_dead_on_first_sight_and_good_jobs_flow(
    workers: Workers, queue: RedisQueue, audit: Audit
) -> None:
    await queue.register_types({"work": {}})
    sample = encode_job(Job(type="work", args=Work(n=-1)))
    # name -> (fields written to the stream, what the dead-letter reason must say)
    poison = {
        "garbage": ({b"d": b"\x01\xde\xad\xbe\xef not an envelope"}, "corrupt envelope"),
        "random bytes": ({b"d": bytes(range(250, 256)) * 3}, "unknown envelope version 250"),
        "empty": ({b"d": b""}, "empty payload"),
        "truncated": ({b"d": sample[: len(sample) // 2]}, "corrupt envelope: Input data was truncated"),
        "future version": ({b"d": bytes([ENVELOPE_VERSION + 1]) + sample[1:]}, "unknown envelope version 2"),
        "wrong args": (
            {b"d": encode_job(Job(type="work", args={"n": "seven", "seconds": [1]}))},
            "args do not fit Work",
        ),
        "other type": ({b"d": encode_job(Job(type="noop", args=Work()))}, "queued as 'work'"),
        "no payload": ({b"x": b"something else"}, "no payload"),
    }
    for fields, _ in poison.values():
        await queue.add_raw("work", fields)
    # A good job whose stored attempt field is garbage still runs (as a first attempt).
    odd = Job(type="work", args=Work(n=-2))
    await queue.add_raw("work", {b"d": encode_job(odd), b"a": b"junk"})
    later = Job(type="later", args=Work(n=-3))
    good = [Job(type="work", args=Work(n=i)) for i in range(GOOD)]
    ids = await queue.enqueue_many([later, *good])
    procs = workers.start(2, concurrency=20, lease=1.0, types=["work", "noop"])

    async def settled() -> bool:
        t = (await queue.stats()).types["work"]
        return t.processed >= GOOD + 1 and t.dead >= len(poison) and t.in_flight == 0 and t.pending == 0

    took = await wait_for(settled, 60, "good jobs and poison to settle", workers, procs)
    dead = await queue.dead("work", limit=100)
    assert len(dead) == len(poison)
    for name, (fields, reason) in poison.items():
        # Kept byte for byte, with the reason; dead on first sight, never retried.
        (bad,) = [d for d in dead if d.raw == fields.get(b"d", b"") and reason in d.reason] or [None]
        assert bad is not None, (name, [d.reason for d in dead])
        assert bad.attempt == 1, (name, bad.attempt)
    report = audit.report([*ids, odd.id])
    report.assert_accounted()
    assert report.processed == {str(j.id) for j in [*good, odd]}
    assert report.pending == {str(later.id)}
    assert [r.attempt for r in report.runs[str(odd.id)]] == [1]
    assert all(p.alive for p in procs)
    stats = await queue.stats()
    assert stats.types["later"].pending == 1 and stats.unserved == ["later"]

    (late,) = workers.start(1, concurrency=2, lease=1.0, types=["later"])

    async def later_done() -> bool:
        return (await queue.stats()).types["later"].processed == 1

    await wait_for(later_done, 30, "the 'later' job", workers, [late])
    report = audit.report([*ids, odd.id])
    report.assert_all_processed()
    figures("poison", poison=len(poison), dead=len(dead), good_jobs=GOOD + 1, seconds=round(took, 1))
