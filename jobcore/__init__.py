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
    ArgsError,
    ConnectionFailed,
    EnqueueError,
    JobcoreError,
    PayloadError,
    UnknownJobType,
)
from .model import Identity, Job
from .registry import Handlers
from .sync import SyncQueue
from .worker import Worker

__version__ = "0.1.0"

__all__ = [
    "ArgsError",
    "BadJob",
    "ConnectionFailed",
    "EnqueueError",
    "Handlers",
    "Identity",
    "InFlightJob",
    "Job",
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
    "redacted_url",
]
