"""Partition routing: each type's lanes (its partitions, ``keys.lane``) as a
process last read them, until when it trusts them, and the counts it declared
but has not published yet. One owner of that state; the queue and its backend
read and change it only through this interface."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence

from jobcore.keys import lane, partition_of
from jobcore.limits import PARTITIONS_TTL_S


class Routes:
    def __init__(self) -> None:
        # Public for the hot paths (one dict look-up an enqueue or fetch); change them only by the methods.
        self.by_type: dict[str, tuple[str, ...]] = {}  # each type's lanes, partition 0 first
        self.until = 0.0  # monotonic time when they are read again
        self.flat: dict[tuple[str, ...], list[str]] = {}  # served types -> their lanes, built once
        self._declared: dict[str, int] = {}  # to publish on the next read of the counts
        # Lanes a raise added that workers do not fetch from yet: the old lanes
        # still hold jobs added before its fence (FIFO per account; lanes.lua).
        self.closed: frozenset[str] = frozenset()

    def lanes(self, job_type: str) -> tuple[str, ...]:
        """``job_type``'s lanes as last read (a type not read yet: itself)."""
        return self.by_type.get(job_type, (job_type,))

    def account_lane(self, job_type: str, account_id: int) -> str:
        """The lane an account's jobs of ``job_type`` go to, by the lanes last read
        (the hot enqueue paths inline the same rule)."""
        names = self.lanes(job_type)
        return names[partition_of(account_id, len(names))] if len(names) > 1 else job_type

    def lane(self, job_type: str, partition: int) -> str:
        """Partition ``partition``'s lane, by the names last read."""
        names = self.by_type.get(job_type, ())
        return names[partition] if partition < len(names) else lane(job_type, partition)

    def lanes_of(self, types: Sequence[str]) -> list[str]:
        """The lanes of ``types``, in order (kept until the routes change)."""
        key = tuple(types)
        found = self.flat.get(key)
        if found is None:
            found = self.flat[key] = [name for t in types for name in self.lanes(t)]
        return found

    def stale(self, types: Iterable[str]) -> bool:
        """Whether the lanes of ``types`` must be read (again) before use."""
        return time.monotonic() >= self.until or any(t not in self.by_type for t in types)

    def expire(self) -> None:
        """Read the counts again at the next use."""
        self.until = 0.0

    def forget(self) -> None:
        """Drop what was read (a batch that reads the counts again)."""
        self.by_type.clear()

    def declare(self, job_type: str, partitions: int) -> None:
        self._declared[job_type] = partitions
        self.until = 0.0  # publish it with the next enqueue

    def to_learn(self, job_types: Iterable[str]) -> tuple[list[str], dict[str, int]]:
        """The types whose lanes to read (``job_types`` and every one known or
        declared) and the declared counts to publish, taken: give them back with
        ``undeclared`` when publishing fails."""
        types = sorted({*job_types, *self.by_type, *self._declared})
        declared, self._declared = self._declared, {}
        return types, declared

    def undeclared(self, declared: Mapping[str, int]) -> None:
        self._declared = {**declared, **self._declared}

    def learned(self, found: Mapping[str, tuple[str, ...]]) -> None:
        """The lanes just read: trusted for PARTITIONS_TTL_S."""
        self.merge(found)
        self.until = time.monotonic() + PARTITIONS_TTL_S

    def close(self, closed: Mapping[str, Sequence[str]]) -> None:
        """The lanes not fetched from for now, by type, as just read."""
        self.closed = frozenset(n for names in closed.values() for n in names)

    def open_lanes(self, names: list[str]) -> list[str]:
        """``names`` less the closed lanes."""
        return [n for n in names if n not in self.closed] if self.closed else names

    def merge(self, found: Mapping[str, tuple[str, ...]]) -> None:
        """Lanes seen in passing (a dashboard read): used, the trust time unchanged.
        A type keeps lanes it knew that a read no longer lists (Redis lost them):
        jobs may be there, and the next enqueue records them again."""
        for job_type, names in found.items():
            known = self.by_type.get(job_type, ())
            self.by_type[job_type] = known if known[: len(names)] == names else names
        self.flat.clear()
