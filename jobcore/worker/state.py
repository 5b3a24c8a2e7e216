"""What the worker's parts share while it runs: the jobs it holds, from the fetch
that took them until their outcome is settled, and the signals the parts give
each other (a stop, the backend out of reach). Data only; each field says which
part changes it."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable

from jobcore.records import Delivery, Outcome


class Slot:
    """One of the worker's ``concurrency`` long-lived runner tasks and the job it runs."""

    __slots__ = ("cancelled", "job", "started", "task", "timed_out")

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.job: Delivery | None = None
        self.started = 0.0
        self.timed_out = False
        self.cancelled = False  # an operator cancelled its job (Queue.cancel)


class Held:
    """The jobs a worker holds, and the tallies it publishes in its record."""

    __slots__ = ("active", "buffer", "dead", "failed", "known", "outbox", "outbox_ready", "processed", "slot_freed")

    def __init__(self) -> None:
        # Taken and not started: the fetch loop and recovery add (take), runners
        # start them, a cancel or a stop takes them out.
        self.buffer: deque[Delivery] = deque()
        # Running (runners). Keyed by (type, entry id): an entry id is unique
        # within its type's stream only, and jobs of several types enqueued
        # together share ids.
        self.active: dict[tuple[str, str], Slot] = {}
        self.known: set[tuple[str, str]] = set()  # every job taken, until the settler records its outcome
        self.outbox: list[Outcome] = []  # outcomes for the settler, which takes them in batches
        self.outbox_ready = asyncio.Event()  # wakes the settler
        self.slot_freed = asyncio.Event()  # wakes a fetch loop waiting for room
        self.processed = 0
        self.failed = 0
        self.dead = 0

    def take(self, deliveries: Iterable[Delivery]) -> None:
        """Hold jobs just taken (fetched or recovered): known until settled,
        buffered until a runner starts them."""
        known, buffer = self.known, self.buffer
        for d in deliveries:
            known.add((d.job_type, d.entry_id))
            buffer.append(d)


class Signals:
    """A stop in progress, and when the backend was last out of reach; each
    comment names who sets the field, and the other parts read it."""

    __slots__ = ("cancelling_all", "cut_off_at", "hard_stop", "hard_stop_event", "id_taken", "stopping")

    def __init__(self) -> None:
        self.stopping = asyncio.Event()  # worker: take and start nothing more
        self.hard_stop = False  # worker: stop at once, no grace, no retried settle
        self.hard_stop_event = asyncio.Event()
        self.id_taken = False  # worker: another process holds this worker's id now: write nothing more as it
        self.cancelling_all = False  # runners' drain: any cancel now is the stop's
        self.cut_off_at = -1e9  # fetch loop, settler: monotonic time the backend was last out of reach
