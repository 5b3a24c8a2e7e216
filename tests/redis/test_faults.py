"""Promises kept when Redis misbehaves, each case against a real redis-server:
a full Redis (noeviction), a flush while a worker runs, an entry with fields
jobcore did not write, two workers given one id, and a consumer deleted while
it held jobs. Each test ends by checking where every job is."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
import redis

import jobcore
from jobcore import Handlers, Job, Worker
from jobcore.errors import WorkerIdTaken
from jobcore.keys import GROUP
from jobcore.records import Lease, Outcome
from jobcore.redis.backend import RedisQueue
from jobcore.redis.sentinel import Sentinel
from tests.faults.procs import figures
from tests.helpers import read_only_queue, running, wait_until
from tests.support.cli import run_cli
from tests.support.servers import RedisCluster, RedisServer, SentinelSetup


class N(msgspec.Struct):
    n: int


def jobs(k: int, job_type: str = "t", start: int = 0) -> list[Job[N]]:
    return [Job(type=job_type, args=N(i), account_id=i) for i in range(start, start + k)]


def make_handlers(seen: list[int]) -> Handlers:
    h = Handlers()

    @h.handler("t", N)
    async def t(job: Job[N]) -> None:
        seen.append(job.args.n)

    return h


async def _value(v: bool) -> bool:
    return v


async def processed(q: jobcore.Queue, job_type: str = "t") -> int:
    t = (await q.stats()).types.get(job_type)
    return t.processed if t else 0


def private_server(workdir: Path, *args: str) -> Iterator[RedisServer]:
    """A private server started with ``args``; failing to start fails the test loudly."""
    server = RedisServer(workdir, extra_args=list(args))
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(f"cannot start the private redis-server: {exc}", pytrace=False)
    yield server
    server.cleanup()


@pytest.fixture
def full_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A server that refuses writes once 4 MB are used (noeviction)."""
    yield from private_server(tmp_path / "full", "--maxmemory", "4mb", "--maxmemory-policy", "noeviction")


def fill(r: redis.Redis) -> None:
    """Write until Redis refuses even a small write with OOM (a big write's own
    buffer would leave room for small ones after it)."""
    i = 0
    for size in (20_000, 1_000, 50):
        while True:
            i += 1
            try:
                r.set(f"filler:{i}", b"x" * size)
            except redis.exceptions.OutOfMemoryError:
                break
            if i > 1_000_000:
                raise AssertionError("Redis never said OOM")


async def test_a_full_redis_still_settles_heartbeats_and_stops_in_time(full_server: RedisServer) -> None:
    q = RedisQueue(full_server.url)
    r = full_server.client()
    try:
        await q.register_types({"t": {}})
        await q.enqueue_many(jobs(40))
        got = await q.fetch("w1", ["t"], 40, 0)
        assert len(got) == 40
        fill(r)
        with pytest.raises(jobcore.EnqueueError, match="OOM"):
            await q.enqueue(jobs(1, start=99)[0])
        # Acks free memory: they run first and are never refused.
        outcomes = [Outcome("t", d.entry_id, "ack", 1) for d in got[:30]]
        outcomes += [Outcome("t", d.entry_id, "dead", 1, "bad") for d in got[30:35]]
        outcomes += [Outcome("t", d.entry_id, "release", 0) for d in got[35:]]
        assert await q.settle("w1", outcomes) == []
        stats = (await q.stats()).types["t"]
        assert (stats.processed, stats.dead, stats.in_flight, stats.pending) == (30, 5, 0, 5)
        # The history is written after them, by the same script (allow-oom): it fails no settle.
        h = (await q.history("t")).types["t"]
        assert (h.processed, h.dead) == (30, 5)
        # The lease can still be renewed.
        assert await q.heartbeat({"id": "w1", "types": ["t"]}, 5000) in (Lease.NEW, Lease.HELD)
        assert await q.heartbeat({"id": "w1", "types": ["t"]}, 5000) == Lease.HELD

        # A worker running when Redis fills up goes on settling, and its stop
        # ends within the grace period plus a few seconds. SYNC: Valkey frees a plain
        # FLUSHALL's memory in the background (lazyfree-lazy-user-flush), and the next
        # write could still meet the full server (CI's Valkey pass did once).
        r.execute_command("FLUSHALL", "SYNC")
        await q.register_types({"t": {}})
        await q.enqueue_many(jobs(40))
        seen: list[int] = []
        slow = Handlers()

        @slow.handler("t", N)
        async def t(job: Job[N]) -> None:
            seen.append(job.args.n)
            await asyncio.sleep(0.05)

        worker = Worker(q.clone(), slow, concurrency=4, grace=0.5, prefetch=0)
        task = asyncio.create_task(worker.run())
        await wait_until(lambda: _value(len(seen) >= 4), timeout=10)
        fill(r)
        await wait_until(lambda: _value(len(seen) >= 20), timeout=10)
        started = time.monotonic()
        await worker.stop()
        await asyncio.wait_for(task, 15)
        stop_s = time.monotonic() - started
        assert stop_s < 0.5 + 5 + 3
        # Every job is somewhere: none lost, none left in flight.
        stats = (await q.stats()).types["t"]
        assert stats.in_flight == 0
        assert stats.processed + stats.pending == 40 and stats.processed >= 20
        figures(
            "full Redis (noeviction, OOM)",
            settled_under_oom=40,
            worker_processed=stats.processed,
            handed_back=stats.pending,
            stop_s=round(stop_s, 2),
            grace_s=0.5,
        )
    finally:
        r.close()
        await q.close()


