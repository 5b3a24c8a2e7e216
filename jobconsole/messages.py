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


@dataclass(frozen=True, slots=True)
class Link:
    """The connection as the header shows it."""

    state: Literal["connecting", "connected", "disconnected"] = "connecting"
    error: str = ""
    retry_in: float = 0.0
    failures: int = 0
