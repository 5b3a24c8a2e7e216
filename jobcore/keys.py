"""Every Redis key jobcore uses is built here and nowhere else.

A type's keys share the hash tag ``{type}`` so a Redis Cluster keeps them in
one slot and the per-type Lua scripts stay single-slot; the namespace-wide keys
share the tag ``{namespace}``, so the scripts that use two of them (heartbeat,
forget, extend) stay single-slot too.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass

DEFAULT_NAMESPACE = "jobcore"
GROUP = "workers"  # the one consumer group on every type stream


@dataclass(frozen=True, slots=True)
class TypeKeys:
    stream: str  # pending + in-flight jobs (consumer group PEL = in flight)
    stats: str  # hash: processed, failed, dead counters
    dead: str  # stream of dead-lettered jobs with reason and raw bytes
    failed: str  # capped stream of jobs whose handler raised


@dataclass(frozen=True, slots=True)
class Keys:
    namespace: str = DEFAULT_NAMESPACE

    @property
    def _global(self) -> str:
        return f"{self.namespace}:{{{self.namespace}}}"

    @property
    def types(self) -> str:
        """Set of every job type ever enqueued or served (discovery without SCAN)."""
        return f"{self._global}:types"

    @property
    def schemas(self) -> str:
        """Hash: job type -> JSON Schema of its args, published by workers."""
        return f"{self._global}:schemas"

    @property
    def workers(self) -> str:
        """Hash: worker id -> JSON info (host, pid, types, heartbeat...)."""
        return f"{self._global}:workers"

    @property
    def leases(self) -> str:
        """Sorted set: worker id -> lease deadline (Redis server ms). Past it, the
        worker is lost and its in-flight jobs may be taken by live workers."""
        return f"{self._global}:leases"

    @property
    def partitions(self) -> str:
        """Hash: job type -> its number of partitions (absent: 1). It only grows."""
        return f"{self._global}:partitions"

    def of_type(self, job_type: str) -> TypeKeys:
        tag = f"{self.namespace}:{{{job_type}}}"
        return TypeKeys(
            stream=f"{tag}:jobs",
            stats=f"{tag}:stats",
            dead=f"{tag}:dead",
            failed=f"{tag}:failed",
        )


# ---- partitions ------------------------------------------------------------
# Partition p >= 1 of a type is its own stream with its own hash tag, "lane"
# ``type{p`` (keys ``ns:{type{p}:jobs``...): type names cannot hold a brace, so a
# lane never clashes with a type. Partition 0 is the type's own keys, so a type
# that grows from 1 partition keeps the jobs it has. Outside the backend a job
# in partition p >= 1 is known by the reference ``entry_id@p``.

LANE_MARK = "{"
REF_MARK = "@"


def partition_of(account_id: int, partitions: int) -> int:
    """The partition of an account's jobs: CRC-32 (IEEE, as zlib) of the account
    id's decimal digits, modulo the count; the same in every process and language."""
    if partitions <= 1:
        return 0
    return zlib.crc32(str(account_id).encode()) % partitions


def lane(job_type: str, partition: int) -> str:
    return f"{job_type}{LANE_MARK}{partition}" if partition else job_type


def lanes(job_type: str, partitions: int) -> list[str]:
    return [lane(job_type, p) for p in range(max(1, partitions))]


@functools.lru_cache(maxsize=4096)
def split_lane(name: str) -> tuple[str, str]:
    """A lane as (job type, the suffix its entries' references carry: "" or "@p")."""
    job_type, mark, p = name.partition(LANE_MARK)
    return (job_type, f"{REF_MARK}{p}") if mark else (name, "")


def split_ref(ref: str) -> tuple[str, int]:
    """A job's entry reference as (stream entry id, partition)."""
    entry_id, mark, p = ref.partition(REF_MARK)
    if not mark:
        return ref, 0
    try:
        return entry_id, int(p)
    except ValueError:
        return ref, 0  # not a reference of ours: Redis will say the id is invalid


def entry_order(entry_id: bytes | str) -> tuple[int, int]:
    """A stream entry id (``ms-seq``, or a reference ``ms-seq@p``) as what it
    sorts by; an id that is not one sorts first."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition(REF_MARK)[0].partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        return 0, 0
