"""Operator cancels (Queue.cancel): this worker's requests are read every
CANCEL_POLL_S, each applied to the job running here or held ahead, and every
cancelled job fails with one reason."""

from __future__ import annotations

import asyncio
import logging

from jobcore.errors import JobcoreError
from jobcore.limits import CANCEL_POLL_S
from jobcore.queue import Queue
from jobcore.records import Delivery, Outcome
from jobcore.registry import Handlers
from jobcore.worker.state import Held

log = logging.getLogger("jobcore.worker")

CANCELLED = "cancelled by operator"  # the failed reason of a job cancelled with Queue.cancel


def cancelled(d: Delivery, note: str | None = None) -> Outcome:
    """The outcome of a cancelled job; ``note`` says how the cancel went when it was not plain."""
    return Outcome(d.job_type, d.entry_id, "fail", d.attempt, CANCELLED if note is None else f"{CANCELLED} ({note})")


class Cancels:
    def __init__(self, queue: Queue, worker_id: str, handlers: Handlers, held: Held) -> None:
        self.queue = queue
        self.worker_id = worker_id
        self.handlers = handlers
        self._held = held

    async def watch(self) -> None:
        """Take this worker's cancel requests every CANCEL_POLL_S: one small read
        per poll, whatever the number of jobs."""
        while True:
            await asyncio.sleep(CANCEL_POLL_S)
            try:
                requests = await self.queue.cancel_requests(self.worker_id)
            except JobcoreError as exc:
                log.debug("reading cancel requests failed: %s", exc)
                continue
            for job_type, ref in requests:
                self.cancel(job_type, ref)

    def cancel(self, job_type: str, ref: str) -> None:
        """Cancel one job of this worker: the handler running it, or the job held
        ahead in the buffer (failed without starting). Nothing else is touched."""
        held = self._held
        slot = held.active.get((job_type, ref))
        if slot is not None and slot.job is not None and slot.task is not None:
            if slot.cancelled:
                return
            slot.cancelled = True
            if self.handlers.get(job_type).is_async:
                log.warning("cancelling job entry %s of type %s: asked by an operator", ref, job_type)
                slot.task.cancel()
            else:
                log.warning(
                    "job entry %s of type %s is cancelled by an operator, but its synchronous handler cannot be "
                    "interrupted: it is recorded as cancelled when the handler returns",
                    ref,
                    job_type,
                )
            return
        waiting = next((d for d in held.buffer if d.job_type == job_type and d.entry_id == ref), None)
        if waiting is not None:
            held.buffer.remove(waiting)
            log.warning("job entry %s of type %s cancelled by an operator before it started", ref, job_type)
            held.outbox.append(cancelled(waiting, "before it started"))
            held.outbox_ready.set()
            held.failed += 1
            held.slot_freed.set()
            return
        log.info("cancel of job entry %s of type %s: not running here (it finished meanwhile)", ref, job_type)
