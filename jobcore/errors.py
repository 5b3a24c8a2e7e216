"""Exceptions raised by jobcore. Every message is one clear line for a person."""

from __future__ import annotations

import uuid
from collections.abc import Sequence


class JobcoreError(Exception):
    """Base of every jobcore error. ``code`` is the Redis error code behind it
    (``NOPERM``, ``WRONGPASS``, ``OOM``, ...), None when Redis gave none."""

    code: str | None = None


class RedisRefused(JobcoreError):
    """Redis answered a command with an error; ``code`` says which, ``reply`` is its text."""

    def __init__(self, message: str, *, code: str, reply: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reply = reply


class ConnectionFailed(JobcoreError):
    """The backend (Redis) cannot be reached; nothing was written. ``cause`` is the
    reason as the wire gave it; ``code`` is set when the server refused us
    (``WRONGPASS``, ``NOAUTH``, ``NOPERM``) and ``reply`` is its words."""

    def __init__(self, message: str, *, cause: str = "", code: str | None = None, reply: str = "") -> None:
        super().__init__(message)
        self.cause = cause
        self.code = code
        self.reply = reply  # the server's refusal as it worded it, when it refused us


class EnqueueError(JobcoreError):
    """The job(s) were not enqueued; the message says why. When a batch was
    partly stored, ``landed`` and ``not_landed`` say exactly which job ids were
    (retry only ``not_landed``); both are empty when it cannot be known."""

    def __init__(self, message: str, *, landed: Sequence[uuid.UUID] = (), not_landed: Sequence[uuid.UUID] = ()) -> None:
        super().__init__(message)
        self.landed = list(landed)
        self.not_landed = list(not_landed)


class ArgsError(JobcoreError):
    """Args do not fit the type declared for the job type."""


class UnknownArgsFields(ArgsError):
    """Args carry fields their type does not know (a typo, or a newer producer's):
    ``fields`` names them, ``known`` lists the type's own, in its order."""

    def __init__(self, message: str, *, fields: Sequence[str], known: Sequence[str]) -> None:
        super().__init__(message)
        self.fields = list(fields)
        self.known = list(known)


class PayloadError(JobcoreError):
    """A stored payload cannot be decoded (corrupt, truncated or unknown version)."""


class UnknownJobType(JobcoreError):
    """No args type is known for a job type (or, for pause and resume, no such type exists)."""


class TypeInUse(JobcoreError):
    """A type cannot be removed: jobs of it wait or run, or a live worker serves it."""


class WorkerIdTaken(JobcoreError):
    """Another worker with the same id holds a live lease."""


class EvictionRisk(JobcoreError):
    """Redis may evict keys (a maxmemory policy other than noeviction)."""


class PermissionDenied(JobcoreError):
    """The Redis user may not run this command (ACL: NOPERM)."""

    code = "NOPERM"

    def __init__(self, message: str, *, reply: str = "") -> None:
        super().__init__(message)
        self.reply = reply


class AmbiguousJobId(JobcoreError):
    """A job id prefix matches more than one job."""


class BadQuery(JobcoreError, ValueError):
    """A find word (or a job id given to cancel) that cannot be read."""


class NotFair(JobcoreError):
    """A limit or weight was set on a type that is not fair (they apply only there)."""
