"""The filter (``/``): jobcore's find words, read by jobcore's own parser and matched by
its own rule, applied to the rows a view lists. Pure: no Textual, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from jobcore import BadJob, BadQuery, FailureGroup, InFlightJob, JobQuery, found_bad, group_failures, parse_query
from jobcore import in_flight_matches as matches_in_flight


@dataclass(frozen=True, slots=True)
class Scope:
    """What the operator typed, the query it reads as, and why it does not read (if so).
    A word that does not read keeps the last good query in force."""

    text: str = ""
    query: JobQuery | None = None
    error: str = ""

    def with_text(self, text: str) -> Scope:
        if not text.strip():
            return Scope(text)
        try:
            return Scope(text, parse_query([text]))
        except BadQuery as exc:
            return Scope(text, self.query, str(exc))

    @property
    def label(self) -> str:
        """The query in force, as words (for a title)."""
        return str(self.query) if self.query else ""


def in_flight_matches(query: JobQuery | None, job: InFlightJob) -> bool:
    return query is None or matches_in_flight(query, job)


def bad_matches(query: JobQuery | None, which: Literal["dead", "failed"], job: BadJob) -> bool:
    """An undecodable entry has no fields to match: any filter leaves it out (as find does)."""
    if query is None:
        return True
    found = found_bad(which, job)
    return found is not None and query.matches(**found.log_fields())


@dataclass(frozen=True, slots=True)
class Triage:
    """A dead or failed list as the filter leaves it, grouped by cause (jobcore's rule)."""

    matching: tuple[BadJob, ...] = ()  # newest first
    groups: dict[str, FailureGroup] = field(default_factory=dict)  # the largest first
    members: dict[str, tuple[BadJob, ...]] = field(default_factory=dict)  # each group's jobs, newest first


def triage_bad(which: Literal["dead", "failed"], jobs: Sequence[BadJob], query: JobQuery | None) -> Triage:
    """Filter and group: CPU work that grows with the list, so the console runs it off the UI."""
    matching = tuple(j for j in jobs if bad_matches(query, which, j))
    groups = group_failures(which, matching)
    members: dict[str, list[BadJob]] = {g.key: [] for g in groups}
    refs = {(g.job_type, ref): g.key for g in groups for ref in g.refs}
    for j in matching:
        key = refs.get((j.job_type, j.id))
        if key is not None:
            members[key].append(j)
    return Triage(matching, {g.key: g for g in groups}, {k: tuple(v) for k, v in members.items()})