async def test_a_worker_registers_while_redis_is_full(full_server: RedisServer) -> None:
    """Registration is allowed under OOM (it adds a few bytes): a worker that
    starts while Redis is full must be able to drain it."""
    q = RedisQueue(full_server.url)
    r = full_server.client()
    try:
        await q.enqueue_many(jobs(5))
        # Well under what is used: every write that may grow Redis is refused.
        r.config_set("maxmemory", int(r.info("memory")["used_memory"]) - 256 * 1024)
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            r.sadd(q.keys.types, "probe")
        await q.register_types({"t": {"n": "int"}, "u": {}})
        assert {b"t", b"u"} <= r.smembers(q.keys.types)
        assert r.hget(q.keys.schemas, "t") == b'{"n": "int"}'
        assert [g["name"] for g in r.xinfo_groups(q.keys.of_type("u").stream)] == [GROUP.encode()]
        assert await q.heartbeat({"id": "w1", "types": ["t", "u"]}, 5000) == Lease.NEW
        got = await q.fetch("w1", ["t", "u"], 10, 0)
        assert len(got) == 5
        assert await q.settle("w1", [Outcome("t", d.entry_id, "ack", 1) for d in got]) == []
    finally:
        r.close()
        await q.close()


async def test_the_keeper_extends_only_the_lease_of_its_own_instance(redis_url: str) -> None:
    """Owners are told apart by the instance token, not the id alone: a keeper
    whose worker's id was taken by another process keeps that one's lease no more."""
    from jobcore.redis import scripts

    extend = scripts.source("extend")
    q = RedisQueue(redis_url)
    r = redis.Redis.from_url(redis_url)
    try:
        assert await q.heartbeat({"id": "svc", "instance": "b"}, 5000) == Lease.NEW
        keys = [q.keys.workers, q.keys.leases]
        assert r.eval(extend, 2, *keys, "svc", 5000, "a") == -2
        assert r.eval(extend, 2, *keys, "svc", 5000, "b") == 1
        assert r.eval(extend, 2, *keys, "svc", 5000, "") == 1  # no token: as before
        assert r.eval(extend, 2, *keys, "gone", 5000, "b") == -1
    finally:
        r.close()
        await q.close()


@pytest.mark.parametrize("fair", [False, True])
async def test_after_a_flush_a_running_worker_serves_new_jobs_and_stats_list_them(redis_url: str, fair: bool) -> None:
    producer = RedisQueue(redis_url)
    seen: list[int] = []
    try:
        await producer.enqueue_many(jobs(5))
        if fair:  # the worker idles in a fair type's wait (XREAD) when the flush comes; the flush clears the setting
            await producer.set_fair("t", True)
            await producer.set_limit("t", per_account=2)
        async with running(Worker(RedisQueue(redis_url), make_handlers(seen), concurrency=4)):
            await wait_until(lambda: _value(len(seen) == 5), timeout=10)
            r = redis.Redis.from_url(redis_url)
            r.flushall()
            r.close()
            flushed = time.monotonic()
            # The same long-lived producer, which knew the type before the flush.
            for job in jobs(5, start=100):
                await producer.enqueue(job)

            async def served() -> bool:
                return sorted(n for n in seen if n >= 100) == list(range(100, 105))

            await wait_until(served, timeout=10)
            figures(
                f"FLUSHALL under a running worker{', fair type' if fair else ''}",
                new_jobs=5,
                served_after_flush_s=round(time.monotonic() - flushed, 2),
            )
            assert "t" in await producer.job_types()
            assert await processed(producer) == 5  # counted again from the flush
    finally:
        await producer.close()


