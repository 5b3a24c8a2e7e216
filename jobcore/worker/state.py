"""What the worker's parts share while it runs: the jobs it holds, from the fetch
that took them until their outcome is settled, and the signals the parts give
each other (a stop, the backend out of reach). Data only; each field says which
part changes it."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable, Sequence

from jobcore.records import Delivery, Outcome, Stale

# A cancel's answer when the job ended otherwise than by the cancel (Queue.cancel reports it).
ANSWER = {"ack": "processed", "fail": "failed", "dead": "dead", "release": "released"}
SETTLED_KEPT_S = 2.5  # settles remembered for cancel answers: 2.5 to 5 s, well over a request's way (one 0.5 s poll)


class Slot:
    """One of the worker's ``concurrency`` long-lived runner tasks and the job it runs."""

    __slots__ = ("answer", "cancelled", "cancels", "job", "started", "task", "timed_out")

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.job: Delivery | None = None
        self.started = 0.0
        self.timed_out = False
        self.cancelled = False  # an operator cancelled its job (Queue.cancel)
        self.cancels: list[str] = []  # cancel requests its job's settle answers (cancels.py)
        self.answer = ""  # execution: "cancelled", or "ran_on" (cancelled, but the handler ran to its end)


class Held:
    """The jobs a worker holds, and the tallies it publishes in its record."""

    __slots__ = (
        "active",
        "buffer",
        "dead",
        "failed",
        "known",
        "outbox",
        "outbox_ready",
        "processed",
        "settled",
        "settled_before",
        "settled_since",
        "settling",
        "slot_freed",
    )

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
        # For cancel requests that come after their job's settle (cancels.py): the
        # batch the settler is settling now, and what each job settled in the last
        # SETTLED_KEPT_S to twice that became, by (type, entry id). Settler writes.
        self.settling: list[Outcome] = []
        self.settled: dict[tuple[str, str], str] = {}
        self.settled_before: dict[tuple[str, str], str] = {}
        self.settled_since = time.monotonic()

    def take(self, deliveries: Iterable[Delivery]) -> None:
        """Hold jobs just taken (fetched or recovered): known until settled,
        buffered until a runner starts them."""
        known, buffer = self.known, self.buffer
        for d in deliveries:
            known.add((d.job_type, d.entry_id))
            buffer.append(d)

    def remember(self, batch: Sequence[Outcome], stale: Sequence[Stale]) -> None:
        """Keep what each job of a settled batch became ("moved": not this worker's)."""
        now = time.monotonic()
        if now - self.settled_since >= SETTLED_KEPT_S:
            self.settled_before, self.settled, self.settled_since = self.settled, {}, now
        moved = {s.entry_id for s in stale} if stale else ()
        settled = self.settled
        for o in batch:
            settled[o.job_type, o.entry_id] = "moved" if o.entry_id in moved else o.verdict or ANSWER[o.kind]


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
