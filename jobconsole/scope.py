"""The filter (``/``): jobcore's find words, read by jobcore's own parser and matched by
its own rule, applied to the rows a view lists. Pure: no Textual, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from jobcore import BadJob, BadQuery, InFlightJob, JobQuery, parse_query
from jobcore.ops.find import found_bad
from jobcore.ops.find import in_flight_matches as matches_in_flight


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
