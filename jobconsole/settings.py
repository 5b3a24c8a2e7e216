"""What the console was started with: shared by the CLI, tests and the screenshot script."""

from __future__ import annotations

from dataclasses import dataclass

from jobcore import Handlers
from jobcore import load_handlers as jobcore_load_handlers

DEFAULT_HANDLERS = "jobcore.demo:handlers"
DEFAULT_REFRESH = 1.0
DEFAULT_CONCURRENCY = 10
DEFAULT_GRACE = 5.0
HISTORY_REFRESH = 12.0  # seconds between reads of the per-minute history: it moves by the minute


class SettingsError(Exception):
    """A bad option value: printed as one line by the CLI."""


def load_handlers(spec: str) -> Handlers:
    """Import the ``MODULE:ATTRIBUTE`` registry named on the command line."""
    try:
        return jobcore_load_handlers(spec)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class Settings:
    url: str = "memory://"
    refresh: float = DEFAULT_REFRESH
    read_only: bool = False
    handlers: str = DEFAULT_HANDLERS
    concurrency: int = DEFAULT_CONCURRENCY
    grace: float = DEFAULT_GRACE  # seconds running jobs get to finish when the embedded worker stops
    namespace: str | None = None
    origin: str = ""  # why this server, when no URL was given (jobcore.local): shown in the header
    origin_note: str = ""  # the same in a sentence, said once at start
    in_flight_page: int = 100  # rows per in-flight page
    dead_limit: int = 500  # newest dead/failed jobs listed
    history_refresh: float = HISTORY_REFRESH

    @property
    def is_memory(self) -> bool:
        return self.url.startswith("memory://")