async def test_an_entry_with_fields_jobcore_did_not_write_is_dead_lettered_with_all_of_them(redis_url: str) -> None:
    q = RedisQueue(redis_url)
    seen: list[int] = []
    try:
        await q.register_types({"t": {}})
        await q.add_raw("t", {b"x": b"no d field", b"extra": b"\xff\x00bytes"})
        async with running(Worker(RedisQueue(redis_url), make_handlers(seen))):

            async def dead() -> bool:
                return (await q.stats()).types["t"].dead == 1

            await wait_until(dead, timeout=10)
        r = redis.Redis.from_url(redis_url)
        ((_, fields),) = r.xrange(q.keys.of_type("t").dead)
        r.close()
        assert fields[b"o.x"] == b"no d field" and fields[b"o.extra"] == b"\xff\x00bytes"
        assert fields[b"d"] == b"" and b"no payload" in fields[b"r"]
    finally:
        await q.close()


async def test_a_second_worker_with_a_live_workers_id_refuses_to_start(redis_url: str) -> None:
    seen: list[int] = []
    async with running(Worker(RedisQueue(redis_url), make_handlers(seen), worker_id="twin")):
        twin = Worker(RedisQueue(redis_url), make_handlers(seen), worker_id="twin")
        with pytest.raises(WorkerIdTaken, match=r"another worker with id 'twin' is alive.*--id"):
            await asyncio.wait_for(twin.run(), 10)
        q = RedisQueue(redis_url)
        try:
            (w,) = await q.workers()
            assert w.id == "twin" and w.state == "alive"  # the first one's record is untouched
        finally:
            await q.close()
    # Once the first has stopped (its record gone), the id is free again.
    async with running(Worker(RedisQueue(redis_url), make_handlers(seen), worker_id="twin")):
        pass


async def test_a_worker_whose_id_another_instance_took_stops_at_once_and_says_so(redis_url: str) -> None:
    """The record names another instance (as after a freeze past the lease): at
    its next heartbeat the worker stops serving, hands back nothing (the jobs are
    the other's to hand back), leaves the other's record alone, and run() raises."""
    import json

    seen: list[int] = []
    h = Handlers()

    @h.handler("t", N)
    async def t(job: Job[N]) -> None:
        seen.append(job.args.n)
        await asyncio.sleep(60)

    q = RedisQueue(redis_url)
    r = redis.Redis.from_url(redis_url)
    try:
        await q.enqueue_many(jobs(3))
        worker = Worker(RedisQueue(redis_url), h, worker_id="svc", lease=1.0, concurrency=3)
        task = asyncio.create_task(worker.run())
        await wait_until(lambda: _value(len(seen) == 3), timeout=10)
        other = {"id": "svc", "instance": "another-process", "types": ["t"]}
        r.hset(q.keys.workers, "svc", json.dumps(other))
        with pytest.raises(WorkerIdTaken, match=r"worker id 'svc' was taken by another process"):
            await asyncio.wait_for(task, 10)
        stats = (await q.stats()).types["t"]
        assert (stats.processed, stats.in_flight) == (0, 3)  # left to the id's new owner
        assert json.loads(r.hget(q.keys.workers, "svc") or b"{}")["instance"] == "another-process"
    finally:
        r.close()
        await q.close()


async def test_the_cli_refuses_a_twin_with_one_line(redis_url: str, cli_env: dict[str, str]) -> None:
    seen: list[int] = []
    async with running(Worker(RedisQueue(redis_url), make_handlers(seen), worker_id="twin")):
        proc = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "jobcore", "--url", redis_url, "worker", "jobcore.demo:handlers", "--id", "twin"],
            env=cli_env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 1, (out, err)
        last = err.decode().strip().splitlines()[-1]
        assert last.startswith("jobcore: error: another worker with id 'twin' is alive"), err.decode()
        assert "Traceback" not in err.decode()


