"""What the console's widgets and screens may depend on: a small protocol, not the App.

Widgets read state (the latest Snapshot, the link, the embedded worker's status) and
ask for queue I/O through the query methods, which the app runs off the UI loop;
actions that change the console leave a widget as an Action message (messages.py). Only the
app (app.py) implements this, and nothing here imports it, so there is no import circle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import jobcore
from jobcore import BadJob, FoundJob, History, Job, JobQuery

from .embedded import EmbeddedStatus
from .messages import Link
from .scope import Scope, Triage
from .settings import Settings
from .snapshot import RateHistory, Snapshot

Which = Literal["dead", "failed"]


@dataclass(frozen=True, slots=True)
class EnqueueDraft:
    """The enqueue form's fields as it last closed (sent or not): the next opening starts
    from them, for as long as the console runs. Text as typed, checked again when sent."""

    job_type: str | None = None
    count: str = "1"
    account_id: str = "0"
    account_number: str = ""
    org_id: str = ""
    args: Mapping[str, str] = field(default_factory=dict)  # per job type: each keeps its own


class ConsoleContext(Protocol):
    @property
    def settings(self) -> Settings: ...
    @property
    def handlers(self) -> jobcore.Handlers: ...
    @property
    def display_url(self) -> str: ...
    @property
    def rates(self) -> RateHistory: ...

    # Watchable state (Textual reactives on the app): widgets watch these by name.
    @property
    def snapshot(self) -> Snapshot | None: ...
    @property
    def link(self) -> Link: ...
    @property
    def server_version(self) -> str: ...
    @property
    def evicting(self) -> str: ...
    @property
    def paused(self) -> bool: ...
    @property
    def poll_wait(self) -> float: ...
    @property
    def embedded_status(self) -> EmbeddedStatus: ...
    @property
    def scope(self) -> Scope: ...
    @property
    def history(self) -> History | None: ...
    @property
    def history_minutes(self) -> int: ...

    enqueue_draft: EnqueueDraft  # the enqueue form keeps its fields here between openings

    def embedded_now(self) -> EmbeddedStatus:
        """The embedded worker's numbers at this instant (the reactive is up to a tick old)."""
        ...

    def refuse_if_read_only(self, what: str) -> bool:
        """True, after telling the operator, when the console is read-only."""
        ...

    # ---- queue I/O, run by the app off the UI loop ------------------------------
    async def bad_jobs(self, which: Which, job_type: str | None, limit: int) -> list[BadJob]: ...
    async def act_on_bad(self, what: str, which: Which, plan: dict[str, list[str] | None]) -> int: ...
    async def job_types_and_schemas(self) -> tuple[list[str], dict[str, dict[str, Any]]]: ...
    async def enqueue_copies(self, template: Job[Any], n: int) -> int: ...
    async def find(self, text: str) -> list[FoundJob]: ...
    async def pending(self, job_type: str, after: str | None, query: JobQuery | None) -> jobcore.PendingPage: ...
    async def count_pending(self, job_type: str, query: JobQuery) -> int: ...
    async def delete_pending(self, job_type: str, job_ids: Sequence[str] = (), query: JobQuery | None = None) -> int:
        """The jobs with these ids, or with none given every one ``query`` matches."""
        ...

    async def triage(self, which: Which, jobs: Sequence[BadJob], query: JobQuery | None) -> Triage:
        """Filter and group a dead or failed list, off the UI loop."""
        ...
