"""Waiting jobs, as an operator browses them: a type's jobs not yet taken by a
worker, oldest first, a page at a time, optionally filtered by the find words
(``account:42 org:org-9``). Unfiltered, a page costs what it shows; a filter
reads at most ``PENDING_LOOK`` entries a call and says how far it looked."""

from __future__ import annotations

import abc
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from jobcore.errors import AmbiguousJobId, BadQuery, PayloadError
from jobcore.model import Envelope, decode_envelope
from jobcore.ops.audit import audited
from jobcore.ops.find import FoundJob, JobQuery, id_starts_with, parse_job_id, parse_query
from jobcore.records import args_and_reservation, utc

PENDING_LOOK = 10_000  # entries a filtered page reads at most before it stops and says where
PENDING_STEP = 1_000  # entries read per round trip while a filter looks


def found_pending(job_type: str, ref: str, env: Envelope) -> FoundJob:
    """A waiting job as find and pending show it."""
    args, reservation = args_and_reservation(env)
    return FoundJob(
        "pending",
        str(env.id),
        job_type,
        ref,
        env.account_id,
        env.identity.account_number,
        env.identity.org_id,
        reservation,
        at=utc(env.enqueued_at_ms),
        args=args,
    )


@dataclass(frozen=True, slots=True)
class PendingPage:
    """One page of a type's waiting jobs. ``after``: pass it back for the next
    page (None: nothing more waits past this page); ``looked_at``: the stream
    entries read for it (in flight ones and, with a filter, those not matching
    included). A payload that cannot be decoded is listed (unfiltered) with
    ``job_id`` None and why in ``reason``."""

    job_type: str
    jobs: list[FoundJob] = field(default_factory=list)
    after: str | None = None
    looked_at: int = 0


