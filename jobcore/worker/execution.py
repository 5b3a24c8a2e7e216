"""Running one job: the stored entry decoded, the job's log context set, its
handler run (in a thread when synchronous), and what happened read as an
outcome: ack; fail (it raised, timed out, or an operator cancelled it); dead (it
cannot be run); or CancelledError for a stop, after which the runner hands the
job back."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from jobcore.errors import ArgsError, PayloadError
from jobcore.logs import enter_job, leave_job
from jobcore.model import Envelope, Job, decode_args, decode_envelope, unknown_fields
from jobcore.records import Delivery, Outcome
from jobcore.registry import Handlers, Registration
from jobcore.schema import unknown_fields_error
from jobcore.views import tracing
from jobcore.worker.cancels import cancelled
from jobcore.worker.state import Signals, Slot

log = logging.getLogger("jobcore.worker")
# After the known fields in a dead job's reason: what to do about the unknown ones.
_SKEW_HINT = (
    "; a typo, or a newer producer? deploy workers first, then requeue, or register the type to ignore unknown fields"
)


class Execution:
    def __init__(
        self, handlers: Handlers, signals: Signals, *, concurrency: int, timeout: float, max_attempts: int
    ) -> None:
        self.handlers = handlers
        self.timeout = timeout
        self.max_attempts = max_attempts
        self._signals = signals
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="jobcore-job")
        self._threads_lock = threading.Lock()
        self._threads_busy = 0

    @property
    def threads_busy(self) -> int:
        """Sync handlers still running in their threads."""
        return self._threads_busy

    def shutdown(self) -> None:
        """Start no more sync handlers (those running cannot be stopped: Python cannot stop a thread)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def run(self, d: Delivery, slot: Slot) -> Outcome:
        decoded = self._decode(d)
        if isinstance(decoded, Outcome):
            return decoded
        reg, job, env = decoded
        span = tracing.running(env, job)
        token = enter_job(job) if span is None else enter_job(job, **span.ids)
        outcome: Outcome | None = None
        try:
            if d.attempt > self.max_attempts:
                outcome = self._dead(
                    d,
                    f"delivered {d.attempt} times, more than max_attempts={self.max_attempts}: "
                    "its worker kept stopping before the job finished",
                )
            else:
                outcome = await self._run_handler(d, slot, reg, job)
            return outcome
        finally:
            leave_job(token)
            if span is not None:
                span.end(outcome.kind if outcome else "released", outcome.text if outcome else None)

    def _dead(self, d: Delivery, reason: str) -> Outcome:
        log.error("job entry %s of type %s dead-lettered: %s", d.entry_id, d.job_type, reason)
        return Outcome(d.job_type, d.entry_id, "dead", d.attempt, reason)

    def _decode(self, d: Delivery) -> Outcome | tuple[Registration, Job[Any], Envelope]:
        """The job as its handler takes it, or the dead-letter outcome saying why
        the stored entry cannot be one."""
        if d.raw is None:
            return self._dead(d, "entry has no payload field")
        try:
            env = decode_envelope(d.raw)
        except PayloadError as exc:
            return self._dead(d, str(exc))
        if env.type != d.job_type:
            return self._dead(d, f"envelope says type {env.type!r} but it was queued as {d.job_type!r}")
        reg = self.handlers.get(d.job_type)
        if reg.unknown_fields == "dead":  # before decoding: a typo'd required field is named as the typo
            extra = unknown_fields(env.args, reg.args_type)
            if extra:
                owner = f"this worker's {getattr(reg.args_type, '__name__', 'args type')}"
                error = unknown_fields_error(d.job_type, owner, extra, reg.known_fields or (), _SKEW_HINT)
                return self._dead(d, str(error))
        try:
            args = decode_args(env.args, reg.args_type)
        except ArgsError as exc:
            return self._dead(d, str(exc))
        return reg, env.job(args, d.attempt), env

    async def _run_handler(self, d: Delivery, slot: Slot, reg: Registration, job: Job[Any]) -> Outcome:
        """Run the handler within the job's timeout: ack, fail (it raised or timed
        out), or CancelledError for a stop (the caller hands the job back)."""
        started = time.perf_counter()
        try:
            if reg.is_async:
                await reg.handler(job)  # type: ignore[misc]
            else:
                ctx = contextvars.copy_context()
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(self._executor, self._in_thread, ctx, reg.handler, job)
        except asyncio.CancelledError:
            task = slot.task
            stop = self._signals
            if slot.cancelled and not stop.cancelling_all and task is not None and task.cancelling() == 1:
                task.uncancel()  # the operator's cancel alone (a stop's would be one more)
                log.warning("job cancelled by operator")
                slot.answer = "cancelled"
                return cancelled(d)
            # The watchdog's cancel alone: a timeout. Any other cancel is a stop.
            if slot.timed_out and not stop.cancelling_all and task is not None and task.cancelling() == 1:
                task.uncancel()
                log.error("job timed out after %.1fs", self.timeout)
                return Outcome(d.job_type, d.entry_id, "fail", d.attempt, f"timed out after {self.timeout:g}s")
            if stop.stopping.is_set() and not stop.id_taken:  # the id's new owner hands it back
                log.warning("job interrupted by stop; handing it back to the queue")
            raise
        except Exception as exc:
            if slot.cancelled:  # a handler that could not be interrupted (sync) ended
                return self._cancelled_late(d, slot, f"raised {exc!r}")
            log.exception("job failed: %s", exc)
            return Outcome(
                d.job_type,
                d.entry_id,
                "fail",
                d.attempt,
                "".join(traceback.format_exception(exc)).rstrip(),
            )
        if slot.cancelled:
            return self._cancelled_late(d, slot, "returned")
        if slot.timed_out and slot.task is not None and slot.task.cancelling():
            slot.task.uncancel()  # the handler swallowed the timeout's cancel and finished
        log.debug("job done in %.1f ms", (time.perf_counter() - started) * 1000)
        return Outcome(d.job_type, d.entry_id, "ack", d.attempt)

    def _cancelled_late(self, d: Delivery, slot: Slot, how: str) -> Outcome:
        """The outcome of a job cancelled while its handler ran on (a sync handler
        cannot be interrupted; an async one may swallow the cancel): what the
        handler did is said beside the operator's reason."""
        if slot.task is not None and slot.task.cancelling():
            slot.task.uncancel()  # an async handler swallowed the cancel
        log.warning("job cancelled by operator; its handler could not be interrupted and %s", how)
        slot.answer = "ran_on"
        return cancelled(d, f"the handler could not be interrupted: it ran on and {how}")

    def _in_thread(self, ctx: contextvars.Context, handler: Callable[..., Any], job: Any) -> Any:
        with self._threads_lock:
            self._threads_busy += 1
        try:
            return ctx.run(handler, job)
        finally:
            with self._threads_lock:
                self._threads_busy -= 1
