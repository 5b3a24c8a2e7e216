"""Turning a worker's published record into a WorkerInfo."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .backend import WorkerInfo


def worker_info_from_record(rec: dict[str, Any], lease_deadline_ms: int, now_ms: int) -> WorkerInfo:
    lease_ms = int(rec.get("lease_ms", 15000))
    heartbeat_ms = int(rec.get("heartbeat_ms", lease_deadline_ms - lease_ms))
    interval_ms = int(rec.get("heartbeat_interval_ms", lease_ms // 3))
    if lease_deadline_ms < now_ms:
        state = "lost"
    elif now_ms - heartbeat_ms > 2 * interval_ms + 500:
        state = "stale"
    else:
        state = "alive"
    return WorkerInfo(
        id=str(rec.get("id", "?")),
        host=str(rec.get("host", "?")),
        pid=int(rec.get("pid", 0)),
        concurrency=int(rec.get("concurrency", 0)),
        busy=int(rec.get("busy", 0)),
        types=[str(t) for t in rec.get("types", [])],
        started_at=datetime.fromtimestamp(float(rec.get("started_ms", 0)) / 1000, tz=UTC),
        heartbeat_at=datetime.fromtimestamp(heartbeat_ms / 1000, tz=UTC),
        lease=lease_ms / 1000,
        state=state,  # type: ignore[arg-type]
        processed=int(rec.get("processed", 0)),
        failed=int(rec.get("failed", 0)),
        schemas=_schemas(rec.get("schemas")),
    )


def _schemas(value: Any) -> dict[str, str]:
    """A record's schema fingerprints; anything else stored there reads as none."""
    if not isinstance(value, dict):
        return {}
    return {str(t): str(h) for t, h in value.items() if isinstance(h, str)}
