"""Operator cancels (Queue.cancel): this worker's requests are read every
CANCEL_POLL_S, each applied to the job running here or held ahead, and every
cancelled job fails with one reason. Each request is answered for the caller
(it waits for the answer): by the settle that files the job, in the same script
(cancelled, or finished first and how), or here when no settle will (the job
was settled before the request came, its handler cannot be interrupted yet, or
this worker does not hold it)."""

from __future__ import annotations

import asyncio
import logging

import msgspec

from jobcore.errors import JobcoreError
from jobcore.limits import CANCEL_POLL_S
from jobcore.queue import Queue
from jobcore.records import Delivery, Outcome
from jobcore.registry import Handlers
from jobcore.worker.state import ANSWER, Held

log = logging.getLogger("jobcore.worker")

CANCELLED = "cancelled by operator"  # the failed reason of a job cancelled with Queue.cancel


def cancelled(d: Delivery, note: str | None = None, requests: tuple[str, ...] = ()) -> Outcome:
    """The outcome of a cancelled job; ``note`` says how the cancel went when it was not plain."""
    text = CANCELLED if note is None else f"{CANCELLED} ({note})"
    return Outcome(d.job_type, d.entry_id, "fail", d.attempt, text, cancels=requests, verdict="cancelled")


class Cancels:
    def __init__(self, queue: Queue, worker_id: str, handlers: Handlers, held: Held) -> None:
        self.queue = queue
        self.worker_id = worker_id
        self.handlers = handlers
        self._held = held
        self._later: list[tuple[str, str, str]] = []  # requests whose job was being settled: looked at next poll

    async def watch(self) -> None:
        """Take this worker's cancel requests every CANCEL_POLL_S: one small read
        per poll, whatever the number of jobs."""
        while True:
            await asyncio.sleep(CANCEL_POLL_S)
            try:
                requests = await self.queue.cancel_requests(self.worker_id)
            except JobcoreError as exc:
                log.debug("reading cancel requests failed: %s", exc)
                requests = []
            requests, self._later = self._later + requests, []
            for job_type, ref, request in requests:
                answer = self.cancel(job_type, ref, request)
                if answer and request:
                    try:
                        await self.queue.answer_cancel(job_type, ref, request, answer)
                    except JobcoreError as exc:  # the caller then says "not yet confirmed": still true
                        log.debug("answering cancel request %s failed: %s", request, exc)

    def cancel(self, job_type: str, ref: str, request: str = "") -> str | None:
        """Cancel one job of this worker: the handler running it, or the job held
        ahead in the buffer (failed without starting). Nothing else is touched.
        Returns the answer to ``request`` to record now, or None when the job's
        settle records it (or the next poll looks again)."""
        held = self._held
        requests = (request,) if request else ()
        slot = held.active.get((job_type, ref))
        if slot is not None and slot.job is not None and slot.task is not None:
            slot.cancels += requests
            sync = not self.handlers.get(job_type).is_async
            if slot.cancelled:
                return "cancelling" if sync else None
            slot.cancelled = True
            if not sync:
                log.warning("cancelling job entry %s of type %s: asked by an operator", ref, job_type)
                slot.task.cancel()
            else:
                log.warning(
                    "job entry %s of type %s is cancelled by an operator, but its synchronous handler cannot be "
                    "interrupted: it is recorded as cancelled when the handler returns",
                    ref,
                    job_type,
                )
            return "cancelling" if sync else None
        waiting = next((d for d in held.buffer if d.job_type == job_type and d.entry_id == ref), None)
        if waiting is not None:
            held.buffer.remove(waiting)
            log.warning("job entry %s of type %s cancelled by an operator before it started", ref, job_type)
            held.outbox.append(cancelled(waiting, "before it started", requests))
            held.outbox_ready.set()
            held.failed += 1
            held.slot_freed.set()
            return None
        log.info("cancel of job entry %s of type %s: not running here (it finished meanwhile)", ref, job_type)
        # It finished first: the settle to come answers, or the one that was.
        for i, o in enumerate(held.outbox):
            if o.job_type == job_type and o.entry_id == ref:
                answer = o.verdict or ANSWER[o.kind]
                held.outbox[i] = msgspec.structs.replace(o, cancels=o.cancels + requests, verdict=answer)
                return None
        if any(o.job_type == job_type and o.entry_id == ref for o in held.settling):
            self._later.append((job_type, ref, request))
            return None
        key = (job_type, ref)
        return held.settled.get(key) or held.settled_before.get(key) or "moved"
