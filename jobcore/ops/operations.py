"""What operators ask of a queue: the reads (stats, in flight, workers, dead and
failed lists), triage, history, why, find, cancel and pause. jobcore.Queue
inherits it; a backend implements the abstract reads and the few hooks below
(``_history_read``, ``_set_paused``, ``_pending_by_id``, ``_request_cancel``,
``_cancel_answer``)."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, Literal

from jobcore.errors import AmbiguousJobId, BadQuery, PayloadError, UnknownJobType
from jobcore.fair import fair_sentences
from jobcore.limits import BAD_ALL, CANCEL_CONFIRM_S, FIND_BAD_MAX, FIND_SKEW_MS, IN_FLIGHT_ALL, chunked
from jobcore.model import decode_envelope
from jobcore.ops.audit import AuditTrail, audited
from jobcore.ops.fairness import Fairness
from jobcore.ops.find import (
    CancelResult,
    FinishedAs,
    FoundJob,
    JobQuery,
    found_bad,
    found_in_flight,
    id_starts_with,
    in_flight_matches,
    parse_job_id,
    parse_query,
    uuid_time_ms,
)
from jobcore.ops.history import History, build_history, window
from jobcore.ops.pending import WaitingJobs, found_pending
from jobcore.ops.retire import Retire
from jobcore.ops.triage import FailureGroup, GroupNotFound, group_failures
from jobcore.ops.why import Explanation, explain
from jobcore.records import BadJob, Dashboard, InFlightJob, QueueStats, WorkerInfo

_LIST_ID = re.compile(r"\d+-\d+(@\d+)?")  # an entry id, with its partition when not 0


class Operations(Fairness, WaitingJobs, Retire, AuditTrail):
    """The operator's side of a queue."""

    @abc.abstractmethod
    async def stats(self) -> QueueStats: ...

    @abc.abstractmethod
    async def in_flight(self, limit: int = 1000) -> list[InFlightJob]:
        """Jobs being processed now, longest-running first."""

    @abc.abstractmethod
    async def workers(self) -> list[WorkerInfo]: ...

    async def dashboard(self, in_flight_limit: int = 100) -> Dashboard:
        """Stats, the longest-running ``in_flight_limit`` jobs and the workers, read
        together (one round trip on Redis): what a console needs per refresh."""
        stats, rows, workers = await asyncio.gather(self.stats(), self.in_flight(in_flight_limit), self.workers())
        return Dashboard(stats, rows, workers)

    @abc.abstractmethod
    async def job_types(self) -> list[str]:
        """Every type ever enqueued or served."""

    @abc.abstractmethod
    async def schemas(self) -> dict[str, dict[str, Any]]:
        """Args JSON Schema per type, as published by workers."""

    @abc.abstractmethod
    async def dead(self, job_type: str | None = None, limit: int = 100, before: str | None = None) -> list[BadJob]:
        """Dead-lettered jobs, newest first."""

    @abc.abstractmethod
    async def failed(self, job_type: str | None = None, limit: int = 100, before: str | None = None) -> list[BadJob]:
        """Jobs whose handler raised (the most recent ones kept), newest first."""

    @audited("requeue")
    async def requeue(self, which: Literal["dead", "failed"], job_type: str, ids: Sequence[str] | None = None) -> int:
        """Put dead or failed jobs back on their queue (all of the type when ids is
        None). ``ids`` are their ids in the list, or job ids (see _bad_refs)."""
        return await self._requeue(which, job_type, ids)

    @audited("purge")
    async def purge(self, which: Literal["dead", "failed"], job_type: str, ids: Sequence[str] | None = None) -> int:
        """Delete dead or failed jobs for good (all of the type when ids is None);
        ``ids`` as for requeue."""
        return await self._purge(which, job_type, ids)

    @abc.abstractmethod
    async def _requeue(self, which: Literal["dead", "failed"], job_type: str, ids: Sequence[str] | None) -> int: ...

    @abc.abstractmethod
    async def _purge(self, which: Literal["dead", "failed"], job_type: str, ids: Sequence[str] | None) -> int: ...

    async def _bad_refs(
        self, which: Literal["dead", "failed"], job_type: str, ids: Sequence[str] | None
    ) -> list[str] | None:
        """The list ids ``ids`` name: a list id as the lists show it (``ENTRY`` or
        ``ENTRY@p``) stands for itself; a job id, whole or its first 8+ hex digits
        (as find takes it), for the entries holding that job (found by reading the
        type's list: dead and failed lists are bounded); anything else names nothing.
        A prefix that fits more than one job names none of them: AmbiguousJobId."""
        if ids is None:
            return None
        refs: list[str] = []
        wanted: set[str] = set()
        prefixes: list[str] = []
        for i in ids:
            if _LIST_ID.fullmatch(i):
                refs.append(i)
                continue
            with contextlib.suppress(BadQuery):
                parsed = parse_job_id(i)
                if isinstance(parsed, str):
                    prefixes.append(parsed)
                else:
                    wanted.add(str(parsed))
        if wanted or prefixes:
            rows = await (self.dead if which == "dead" else self.failed)(job_type, BAD_ALL)
            for prefix in prefixes:
                jobs = {b.job_id for b in rows if b.job_id and id_starts_with(b.job_id, prefix)}
                if len(jobs) > 1:
                    raise AmbiguousJobId(
                        f"{prefix} is the start of {len(jobs)} {which} jobs of {job_type}: give more of the id"
                    )
                wanted |= {j for j in jobs if j}
            refs += [b.id for b in rows if b.job_id in wanted]
        return list(dict.fromkeys(refs))

    # ---- triage, history, why (one block: composed from the reads above) --

    async def failure_groups(self, which: Literal["dead", "failed"], job_type: str | None = None) -> list[FailureGroup]:
        """Dead or failed jobs (of ``job_type``, or of every type) grouped by type
        and normalised cause (jobcore.ops.triage), the largest group first. Reads the
        list in full, payloads included: one round trip, O(jobs listed) in Redis
        and here (the failed list holds at most ``failed_keep`` per type and
        partition; the dead list is as long as nobody requeues or purges it)."""
        rows = await (self.dead if which == "dead" else self.failed)(job_type, BAD_ALL)
        return group_failures(which, rows)

    async def failure_group(
        self, which: Literal["dead", "failed"], key: str, job_type: str | None = None
    ) -> FailureGroup:
        """The group of ``failure_groups`` with ``key``; GroupNotFound if none."""
        for group in await self.failure_groups(which, job_type):
            if group.key == key:
                return group
        of_type = f" of type {job_type!r}" if job_type else ""
        raise GroupNotFound(f"no {which} group {key!r}{of_type} (list them with `jobcore {which} groups`)")

    @audited("requeue group")
    async def requeue_group(self, which: Literal["dead", "failed"], key: str, job_type: str | None = None) -> int:
        """Requeue every job of a failure group, as found now (jobs that join the
        group meanwhile stay); returns how many were requeued."""
        group = await self.failure_group(which, key, job_type)
        return await _in_chunks(self._requeue, which, group)

    @audited("purge group")
    async def purge_group(self, which: Literal["dead", "failed"], key: str, job_type: str | None = None) -> int:
        """Delete every job of a failure group for good, as found now."""
        group = await self.failure_group(which, key, job_type)
        return await _in_chunks(self._purge, which, group)

    async def history(self, job_type: str | None = None, minutes: int = 60) -> History:
        """Each type's (or ``job_type``'s) outcomes per minute over the last
        ``minutes`` minutes (1 to 1440, the current minute last), with run-time
        p50/p95 from the settles' histograms (jobcore/history.py). Workers write
        it as they settle, so it is there the moment anyone looks. Two round trips
        (Redis time, then one HMGET per type and partition of exactly those minutes),
        and one more to refuse a ``job_type`` never enqueued nor served (UnknownJobType)."""
        window(0, minutes)  # a bad count is refused before any I/O
        if job_type is not None:
            await self.check_known(job_type)  # not a window of zeros for a typo
        span, stored = await self._history_read(None if job_type is None else [job_type], minutes)
        return build_history(span, stored)

    async def why(self, job_type: str | None = None, *, job_id: str | None = None) -> Explanation:
        """Why ``job_type``'s jobs wait — or job ``job_id`` (whole, or its first
        8+ hex digits): in flight, or else where find places it — in plain sentences (jobcore/why.py):
        paused, no live worker, every slot busy and when one frees, held ahead in a
        prefetch buffer, a stale or lapsed lease and when its jobs come back. One
        dashboard read (up to IN_FLIGHT_ALL rows in flight) and the last hour's
        history, read together."""
        if not job_type and not job_id:
            raise ValueError("name a job type or a job id")
        dash, history = await asyncio.gather(self.dashboard(IN_FLIGHT_ALL), self.history(minutes=60))
        why = explain(job_type, dash.stats, dash.in_flight, dash.workers, history.types, job_id)
        if job_id and why.job_id is None:
            # Not in flight: find places it (pending by its whole id, dead, failed).
            try:
                ref = parse_job_id(job_id)
            except BadQuery:
                return why  # explain said what is wrong with it
            q = JobQuery(job_id=ref) if isinstance(ref, uuid.UUID) else JobQuery(id_prefix=ref)
            located = await self.find(q, limit=IN_FLIGHT_ALL)
            why = explain(job_type, dash.stats, dash.in_flight, dash.workers, history.types, job_id, located)
        t = dash.stats.types.get(why.job_type or "")
        if t is not None and (t.fair or t.accounts_waiting):
            more = fair_sentences(await self.fair_info(t.job_type, top=3), t.pending)
            why = replace(why, sentences=(*why.sentences, *more))
        return why

    @abc.abstractmethod
    async def _history_read(
        self, job_types: Sequence[str] | None, minutes: int
    ) -> tuple[list[int], dict[str, list[dict[int, list[int]]]]]:
        """The window's minute numbers (backend time) and, per type (every known
        type when None), each partition's stored minutes within it."""

    # ---- operator controls: pause, cancel, find ---------------------------

    @audited("pause")
    async def pause(self, job_type: str) -> None:
        """Stop workers taking ``job_type``'s jobs: from the next fetch of every
        worker on (the fetch checks the flag atomically, in the type's own slot:
        every partition carries it). Running jobs finish; new jobs keep arriving
        and wait; a lost worker's jobs of the type stay with it until resume.
        Kept in Redis, so it outlives worker restarts. Raises UnknownJobType for a
        type never enqueued or served, PermissionDenied for a read-only user."""
        await self.check_known(job_type)
        await self._set_paused(job_type, True)

    @audited("resume")
    async def resume(self, job_type: str) -> None:
        """Let workers take ``job_type``'s jobs again (idle ones within a second)."""
        await self.check_known(job_type)
        await self._set_paused(job_type, False)

    async def check_known(self, *job_types: str) -> None:
        """Raise UnknownJobType for the first of ``job_types`` never enqueued nor served."""
        known = set(await self.job_types())
        for job_type in job_types:
            if job_type not in known:
                raise UnknownJobType(f"unknown job type {job_type!r}: no job of it was ever enqueued or served")

    async def find(self, query: JobQuery | str | Sequence[str], limit: int = 100) -> list[FoundJob]:
        """Where the jobs matching ``query`` are (words as in jobcore.ops.find, e.g.
        ``"account:42 type:launch"`` or a job id), at most ``limit``.

        In flight, dead and failed are searched in full (in flight is bounded by
        the workers' slots, failed by its cap; dead, the newest ``FIND_BAD_MAX``
        per type). Pending is searched only for a whole job id, and only near the
        time the id carries (model.new_job_id puts it there): the type's stream
        entries from ``FIND_SKEW_MS`` before to ``FIND_SKEW_MS`` after it, scanned
        on the server 1,000 at a time for the id's bytes, so the cost is the
        number of jobs enqueued in that window (about 2 ms per 1,000), not the
        queue's length; a job put back on the queue since (requeued, handed back)
        sits at the end, outside the window, and is not found there (nor is a job
        whose producer's clock was off by more than the window). A whole id found
        nowhere comes back as one ``not_found`` record, which says so: it may still
        wait outside the window, or it finished and was not kept (no record of a
        processed job is kept), or it was never enqueued. Raises BadQuery for words
        it cannot read."""
        q = query if isinstance(query, JobQuery) else parse_query([query] if isinstance(query, str) else query)
        types = [q.job_type] if q.job_type else await self.job_types()
        found: list[FoundJob] = []
        for row in await self.in_flight(IN_FLIGHT_ALL):
            if in_flight_matches(q, row):
                found.append(found_in_flight(row))
        if q.job_id is not None and not found:
            found += await self._find_pending(q, types)
        lists = await asyncio.gather(
            *(self.dead(t, FIND_BAD_MAX) for t in types), *(self.failed(t, FIND_BAD_MAX) for t in types)
        )
        n = len(types)
        labelled: list[tuple[Literal["dead", "failed"], BadJob]] = [
            ("dead" if i < n else "failed", b) for i, rows in enumerate(lists) for b in rows
        ]
        for which, bad in labelled:
            hit = found_bad(which, bad)
            if hit is not None and q.matches(**hit.log_fields()):
                found.append(hit)
        if q.job_id is not None and not found:
            found.append(FoundJob("not_found", str(q.job_id), q.job_type))
        return found[:limit]

    async def _find_pending(self, q: JobQuery, types: Sequence[str]) -> list[FoundJob]:
        """The pending job with ``q.job_id``, looked for near the time in its id."""
        assert q.job_id is not None
        at_ms = uuid_time_ms(q.job_id)
        if at_ms is None:
            return []  # not a time-ordered id: its place in a stream cannot be known
        out = []
        for job_type, ref, raw in await self._pending_by_id(q.job_id, types, at_ms, FIND_SKEW_MS):
            try:
                env = decode_envelope(raw)
            except PayloadError:
                continue
            if env.id == q.job_id:
                out.append(found_pending(job_type, ref, env))
        return out

    @audited("cancel")
    async def cancel(self, job_id: str | uuid.UUID) -> CancelResult:
        """Ask the worker running job ``job_id`` (a whole id or its first 8+ hex
        characters) to cancel it, and say what happened. The worker takes the
        request within ``CANCEL_POLL_S``, cancels the handler (an async one at
        once; a sync one cannot be interrupted, so it is recorded when it returns)
        and records the job as failed with reason "cancelled by operator"; requeue
        it as any failed job. No other job is touched. The worker answers in the
        same script as the settle that files the job (cancelled, or finished first
        and how); this waits up to ``CANCEL_CONFIRM_S`` for that answer and says
        "not yet confirmed" (status ``requested``) without it. Raises BadQuery for
        an id it cannot read, AmbiguousJobId for a prefix of several jobs,
        PermissionDenied for a read-only user. CancelResult.message says it in words."""
        ref = job_id if isinstance(job_id, uuid.UUID) else parse_job_id(job_id)
        q = JobQuery(job_id=ref) if isinstance(ref, uuid.UUID) else JobQuery(id_prefix=ref)
        hits = await self.find(q, limit=IN_FLIGHT_ALL)
        ids = sorted({h.job_id for h in hits if h.job_id and h.where != "not_found"})
        if len(ids) > 1:
            shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
            raise AmbiguousJobId(f"job id prefix {job_id!s} matches {len(ids)} jobs ({shown}): give more of it")
        running = [h for h in hits if h.where == "in_flight"]
        if not running:
            if not hits:
                return CancelResult("not_found")
            where = hits[0].where
            if where in ("dead", "failed"):
                return CancelResult("finished", hits[0], outcome="dead" if where == "dead" else "failed")
            return CancelResult("pending" if where == "pending" else "not_found", hits[0])
        job = running[0]
        assert job.worker is not None and job.job_type is not None and job.ref is not None
        request = uuid.uuid4().hex
        if not await self._request_cancel(job.worker, job.job_type, job.ref, request):
            return CancelResult("worker_lost", job)
        answer = await self._wait_for_answer(job.job_type, job.ref, request)
        return await self._cancel_result(job, answer)

    async def _wait_for_answer(self, job_type: str, ref: str, request: str) -> str | None:
        """The worker's answer to cancel ``request``, or None after CANCEL_CONFIRM_S.
        Read every 50 ms: a cancel is rare, and a blocking read would hold a connection."""
        deadline = time.monotonic() + CANCEL_CONFIRM_S
        while True:
            answer = await self._cancel_answer(job_type, ref, request)
            if answer is not None or time.monotonic() >= deadline:
                return answer
            await asyncio.sleep(0.05)

    async def _cancel_result(self, job: FoundJob, answer: str | None) -> CancelResult:
        """The worker's answer as a CancelResult; where the job is now (read again)
        when it finished as failed or dead, or when the worker no longer held it."""
        if answer in ("cancelled", "ran_on"):
            return CancelResult("cancelled" if answer == "cancelled" else "ran_on", job, asked=True)
        if answer == "processed":
            return CancelResult("finished", job, outcome="processed", asked=True)
        if answer == "released":
            return CancelResult("handed_back", job, asked=True)
        if answer == "cancelling":
            return CancelResult("cancelling", job, sync=True, asked=True)
        if answer is None:  # only then does the worker's kind of handler say what to expect
            sync = any(w.id == job.worker and job.job_type in w.sync_types for w in await self.workers())
            return CancelResult("requested", job, sync, waited_s=CANCEL_CONFIRM_S, asked=True)
        assert job.job_id is not None
        now = await self.find(JobQuery(job_id=uuid.UUID(job.job_id), job_type=job.job_type))
        if answer == "failed" or answer == "dead":
            kept = next((h for h in now if h.where == answer), None)
            ended: FinishedAs = "dead" if answer == "dead" else "failed"
            found = replace(kept, worker=job.worker) if kept else job
            return CancelResult("finished", found, outcome=ended, asked=True)
        return CancelResult("moved", now[0] if now else None, asked=True)  # "moved": not this worker's any more

    @abc.abstractmethod
    async def _set_paused(self, job_type: str, paused: bool) -> None:
        """Set or clear the paused flag on every partition of ``job_type``."""

    @abc.abstractmethod
    async def _pending_by_id(
        self, job_id: uuid.UUID, job_types: Sequence[str], at_ms: int, skew_ms: int
    ) -> list[tuple[str, str, bytes]]:
        """(type, entry ref, payload) of pending (undelivered) entries of
        ``job_types`` whose payload holds ``job_id``'s bytes, among the entries
        added from ``at_ms - skew_ms`` to ``at_ms + skew_ms``."""

    @abc.abstractmethod
    async def _request_cancel(self, worker: str, job_type: str, ref: str, request: str) -> bool:
        """Ask ``worker`` to cancel its job ``ref`` of ``job_type`` (``request``:
        the id its answer is kept under), atomically with a check that its lease is
        live; False (nothing asked) when it is not."""

    @abc.abstractmethod
    async def _cancel_answer(self, job_type: str, ref: str, request: str) -> str | None:
        """The answer a worker recorded to cancel ``request`` of job ``ref``, if any yet."""


async def _in_chunks(
    act: Callable[[Literal["dead", "failed"], str, Sequence[str]], Awaitable[int]],
    which: Literal["dead", "failed"],
    group: FailureGroup,
) -> int:
    # A large group in several calls, so no one script holds Redis for long.
    return sum([await act(which, group.job_type, refs) for refs in chunked(group.refs)])
