"""Issue 18, case 2 with real workers: a dead key holding a string, a counter
`processed abc` and an entry with 5,000 extra fields. Once 20 jobs were logged
dead-lettered while 0 were kept, and the log blamed "settled by another worker,
or Redis lost them". Now nothing is dropped, the log says what was not settled
and why, and once the key is repaired the same results settle."""

from __future__ import annotations

import signal

import redis

from jobcore import Job
from jobcore.keys import Keys
from jobcore.redis.backend import RedisQueue

from .audit import Audit
from .handlers import Work
from .procs import Workers, figures, wait_for

GOOD = 300
POISON = 7


async def test_hostile_bookkeeping_keys_drop_no_job(
    workers: Workers, queue: RedisQueue, audit: Audit, url: str
) -> None:
    k = Keys().of_type("work")
    r = redis.Redis.from_url(url)
    await queue.register_types({"work": {}})
    for i in range(POISON):
        extra = {f"x{j}".encode(): b"v" for j in range(5000)} if i == 3 else {}
        await queue.add_raw("work", {b"d": b"\x00bad payload %d" % i, **extra})
    r.hset(k.stats, "processed", "abc")
    r.set(k.dead, "not a stream")
    jobs = [Job(type="work", args=Work(n=i)) for i in range(GOOD)]
    ids = await queue.enqueue_many(jobs)
    procs = workers.start(2, concurrency=20, lease=1.0, types=["work"])

    async def both_serving() -> bool:  # signals are theirs once registered: a worker still importing dies of one
        return sum(1 for w in await queue.workers() if w.state == "alive") == 2

    await wait_for(both_serving, 60, "both workers registered", workers, procs)

    async def good_done_poison_held() -> bool:
        t = (await queue.stats()).types["work"]
        return t.processed == GOOD and t.pending == 0 and t.in_flight == POISON

    await wait_for(good_done_poison_held, 60, "good jobs done, poison held in flight", workers, procs)
    assert r.xlen(k.stream) == POISON  # the poison is still there (the audit reads the dead key: after the repair)
    logs = "\n".join(p.log() for p in procs)
    assert "not settled: WRONGTYPE jobcore:{work}:dead holds a string" in logs, workers.tails()
    assert "processed counter of jobcore:{work}:stats was" in logs and "reset to" in logs, workers.tails()
    assert "Redis lost them" not in logs and "never seen" not in logs, workers.tails()

    r.delete(k.dead)  # repaired: the results the workers hold settle now

    async def poison_dead() -> bool:
        t = (await queue.stats()).types["work"]
        return t.dead == POISON and t.in_flight == 0

    took = await wait_for(poison_dead, 60, "the poison dead-lettered", workers, procs)
    for p in procs:
        p.signal(signal.SIGTERM)
    for p in procs:
        assert await p.wait(30) == 0, p.tail()
    report = audit.report(ids)
    report.assert_all_processed()
    assert report.duplicates == {}
    assert report.unknown_dead == POISON
    (big,) = [b for b in await queue.dead("work", limit=100) if b.raw == b"\x00bad payload 3"]
    assert big.fields["(not kept)"] == "4000 more fields not kept"
    r.close()
    figures("settle_hostile", good=GOOD, poison=POISON, seconds_after_repair=round(took, 1))
