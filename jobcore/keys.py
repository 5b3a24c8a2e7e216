"""Every Redis key jobcore uses is built here and nowhere else.

A type's keys share the hash tag ``{type}`` so a Redis Cluster keeps them in
one slot and the per-type Lua scripts stay single-slot.
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
    def types(self) -> str:
        """Set of every job type ever enqueued or served (discovery without SCAN)."""
        return f"{self.namespace}:types"

    @property
    def schemas(self) -> str:
        """Hash: job type -> JSON Schema of its args, published by workers."""
        return f"{self.namespace}:schemas"

    @property
    def workers(self) -> str:
        """Hash: worker id -> JSON info (host, pid, types, heartbeat...)."""
        return f"{self.namespace}:workers"

    @property
    def leases(self) -> str:
        """Sorted set: worker id -> lease deadline (Redis server ms). Past it, the
        worker is lost and its in-flight jobs may be taken by live workers."""
        return f"{self.namespace}:leases"

    def of_type(self, job_type: str) -> TypeKeys:
        tag = f"{self.namespace}:{{{job_type}}}"
        return TypeKeys(
            stream=f"{tag}:jobs",
            stats=f"{tag}:stats",
            dead=f"{tag}:dead",
            failed=f"{tag}:failed",
        )
