"""The audit trail: every operator action (pause, resume, cancel, requeue, purge,
delete waiting jobs, remove a type, partitions, fairness and limits) appends one
record to a bounded stream in the namespace, refused ones too: when (Redis's
time, the entry id), who (``Queue.actor``), what, on which type and target, how
many it affected, and how it ended. ``Queue.audit`` reads them, newest first."""

from __future__ import annotations

import abc
import functools
import getpass
import inspect
import logging
import os
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from jobcore.display import printable
from jobcore.errors import JobcoreError
from jobcore.records import utc

log = logging.getLogger("jobcore.audit")

ACTOR_ENV = "JOBCORE_ACTOR"
AUDIT_KEEP = 10_000  # records kept (the newest)
TARGET_CHARS = 300  # a record's target is cut to this

P = ParamSpec("P")
T = TypeVar("T")


def default_actor() -> str:
    """``$JOBCORE_ACTOR``, else user@host."""
    named = os.environ.get(ACTOR_ENV, "").strip()
    if named:
        return named
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One operator action. ``count``: jobs (or accounts) it affected, None when it
    says no number; ``outcome``: ``ok``, or ``refused: why``."""

    at: datetime
    actor: str
    action: str
    job_type: str
    target: str
    count: int | None
    outcome: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "type": self.job_type,
            "target": self.target,
            "count": self.count,
            "outcome": self.outcome,
        }


def _target(bound: inspect.BoundArguments) -> tuple[str, str]:
    """(the type acted on, the rest of what was asked) from an action's arguments."""
    args = dict(bound.arguments)
    args.pop("self", None)
    job_type = str(args.pop("job_type", "") or "")
    parts = [f"{k}={list(v) if isinstance(v, (list, tuple)) else v}" for k, v in args.items() if v not in (None, False)]
    return job_type, " ".join(parts)[:TARGET_CHARS]


def audited(action: str) -> Callable[[Callable[P, Coroutine[Any, Any, T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """Record each call of an operator action in the audit trail, after it ran
    (or was refused: the error is raised still). A record that cannot be written
    (a read-only user, Redis gone) is logged, never the action's failure."""

    def wrap(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        async def run(*args: P.args, **kwargs: P.kwargs) -> T:
            self = args[0]
            assert isinstance(self, AuditTrail)
            job_type, target = _target(signature.bind(*args, **kwargs))
            try:
                result = await fn(*args, **kwargs)
            except JobcoreError as exc:
                await self._record(action, job_type, target, None, f"refused: {exc}")
                raise
            count = result if isinstance(result, int) and not isinstance(result, bool) else None
            await self._record(action, job_type, target, count, "ok")
            return result

        return run

    return wrap


class AuditTrail(abc.ABC):
    actor: str = ""

    @abc.abstractmethod
    async def _audit_write(self, fields: dict[str, str], keep: int) -> None:
        """Append one record (keeping about the newest ``keep``)."""

    @abc.abstractmethod
    async def _audit_read(self, count: int) -> list[tuple[int, dict[str, str]]]:
        """The newest ``count`` records, newest first: (Redis ms, fields)."""

    async def _record(self, action: str, job_type: str, target: str, count: int | None, outcome: str) -> None:
        fields = {
            "actor": self.actor or default_actor(),
            "action": action,
            "type": job_type,
            "target": target,
            "count": "" if count is None else str(count),
            "outcome": outcome[:TARGET_CHARS],
        }
        try:
            await self._audit_write(fields, AUDIT_KEEP)
        except Exception as exc:  # the action stands; only its record is missing
            log.warning("%s of %s could not be recorded in the audit trail: %s", action, printable(job_type), exc)

    async def audit(self, limit: int = 50, job_type: str | None = None) -> list[AuditRecord]:
        """The newest ``limit`` records (of ``job_type`` only, when given), newest first."""
        rows = await self._audit_read(AUDIT_KEEP if job_type else limit)
        out = []
        for ms, f in rows:
            if job_type is not None and f.get("type") != job_type:
                continue
            count = f.get("count", "")
            out.append(
                AuditRecord(
                    utc(ms),
                    f.get("actor", ""),
                    f.get("action", ""),
                    f.get("type", ""),
                    f.get("target", ""),
                    int(count) if count.lstrip("-").isdigit() else None,
                    f.get("outcome", ""),
                )
            )
            if len(out) == limit:
                break
        return out
