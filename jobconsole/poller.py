"""The console's polling, Dolphie's way: a poll (stats, one page of in-flight jobs,
the workers) runs off the UI in a Textual worker, asks the runner for a Snapshot and
posts it, immutable, to the app. The next poll is armed with ``set_timer`` only when
the previous one has finished, so polls never pile up, whatever the server's latency.
The per-minute history kept in Redis is read the same way on its own, slower cadence.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any, Protocol

from textual.message import Message
from textual.timer import Timer
from textual.worker import Worker, WorkerState

import jobcore

from .messages import HistoryRead, Link, PollFailed, SnapshotReady
from .runner import Runner
from .scope import Scope
from .settings import Settings
from .snapshot import take_snapshot

MAX_RETRY = 5.0  # seconds between attempts while disconnected, at most
SLOW_POLL = 3.0  # a poll running this long shows as waited-for in the header


def describe_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if isinstance(exc, jobcore.JobcoreError) else f"{type(exc).__name__}: {text}"


class PollHost(Protocol):
    """What the poller reads off the app, and the app's timers, workers and messages."""

    @property
    def runner(self) -> Runner: ...
    @property
    def settings(self) -> Settings: ...
    @property
    def link(self) -> Link: ...
    @property
    def server_version(self) -> str: ...
    @property
    def scope(self) -> Scope: ...
    @property
    def in_flight_limit(self) -> int: ...
    @property
    def paused(self) -> bool: ...
    @property
    def history_minutes(self) -> int: ...

    def set_timer(self, delay: float, callback: Callable[[], None]) -> Timer: ...
    def run_worker(
        self, work: Coroutine[Any, Any, None], name: str | None = "", group: str = "default", *, exit_on_error: bool
    ) -> Worker[None]: ...
    def post_message(self, message: Message) -> bool: ...


class Poller:
    """One dashboard poll at a time, and one history read at a time, for ``host``."""

    def __init__(self, host: PollHost) -> None:
        self._host = host
        self._seq = 0
        self._polling = False
        self._started = 0.0
        self._timer: Timer | None = None
        self._again = False  # the filter changed while a poll ran: poll once more at its end
        self._poll_worker: Worker[None] | None = None
        self._history_timer: Timer | None = None
        self._history_reading = False
        self._history_worker: Worker[None] | None = None
        self._stopped = False
        self.failures = 0  # polls failed in a row

    @property
    def polling(self) -> bool:
        return self._polling

    @property
    def history_reading(self) -> bool:
        return self._history_reading

    def waited(self) -> float:
        """Seconds the running poll has taken, once that is long enough to say so."""
        if not self._polling:
            return 0.0
        waited = time.monotonic() - self._started
        return waited if waited >= SLOW_POLL else 0.0

    # ---- the dashboard poll --------------------------------------------------

    def now(self) -> None:
        """Poll at once, unless a poll is running (its answer will be just as fresh)."""
        self._stop_timer()
        if self._stopped:
            return
        if self._polling:
            self._again = True
            return
        self._polling = True
        self._started = time.monotonic()
        self._poll_worker = self._host.run_worker(self._poll(), "_poll", "poll", exit_on_error=False)

    async def _poll(self) -> None:
        host = self._host
        call = partial(
            take_snapshot,
            seq=self._seq + 1,
            in_flight_limit=host.in_flight_limit,
            want_version=host.link.state != "connected" or not host.server_version,
            query=host.scope.query,
        )
        try:
            snap = await host.runner.call(call)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure is a link state, never a crash
            host.post_message(PollFailed(describe_error(exc)))
        else:
            host.post_message(SnapshotReady(snap))

    def succeeded(self, seq: int) -> None:
        """The app took snapshot ``seq``: arm the next poll."""
        self._polling = False
        self._seq = seq
        self.failures = 0
        self._arm(self._host.settings.refresh)
        if self._again:
            self._again = False
            self.now()

    def failed(self) -> float:
        """A poll failed: retry later, backing off; returns the delay."""
        self._polling = False
        self.failures += 1
        delay = min(MAX_RETRY, max(0.5, self._host.settings.refresh) * 2.0 ** min(self.failures - 1, 4))
        self._arm(delay)
        return delay

    def worker_changed(self, event: Worker.StateChanged) -> None:
        # A poll worker that died some other way must not stop polling for good.
        died = event.state in (WorkerState.ERROR, WorkerState.CANCELLED)
        if event.worker.group == "poll" and died and self._polling and not self._stopped:
            self._polling = False
            error = event.worker.error
            self._host.post_message(PollFailed(describe_error(error) if error else "poll cancelled"))

    def _arm(self, delay: float) -> None:
        if self._host.paused or self._stopped:
            return
        self._stop_timer()
        self._timer = self._host.set_timer(delay, self.now)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def pause(self) -> None:
        """Live updates frozen: no poll is armed until ``now()``."""
        self._stop_timer()

    # ---- the history kept in Redis: its own, slower cadence -------------------

    def read_history(self) -> None:
        """Read the per-minute history now (unless a read is running), then every
        ``history_refresh`` seconds. Two round trips whatever the queue's length."""
        if self._history_timer is not None:
            self._history_timer.stop()
            self._history_timer = None
        if self._history_reading or self._stopped:
            return
        self._history_reading = True
        minutes = self._host.history_minutes
        self._history_worker = self._host.run_worker(
            self._read_history(minutes), "_read_history", "history", exit_on_error=False
        )

    async def _read_history(self, minutes: int) -> None:
        host = self._host
        try:
            history = await host.runner.call(lambda q: q.history(minutes=minutes))
        except asyncio.CancelledError:
            raise
        except Exception:
            history = None  # the poll's link state says what is wrong; keep what we had
        host.post_message(HistoryRead(history))

    def history_read(self) -> None:
        """The app took the history read: arm the next."""
        self._history_reading = False
        if not self._stopped and not self._host.paused:
            self._history_timer = self._host.set_timer(self._host.settings.history_refresh, self.read_history)

    def stop(self) -> None:
        """For good (the console is closing): no timer fires, running reads are cancelled."""
        self._stopped = True
        self._stop_timer()
        if self._history_timer is not None:
            self._history_timer.stop()
        for worker in (self._poll_worker, self._history_worker):
            if worker is not None and not worker.is_finished:
                worker.cancel()
