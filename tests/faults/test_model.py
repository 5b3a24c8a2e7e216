"""Fault 10: a Hypothesis state machine drives the memory backend and a real
Redis in lockstep through random enqueue / fetch / ack / fail / release / dead /
crash / lease-expiry / recover / forget steps, and checks both against a small
model of the queue after every step."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import msgspec
import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

import jobcore
from jobcore import Job
from jobcore.memory import MemoryQueue
from jobcore.model import decode_envelope
from jobcore.records import Delivery, Lease, Outcome
from jobcore.redis.backend import RedisQueue

T = "t"
CONSUMERS = ["c1", "c2", "c3"]
ALIVE_MS = 600_000
LAPSED_MS = -1_000  # a lease deadline already in the past
SUSPECT_DEATHS = 2


@dataclass
class Model:
    """The queue as a person would describe it."""

    pending: list[int] = field(default_factory=list)  # job numbers, oldest first
    base: dict[int, int] = field(default_factory=dict)  # deliveries counted before (re)queueing
    held: dict[int, tuple[str, int]] = field(default_factory=dict)  # job -> (consumer, attempt)
    seq: dict[int, int] = field(default_factory=dict)  # job -> order of its current entry
    processed: int = 0
    failed: int = 0
    dead: int = 0
    leases: dict[str, bool] = field(default_factory=dict)  # consumer -> lease alive?
    next_seq: int = 0

    def add(self, n: int, base: int) -> None:
        self.pending.append(n)
        self.base[n] = base
        self.seq[n] = self.next_seq
        self.next_seq += 1

    def held_by(self, c: str) -> list[int]:
        return sorted((n for n, (owner, _) in self.held.items() if owner == c), key=self.seq.__getitem__)

    def lost(self) -> list[str]:
        return sorted(c for c, alive in self.leases.items() if not alive)


@dataclass
class Belief:
    """A delivery as the consumer that received it remembers it."""

    seq: int
    attempt: int
    entry: dict[str, str]  # backend name -> entry id


def job_number(d: Delivery) -> int:
    env = decode_envelope(d.raw or b"")
    return int(msgspec.msgpack.decode(env.args)["n"])


def make_machine(url: str) -> type[RuleBasedStateMachine]:
    class QueueMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            with redis.Redis.from_url(url) as r:
                r.flushdb()
            self.loop = asyncio.new_event_loop()
            self.backends: dict[str, jobcore.Queue] = {"memory": MemoryQueue(), "redis": RedisQueue(url)}
            self.model = Model()
            self.beliefs: dict[str, dict[int, Belief]] = {c: {} for c in CONSUMERS}
            self.names: dict[str, dict[str, int]] = {b: {} for b in self.backends}  # entry id -> job
            self.next_job = 0
            self.run(lambda q: q.register_types({T: {}}))

        def run(self, call: Any) -> dict[str, Any]:
            return {name: self.loop.run_until_complete(call(q)) for name, q in self.backends.items()}

        def teardown(self) -> None:
            self.run(lambda q: q.close())
            self.loop.close()

        def _deliveries(self, got: dict[str, list[Delivery]]) -> list[tuple[int, int]]:
            """The same jobs at the same attempts from every backend; remember them."""
            seen = {}
            for name, ds in got.items():
                seen[name] = [(job_number(d), d.attempt) for d in ds]
                for d in ds:
                    self.names[name][d.entry_id] = job_number(d)
            first = seen["memory"]
            assert seen["redis"] == first, seen
            return first

        def _believe(self, c: str, got: dict[str, list[Delivery]]) -> None:
            for name, ds in got.items():
                for d in ds:
                    n = job_number(d)
                    b = self.beliefs[c].setdefault(n, Belief(self.model.seq[n], d.attempt, {}))
                    b.seq, b.attempt = self.model.seq[n], d.attempt
                    b.entry[name] = d.entry_id

        @rule(k=st.integers(1, 3))
        def enqueue(self, k: int) -> None:
            jobs = [Job(type=T, args={"n": self.next_job + i}) for i in range(k)]
            self.next_job += k
            self.run(lambda q: q.enqueue_many(jobs))
            for i in range(k):
                self.model.add(jobs[i].args["n"], 0)

        @rule(c=st.sampled_from(CONSUMERS), count=st.integers(1, 3))
        def fetch(self, c: str, count: int) -> None:
            got = self.run(lambda q: q.fetch(c, [T], count, 0))
            m = self.model
            want = [(n, m.base[n] + 1) for n in m.pending[:count]]
            assert self._deliveries(got) == want
            for n, attempt in want:
                m.held[n] = (c, attempt)
            m.pending = m.pending[count:]
            self._believe(c, got)

        @precondition(lambda self: any(self.beliefs.values()))
        @rule(data=st.data(), kind=st.sampled_from(["ack", "fail", "dead", "release", "hand back"]))
        def settle(self, data: st.DataObject, kind: str) -> None:
            c = data.draw(st.sampled_from([c for c in CONSUMERS if self.beliefs[c]]))
            n = data.draw(st.sampled_from(sorted(self.beliefs[c])))
            b = self.beliefs[c].pop(n)

            def outcome(entry: str) -> Outcome:
                if kind == "hand back":  # never started: the delivery does not count
                    return Outcome(T, entry, "release", 0)
                return Outcome(T, entry, kind, b.attempt, "reason")  # type: ignore[arg-type]

            stale = {
                name: self.loop.run_until_complete(q.settle(c, [outcome(b.entry[name])]))
                for name, q in self.backends.items()
            }
            m = self.model
            owns = m.held.get(n, ("", 0))[0] == c and m.seq[n] == b.seq
            for name, s in stale.items():
                assert [x.entry_id for x in s] == ([] if owns else [b.entry[name]]), (name, s, owns)
            if not owns:
                return  # a stale worker's settle changes nothing
            del m.held[n]
            if kind == "ack":
                m.processed += 1
            elif kind == "fail":
                m.failed += 1
            elif kind == "dead":
                m.dead += 1
            elif kind == "release":
                m.add(n, b.attempt - 1)
            else:
                m.add(n, b.attempt - 1)  # the same count: this delivery never started

        @rule(c=st.sampled_from(CONSUMERS))
        def heartbeat(self, c: str) -> None:
            ok = self.run(lambda q: q.heartbeat({"id": c, "types": [T]}, ALIVE_MS))
            want = {None: Lease.NEW, True: Lease.HELD, False: Lease.LAPSED}[self.model.leases.get(c)]
            assert ok == {"memory": want, "redis": want}
            self.model.leases[c] = True

        @rule(c=st.sampled_from(CONSUMERS))
        def expire(self, c: str) -> None:
            """Its lease lapses (frozen, cut off): it still believes it holds its jobs."""
            self.run(lambda q: q.heartbeat({"id": c, "types": [T]}, LAPSED_MS))
            self.model.leases[c] = False

        @rule(c=st.sampled_from(CONSUMERS))
        def crash(self, c: str) -> None:
            """It dies: it forgets everything and its lease lapses."""
            self.expire(c)
            self.beliefs[c].clear()

        @precondition(lambda self: self.model.lost())
        @rule(
            data=st.data(),
            r=st.sampled_from(CONSUMERS),
            count=st.integers(0, 4),
            suspects=st.none() | st.integers(0, 2),
        )
        def recover(self, data: st.DataObject, r: str, count: int, suspects: int | None) -> None:
            owner = data.draw(st.sampled_from(self.model.lost()))
            died = data.draw(st.booleans())  # False: the owner said it was stopping
            res = self.run(
                lambda q: q.claim(r, T, owner, count, suspects=suspects, suspect_deaths=SUSPECT_DEATHS, died=died)
            )
            m = self.model
            want: list[tuple[int, int]] = []
            room = suspects
            for n in m.held_by(owner):
                if len(want) >= count:
                    break
                attempt = m.held[n][1] + (1 if died else 0)
                deaths = attempt - m.base.get(n, 0) - 1
                if room is not None and deaths >= SUSPECT_DEATHS:
                    if room <= 0:
                        continue
                    room -= 1
                want.append((n, attempt))
            assert self._deliveries({name: got for name, (got, _) in res.items()}) == want
            for n, attempt in want:
                m.held[n] = (r, attempt)
            left = len(m.held_by(owner))
            assert {name: lft for name, (_, lft) in res.items()} == {"memory": left, "redis": left}
            self._believe(r, {name: got for name, (got, _) in res.items()})

        @rule(w=st.sampled_from(CONSUMERS))
        def forget(self, w: str) -> None:
            """A lost worker's record goes once it holds nothing; a live one stays."""
            self.run(lambda q: q.forget_worker(w, [T]))
            if not self.model.leases.get(w, True) and not self.model.held_by(w):
                del self.model.leases[w]

        @invariant()
        def counts_agree(self) -> None:
            m = self.model
            for name, s in self.run(lambda q: q.stats()).items():
                t = s.types[T]
                got = (t.pending, t.in_flight, t.processed, t.failed, t.dead)
                assert got == (len(m.pending), len(m.held), m.processed, m.failed, m.dead), (name, got, m)

        @invariant()
        def holders_and_lost_agree(self) -> None:
            m = self.model
            for name, lost in self.run(lambda q: q.lost_workers()).items():
                assert sorted(lost) == m.lost(), (name, lost, m.leases)
            for name, ws in self.run(lambda q: q.workers()).items():
                assert sorted(w.id for w in ws) == sorted(m.leases), (name, ws, m.leases)
            for c in CONSUMERS:
                for name, owned in self.run(lambda q, c=c: q.owned(c, [T])).items():
                    assert sorted(self.names[name][e] for _, e in owned) == sorted(m.held_by(c)), (name, c)

    return QueueMachine


def test_memory_and_redis_backends_follow_the_model(url: str) -> None:
    run_state_machine_as_test(
        make_machine(url),
        settings=settings(
            max_examples=40,
            stateful_step_count=35,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
