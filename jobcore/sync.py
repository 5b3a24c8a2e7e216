"""A synchronous facade for code that is not asyncio (Flask, Django, scripts).

It runs one private event loop in a daemon thread and forwards each call to it,
so it is safe to share between threads.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine, Iterable, Sequence
from typing import Any, Literal, TypeVar

from .backend import BadJob, InFlightJob, Queue, QueueStats, WorkerInfo
from .connect import connect
from .keys import DEFAULT_NAMESPACE
from .model import Job

T = TypeVar("T")


class SyncQueue:
    """``SyncQueue(url)``: the queue API as plain blocking calls."""

    def __init__(self, url: str, *, namespace: str = DEFAULT_NAMESPACE, handlers: Any = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="jobcore-sync", daemon=True)
        self._thread.start()
        self._queue: Queue = connect(url, namespace=namespace, handlers=handlers)

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @property
    def queue(self) -> Queue:
        return self._queue

    def declare(self, job_type: str, args_type: Any) -> None:
        self._queue.declare(job_type, args_type)

    def enqueue(self, job: Job[Any]) -> uuid.UUID:
        return self._run(self._queue.enqueue(job))

    def enqueue_many(self, jobs: Iterable[Job[Any]]) -> list[uuid.UUID]:
        return self._run(self._queue.enqueue_many(list(jobs)))

    def stats(self) -> QueueStats:
        return self._run(self._queue.stats())

    def in_flight(self, limit: int = 1000) -> list[InFlightJob]:
        return self._run(self._queue.in_flight(limit))

    def workers(self) -> list[WorkerInfo]:
        return self._run(self._queue.workers())

    def dead(self, job_type: str | None = None, limit: int = 100) -> list[BadJob]:
        return self._run(self._queue.dead(job_type, limit))

    def requeue(self, which: Literal["dead", "failed"], job_type: str, ids: Sequence[str] | None = None) -> int:
        return self._run(self._queue.requeue(which, job_type, ids))

    def purge(self, which: Literal["dead", "failed"], job_type: str, ids: Sequence[str] | None = None) -> int:
        return self._run(self._queue.purge(which, job_type, ids))

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._run(self._queue.close(), timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()

    def __enter__(self) -> SyncQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
