"""``connect(url)``: pick a backend by URL scheme."""

from __future__ import annotations

from typing import Any

from .backend import Queue
from .keys import DEFAULT_NAMESPACE

SCHEMES = ("redis", "rediss", "unix", "memory")


def connect(url: str, *, namespace: str = DEFAULT_NAMESPACE, handlers: Any = None) -> Queue:
    """Open a queue at ``redis://``, ``rediss://``, ``unix://`` or ``memory://``.

    No I/O happens here; the first command reports an unreachable server.
    With ``handlers``, enqueue checks args against the registered types.
    """
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    queue: Queue
    if scheme == "memory":
        from .memory import MemoryQueue

        queue = MemoryQueue(url)
    elif scheme in ("redis", "rediss", "unix"):
        from .redis_backend import RedisQueue

        queue = RedisQueue(url, namespace)
    else:
        raise ValueError(f"unsupported queue URL {url!r}: use redis://, rediss://, unix:// or memory://")
    if handlers is not None:
        queue.declare_handlers(handlers)
    return queue
