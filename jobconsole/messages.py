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


class QuitRequested(Message):
    """Quit, asking first while the embedded worker runs jobs."""


@dataclass(frozen=True, slots=True)
class Link:
    """The connection as the header shows it."""

    state: Literal["connecting", "connected", "disconnected"] = "connecting"
    error: str = ""
    retry_in: float = 0.0
    failures: int = 0
