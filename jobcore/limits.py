"""The queue's tunable bounds, each written once: defaults a worker starts with,
how much an operator's read may cost, and how long a process trusts what it read."""

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_LEASE_S = 15.0
FAILED_KEEP = 1000  # failed jobs kept per type for an operator to requeue
MAX_PARTITIONS = 1024
BAD_ALL = 2**31 - 1  # a dead/failed listing's limit that means every job
CHUNK = 1000  # ids or jobs acted on per call when an operator acts on many: keeps each call short
IN_FLIGHT_ALL = 100_000  # in-flight rows read when every one is needed (find, why, a filter): workers hold few
PARTITIONS_TTL_S = 10.0  # how long a process trusts the partition counts it read
FIND_BAD_MAX = 10_000  # dead and failed jobs find() reads per type, the newest
FIND_SKEW_MS = 10_000  # how far from the time in a job id find() looks for it in a stream
CANCEL_POLL_S = 0.5  # how often a worker takes its cancel requests
CANCEL_CONFIRM_S = 2.5  # how long cancel() waits for the worker's answer: its poll, the settle, a margin
CANCEL_VERDICT_TTL_MS = 60_000  # a cancel's answer, kept for the caller to read


def chunked(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """``items`` in slices of at most ``size``: many ids acted on in several short calls."""
    for i in range(0, len(items), size):
        yield items[i : i + size]
