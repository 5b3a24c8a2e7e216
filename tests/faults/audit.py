"""The audit: where is every enqueued job now, and how many times did it run?

It reads jobcore's keys directly (DB 0) and the handlers' execution records
(DB 1), so it does not trust the code under test to count for it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from jobcore.errors import PayloadError
from jobcore.keys import GROUP, Keys, TypeKeys
from jobcore.model import decode_envelope

from .handlers import DONE, STARTS


@dataclass(frozen=True, slots=True)
class Run:
    job_id: str
    attempt: int
    worker: str
    ms: int


@dataclass(slots=True)
class Report:
    enqueued: int
    processed: set[str]  # ran to the end (a done record) and no longer queued
    pending: set[str]
    in_flight: set[str]
    dead: set[str]
    failed: set[str]
    acked: int  # the per-type `processed` counters
    runs: dict[str, list[Run]]  # completed executions per job id
    starts: dict[str, list[Run]]
    missing: set[str] = field(default_factory=set)
    overlap: dict[str, list[str]] = field(default_factory=dict)
    dead_reasons: dict[str, str] = field(default_factory=dict)  # job id (or entry id) -> reason
    dead_attempts: dict[str, int] = field(default_factory=dict)
    unknown_dead: int = 0  # dead entries with no decodable job id (poison)

    @property
    def executions(self) -> int:
        return sum(len(r) for r in self.runs.values())

    @property
    def duplicates(self) -> dict[str, int]:
        """Jobs that ran to the end more than once, and how many times."""
        return {j: len(r) for j, r in self.runs.items() if len(r) > 1}

    @property
    def redelivered(self) -> set[str]:
        """Jobs started (or finished) on a delivery after the first."""
        return {j for src in (self.runs, self.starts) for j, rs in src.items() if any(r.attempt > 1 for r in rs)}

    def summary(self) -> dict[str, Any]:
        return {
            "enqueued": self.enqueued,
            "processed": len(self.processed),
            "acked": self.acked,
            "pending": len(self.pending),
            "in_flight": len(self.in_flight),
            "dead": len(self.dead),
            "failed": len(self.failed),
            "missing": len(self.missing),
            "overlap": len(self.overlap),
            "executions": self.executions,
            "duplicates": len(self.duplicates),
            "redelivered": len(self.redelivered),
        }

    def assert_accounted(self) -> None:
        """Every enqueued job is in exactly one place; none is missing."""
        assert not self.missing, f"{len(self.missing)} job(s) lost: {sorted(self.missing)[:5]} {self.summary()}"
        assert not self.overlap, f"job(s) in two places: {dict(list(self.overlap.items())[:5])} {self.summary()}"

    def assert_all_processed(self) -> None:
        """Every job ran to the end and was acknowledged exactly once."""
        self.assert_accounted()
        assert len(self.processed) == self.enqueued, self.summary()
        assert self.acked == self.enqueued, f"acks counted {self.acked}, jobs {self.enqueued}: {self.summary()}"


class Audit:
    def __init__(self, url: str, audit_url: str, namespace: str = "jobcore", data: Any = None) -> None:
        # ``data``: a client for a topology a URL alone cannot reach (a cluster, a primary after failover).
        self.r = data if data is not None else redis.Redis.from_url(url)
        self.a = redis.Redis.from_url(audit_url)
        self.keys = Keys(namespace)

    def close(self) -> None:
        self.r.close()
        self.a.close()

    def _runs(self, key: str) -> dict[str, list[Run]]:
        out: dict[str, list[Run]] = defaultdict(list)
        for _, raw in self.a.hscan_iter(key, count=5000):
            job_id, attempt, worker, ms = raw.decode().split("|")
            out[job_id].append(Run(job_id, int(attempt), worker, int(ms)))
        for rs in out.values():
            rs.sort(key=lambda r: (r.ms, r.attempt))
        return dict(out)

    def runs(self) -> dict[str, list[Run]]:
        return self._runs(DONE)

    def starts(self) -> dict[str, list[Run]]:
        return self._runs(STARTS)

    def executions(self) -> int:
        return int(self.a.hlen(DONE))

    @staticmethod
    def job_id(raw: bytes | None) -> str | None:
        try:
            return str(decode_envelope(raw or b"").id)
        except PayloadError:
            return None

    def _entries(self, key: str) -> Iterable[tuple[str, dict[bytes, bytes]]]:
        last = "-"
        while True:
            batch = self.r.xrange(key, last, "+", count=5000)
            for entry_id, fields in batch:
                yield entry_id.decode(), fields
            if len(batch) < 5000:
                return
            last = "(" + batch[-1][0].decode()

    def locate(self) -> dict[str, dict[str, Any]]:
        """Per type: job ids pending, in flight (with owner), dead (with reason) and failed."""
        out: dict[str, dict[str, Any]] = {}
        for t, k in self._streams():
            owner: dict[str, str] = {}
            try:
                for row in self.r.xpending_range(k.stream, GROUP, "-", "+", 1_000_000):
                    owner[row["message_id"].decode()] = row["consumer"].decode()
            except redis.ResponseError:
                pass  # no group yet
            pending, in_flight, dead, failed = [], {}, [], []
            for entry_id, f in self._entries(k.stream):
                jid = self.job_id(f.get(b"d")) or f"entry:{entry_id}"
                if entry_id in owner:
                    in_flight[jid] = owner[entry_id]
                else:
                    pending.append(jid)
            for entry_id, f in self._entries(k.dead):
                dead.append(
                    (
                        self.job_id(f.get(b"d")) or f"entry:{entry_id}",
                        f.get(b"r", b"").decode(errors="replace"),
                        int(f.get(b"n", 0)),
                    )
                )
            for entry_id, f in self._entries(k.failed):
                failed.append(self.job_id(f.get(b"d")) or f"entry:{entry_id}")
            processed = int(self.r.hget(k.stats, "processed") or 0)
            out[t] = {
                "pending": pending,
                "in_flight": in_flight,
                "dead": dead,
                "failed": failed,
                "acked": processed,
            }
        return out

    def _streams(self) -> list[tuple[str, TypeKeys]]:
        """Every type's keys, each partition's apart (named "type{p" here), as the
        partitions hash lists them: read from Redis as documented, not through jobcore."""
        out = []
        for t in sorted(x.decode() for x in self.r.smembers(self.keys.types)):
            stored = self.r.hget(self.keys.partitions, t)
            names = stored.decode().split("\n") if stored else [t]
            out += [(name, self.keys.of_type(name)) for name in names]
        return out

    def report(self, enqueued: Iterable[Any]) -> Report:
        ids = {str(i) for i in enqueued}
        where = self.locate()
        runs, starts = self.runs(), self.starts()
        places: dict[str, list[str]] = defaultdict(list)
        pending: set[str] = set()
        in_flight: set[str] = set()
        dead: set[str] = set()
        failed: set[str] = set()
        reasons: dict[str, str] = {}
        attempts: dict[str, int] = {}
        unknown_dead = 0
        acked = 0
        for per in where.values():
            acked += per["acked"]
            for j in per["pending"]:
                pending.add(j)
                places[j].append("pending")
            for j in per["in_flight"]:
                in_flight.add(j)
                places[j].append("in flight")
            for j, reason, n in per["dead"]:
                dead.add(j)
                places[j].append("dead")
                reasons[j] = reason
                attempts[j] = n
                if j.startswith("entry:"):
                    unknown_dead += 1
            for j in per["failed"]:
                failed.add(j)
                places[j].append("failed")
        processed = {j for j in runs if j in ids and not places.get(j)}
        for j in processed:
            places[j].append("processed")
        report = Report(
            enqueued=len(ids),
            processed=processed,
            pending=pending,
            in_flight=in_flight,
            dead=dead,
            failed=failed,
            acked=acked,
            runs=runs,
            starts=starts,
            dead_reasons=reasons,
            dead_attempts=attempts,
            unknown_dead=unknown_dead,
        )
        report.missing = {j for j in ids if not places.get(j)}
        report.overlap = {j: ps for j, ps in places.items() if len(ps) > 1}
        return report
