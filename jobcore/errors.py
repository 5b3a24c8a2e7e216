"""Exceptions raised by jobcore. Every message is one clear line for a person."""

from __future__ import annotations


class JobcoreError(Exception):
    """Base of every jobcore error."""


class ConnectionFailed(JobcoreError):
    """The backend (Redis) cannot be reached; nothing was written."""


class EnqueueError(JobcoreError):
    """The job(s) were not enqueued; the message says why."""


class ArgsError(JobcoreError):
    """Args do not fit the type declared for the job type."""


class PayloadError(JobcoreError):
    """A stored payload cannot be decoded (corrupt, truncated or unknown version)."""


class UnknownJobType(JobcoreError):
    """No args type is known for a job type."""


class NotFound(JobcoreError):
    """A dead or failed job named by id does not exist."""