async def test_a_stopping_worker_never_deletes_a_consumer_that_holds_jobs(redis_url: str) -> None:
    q = RedisQueue(redis_url)
    try:
        await q.register_types({"t": {}})
        await q.enqueue_many(jobs(3))
        assert await q.heartbeat({"id": "w1", "types": ["t"]}, 200) == Lease.NEW
        got = await q.fetch("w1", ["t"], 3, 0)
        await q.forget_worker("w1", ["t"], force=True)
        # It still holds them, so it keeps its record and consumer: once its
        # lease lapses it is lost, and another worker takes its jobs.
        assert len(await q.owned("w1", ["t"])) == 3
        await asyncio.sleep(0.3)
        assert await q.lost_workers() == ["w1"]
        claimed, left = await q.claim("w2", "t", "w1", 10)
        assert sorted(d.entry_id for d in claimed) == sorted(d.entry_id for d in got) and left == 0
        await q.forget_worker("w1", ["t"])
        assert await q.workers() == []
    finally:
        await q.close()


async def test_jobs_whose_consumer_was_deleted_go_back_on_the_queue(redis_url: str) -> None:
    q = RedisQueue(redis_url)
    seen: list[int] = []
    try:
        await q.register_types({"t": {}})
        await q.enqueue_many(jobs(6))
        await q.fetch("gone", ["t"], 4, 0)
        # What an older jobcore's stop did: delete the consumer with its jobs.
        r = redis.Redis.from_url(redis_url)
        assert r.xgroup_delconsumer(q.keys.of_type("t").stream, GROUP, "gone") == 4
        r.close()
        # Only the 2 never delivered can be fetched: the 4 are stuck behind the group's position.
        assert len(await q.fetch("probe", ["t"], 10, 0)) == 2
        assert (await q.stats()).types["t"].in_flight == 2
        assert await q.recover_orphans(["t"]) == 4
        assert await q.recover_orphans(["t"]) == 0
        await q.forget_worker("probe", ["t"], force=True)  # holds 2: kept, and so are they
        r = redis.Redis.from_url(redis_url)
        assert r.xgroup_delconsumer(q.keys.of_type("t").stream, GROUP, "probe") == 2
        r.close()
        assert await q.recover_orphans(["t"]) == 2
        stats = (await q.stats()).types["t"]
        assert (stats.pending, stats.in_flight) == (6, 0)
        async with running(Worker(RedisQueue(redis_url), make_handlers(seen))):
            await wait_until(lambda: _value(len(seen) == 6), timeout=10)
        assert sorted(seen) == list(range(6))
    finally:
        await q.close()


@pytest.fixture
def evicting_server(tmp_path: Path) -> Iterator[RedisServer]:
    yield from private_server(tmp_path / "lru", "--maxmemory", "8mb", "--maxmemory-policy", "allkeys-lru")


