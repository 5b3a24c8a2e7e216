"""A worker's start and stop, told truthfully and kept whatever Redis does:
started while Redis is full (OOM, noeviction) it registers and drains it;
stopped while still starting it says so and touches nothing."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from jobcore import Job
from jobcore.redis.backend import RedisQueue
from tests.support.servers import RedisServer

from .audit import Audit
from .handlers import Work
from .procs import Workers, figures, wait_for


@pytest.fixture
def audit_server(tmp_path: Path) -> Iterator[RedisServer]:
    """The audit records on a server of their own: a full jobs server must not refuse them."""
    srv = RedisServer(tmp_path / "audit")
    try:
        srv.start()
    except RuntimeError as exc:
        pytest.fail(f"cannot start a private redis-server: {exc}", pytrace=False)
    yield srv
    srv.cleanup()


def make_full(r: redis.Redis) -> None:
    """Lower maxmemory under what is used (noeviction): every write that may grow Redis is refused."""
    r.config_set("maxmemory-policy", "noeviction")
    used = int(r.info("memory")["used_memory"])
    r.config_set("maxmemory", max(1, used - 64 * 1024))
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        r.set("probe", "x")


async def test_a_worker_started_while_redis_is_full_registers_and_drains_it(
    server: RedisServer, url: str, audit_server: RedisServer, tmp_path: Path
) -> None:
    audit_url = f"redis://127.0.0.1:{audit_server.port}/1"
    pool = Workers(url, audit_url, tmp_path)
    q = RedisQueue(url)
    audit = Audit(url, audit_url)
    r = redis.Redis.from_url(url)
    try:
        ids = await q.enqueue_many([Job(type="work", args=Work(n=i)) for i in range(300)])
        make_full(r)
        (w1,) = pool.start(1, concurrency=10, lease=1.0)
        t0 = time.monotonic()

        async def drained() -> bool:
            return len(audit.runs()) >= 300 and (await q.stats()).types["work"].pending == 0

        took = await wait_for(drained, 60, "the 300 jobs to run on a worker started while Redis was full", pool, [w1])
        assert "cannot start serving yet" not in w1.log(), w1.tail()
        w1.signal(signal.SIGTERM)
        assert await w1.wait(10) == 0, w1.tail()
        report = audit.report(ids)
        report.assert_all_processed()
        assert not report.duplicates
        figures(
            "worker started while Redis is full (OOM)",
            jobs=300,
            drained_s=round(took, 2),
            since_start_s=round(time.monotonic() - t0, 2),
        )
    finally:
        if pool.procs and any(p.alive for p in pool.procs):
            print(pool.tails())
        pool.close()
        audit.close()
        r.close()
        await q.close()


@pytest.mark.parametrize("why", ["redis down", "registration refused"])
async def test_a_worker_stopped_while_starting_says_so_and_touches_nothing(
    why: str, workers: Workers, queue: RedisQueue, audit: Audit, server: RedisServer, url: str
) -> None:
    """Redis down, or up but refusing the registration (an ACL): the worker
    keeps trying, then a SIGTERM ends it. It never served, so it says neither
    "serving" nor that Redis lost its data."""
    ids = await queue.enqueue_many([Job(type="work", args=Work(n=i)) for i in range(20)])
    r = redis.Redis.from_url(url)
    if why == "redis down":
        server.stop()
    else:
        # A user that may do all but register: every start-up try is refused.
        r.acl_setuser(
            "starter", enabled=True, passwords=["+pw"], keys=["*"], channels=["*"], commands=["+@all", "-sadd"]
        )
        workers.url = url.replace("redis://", "redis://starter:pw@")
    (w1,) = workers.start(1, concurrency=4, lease=1.0, grace=1.0)
    workers.url = url

    async def trying() -> bool:
        return w1.log().count("cannot start serving yet") >= 2

    await wait_for(trying, 30, "w1 to try to start", workers, [w1])
    w1.signal(signal.SIGTERM)
    t0 = time.monotonic()
    rc = await w1.wait(10)
    took = time.monotonic() - t0
    log = w1.log()
    assert rc == 0, w1.tail()
    assert f"worker {w1.id} serving" not in log, w1.tail()
    assert "lost its data" not in log and "lease had lapsed" not in log, w1.tail()
    assert "stopped before it started serving" in log, w1.tail()
    if why == "redis down":
        server.start()
    r.close()
    report = audit.report(ids)
    report.assert_accounted()
    assert len(report.pending) == 20 and not audit.starts()
    assert await queue.workers() == []
    (w2,) = workers.start(1, concurrency=4, lease=1.0)

    async def drained() -> bool:
        return len(audit.runs()) >= 20

    await wait_for(drained, 30, "a fresh worker to drain", workers, [w2])
    w2.signal(signal.SIGTERM)
    assert await w2.wait(10) == 0, w2.tail()
    audit.report(ids).assert_all_processed()
    figures(f"stop during start-up ({why})", exit_s=round(took, 2))
