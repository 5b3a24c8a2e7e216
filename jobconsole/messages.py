"""Messages the poller posts to the app: immutable, so widgets can only render them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from textual.message import Message

from .snapshot import Snapshot


class SnapshotReady(Message):
    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class PollFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class PollNow(Message):
    """Read the queue now (after a change the screen made, or r)."""


class TogglePause(Message):
    """Freeze / unfreeze the live numbers."""


class ToggleWorker(Message):
    """Start the embedded worker, or ask it to stop."""


class ChangeConcurrency(Message):
    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step


class InFlightPage(Message):
    def __init__(self, page: int) -> None:
        super().__init__()
        self.page = page


class OpenEnqueue(Message):
    def __init__(self, job_type: str | None) -> None:
        super().__init__()
        self.job_type = job_type


class OpenBad(Message):
    def __init__(self, which: str) -> None:
        super().__init__()
        self.which = which


class SetFilter(Message):
    """The filter's words changed (``/``): every list view narrows to them."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class OpenFind(Message):
    """Ask where a job is, by an id from a log line or a tenant's words."""

    def __init__(self, text: str = "") -> None:
        super().__init__()
        self.text = text


class OpenWhy(Message):
    """Why a type's jobs (or one job in flight) wait, in sentences."""

    def __init__(self, job_type: str | None, job_id: str | None = None) -> None:
        super().__init__()
        self.job_type = job_type
        self.job_id = job_id


class OpenHistory(Message):
    """The per-minute history kept in Redis, as a chart."""


class SetHistorySpan(Message):
    def __init__(self, minutes: int) -> None:
        super().__init__()
        self.minutes = minutes


class PauseType(Message):
    """Pause (or resume) a job type in Redis: asks first."""

    def __init__(self, job_type: str, pause: bool) -> None:
        super().__init__()
        self.job_type = job_type
        self.pause = pause


class CancelJob(Message):
    """Cancel a running job: asks first. ``about`` names it in the question."""

    def __init__(self, job_id: str, about: str) -> None:
        super().__init__()
        self.job_id = job_id
        self.about = about


class QuitRequested(Message):
    """Quit, asking first while the embedded worker runs jobs."""


@dataclass(frozen=True, slots=True)
class Link:
    """The connection as the header shows it."""

    state: Literal["connecting", "connected", "disconnected"] = "connecting"
    error: str = ""
    retry_in: float = 0.0
    failures: int = 0