async def test_a_worker_refuses_an_evicting_redis_unless_allowed(
    evicting_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    q = RedisQueue(evicting_server.url)
    seen: list[int] = []
    try:
        assert await q.eviction_policies() == {"allkeys-lru"}
        with pytest.raises(jobcore.errors.EvictionRisk, match=r"maxmemory-policy allkeys-lru.*noeviction"):
            await asyncio.wait_for(Worker(q, make_handlers(seen)).run(), 10)
        await q.enqueue_many(jobs(3))
        async with running(Worker(RedisQueue(evicting_server.url), make_handlers(seen), allow_eviction=True)):
            await wait_until(lambda: _value(len(seen) == 3), timeout=10)
        assert "queued jobs may be evicted (allowed)" in caplog.text
    finally:
        await q.close()


async def test_noeviction_is_no_risk(redis_url: str) -> None:
    q = RedisQueue(redis_url)
    try:
        assert await q.eviction_policies() == set()
    finally:
        await q.close()


async def test_on_a_cluster_every_master_is_asked(redis_cluster: RedisCluster, cluster_url: str) -> None:
    q = RedisQueue(cluster_url)
    last = redis_cluster.masters()[-1]
    client = last.client()
    try:
        assert await q.eviction_policies() == set()
        client.config_set("maxmemory-policy", "volatile-lru")
        assert await q.eviction_policies() == {"volatile-lru"}
    finally:
        client.config_set("maxmemory-policy", "noeviction")
        client.close()
        await q.close()


async def test_a_batch_partly_refused_says_exactly_which_jobs_landed(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jobcore.redis.adding as rb

    monkeypatch.setattr(rb, "ADD_CHUNK", 10)  # several all-or-none calls per type
    q = RedisQueue(redis_url)
    r = redis.Redis.from_url(redis_url)
    try:
        r.set(q.keys.of_type("b").stream, "not a stream")  # every add to type b is refused
        batch = jobs(25, "a") + jobs(15, "b")
        with pytest.raises(jobcore.EnqueueError, match=r"15 of 40 job\(s\) not enqueued.*WRONGTYPE.*other 25") as err:
            await q.enqueue_many(batch)
        assert err.value.landed == [j.id for j in batch[:25]]
        assert err.value.not_landed == [j.id for j in batch[25:]]
        r.delete(q.keys.of_type("b").stream)
        assert (await q.stats()).types["a"].pending == 25
    finally:
        r.close()
        await q.close()


async def test_a_full_redis_refuses_whole_calls_and_says_none_landed(full_server: RedisServer) -> None:
    q = RedisQueue(full_server.url)
    r = full_server.client()
    try:
        await q.enqueue(jobs(1)[0])  # the type is known: the batch goes straight to the add script
        fill(r)
        batch = jobs(3000, start=1)
        with pytest.raises(jobcore.EnqueueError, match=r"^3000 job\(s\) not enqueued: Redis error: OOM") as err:
            await q.enqueue_many(batch)
        assert err.value.landed == [] and len(err.value.not_landed) == 3000
        r.delete(*[k for k in r.scan_iter("filler:*")])
        assert (await q.stats()).types["t"].pending == 1  # nothing of the batch slipped in
    finally:
        r.close()
        await q.close()


async def test_a_read_only_user_sees_everything_and_is_told_when_it_may_not_act(redis_url: str) -> None:
    q = RedisQueue(redis_url)
    try:
        async with read_only_queue(redis_url) as ro:
            await q.set_partitions("t", 2)
            await q.register_types({"t": {}})
            await q.enqueue_many(jobs(10))
            got = await q.fetch("w1", ["t"], 4, 0)
            await q.settle(
                "w1", [Outcome("t", got[0].entry_id, "ack", 1), Outcome("t", got[1].entry_id, "dead", 1, "bad")]
            )
            await q.heartbeat({"id": "w1", "types": ["t"]}, 15_000)
            want = (await q.stats()).types["t"]
            dash = await ro.dashboard(100)
            t = dash.stats.types["t"]
            assert (t.pending, t.in_flight, t.processed, t.dead, t.partitions) == (
                want.pending, want.in_flight, want.processed, want.dead, 2,
            )  # fmt: skip
            assert t.oldest_pending_age is not None and t.pending_by_partition == want.pending_by_partition
            assert sorted(r.entry_id for r in dash.in_flight) == sorted(d.entry_id for d in got[2:])
            assert {r.job_id for r in dash.in_flight} == {r.job_id for r in await q.in_flight()}
            assert [w.id for w in dash.workers] == ["w1"]
            assert [b.id for b in await ro.dead("t")] == [b.id for b in await q.dead("t")]
            seen, kept = (await ro.history("t")).types["t"], (await q.history("t")).types["t"]
            assert (seen.processed, seen.dead, seen.runs) == (kept.processed, kept.dead, kept.runs) == (1, 1, 1)
            with pytest.raises(jobcore.errors.PermissionDenied, match="permission denied for this Redis user"):
                await ro.requeue("dead", "t")
            with pytest.raises(jobcore.EnqueueError):
                await ro.enqueue(jobs(1)[0])
            assert await ro.eviction_policies() == set()  # INFO is allowed
            # Waiting jobs and the audit trail are for reading too; deleting is refused, nothing lost.
            assert len((await ro.pending("t", limit=100)).jobs) == len((await q.pending("t", limit=100)).jobs) == 6
            assert [r.action for r in await ro.audit()] == [r.action for r in await q.audit()] != []
            with pytest.raises(jobcore.errors.PermissionDenied, match="permission denied for this Redis user"):
                await ro.delete_pending("t", all=True)
            said = run_cli(["-q", "--url", ro.url, "pending", "delete", "t", "--all", "--yes"], os.environ, timeout=30)
            assert said.returncode == 1 and len(said.stderr.strip().splitlines()) == 1
            assert "permission denied for this Redis user" in said.stderr
            listed = run_cli(["-q", "--url", ro.url, "pending", "t", "--json"], os.environ, timeout=30)
            assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 6
            assert len((await q.pending("t", limit=100)).jobs) == 6
    finally:
        await q.close()


async def test_the_operator_acl_from_readme_runs_producers_and_workers(redis_url: str) -> None:
    admin = redis.Redis.from_url(redis_url)
    admin.execute_command("ACL", "SETUSER", "jc", "reset", *readme_acl("jobcore"))
    port = redis_url.split(":")[-1].split("/")[0]
    url = f"redis://jc:pw@127.0.0.1:{port}/0"
    q = RedisQueue(url)
    seen: list[int] = []
    try:
        await q.set_partitions("t", 2)
        await q.enqueue_many(jobs(20))
        async with running(Worker(RedisQueue(url), make_handlers(seen), concurrency=4)):
            await wait_until(lambda: _value(len(seen) == 20), timeout=10)
        assert (await q.stats()).types["t"].processed == 20
    finally:
        admin.execute_command("ACL", "DELUSER", "jc")
        admin.close()
        await q.close()


async def test_a_stop_at_once_hands_back_what_it_interrupted_and_a_fresh_worker_runs_it_at_full_speed(
    redis_url: str,
) -> None:
    started: list[int] = []
    long = Handlers()

    @long.handler("t", N)
    async def t(job: Job[N]) -> None:
        started.append(job.args.n)
        await asyncio.sleep(60)

    q = RedisQueue(redis_url)
    try:
        await q.enqueue_many(jobs(50))
        first = Worker(RedisQueue(redis_url), long, concurrency=50, lease=1.0)
        task = asyncio.create_task(first.run())
        await wait_until(lambda: _value(len(started) == 50), timeout=10)
        first.request_hard_stop()
        await asyncio.wait_for(task, 5)
        stats = (await q.stats()).types["t"]
        assert (stats.in_flight, stats.pending) == (0, 50)  # handed back, not left for recovery
        # A fresh worker has all 50 running again at once: no one-at-a-time suspects.
        started.clear()
        fresh = Worker(RedisQueue(redis_url), long, concurrency=50, lease=1.0)
        begun = time.monotonic()
        async with running(fresh):
            await wait_until(lambda: _value(len(set(started)) == 50), timeout=10)
            took = time.monotonic() - begun
            fresh.request_hard_stop()
        assert took < 3, took
    finally:
        await q.close()


async def test_a_key_of_ours_holding_something_else_is_named_not_fatal(redis_url: str) -> None:
    q = RedisQueue(redis_url)
    r = redis.Redis.from_url(redis_url)
    try:
        await q.enqueue_many(jobs(3, "a"))
        r.sadd(q.keys.types, "b")
        r.set(q.keys.of_type("b").stream, "not a stream")
        dash = await q.dashboard(100)
        assert dash.stats.types["a"].pending == 3 and dash.stats.types["a"].problem is None
        b = dash.stats.types["b"]
        assert b.pending == 0 and b.problem is not None and "jobcore:{b}:jobs" in b.problem
        assert "WRONGTYPE" in b.problem
        assert dash.stats.to_dict()["types"]["b"]["problem"] == b.problem
        assert await q.in_flight() == []
    finally:
        r.close()
        await q.close()


async def test_the_failed_cap_is_a_setting_and_its_first_trim_is_logged(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    boom = Handlers()

    @boom.handler("t", N)
    async def t(job: Job[N]) -> None:
        raise RuntimeError(f"boom {job.args.n}")

    q = RedisQueue(redis_url)
    try:
        await q.enqueue_many(jobs(15))
        async with running(Worker(RedisQueue(redis_url), boom, failed_keep=10)):

            async def all_failed() -> bool:
                return (await q.stats()).types["t"].failed == 15

            await wait_until(all_failed, timeout=10)
        stats = (await q.stats()).types["t"]
        assert (stats.failed, stats.failed_kept) == (15, 10)
        assert len(await q.failed("t", limit=100)) == 10
        assert caplog.text.count("the failed list of type 't' is full (10 kept)") == 1
    finally:
        await q.close()


async def test_stats_say_what_kept_what_is_corrupt_and_that_redis_may_evict(
    evicting_server: RedisServer, cli_env: dict[str, str]
) -> None:
    url = evicting_server.url
    q = RedisQueue(url)
    r = evicting_server.client()
    try:
        await q.register_types({"t": {}})
        await q.enqueue_many(jobs(3))
        got = await q.fetch("w1", ["t"], 3, 0)
        q.keep_failed(2)  # the cap drops one: "3 (2 kept)" (a purge would take it off both numbers)
        await q.settle("w1", [Outcome("t", d.entry_id, "fail", 1, "boom") for d in got])
        r.sadd(q.keys.types, "b")
        r.set(q.keys.of_type("b").stream, "not a stream")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "jobcore", "--url", url, "stats",
            env={**cli_env, "COLUMNS": "200"}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        text = out.decode()
        assert proc.returncode == 0, err.decode()
        assert "3 (2 kept)" in text
        assert "type 'b': jobcore:{b}:jobs or a key beside it is not what jobcore wrote" in text
        assert "Redis uses maxmemory-policy allkeys-lru: it may evict queued jobs; set noeviction" in text
    finally:
        r.close()
        await q.close()


@pytest.mark.parametrize("topology", ["redis", "cluster"])
async def test_a_worker_leaves_out_a_type_whose_stream_key_is_corrupt_and_serves_the_others(
    topology: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    url = request.getfixturevalue(f"{topology}_url")
    seen: list[int] = []
    two = Handlers()

    @two.handler("a", N)
    async def a(job: Job[N]) -> None:
        seen.append(job.args.n)

    @two.handler("b", N)
    async def b(job: Job[N]) -> None:
        seen.append(-1)

    q = RedisQueue(url)
    try:
        await q.register_types({"a": {}, "b": {}})
        await q.transport.call("DEL", q.keys.of_type("b").stream)
        await q.transport.call("SET", q.keys.of_type("b").stream, "not a stream")
        await q.enqueue_many(jobs(5, "a"))
        async with running(Worker(RedisQueue(url), two)):
            await wait_until(lambda: _value(sorted(seen) == list(range(5))), timeout=15)
        assert "jobcore:{b}:jobs holds a string, not a stream: type 'b' is not served" in caplog.text
    finally:
        await q.close()


async def test_worker_records_of_any_shape_are_listed_never_fatal(redis_url: str) -> None:
    q = RedisQueue(redis_url)
    r = redis.Redis.from_url(redis_url)
    try:
        planted = {
            "not-json": "{oops",
            "a-list": "[1, 2]",
            "wrong-types": '{"pid": "x", "busy": [1], "types": "abc", "started_ms": 1e300, "lease_ms": null}',
            "huge": '{"heartbeat_ms": 99999999999999999999, "schemas": [1]}',
        }
        r.hset(q.keys.workers, mapping=planted)
        r.zadd(q.keys.leases, {"not-json": float("inf"), "a-list": 1, "wrong-types": float("-inf")})
        workers = await q.workers()
        assert sorted(w.id for w in workers) == sorted(planted)
        dash = await q.dashboard(10)
        assert len(dash.workers) == 4 and dash.stats.workers >= 0
        by_id = {w.id: w for w in workers}
        assert by_id["wrong-types"].pid == 0 and by_id["wrong-types"].types == []
    finally:
        r.close()
        await q.close()


def readme_acl(user: str) -> list[str]:
    """README's ACL line for ``user``, as ACL SETUSER's rules (password ``pw``)."""
    import re

    text = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
    found = re.search(rf"`ACL SETUSER {user} (on [^`]+)`", text)
    assert found, f"README gives no ACL line for {user}"
    return found.group(1).replace(">PASSWORD", ">pw").split()


def _on_every_node(cluster: RedisCluster, *args: str) -> None:
    for node in cluster.nodes:
        if node.alive:
            c = node.client()
            try:
                c.execute_command(*args)
            finally:
                c.close()


def _as_user(url: str, user: str) -> str:
    return url.replace("redis://", f"redis://{user}:pw@", 1)


async def test_readmes_acl_lines_work_on_a_cluster(redis_cluster: RedisCluster, cluster_url: str) -> None:
    _on_every_node(redis_cluster, "ACL", "SETUSER", "jc", "reset", *readme_acl("jobcore"))
    _on_every_node(redis_cluster, "ACL", "SETUSER", "watcher", "reset", *readme_acl("watcher"))
    q = RedisQueue(_as_user(cluster_url, "jc"))
    ro = RedisQueue(_as_user(cluster_url, "watcher"))
    seen: list[int] = []
    try:
        await q.set_partitions("t", 2)
        await q.enqueue_many(jobs(20))
        async with running(Worker(RedisQueue(_as_user(cluster_url, "jc")), make_handlers(seen), concurrency=4)):
            await wait_until(lambda: _value(len(seen) == 20), timeout=15)
        assert (await q.stats()).types["t"].processed == 20
        dash = await ro.dashboard(100)
        assert dash.stats.types["t"].processed == 20
        with pytest.raises(jobcore.errors.PermissionDenied, match="permission denied for this Redis user"):
            await ro.requeue("dead", "t")
    finally:
        _on_every_node(redis_cluster, "ACL", "DELUSER", "jc", "watcher")
        await q.close()
        await ro.close()


async def test_a_cluster_user_without_cluster_slots_is_told_permission_denied(
    redis_cluster: RedisCluster, cluster_url: str
) -> None:
    rules = [r for r in readme_acl("jobcore") if r != "+cluster|slots"]
    _on_every_node(redis_cluster, "ACL", "SETUSER", "nocs", "reset", *rules, "-cluster|slots")
    q = RedisQueue(_as_user(cluster_url, "nocs"))
    try:
        with pytest.raises(jobcore.errors.PermissionDenied, match=r"permission denied .*\(.*NOPERM") as err:
            await q.stats()
        assert "unreachable" not in str(err.value)
        with pytest.raises(jobcore.EnqueueError, match=r"permission denied .*\(.*NOPERM") as err2:
            await q.enqueue(jobs(1)[0])
        assert "unreachable" not in str(err2.value)
    finally:
        _on_every_node(redis_cluster, "ACL", "DELUSER", "nocs")
        await q.close()


async def test_readmes_acl_lines_work_through_sentinel(sentinel_setup: SentinelSetup, sentinel_url: str) -> None:
    for node in sentinel_setup.data_nodes:
        c = node.client()
        try:
            c.execute_command("ACL", "SETUSER", "jc", "reset", *readme_acl("jobcore"))
            c.execute_command("ACL", "SETUSER", "watcher", "reset", *readme_acl("watcher"))
        finally:
            c.close()
    at = sentinel_url.replace("redis+sentinel://", "redis+sentinel://{}:pw@", 1)
    q, ro = RedisQueue(at.format("jc")), RedisQueue(at.format("watcher"))
    seen: list[int] = []
    try:
        await q.enqueue_many(jobs(10))
        async with running(Worker(RedisQueue(at.format("jc")), make_handlers(seen), concurrency=4)):
            await wait_until(lambda: _value(len(seen) == 10), timeout=15)
        assert (await ro.dashboard(100)).stats.types["t"].processed == 10
    finally:
        for node in sentinel_setup.data_nodes:
            c = node.client()
            try:
                c.execute_command("ACL", "DELUSER", "jc", "watcher")
            finally:
                c.close()
        await q.close()
        await ro.close()


def test_an_empty_namespace_is_refused_with_one_line(cluster_url: str, cli_env: dict[str, str]) -> None:
    """Its keys' hash tag would be empty: on a Cluster they spread over slots and
    every script fails CROSSSLOT, so workers would never serve."""
    with pytest.raises(ValueError, match="namespace"):
        RedisQueue(cluster_url, namespace="")
    with pytest.raises(ValueError, match="namespace"):
        jobcore.connect(cluster_url, namespace="")
    for args in (["stats"], ["worker", "tests.faults.handlers:handlers"]):
        cmd = [sys.executable, "-m", "jobcore", "--url", cluster_url, "--namespace", "", *args]
        done = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=20)
        lines = done.stderr.strip().splitlines()
        assert done.returncode != 0 and len(lines) == 1 and "namespace" in lines[0], done.stderr


async def test_closing_a_sentinel_queue_whose_caller_gave_up_logs_no_task_exception(
    sentinel_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A call given up (cancelled: a worker stopping) while the primary is being
    looked for, and not found: closing the queue later must not leave the search's
    failure behind as "Task exception was never retrieved"."""
    import gc

    nowhere = sentinel_url.rsplit("/", 2)[0] + "/no-such-service/0"  # the sentinels know no such primary
    q = RedisQueue(nowhere, connect_timeout=0.5)
    call = asyncio.ensure_future(q.ping())
    await asyncio.sleep(0.2)
    call.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await call
    transport = q.transport
    assert isinstance(transport, Sentinel)
    finding = transport._finding
    assert finding is not None
    await asyncio.wait([finding], timeout=10)  # the search ends, failing
    await q.close()
    del finding, transport, q, call
    gc.collect()
    await asyncio.sleep(0)
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
