"""Messages: what the poller posts to the app (immutable, so widgets can only render
them), and what widgets ask of the app (Actions, each naming the app method it runs)."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Literal, Protocol

from textual.message import Message

from jobcore import History

from .snapshot import Snapshot


class ConsoleActions(Protocol):
    """The app's methods an Action may run (app.py implements them)."""

    def poll_now(self) -> None: ...
    def toggle_pause(self) -> None: ...
    async def toggle_worker(self) -> None: ...
    def change_concurrency(self, step: int) -> None: ...
    def set_in_flight_page(self, page: int) -> None: ...
    def open_enqueue(self, job_type: str | None = None) -> None: ...
    def open_bad(self, which: str) -> None: ...
    def set_filter(self, text: str) -> None: ...
    def open_find(self, text: str = "") -> None: ...
    def open_why(self, job_type: str | None, job_id: str | None = None) -> object: ...
    def open_fair(self, job_type: str) -> object: ...
    def ask_fair(self, job_type: str, fair: bool) -> None: ...
    def ask_limit(self, job_type: str, per_account: int) -> None: ...
    def open_history(self) -> None: ...
    def open_audit(self) -> object: ...
    def set_history_span(self, minutes: int) -> None: ...
    def ask_pause(self, job_type: str, pause: bool) -> None: ...
    def ask_cancel(self, job_id: str, about: str) -> None: ...
    def request_quit(self) -> None: ...


class SnapshotReady(Message):
    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class PollFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class HistoryRead(Message):
    """A history read ended; ``history`` is None when it failed (keep what is shown)."""

    def __init__(self, history: History | None) -> None:
        super().__init__()
        self.history = history


class Action(Message):
    """A widget's request: the app's one handler runs it against the app, so a new
    request is one class here and one app method, never another handler."""

    def run(self, app: ConsoleActions) -> Awaitable[None] | None:
        raise NotImplementedError


class PollNow(Action):
    """Read the queue now (after a change the screen made, or r)."""

    def run(self, app: ConsoleActions) -> None:
        app.poll_now()


class TogglePause(Action):
    """Freeze / unfreeze the live numbers."""

    def run(self, app: ConsoleActions) -> None:
        app.toggle_pause()


class ToggleWorker(Action):
    """Start the embedded worker, or ask it to stop."""

    def run(self, app: ConsoleActions) -> Awaitable[None]:
        return app.toggle_worker()


class ChangeConcurrency(Action):
    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step

    def run(self, app: ConsoleActions) -> None:
        app.change_concurrency(self.step)


class InFlightPage(Action):
    def __init__(self, page: int) -> None:
        super().__init__()
        self.page = page

    def run(self, app: ConsoleActions) -> None:
        app.set_in_flight_page(self.page)


class OpenEnqueue(Action):
    def __init__(self, job_type: str | None) -> None:
        super().__init__()
        self.job_type = job_type

    def run(self, app: ConsoleActions) -> None:
        app.open_enqueue(self.job_type)


class OpenBad(Action):
    def __init__(self, which: str) -> None:
        super().__init__()
        self.which = which

    def run(self, app: ConsoleActions) -> None:
        app.open_bad(self.which)


class SetFilter(Action):
    """The filter's words changed (``/``): every list view narrows to them."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def run(self, app: ConsoleActions) -> None:
        app.set_filter(self.text)


class OpenFind(Action):
    """Ask where a job is, by an id from a log line or a tenant's words."""

    def __init__(self, text: str = "") -> None:
        super().__init__()
        self.text = text

    def run(self, app: ConsoleActions) -> None:
        app.open_find(self.text)


class OpenFair(Action):
    """A type's fairness across accounts: settings, who waits, who runs."""

    def __init__(self, job_type: str) -> None:
        super().__init__()
        self.job_type = job_type

    def run(self, app: ConsoleActions) -> None:
        app.open_fair(self.job_type)


class SetFair(Action):
    """Turn a type's fairness on or off, after a question."""

    def __init__(self, job_type: str, fair: bool) -> None:
        super().__init__()
        self.job_type = job_type
        self.fair = fair

    def run(self, app: ConsoleActions) -> None:
        app.ask_fair(self.job_type, self.fair)


class SetLimit(Action):
    """Set a fair type's limit per account, after a question."""

    def __init__(self, job_type: str, per_account: int) -> None:
        super().__init__()
        self.job_type = job_type
        self.per_account = per_account

    def run(self, app: ConsoleActions) -> None:
        app.ask_limit(self.job_type, self.per_account)


class OpenWhy(Action):
    """Why a type's jobs (or one job in flight) wait, in sentences."""

    def __init__(self, job_type: str | None, job_id: str | None = None) -> None:
        super().__init__()
        self.job_type = job_type
        self.job_id = job_id

    def run(self, app: ConsoleActions) -> None:
        app.open_why(self.job_type, self.job_id)


class OpenAudit(Action):
    """The operator actions recorded in Redis, newest first."""

    def run(self, app: ConsoleActions) -> None:
        app.open_audit()


class OpenHistory(Action):
    """The per-minute history kept in Redis, as a chart."""

    def run(self, app: ConsoleActions) -> None:
        app.open_history()


class SetHistorySpan(Action):
    def __init__(self, minutes: int) -> None:
        super().__init__()
        self.minutes = minutes

    def run(self, app: ConsoleActions) -> None:
        app.set_history_span(self.minutes)


class PauseType(Action):
    """Pause (or resume) a job type in Redis: asks first."""

    def __init__(self, job_type: str, pause: bool) -> None:
        super().__init__()
        self.job_type = job_type
        self.pause = pause

    def run(self, app: ConsoleActions) -> None:
        app.ask_pause(self.job_type, self.pause)


class CancelJob(Action):
    """Cancel a running job: asks first. ``about`` names it in the question."""

    def __init__(self, job_id: str, about: str) -> None:
        super().__init__()
        self.job_id = job_id
        self.about = about

    def run(self, app: ConsoleActions) -> None:
        app.ask_cancel(self.job_id, self.about)


class QuitRequested(Action):
    """Quit, asking first while the embedded worker runs jobs."""

    def run(self, app: ConsoleActions) -> None:
        app.request_quit()


@dataclass(frozen=True, slots=True)
class Link:
    """The connection as the header shows it."""

    state: Literal["connecting", "connected", "disconnected"] = "connecting"
    error: str = ""
    retry_in: float = 0.0
    failures: int = 0
