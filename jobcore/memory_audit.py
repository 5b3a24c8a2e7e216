"""The memory backend's audit trail: the records in process, as the stream holds them on Redis."""

from __future__ import annotations

import time
from collections import deque


class MemoryAudit:
    """Mixed into MemoryQueue."""

    _audit_rows: deque[tuple[int, dict[str, str]]] | None = None

    async def _audit_write(self, fields: dict[str, str], keep: int) -> None:
        if self._audit_rows is None:
            self._audit_rows = deque(maxlen=keep)
        self._audit_rows.append((int(time.time() * 1000), dict(fields)))

    async def _audit_read(self, count: int) -> list[tuple[int, dict[str, str]]]:
        return list(reversed(self._audit_rows or ()))[:count]
