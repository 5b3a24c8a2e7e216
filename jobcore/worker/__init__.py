"""The worker and what keeps it honest: its lease and the keeper process that
extends it, and the rule for jobs that may be killing workers.

worker.py (options, lifecycle, fetch loop) wires the parts: runners.py,
execution.py, settling.py, recovery.py, cancels.py, sharing state.py."""

from jobcore.worker.runners import JobDone
from jobcore.worker.worker import (
    DEFAULT_CONCURRENCY,
    DEFAULT_GRACE_S,
    DEFAULT_PREFETCH,
    DEFAULT_TIMEOUT_S,
    Worker,
)

__all__ = ["DEFAULT_CONCURRENCY", "DEFAULT_GRACE_S", "DEFAULT_PREFETCH", "DEFAULT_TIMEOUT_S", "JobDone", "Worker"]
