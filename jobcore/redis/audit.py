"""The audit trail on Redis: one stream in the namespace's slot, capped (jobcore/ops/audit.py)."""

from __future__ import annotations

from jobcore.keys import Keys, entry_order
from jobcore.redis import replies as rep
from jobcore.redis.calls import guarded
from jobcore.redis.transport import Transport


class RedisAudit:
    """Mixed into RedisQueue: what it needs of it is below."""

    url: str
    keys: Keys
    _t: Transport

    async def _audit_write(self, fields: dict[str, str], keep: int) -> None:
        pairs = [x for kv in fields.items() for x in kv]
        await guarded(self.url, lambda: self._t.call("XADD", self.keys.audit, "MAXLEN", "~", keep, "*", *pairs))

    async def _audit_read(self, count: int) -> list[tuple[int, dict[str, str]]]:
        rows = await guarded(self.url, lambda: self._t.call("XREVRANGE", self.keys.audit, "+", "-", "COUNT", count))
        return [
            (entry_order(rep.text(entry_id))[0], {rep.text(k): rep.text(v) for k, v in rep.pairs(fields)})
            for entry_id, fields in rows or []
        ]
