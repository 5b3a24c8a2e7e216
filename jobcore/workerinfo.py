"""Turning a worker's published record into a WorkerInfo.

A record is data from Redis: any field may hold anything (or be missing), and
reads as a safe default then, never as an exception in whoever lists workers.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from jobcore.records import WorkerInfo

_MAX_MS = 253_402_300_799_999  # the last millisecond a datetime can hold
_MAX_INT = 2**53


def _int(value: Any, default: int = 0) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, float) and math.isfinite(value):
        value = int(value)
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            return default
    # Past 2**53 it is no number a worker wrote, and dividing it would overflow a float.
    if isinstance(value, int) and abs(value) <= _MAX_INT:
        return value
    return default


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(min(max(ms, 0), _MAX_MS) / 1000, tz=UTC)


def worker_info_from_record(rec: Any, lease_deadline_ms: int, now_ms: int) -> WorkerInfo:
    if not isinstance(rec, dict):
        rec = {}
    lease_ms = _int(rec.get("lease_ms"), 15000)
    heartbeat_ms = _int(rec.get("heartbeat_ms"), lease_deadline_ms - lease_ms)
    interval_ms = _int(rec.get("heartbeat_interval_ms"), lease_ms // 3)
    if lease_deadline_ms < now_ms:
        state = "lost"
    elif now_ms - heartbeat_ms > 2 * interval_ms + 500:
        state = "stale"
    else:
        state = "alive"
    types = rec.get("types")
    return WorkerInfo(
        id=str(rec.get("id", "?")),
        host=str(rec.get("host", "?")),
        pid=_int(rec.get("pid")),
        concurrency=_int(rec.get("concurrency")),
        busy=_int(rec.get("busy")),
        types=[str(t) for t in types] if isinstance(types, list) else [],
        started_at=_at(_int(rec.get("started_ms"))),
        heartbeat_at=_at(heartbeat_ms),
        lease=lease_ms / 1000,
        state=state,  # type: ignore[arg-type]
        processed=_int(rec.get("processed")),
        failed=_int(rec.get("failed")),
        schemas=_schemas(rec.get("schemas")),
        stopping=rec.get("stopping") is True,
        sync_types=[str(t) for t in sync] if isinstance(sync := rec.get("sync_types"), list) else [],
    )


def _schemas(value: Any) -> dict[str, str]:
    """A record's schema fingerprints; anything else stored there reads as none."""
    if not isinstance(value, dict):
        return {}
    return {str(t): str(h) for t, h in value.items() if isinstance(h, str)}
