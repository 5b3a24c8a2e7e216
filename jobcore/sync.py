"""A synchronous facade for code that is not asyncio (Flask, Django, scripts).

It runs one private event loop in a daemon thread (a :class:`LoopThread`) and
forwards each call to it, so it is safe to share between threads.
"""

from __future__ import annotations

import uuid
from collections.abc import Coroutine, Iterable, Sequence
from typing import Any, Literal, TypeVar

from jobcore.connect import connect
from jobcore.fair import FairInfo
from jobcore.keys import DEFAULT_NAMESPACE
from jobcore.loop_thread import LoopThread
from jobcore.model import Job, UnknownFields
from jobcore.ops.audit import AuditRecord
from jobcore.ops.find import CancelResult, FoundJob, JobQuery
from jobcore.ops.history import History
from jobcore.ops.pending import PendingPage
from jobcore.ops.triage import FailureGroup
from jobcore.ops.why import Explanation
from jobcore.queue import Queue
from jobcore.records import BadJob, InFlightJob, QueueStats, WorkerInfo

T = TypeVar("T")


class SyncQueue:
    """``SyncQueue(url)``: the queue API as plain blocking calls."""

    def __init__(
        self,
        url: str | None = None,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        handlers: Any = None,
        allow_undeclared: bool = False,
        replicas: int | None = None,
        replica_timeout_ms: int | None = None,
        key_ttl: float | None = None,
    ) -> None:
        self._queue: Queue = connect(
            url,
            namespace=namespace,
            handlers=handlers,
            allow_undeclared=allow_undeclared,
            replicas=replicas,
            replica_timeout_ms=replica_timeout_ms,
            key_ttl=key_ttl,
        )
        self._loop = LoopThread("jobcore-sync")

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 60) -> T:
        return self._loop.run(coro, timeout)

    @property
    def queue(self) -> Queue:
        return self._queue

    def declare(
        self,
        job_type: str,
        args_type: Any = None,
        *,
        partitions: int | None = None,
        unknown_fields: UnknownFields = "dead",
        fair: bool | None = None,
    ) -> None:
        self._queue.declare(job_type, args_type, partitions=partitions, unknown_fields=unknown_fields, fair=fair)

    def set_partitions(self, job_type: str, partitions: int) -> int:
        return self._run(self._queue.set_partitions(job_type, partitions))

    def partitions(self, job_types: str | Sequence[str]) -> dict[str, int]:
        return self._run(self._queue.partitions(job_types))

    def enqueue(self, job: Job[Any], *, key: str | None = None) -> uuid.UUID:
        return self._run(self._queue.enqueue(job, key=key))

    def enqueue_many(self, jobs: Iterable[Job[Any]], *, keys: Iterable[str | None] | None = None) -> list[uuid.UUID]:
        return self._run(self._queue.enqueue_many(list(jobs), keys=None if keys is None else list(keys)))

    def stats(self) -> QueueStats:
        return self._run(self._queue.stats())

    def in_flight(self, limit: int = 1000) -> list[InFlightJob]:
        return self._run(self._queue.in_flight(limit))

    def workers(self) -> list[WorkerInfo]:
        return self._run(self._queue.workers())

    def job_types(self) -> list[str]:
        return self._run(self._queue.job_types())

    def schemas(self) -> dict[str, dict[str, Any]]:
        return self._run(self._queue.schemas())

    def dead(self, job_type: str | None = None, limit: int = 100, before: str | None = None) -> list[BadJob]:
        return self._run(self._queue.dead(job_type, limit, before))

    def failed(self, job_type: str | None = None, limit: int = 100, before: str | None = None) -> list[BadJob]:
        return self._run(self._queue.failed(job_type, limit, before))

    def requeue(self, which: Literal["dead", "failed"], job_type: str, ids: Sequence[str] | None = None) -> int:
        return self._run(self._queue.requeue(which, job_type, ids))

    def purge(self, which: Literal["dead", "failed"], job_type: str, ids: Sequence[str] | None = None) -> int:
        return self._run(self._queue.purge(which, job_type, ids))

    def failure_groups(self, which: Literal["dead", "failed"], job_type: str | None = None) -> list[FailureGroup]:
        return self._run(self._queue.failure_groups(which, job_type))

    def requeue_group(self, which: Literal["dead", "failed"], key: str, job_type: str | None = None) -> int:
        return self._run(self._queue.requeue_group(which, key, job_type))

    def purge_group(self, which: Literal["dead", "failed"], key: str, job_type: str | None = None) -> int:
        return self._run(self._queue.purge_group(which, key, job_type))

    def history(self, job_type: str | None = None, minutes: int = 60) -> History:
        return self._run(self._queue.history(job_type, minutes))

    def why(self, job_type: str | None = None, *, job_id: str | None = None) -> Explanation:
        return self._run(self._queue.why(job_type, job_id=job_id))

    def pause(self, job_type: str) -> None:
        self._run(self._queue.pause(job_type))

    def resume(self, job_type: str) -> None:
        self._run(self._queue.resume(job_type))

    def find(self, query: JobQuery | str | Sequence[str], limit: int = 100) -> list[FoundJob]:
        return self._run(self._queue.find(query, limit))

    def cancel(self, job_id: str | uuid.UUID) -> CancelResult:
        return self._run(self._queue.cancel(job_id))

    def delete_pending(
        self,
        job_type: str,
        ids: Sequence[str | uuid.UUID] | None = None,
        query: JobQuery | str | Sequence[str] | None = None,
        all: bool = False,
    ) -> int:
        return self._run(self._queue.delete_pending(job_type, ids, query, all))

    def remove_type(self, job_type: str) -> None:
        self._run(self._queue.remove_type(job_type))

    @property
    def actor(self) -> str:
        """Who acts, as the audit trail records it (default: $JOBCORE_ACTOR, else user@host)."""
        return self._queue.actor

    @actor.setter
    def actor(self, name: str) -> None:
        self._queue.actor = name

    def audit(self, limit: int = 50, job_type: str | None = None) -> list[AuditRecord]:
        return self._run(self._queue.audit(limit, job_type))

    def pending(
        self,
        job_type: str,
        limit: int = 50,
        after: str | None = None,
        query: JobQuery | str | Sequence[str] | None = None,
    ) -> PendingPage:
        return self._run(self._queue.pending(job_type, limit, after, query))

    def set_fair(self, job_type: str, fair: bool) -> None:
        self._run(self._queue.set_fair(job_type, fair))

    def set_limit(
        self,
        job_type: str,
        per_account: int | None = None,
        *,
        account: int | None = None,
        max: int | None = None,
        weight: int | None = None,
    ) -> None:
        self._run(self._queue.set_limit(job_type, per_account, account=account, max=max, weight=weight))

    def fair_info(self, job_type: str, top: int = 5) -> FairInfo:
        return self._run(self._queue.fair_info(job_type, top))

    def ping(self) -> None:
        self._run(self._queue.ping())

    def server_version(self) -> str:
        return self._run(self._queue.server_version())

    def close(self) -> None:
        if not self._loop.running:
            return
        try:
            self._run(self._queue.close(), timeout=10)
        finally:
            self._loop.stop(5)

    def __enter__(self) -> SyncQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
