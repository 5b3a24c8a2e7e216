"""jobcore: a typed, at-least-once job queue on Redis, with an in-memory twin.

What a program built on jobcore (a service, the console, a script) may import:

- ``jobcore``: the names in ``__all__`` below: ``connect``, ``Queue``, ``SyncQueue``,
  ``Worker``, ``Handlers``, the job and its records, the errors.
- ``jobcore.cli.parser``: ``CommandLineParser``, the command line's house style.
- ``jobcore.display``: what may be shown to a person (``printable``, ``field_text``,
  ``redacted_url``, ``scrubbed``, ``duration``).
- ``jobcore.fair``: fairness across accounts, its rules and its words (``fair_lines``,
  ``fair_sentences``).
- ``jobcore.limits``: every tunable bound, and ``chunked``.
- ``jobcore.local``: the queue URL a program uses when given none, and the local server.
- ``jobcore.logs``: the job's log fields and the log formats.
- ``jobcore.loop_thread``: ``LoopThread``, jobcore's coroutines from code not on a loop.
- ``jobcore.schema``: a job type's args schema, checked and described.
- ``jobcore.demo``: the demo handlers.

Every other module is the house's own and may change without notice.
"""

from jobcore.connect import connect
from jobcore.display import redacted_url
from jobcore.errors import (
    AmbiguousJobId,
    ArgsError,
    BadQuery,
    ConnectionFailed,
    EnqueueError,
    EvictionRisk,
    JobcoreError,
    NotFair,
    PayloadError,
    PermissionDenied,
    RedisRefused,
    TypeInUse,
    UnknownArgsFields,
    UnknownJobType,
    WorkerIdTaken,
)
from jobcore.fair import AccountLoad, FairInfo, FairSettings
from jobcore.model import Identity, Job
from jobcore.ops.audit import AuditRecord
from jobcore.ops.find import CancelResult, FoundJob, JobQuery, found_bad, in_flight_matches, parse_query
from jobcore.ops.history import History, TypeHistory
from jobcore.ops.pending import PendingPage
from jobcore.ops.triage import FailureGroup, group_failures
from jobcore.ops.why import Explanation
from jobcore.queue import Queue
from jobcore.records import BadJob, InFlightJob, QueueStats, TypeStats, WorkerInfo
from jobcore.registry import Handlers, load_handlers
from jobcore.sync import SyncQueue
from jobcore.worker.worker import Worker

__version__ = "0.1.0"

__all__ = [
    "AccountLoad",
    "AmbiguousJobId",
    "ArgsError",
    "AuditRecord",
    "BadJob",
    "BadQuery",
    "CancelResult",
    "ConnectionFailed",
    "EnqueueError",
    "EvictionRisk",
    "Explanation",
    "FailureGroup",
    "FairInfo",
    "FairSettings",
    "FoundJob",
    "Handlers",
    "History",
    "Identity",
    "InFlightJob",
    "Job",
    "JobQuery",
    "JobcoreError",
    "NotFair",
    "PayloadError",
    "PendingPage",
    "PermissionDenied",
    "Queue",
    "QueueStats",
    "RedisRefused",
    "SyncQueue",
    "TypeHistory",
    "TypeInUse",
    "TypeStats",
    "UnknownArgsFields",
    "UnknownJobType",
    "Worker",
    "WorkerIdTaken",
    "WorkerInfo",
    "__version__",
    "connect",
    "found_bad",
    "group_failures",
    "in_flight_matches",
    "load_handlers",
    "parse_query",
    "redacted_url",
]
