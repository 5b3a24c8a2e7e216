"""Reading Redis replies: the few conversions every reader needs, written once.
Text planted in Redis need not be UTF-8 or even text; none of these raise on it."""

from __future__ import annotations

from typing import Any


def text(value: Any) -> str:
    """A reply as text; bytes that are not UTF-8 show U+FFFD."""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def pairs(flat: Any) -> list[tuple[Any, Any]]:
    """A flat ``[k1, v1, k2, v2, ...]`` reply as pairs (an odd last item is dropped)."""
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat) - 1, 2)]


def field_map(flat: Any) -> dict[bytes, bytes]:
    """HGETALL / a stream entry's fields as a dict (RESP3 gives a dict already)."""
    if isinstance(flat, dict):
        return flat
    return dict(pairs(flat))


def score_pairs(flat: Any) -> list[tuple[Any, float]]:
    """ZRANGE ... WITHSCORES as (member, score) pairs."""
    return [(m, float(score)) for m, score in pairs(flat)]


def is_error(reply: Any, code: str) -> bool:
    """Whether a reply is an error reply with this code (``WRONGTYPE``, ``NOGROUP``, ...)."""
    return getattr(reply, "code", None) == code and isinstance(reply, Exception)
