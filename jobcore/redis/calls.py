"""What a failed Redis call means to the user, written once: ``guarded`` turns
wire errors into jobcore's errors, ``enqueue_error`` says whether a failed
write may have landed, ``checked_reads`` applies the read rule to a batch of
replies. Every check goes by the error's code, never its text."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, TypeVar

from jobcore.errors import ConnectionFailed, EnqueueError, JobcoreError, PermissionDenied, RedisRefused
from jobcore.model import decode_envelope
from jobcore.redis import resp
from jobcore.redis.transport import ReplicasNotConfirmed
from jobcore.url import redacted

T = TypeVar("T")


async def guarded(url: str, fn: Callable[[], Awaitable[T]]) -> T:
    """``fn()``, its failures as ConnectionFailed, PermissionDenied or RedisRefused."""
    try:
        return await fn()
    except resp.RespAuthError as exc:
        raise ConnectionFailed(
            f"Redis at {redacted(url)} refused the connection ({exc})", cause=str(exc), code=exc.code, reply=exc.reply
        ) from None
    except (resp.RespConnectionError, OSError) as exc:
        raise ConnectionFailed(f"Redis at {redacted(url)} is unreachable ({exc})", cause=str(exc)) from None
    except resp.RespError as exc:
        if exc.code == "NOPERM":
            raise PermissionDenied(f"permission denied for this Redis user ({exc})", reply=str(exc)) from None
        raise RedisRefused(f"Redis error: {exc}", code=exc.code, reply=str(exc)) from None


def enqueue_error(url: str, what: str, exc: Exception) -> Exception:
    """What to raise for a failed write: whether jobs may have landed (a lost
    connection cannot tell, an error reply can). Anything else is a bug: as is."""
    if isinstance(exc, ReplicasNotConfirmed):
        return EnqueueError(
            f"{what} not confirmed: {exc} (the write may or may not survive a failover; retry to be sure)"
        )
    if isinstance(exc, (resp.RespConnectionError, OSError)):
        return EnqueueError(f"{what} not enqueued (or not confirmed): Redis at {redacted(url)} is unreachable ({exc})")
    if isinstance(exc, resp.RespError):
        if exc.code == "NOPERM":
            return EnqueueError(f"{what} not enqueued: permission denied for this Redis user ({exc})")
        if exc.code == "LOADING":  # restarting: nothing was written
            return EnqueueError(f"{what} not enqueued: Redis at {redacted(url)} is unreachable while it loads ({exc})")
        return EnqueueError(f"{what} not enqueued: Redis error: {exc}")
    return exc


def partly_enqueued(
    by_type: dict[str, list[bytes]],
    chunk: int,
    refused: Mapping[tuple[str, int], Exception],
    lost: Mapping[tuple[str, int], tuple[str, resp.RespConnectionError]] | None = None,
    unconfirmed: tuple[int, int] | None = None,
) -> EnqueueError:
    """A batch some of whose add calls (``chunk`` payloads of a lane each, keyed
    by lane and first index) failed. Each is all or none: the ``refused`` calls'
    jobs were not stored, every other one was. On a cluster, ``lost`` are the
    calls a node failed to answer (down, or the connection lost: then they may
    have landed), by node; ``unconfirmed``: (acked, wanted) replicas of those
    stored. Ids are read back from the payloads (error path only)."""
    lost = lost or {}
    landed: list[uuid.UUID] = []
    not_landed: list[uuid.UUID] = []
    by_node: dict[str, list[int]] = {}  # per failed node: its jobs, and those that may have landed
    for name, payloads in by_type.items():
        for i, p in enumerate(payloads):
            span = (name, i - i % chunk)
            (not_landed if span in refused or span in lost else landed).append(decode_envelope(p).id)
            if span in lost:
                node, e = lost[span]
                counts = by_node.setdefault(f"{node} unreachable ({e})", [0, 0])
                counts[0] += 1
                counts[1] += 0 if e.unsent else 1
    reasons = [f"Redis error: {next(iter(refused.values()))}"] if refused else []
    reasons += [
        f"{node}: {k} job(s)" + (", which may have landed all the same (retry them anyway)" if maybe else "")
        for node, (k, maybe) in by_node.items()
    ]
    reason = "; ".join(reasons)
    n = len(landed) + len(not_landed)
    if not landed:
        return EnqueueError(f"{n} job(s) not enqueued: {reason}", not_landed=not_landed)
    late = (
        f" (not confirmed: only {unconfirmed[0]} of {unconfirmed[1]} replica(s) acknowledged them)"
        if unconfirmed
        else ""
    )
    return EnqueueError(
        f"{len(not_landed)} of {n} job(s) not enqueued ({reason}); the other {len(landed)} were{late}: "
        "retry only EnqueueError.not_landed",
        landed=landed,
        not_landed=not_landed,
    )


def first_error(replies: list[Any], allowed: Collection[str] = ()) -> resp.RespError | None:
    """The first error reply whose code is not one of ``allowed``."""
    for r in replies:
        if isinstance(r, resp.RespError) and r.code not in allowed:
            return r
    return None


def checked_reads(what: str, replies: list[Any]) -> list[Any]:
    """The read rule: a NOGROUP reply (no worker has read the type yet) reads as
    no rows; a WRONGTYPE reply (a key of ours holding something else: corrupt
    data) is left in place for the caller to show; NOPERM raises
    PermissionDenied, any other error JobcoreError."""
    for i, r in enumerate(replies):
        if isinstance(r, resp.RespError):
            if r.code == "NOPERM":
                raise PermissionDenied(f"{what}: permission denied for this Redis user ({r})", reply=str(r))
            if r.code == "NOGROUP":
                replies[i] = []
            elif r.code != "WRONGTYPE":
                raise JobcoreError(f"{what}: Redis error: {r}")
    return replies
