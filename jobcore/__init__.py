"""jobcore: a typed, at-least-once job queue on Redis, with an in-memory twin."""

from jobcore.connect import connect
from jobcore.display import redacted_url
from jobcore.errors import (
    AmbiguousJobId,
    ArgsError,
    BadQuery,
    ConnectionFailed,
    EnqueueError,
    JobcoreError,
    PayloadError,
    UnknownJobType,
)
from jobcore.model import Identity, Job
from jobcore.ops.find import CancelResult, FoundJob, JobQuery, parse_query
from jobcore.queue import Queue
from jobcore.records import BadJob, InFlightJob, QueueStats, TypeStats, WorkerInfo
from jobcore.registry import Handlers
from jobcore.sync import SyncQueue
from jobcore.worker.worker import Worker

__version__ = "0.1.0"

__all__ = [
    "AmbiguousJobId",
    "ArgsError",
    "BadJob",
    "BadQuery",
    "CancelResult",
    "ConnectionFailed",
    "EnqueueError",
    "FoundJob",
    "Handlers",
    "Identity",
    "InFlightJob",
    "Job",
    "JobQuery",
    "JobcoreError",
    "PayloadError",
    "Queue",
    "QueueStats",
    "SyncQueue",
    "TypeStats",
    "UnknownJobType",
    "Worker",
    "WorkerInfo",
    "__version__",
    "connect",
    "parse_query",
    "redacted_url",
]
