"""Why is it waiting? Plain sentences about a type (or one job in flight), composed
from what a dashboard read and the history already hold.

:func:`explain` is pure: ``Queue.why`` reads stats, every in-flight row, the
workers and the last hour's history, and hands them here. Each sentence starts
with the fact an operator would search for ("no live worker serves launch",
"launch is paused", "all 10 slots busy on 2 workers", ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from jobcore.display import duration
from jobcore.ops.find import MIN_PREFIX, id_digits, id_starts_with

if TYPE_CHECKING:  # annotations only: the backend composes explain() into Queue.why
    from jobcore.ops.find import FoundJob
    from jobcore.ops.history import TypeHistory
    from jobcore.records import InFlightJob, QueueStats, WorkerInfo


@dataclass(frozen=True, slots=True)
class Explanation:
    """What :func:`explain` found: sentences, most telling first."""

    job_type: str
    sentences: tuple[str, ...]
    job_id: str | None = None  # the job asked about, whole, when it was found in flight
    taken_at: datetime | None = None

    def __str__(self) -> str:
        return "\n".join(self.sentences)

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_type": self.job_type,
            "job_id": self.job_id,
            "taken_at": self.taken_at.isoformat() if self.taken_at else None,
            "sentences": list(self.sentences),
        }


def _at(t: datetime) -> str:
    return f"{t:%H:%M:%S} UTC"


def _slot_estimate(rows: Sequence[InFlightJob], history: Mapping[str, TypeHistory]) -> str:
    """When a slot should free: per running job, its type's typical run time over
    the last hour (p50, or p95 once past p50) less what it has run; claiming only
    what the jobs with such run times support."""
    waits: list[float] = []
    overdue = unknown = 0
    for r in rows:
        h = history.get(r.job_type)
        p50 = h.p50_ms if h else None
        p95 = h.p95_ms if h else None
        if p50 is None or p95 is None:
            unknown += 1
            continue
        ran_ms = r.running_for * 1000
        left = (p50 if ran_ms < p50 else p95) - ran_ms
        if left > 0:
            waits.append(left / 1000)
        else:
            overdue += 1
    n = len(rows)
    if unknown == n:
        return "no run times were recorded in the last hour to estimate when a slot frees"
    if waits:
        of = (
            "the running jobs"
            if not unknown
            else f"{n - unknown} of the {n} running jobs; the other {unknown}: none for their type"
        )
        return f"a slot should free in about {duration(min(waits))} (from the last hour's run times of {of})"
    if not unknown:
        return (
            "the running jobs are all past their type's usual run time (p95 of the last hour): "
            "a slot frees when one of them ends or times out"
        )
    return (
        f"{overdue} of the {n} running jobs are past their type's usual run time (p95 of the last hour) and the "
        f"other {unknown} have no run times in the last hour to go by: a slot frees when one of them ends or times out"
    )


def _running(rows: Sequence[InFlightJob], concurrency: int) -> list[InFlightJob]:
    """The jobs a worker holding ``rows`` runs now: it takes jobs ahead only once
    its slots are full, so up to ``concurrency`` of them, the longest held first."""
    return sorted(rows, key=lambda r: r.running_for, reverse=True)[: max(0, concurrency)]


def explain(
    job_type: str | None,
    stats: QueueStats,
    in_flight: Sequence[InFlightJob],
    workers: Sequence[WorkerInfo],
    history: Mapping[str, TypeHistory],
    job_id: str | None = None,
    located: Sequence[FoundJob] | None = None,
) -> Explanation:
    """Why ``job_type``'s jobs (or job ``job_id``, whole or by its first 8+ hex
    digits) wait, from one consistent read: ``in_flight`` should hold every
    in-flight row (all types: a worker's slots are shared). ``located``: what
    find says of ``job_id`` when it is not in flight (pending: its type's
    reasons follow; dead or failed: it waits for nothing)."""
    now = stats.taken_at
    out: list[str] = []
    whole: str | None = None
    t = stats.types.get(job_type) if job_type else None
    found: InFlightJob | None = None
    if job_id:
        want = id_digits(job_id)
        matches = [r for r in in_flight if r.job_id and id_starts_with(r.job_id, want)]
        if len(want) < MIN_PREFIX:
            out.append(f"job id {job_id} is too short: give at least {MIN_PREFIX} hex digits")
        elif len(matches) > 1:
            out.append(f"job id {job_id} matches {len(matches)} jobs in flight: give more of it")
        elif matches:
            found = matches[0]
            job_type = found.job_type
            t = stats.types.get(job_type)
        elif located is not None and (placed := _placed(job_id, located)) is not None:
            said, hit = placed
            out.append(said)
            if hit is not None and hit.where == "pending" and hit.job_type:
                job_type, whole = hit.job_type, hit.job_id
                t = stats.types.get(job_type)
            elif hit is not None or not job_type:  # dead, failed, or nothing more to say
                return Explanation((hit.job_type or "") if hit else "", tuple(out), hit.job_id if hit else None, now)
        elif job_type:
            out.append(f"job {job_id} is not in flight: if it is pending, it waits for the reasons below")
        elif located is not None:
            out.append(
                f"job {job_id} is not in flight, dead or failed (a pending job is found by its whole id only): "
                "give its type to see why that type's jobs wait"
            )
        else:
            out.append(f"job {job_id} is not in flight: give its type to see why that type's jobs wait")
    if not job_type:
        return Explanation("", tuple(out), None, now)
    name = job_type
    if t is None:
        return Explanation(job_type, (*out, f"no job of type {name} is known (never enqueued nor served)"), None, now)

    serving = [w for w in workers if job_type in w.types and w.state != "lost"]
    # A worker's busy count is as of its last heartbeat; jobs it took since may be
    # running already, so only the ones it held then are weighed against it.
    taking = [w for w in serving if not w.stopping]
    by_worker: dict[str, list[InFlightJob]] = {}
    for r in in_flight:
        by_worker.setdefault(r.worker, []).append(r)
    known = {w.id: w for w in workers}

    if found is not None:
        out.append(
            f"job {found.job_id} of {name} is in flight on worker {found.worker} "
            f"(attempt {found.attempt}, taken {duration(found.running_for)} ago)"
        )
        w = known.get(found.worker)
        held_rows = sorted(
            _seen_by_record(by_worker.get(found.worker, []), w), key=lambda r: r.running_for, reverse=True
        )
        if w is not None and w.state == "alive" and len(held_rows) > w.busy and found in held_rows:
            rank = next(i for i, r in enumerate(held_rows) if r.entry_id == found.entry_id)
            if rank >= w.busy:
                out.append(
                    f"it is probably held ahead in worker {w.id}'s prefetch buffer: the worker holds "
                    f"{len(held_rows)} jobs and runs {w.busy} of its {w.concurrency} slots"
                )
        out += _lease_sentences(name, [found], known, taking, now)
        return Explanation(job_type, tuple(out), found.job_id, now)

    if t.paused:
        out.append(f"{name} is paused: its jobs wait until it is resumed (jobcore resume {name})")
    mine = [r for r in in_flight if r.job_type == job_type]
    if t.pending:
        age = f", the oldest for {duration(t.oldest_pending_age)}" if t.oldest_pending_age is not None else ""
        out.append(f"{t.pending} job(s) of {name} wait{age}")
    elif mine or t.in_flight:
        # Something true even when nothing waits: what runs, and for how long.
        oldest = f", the oldest taken {duration(max(r.running_for for r in mine))} ago" if mine else ""
        out.append(f"nothing of {name} waits; {len(mine) or t.in_flight} in flight{oldest}")
    else:
        out.append(f"nothing of {name} is waiting or running")
    if not serving:
        out.append(f"no live worker serves {name}: its jobs wait until one starts (jobcore worker ... --types {name})")
    elif not taking:
        out.append(f"every worker serving {name} is stopping: none takes new jobs")
    else:
        alive = [w for w in taking if w.state == "alive"]
        stale = [w for w in taking if w.state == "stale"]
        if not alive:
            ages = ", ".join(f"{w.id} {duration((now - w.heartbeat_at).total_seconds())}" for w in stale)
            out.append(
                f"the worker(s) serving {name} are stale (last heartbeat: {ages} ago): frozen or cut off from Redis"
            )
        slots = sum(w.concurrency for w in alive)
        # Busy slots from the jobs each worker holds now (this read), not from its
        # record, which is up to a third of a lease old.
        running = [r for w in alive for r in _running(by_worker.get(w.id, []), w.concurrency)]
        busy = len(running)
        if alive and busy >= slots:
            out.append(f"all {slots} slots busy on {len(alive)} worker(s): {_slot_estimate(running, history)}")
        elif alive and t.pending:
            out.append(
                f"{slots - busy} of {slots} slots are free on {len(alive)} worker(s) serving {name}: "
                "its jobs should start within a fetch"
            )
    for w in serving:
        rows = _seen_by_record(by_worker.get(w.id, []), w)
        held = len(rows) - w.busy
        if w.state == "alive" and held > 0 and any(r.job_type == job_type for r in rows):
            out.append(
                f"worker {w.id} holds {held} job(s) ahead in its prefetch buffer "
                f"(it runs {w.busy} of {w.concurrency} slots); they start there, not on an idle worker"
            )
    out += _lease_sentences(name, [r for r in in_flight if r.job_type == job_type], known, taking, now)
    return Explanation(job_type, tuple(out), whole, now)


def _placed(job_id: str, located: Sequence[FoundJob]) -> tuple[str, FoundJob | None] | None:
    """What find's records say of a job not in flight, and the one record it is
    (None when several jobs fit); None when find placed it nowhere."""
    hits = [h for h in located if h.where != "not_found"]
    ids = {h.job_id for h in hits}
    if len(ids) > 1:
        return f"job id {job_id} matches {len(ids)} jobs pending, dead or failed: give more of it", None
    if not hits:
        gone = [h for h in located if h.where == "not_found"]
        return (f"job {job_id}: {gone[0].describe()}", None) if gone else None
    h = hits[0]
    if h.where == "pending":
        return f"job {h.job_id} of {h.job_type} is pending: it waits for the reasons below", h
    if h.where in ("dead", "failed"):
        lines = (h.reason or "").strip().splitlines()
        reason = f" (reason: {lines[-1][:200]})" if lines else ""
        return (
            f"job {h.job_id} of {h.job_type} is {h.where} (id {h.ref}), not waiting: "
            f"`jobcore {h.where} requeue {h.job_type} {h.ref}` puts it back on the queue{reason}"
        ), h
    return f"job {h.job_id} of {h.job_type} is {h.describe()} (taken since the rest was read)", h


def _lease_sentences(
    name: str,
    rows: Sequence[InFlightJob],
    known: Mapping[str, WorkerInfo],
    taking: Sequence[WorkerInfo],
    now: datetime,
) -> list[str]:
    """For each worker holding ``rows`` whose lease is stale or lapsed: when its
    jobs are re-delivered (the lease's end, plus up to a third of a lease for a
    live worker's next look)."""
    out: list[str] = []
    held: dict[str, int] = {}
    for r in rows:
        held[r.worker] = held.get(r.worker, 0) + 1
    rescuers = [w for w in taking if w.state == "alive"]
    for wid, n in sorted(held.items()):
        w = known.get(wid)
        if w is None:
            out.append(f"{n} job(s) of {name} are held by {wid}, a worker with no record: taken back if none returns")
            continue
        if w.state == "alive":
            continue
        lapses = w.heartbeat_at + timedelta(seconds=w.lease)
        look = max((r.lease / 3 for r in rescuers), default=w.lease / 3)
        if not rescuers:
            after = f"but no live worker serves {name} to take them over"
        elif w.state == "stale":
            after = f"if it does not come back they are re-delivered at about {_at(lapses + timedelta(seconds=look))}"
        else:
            after = f"they are re-delivered at about {_at(max(now, lapses) + timedelta(seconds=look))}"
        state = "a stale lease" if w.state == "stale" else f"a lapsed lease (since {_at(lapses)})"
        out.append(f"worker {wid} holding {n} job(s) of {name} has {state}: {after}")
    return out


def _seen_by_record(rows: list[InFlightJob], w: WorkerInfo | None) -> list[InFlightJob]:
    """The rows ``w`` held when it last published its record (and its busy count)."""
    if w is None:
        return rows
    return [r for r in rows if r.started_at <= w.heartbeat_at]
