"""What a server says of itself: its name and version, and whether it may evict."""

from __future__ import annotations

from jobcore.errors import ConnectionFailed
from jobcore.redis import resp
from jobcore.redis.calls import guarded
from jobcore.redis.transport import Transport
from jobcore.url import redacted


def version_of(info: dict[str, str]) -> str:
    """``Valkey 9.1.2`` or ``Redis 7.0.15`` from INFO server ("server" when it says neither)."""
    if "valkey_version" in info:
        return f"Valkey {info['valkey_version']}"
    if "redis_version" in info:
        return f"Redis {info['redis_version']}"
    return "server"


async def info(t: Transport, url: str) -> dict[str, str]:
    """INFO server of the node that answers (the cluster's first master)."""
    return resp.parse_info(await guarded(url, lambda: t.call("INFO", "server")))


async def eviction_policies(t: Transport, url: str) -> set[str]:
    """The maxmemory policies other than noeviction on any master (empty when INFO is refused)."""
    try:
        replies = await t.on_every_master("INFO", "memory")
    except resp.RespError:
        return set()  # INFO refused to this user: nothing to tell
    except (resp.RespConnectionError, OSError) as exc:
        raise ConnectionFailed(f"Redis at {redacted(url)} is unreachable ({exc})", cause=str(exc)) from None
    policies = {resp.parse_info(r).get("maxmemory_policy", "noeviction") for r in replies}
    return {p for p in policies if p != "noeviction"}
