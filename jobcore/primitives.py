"""What a worker needs of a backend: the primitives the worker speaks (fetch,
settle, heartbeat, claim, ...), each backend implementing them. Apart from the
user's Queue API (jobcore/queue.py) so a backend author finds here, in one
place, everything the worker relies on."""

from __future__ import annotations

import abc
import logging
from collections.abc import Sequence
from typing import Any

from jobcore.limits import FAILED_KEEP
from jobcore.records import Delivery, Lease, Outcome, Stale

log = logging.getLogger("jobcore.queue")


class WorkerPrimitives(abc.ABC):
    """The worker's side of a queue (jobcore.Queue inherits it)."""

    def __init__(self) -> None:
        self._failed_keep = FAILED_KEEP
        self._full_failed_lists: set[str] = set()

    @property
    def failed_keep(self) -> int:
        """Failed jobs kept per type (the newest); settles drop older ones."""
        return self._failed_keep

    def keep_failed(self, count: int) -> None:
        """Keep the newest ``count`` failed jobs per type (a worker's --failed-keep):
        the cap this queue's settles apply from now on."""
        if count < 1:
            raise ValueError("failed_keep must be at least 1")
        self._failed_keep = count

    def _failed_list_full(self, job_type: str) -> None:
        """Say once per type that its failed list is at its cap and drops the oldest."""
        if job_type not in self._full_failed_lists:
            self._full_failed_lists.add(job_type)
            log.warning(
                "the failed list of type %r is full (%d kept): the oldest failed jobs are dropped from now on; "
                "requeue or purge them, or keep more (--failed-keep)",
                job_type,
                self._failed_keep,
            )

    @abc.abstractmethod
    async def register_types(self, schemas: dict[str, dict[str, Any]]) -> None:
        """Make each type's queue ready for workers and publish its args schema."""

    @abc.abstractmethod
    async def fetch(self, consumer: str, types: Sequence[str], count: int, block_ms: int) -> list[Delivery]:
        """Take up to ``count`` new jobs in all, the types taking turns to go first;
        block up to ``block_ms`` when there are none.
        Taking a job and recording it in flight for ``consumer`` is one atomic step."""

    async def stop_fetching(self) -> None:  # noqa: B027 - most backends have nothing to end
        """End blocking reads still waiting for jobs (a worker that stops calls
        this before it hands back what it holds)."""

    @abc.abstractmethod
    async def settle(self, consumer: str, outcomes: Sequence[Outcome]) -> list[Stale]:
        """Settle deliveries atomically per job. Returns those ``consumer`` no
        longer owned (left untouched), with who holds each now, if anyone."""

    @abc.abstractmethod
    async def heartbeat(self, info: dict[str, Any], lease_ms: int) -> Lease:
        """Publish worker info and extend its lease. With ``info["instance"]``, raise
        WorkerIdTaken (and change nothing) while another instance of the same
        worker id holds a live lease."""

    async def eviction_policies(self) -> set[str]:
        """The maxmemory policies other than noeviction in force on the backend's
        servers (each master of a cluster): any of them may evict queued jobs."""
        return set()

    async def recover_orphans(self, types: Sequence[str]) -> int:
        """Put back on their queue jobs recorded as delivered but held by no one
        (a consumer deleted while it held them); returns how many."""
        return 0

    @abc.abstractmethod
    async def lost_workers(self) -> list[str]:
        """Workers whose lease has lapsed."""

    @abc.abstractmethod
    async def claim(
        self,
        consumer: str,
        job_type: str,
        owner: str,
        count: int,
        ids: Sequence[str] = (),
        *,
        suspects: int | None = None,
        suspect_deaths: int = 2,
        died: bool = True,
    ) -> tuple[list[Delivery], int]:
        """Move up to ``count`` in-flight jobs (or exactly ``ids``) from ``owner`` to
        ``consumer``, oldest first. When ``owner`` ``died``, each move is a new
        delivery and one more death the job lived through; when it was stopping
        (it said so before its lease lapsed), neither. With ``suspects``, at most
        that many of them may have lived through ``suspect_deaths`` deaths or more
        (the others are skipped and stay with ``owner``). Returns the deliveries
        and how many ``owner`` still holds (its consumer is removed when none)."""

    @abc.abstractmethod
    async def owned(self, consumer: str, types: Sequence[str]) -> list[tuple[str, str]]:
        """(type, entry id) of every job ``consumer`` holds in flight."""

    @abc.abstractmethod
    async def forget_worker(self, worker_id: str, types: Sequence[str], force: bool = False) -> None:
        """Remove a lost worker's record once it holds no jobs of ``types`` (a stopped
        worker, ``force``, also removes its consumers of ``types``)."""

    def lease_keeper_settings(self) -> dict[str, Any] | None:
        """What a lease keeper process (``jobcore/keeper.py``) needs to extend a
        worker's lease from outside the worker, or None when this backend cannot
        be reached from another process."""
        return None

    @abc.abstractmethod
    async def cancel_requests(self, consumer: str) -> list[tuple[str, str, str]]:
        """Take the (type, entry ref, request id) cancel requests for ``consumer`` (a
        worker polls this every ``CANCEL_POLL_S``: no round trip per job). The
        request id is "" for a request of an older jobcore (nobody waits for its answer)."""

    @abc.abstractmethod
    async def answer_cancel(self, job_type: str, ref: str, request: str, answer: str) -> None:
        """Record what became of cancel ``request`` when no settle carries it (the
        job finished and was settled before the request came, it runs on a handler
        that cannot be interrupted, or this worker does not hold it); an answer
        already recorded stays."""