class WaitingJobs(abc.ABC):
    async def check_known(self, *job_types: str) -> None:
        """Raise UnknownJobType for a type never enqueued or served (Operations has it)."""
        raise NotImplementedError

    @abc.abstractmethod
    async def _waiting_window(
        self, job_type: str, after: str | None, count: int
    ) -> tuple[list[tuple[str, bytes | None]], str | None, int]:
        """Up to ``count`` entries of each partition past ``after`` (a reference,
        ``ENTRY`` or ``ENTRY@p``): the waiting ones, oldest first, as (reference,
        payload); where to go on (None: nothing more); how many entries were read."""

    @abc.abstractmethod
    async def _delete_waiting(self, job_type: str, refs: Sequence[str]) -> int:
        """Delete these waiting jobs (references as ``pending`` gives them), each
        only if no worker holds it now (delete_waiting.lua); how many were."""

    @audited("delete pending")
    async def delete_pending(
        self,
        job_type: str,
        ids: Sequence[str | uuid.UUID] | None = None,
        query: JobQuery | str | Sequence[str] | None = None,
        all: bool = False,
    ) -> int:
        """Delete waiting jobs of ``job_type``: those with these job ids (whole, or
        their first 8+ hex characters as find takes them), or every one matching
        ``query``, or ``all`` of them; exactly one of the three. A job a worker
        takes meanwhile is run, not deleted (each job is checked and deleted in
        one step on the server). Returns how many were deleted. Raises
        UnknownJobType, BadQuery, AmbiguousJobId (a prefix of two waiting jobs)."""
        if sum((ids is not None, query is not None, all)) != 1:
            raise BadQuery("give exactly one of: job ids, a filter, or all")
        await self.check_known(job_type)
        if ids is not None:
            return await self._delete_waiting(job_type, await self._waiting_refs(job_type, ids))
        deleted = 0
        async for page in self._pages(job_type, _read_query(job_type, query)):
            deleted += await self._delete_waiting(job_type, [j.ref for j in page.jobs if j.ref])
        return deleted

    async def _waiting_refs(self, job_type: str, ids: Sequence[str | uuid.UUID]) -> list[str]:
        """The references of the waiting jobs with these ids (or prefixes), in one
        pass over the type's waiting jobs; an id none has is left out."""
        wanted = [parse_job_id(str(i)) for i in ids]
        whole = {str(w) for w in wanted if isinstance(w, uuid.UUID)}
        prefixes = {w: [] for w in wanted if isinstance(w, str)}  # type: dict[str, list[str]]
        refs: list[str] = []
        if not whole and not prefixes:
            return refs
        async for page in self._pages(job_type, None):
            for j in page.jobs:
                if j.job_id is None or not j.ref:
                    continue
                if j.job_id in whole:
                    whole.discard(j.job_id)
                    refs.append(j.ref)
                for prefix, hits in prefixes.items():
                    if id_starts_with(j.job_id, prefix):
                        hits.append(j.ref)
            if not whole and not prefixes:
                break
        for prefix, hits in prefixes.items():
            if len(hits) > 1:
                raise AmbiguousJobId(f"job id prefix {prefix} matches {len(hits)} waiting jobs of {job_type!r}")
            refs += hits
        return refs

    async def pending(
        self,
        job_type: str,
        limit: int = 50,
        after: str | None = None,
        query: JobQuery | str | Sequence[str] | None = None,
    ) -> PendingPage:
        """The waiting jobs of ``job_type``, oldest first: at most ``limit``, from
        past ``after`` (the ``after`` of the page before, or a row's ``ref``),
        matching ``query`` (find words: account, org, acct, res, a job id or its
        prefix) when given. Raises UnknownJobType, BadQuery."""
        if limit < 1:
            raise BadQuery(f"limit must be at least 1, got {limit}")
        q = _read_query(job_type, query)
        await self.check_known(job_type)
        return await self._page(job_type, limit, after, q)

    async def _pages(self, job_type: str, q: JobQuery | None) -> AsyncIterator[PendingPage]:
        """Every page of waiting jobs (PENDING_STEP each), oldest first, to the end."""
        after = None
        while True:
            page = await self._page(job_type, PENDING_STEP, after, q)
            yield page
            if page.after is None:
                return
            after = page.after

    async def _page(self, job_type: str, limit: int, after: str | None, q: JobQuery | None) -> PendingPage:
        """One page, the query read and the type checked already (delete_pending pages many)."""
        jobs: list[FoundJob] = []
        looked, cursor = 0, after
        while True:
            step = PENDING_STEP if q is not None else limit - len(jobs)
            rows, more, read = await self._waiting_window(job_type, cursor, step)
            looked += read
            for i, (ref, raw) in enumerate(rows):
                job = _job(job_type, ref, raw)
                if q is None or (job.job_id is not None and q.matches(**job.log_fields())):
                    jobs.append(job)
                    if len(jobs) == limit:
                        last = more is None and i == len(rows) - 1  # nothing past this row
                        return PendingPage(job_type, jobs, None if last else ref, looked)
            if more is None:
                return PendingPage(job_type, jobs, None, looked)
            cursor = more
            if q is not None and looked >= PENDING_LOOK:
                return PendingPage(job_type, jobs, cursor, looked)


def _read_query(job_type: str, query: JobQuery | str | Sequence[str] | None) -> JobQuery | None:
    """A filter as given (find words, or a JobQuery); BadQuery for one naming another type."""
    if query is None:
        return None
    q = query if isinstance(query, JobQuery) else parse_query([query] if isinstance(query, str) else query)
    if q.job_type not in (None, job_type):
        raise BadQuery(f"type:{q.job_type} does not match the type listed ({job_type})")
    return q


def _job(job_type: str, ref: str, raw: bytes | None) -> FoundJob:
    try:
        return found_pending(job_type, ref, decode_envelope(raw or b""))
    except PayloadError as exc:
        return FoundJob("pending", None, job_type, ref, reason=f"undecodable: {exc}")
