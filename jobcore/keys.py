"""Every Redis key jobcore uses is built here and nowhere else.

A type's keys share the hash tag ``{type}`` so a Redis Cluster keeps them in
one slot and the per-type Lua scripts stay single-slot; the namespace-wide keys
share the tag ``{namespace}``, so the scripts that use two of them (heartbeat,
forget, extend) stay single-slot too.
"""

from __future__ import annotations

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

    def of_type(self, job_type: str) -> TypeKeys:
        tag = f"{self.namespace}:{{{job_type}}}"
        return TypeKeys(
            stream=f"{tag}:jobs",
            stats=f"{tag}:stats",
            dead=f"{tag}:dead",
            failed=f"{tag}:failed",
        )


def entry_order(entry_id: bytes | str) -> tuple[int, int]:
    """A stream entry id (``ms-seq``) as what it sorts by; an id that is not one
    sorts first."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        return 0, 0
