"""In-flight rows for a console that refreshes every second: what each row shows
of its stream entry is decoded once and kept while the entry stays in flight
(it cannot change meanwhile: a release re-adds the job under a new id), so a
repeat refresh reads only who holds each job, for how long and how often.

Pure bookkeeping: the Redis backend reads the pending-entry rows and the
entries; this class chooses the rows, says which entries it lacks and builds
the records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter, itemgetter
from typing import Any

from jobcore.keys import entry_order, split_lane
from jobcore.records import InFlightJob, in_flight_job
from jobcore.redis.replies import text

_NEVER = datetime.fromtimestamp(0, tz=UTC)

# A pending-entry row as XPENDING gives it: entry id, consumer, idle ms, deliveries.
Row = Any


@dataclass(slots=True)
class _Seen:
    entry_id: str  # the job's reference (``id`` or ``id@p``)
    base: int  # deliveries before the job was requeued (the entry's ``a`` field)
    shown: tuple[Any, ...]  # InFlightJob's fields from job_id on
    started_ms: int = -1  # the last started_at, kept: most refreshes compute the same
    started_at: datetime = _NEVER


def base_attempts(value: bytes | None) -> int:
    """Deliveries an entry had before it was requeued (its ``a`` field); whatever
    else is stored there (poison written straight into Redis) counts as none,
    as claim.lua's ``tonumber(...) or 0`` does."""
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


class InFlightCache:
    def __init__(self) -> None:
        self._seen: dict[str, dict[bytes, _Seen]] = {}  # by lane, then entry id

    def __len__(self) -> int:
        return sum(len(v) for v in self._seen.values())

    @staticmethod
    def select(
        lanes: list[str], per_lane: list[list[Row]], limit: int
    ) -> tuple[dict[str, list[Row]], dict[str, list[Row]]]:
        """The rows listed per lane, and those to show: the ``limit`` longest-running."""
        listed = {t: rows for t, rows in zip(lanes, per_lane, strict=True) if isinstance(rows, list) and rows}
        if sum(len(rows) for rows in listed.values()) <= limit:
            return listed, listed
        # A stable sort keeps lane, then entry order on ties.
        ranked = sorted(((r[2], t, r) for t, rows in listed.items() for r in rows), key=itemgetter(0), reverse=True)
        shown: dict[str, list[Row]] = {}
        for _, t, r in ranked[:limit]:
            shown.setdefault(t, []).append(r)
        return listed, shown

    def missing(self, shown: dict[str, list[Row]]) -> dict[str, list[bytes]]:
        """Entry ids, by lane, that no refresh has decoded yet."""
        out: dict[str, list[bytes]] = {}
        for t, rows in shown.items():
            known = self._seen.get(t, {})
            new = [r[0] for r in rows if r[0] not in known]
            if new:
                out[t] = new
        return out

    def store(self, lane: str, ids: list[bytes], entries: list[Any]) -> None:
        """Decode entries read for ``ids`` (``[raw, base]`` each, or None when no
        longer in flight), as a row shows them."""
        of_lane = self._seen.setdefault(lane, {})
        job_type, suffix = split_lane(lane)
        for entry_id, entry in zip(ids, entries, strict=True):
            if entry is None:
                continue
            raw, base = entry
            p = in_flight_job(job_type, text(entry_id) + suffix, "", 0, 0, raw or None, 0)
            shown = (p.job_id, p.account_id, p.account_number, p.org_id, p.reservation_id, p.args, p.error)
            of_lane[entry_id] = _Seen(p.entry_id, base_attempts(base), shown)

    def rows(self, shown: dict[str, list[Row]], now_ms: int) -> list[InFlightJob]:
        """The records of ``shown``, longest-running first (entries settled while
        they were read are left out)."""
        seen = self._seen
        names: dict[bytes, str] = {}
        dates: dict[int, datetime] = {}
        out: list[InFlightJob] = []
        append = out.append
        for t, rows in shown.items():
            known = seen.get(t, {})
            job_type = split_lane(t)[0]
            for entry_id, consumer, idle, count in rows:
                s = known.get(entry_id)
                if s is None:
                    continue
                started = now_ms - idle
                if s.started_ms != started:
                    at = dates.get(started)
                    if at is None:
                        at = dates[started] = datetime.fromtimestamp(started / 1000, tz=UTC)
                    s.started_ms, s.started_at = started, at
                worker = names.get(consumer)
                if worker is None:
                    worker = names[consumer] = text(consumer)
                append(InFlightJob(job_type, s.entry_id, worker, s.started_at, idle / 1000, count + s.base, *s.shown))
        out.sort(key=attrgetter("running_for"), reverse=True)  # stable, as above
        return out

    def forget(self, listed: dict[str, list[Row]], limit: int, shown: int) -> None:
        """Drop entries no longer in flight. A lane's listing is its oldest
        ``limit`` in flight: when it is full, entries past its last are unknown."""
        seen = self._seen
        if len(self) <= shown:
            return
        for t in list(seen):
            rows = listed.get(t, [])
            keep = {r[0] for r in rows}
            last = entry_order(rows[-1][0]) if len(rows) >= limit else None
            left = {i: s for i, s in seen[t].items() if i in keep or (last is not None and entry_order(i) > last)}
            if left:
                seen[t] = left
            else:
                del seen[t]
