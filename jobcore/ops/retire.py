"""Retiring a job type: a typo'd type, or one no service uses any more, leaves
``stats`` and the console. Refused while jobs of it wait or run, or while a
live worker serves it, saying which."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

from jobcore.errors import TypeInUse
from jobcore.ops.audit import audited
from jobcore.records import QueueStats, WorkerInfo


class Retire(abc.ABC):
    async def check_known(self, *job_types: str) -> None:
        """Raise UnknownJobType for a type never enqueued or served (Operations has it)."""
        raise NotImplementedError

    if TYPE_CHECKING:

        async def workers(self) -> list[WorkerInfo]: ...

        async def stats(self) -> QueueStats: ...

    @abc.abstractmethod
    async def _remove_type(self, job_type: str) -> None:
        """Remove every key of the type (each partition checked empty in the same
        step, TypeInUse otherwise) and its name from the namespace's records."""

    @audited("remove type")
    async def remove_type(self, job_type: str) -> None:
        """Remove ``job_type``: its queue, dead and failed jobs, history, settings,
        and its name from the known types (a producer that enqueues it again
        lists it again). Raises UnknownJobType, TypeInUse."""
        await self.check_known(job_type)
        serving = sorted(w.id for w in await self.workers() if w.state != "lost" and job_type in w.types)
        if serving:
            raise TypeInUse(
                f"type {job_type!r} is served by live worker(s) {', '.join(serving)}: stop them, or start them "
                "without it, first"
            )
        t = (await self.stats()).types.get(job_type)
        if t is not None and (t.pending or t.in_flight):
            raise TypeInUse(
                f"type {job_type!r} has {t.pending:,} job(s) waiting and {t.in_flight:,} in flight: let them run, "
                f"or delete the waiting ones (jobcore pending delete {job_type} --all), first"
            )
        await self._remove_type(job_type)
