"""``connect(url)``: pick a backend by URL scheme."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from jobcore.display import redacted_url
from jobcore.keys import DEFAULT_NAMESPACE
from jobcore.local import resolve
from jobcore.queue import Queue
from jobcore.url import REDIS_SCHEMES, scheme_of

SCHEMES = (*REDIS_SCHEMES, "memory")


def connect(
    url: str | None = None,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    handlers: Any = None,
    allow_undeclared: bool = False,
    replicas: int | None = None,
    replica_timeout_ms: int | None = None,
    key_ttl: float | None = None,
) -> Queue:
    """Open a queue at ``redis://``, ``rediss://``, ``unix://`` (a single server,
    or a cluster node: detected), ``redis+cluster://h1:p1,h2:p2``,
    ``redis+sentinel://h1:26379,h2:26379/SERVICE[/DB]`` or ``memory://``.

    With no ``url``: $JOBCORE_URL, else the user's local server while it runs,
    else a Redis on localhost:6379 if one answers, else the local server, started
    (jobcore/local.py;
    the only case that does I/O here). Otherwise no I/O happens here; the first
    command reports an unreachable server.
    With ``handlers``, enqueue checks args against the registered types and
    refuses a type the registry lacks (unless ``allow_undeclared``). With
    ``replicas=N`` (or ``?replicas=N`` in the URL) an enqueue is confirmed only
    once N replicas have it (WAIT), else it raises EnqueueError. ``key_ttl``
    (seconds; ``?key_ttl_s=`` in the URL; 24 h by default): how long an
    enqueue-once key (``enqueue(job, key=...)``) holds.
    """
    if url is None:
        url = resolve(None).url
    scheme = scheme_of(url)
    queue: Queue
    if scheme == "memory":
        from jobcore.memory import MemoryQueue

        queue = MemoryQueue(url)
    elif scheme in REDIS_SCHEMES:
        from jobcore.redis.backend import RedisQueue

        queue = RedisQueue(url, namespace, replicas=replicas, replica_timeout_ms=replica_timeout_ms)
    else:
        raise ValueError(
            f"unsupported queue URL {redacted_url(url)!r}: use redis://, rediss://, unix://, redis+cluster://, "
            "redis+sentinel:// or memory://"
        )
    queue.key_ttl_ms = _key_ttl_ms(url, key_ttl, queue.key_ttl_ms)
    if handlers is not None:
        queue.declare_handlers(handlers, allow_undeclared=allow_undeclared)
    return queue


def _key_ttl_ms(url: str, key_ttl: float | None, default_ms: int) -> int:
    if key_ttl is None:
        given = parse_qs(urlsplit(url).query).get("key_ttl_s")
        if not given:
            return default_ms
        try:
            key_ttl = float(given[-1])
        except ValueError:
            raise ValueError(f"key_ttl_s in the queue URL must be a number of seconds, got {given[-1]!r:.40}") from None
    if not 1 <= key_ttl <= 366 * 86400:
        raise ValueError(f"the enqueue key window must be from 1 s to 366 days, got {key_ttl} s")
    return int(key_ttl * 1000)
