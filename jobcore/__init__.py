"""jobcore: a typed, at-least-once job queue on Redis, with an in-memory twin."""

from .backend import (
    BadJob,
    InFlightJob,
    Queue,
    QueueStats,
    TypeStats,
    WorkerInfo,
)
from .connect import connect
from .display import redacted_url
from .errors import (
    AmbiguousJobId,
    ArgsError,
    BadQuery,
    ConnectionFailed,
    EnqueueError,
    JobcoreError,
    PayloadError,
    UnknownJobType,
)
from .find import CancelResult, FoundJob, JobQuery, parse_query
from .model import Identity, Job
from .registry import Handlers
from .sync import SyncQueue
from .worker import Worker

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
