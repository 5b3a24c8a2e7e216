"""``connect(url)``: pick a backend by URL scheme."""

from __future__ import annotations

from typing import Any

from .backend import Queue
from .display import redacted_url
from .keys import DEFAULT_NAMESPACE
from .transport import SCHEMES as REDIS_SCHEMES

SCHEMES = (*REDIS_SCHEMES, "memory")


def connect(
    url: str,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    handlers: Any = None,
    replicas: int | None = None,
    replica_timeout_ms: int | None = None,
) -> Queue:
    """Open a queue at ``redis://``, ``rediss://``, ``unix://`` (a single server,
    or a cluster node: detected), ``redis+cluster://h1:p1,h2:p2``,
    ``redis+sentinel://h1:26379,h2:26379/SERVICE[/DB]`` or ``memory://``.

    No I/O happens here; the first command reports an unreachable server.
    With ``handlers``, enqueue checks args against the registered types. With
    ``replicas=N`` (or ``?replicas=N`` in the URL) an enqueue is confirmed only
    once N replicas have it (WAIT), else it raises EnqueueError.
    """
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    queue: Queue
    if scheme == "memory":
        from .memory import MemoryQueue

        queue = MemoryQueue(url)
    elif scheme in REDIS_SCHEMES:
        from .redis_backend import RedisQueue

        queue = RedisQueue(url, namespace, replicas=replicas, replica_timeout_ms=replica_timeout_ms)
    else:
        raise ValueError(
            f"unsupported queue URL {redacted_url(url)!r}: use redis://, rediss://, unix://, redis+cluster://, "
            "redis+sentinel:// or memory://"
        )
    if handlers is not None:
        queue.declare_handlers(handlers)
    return queue
