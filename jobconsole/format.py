"""Turning numbers and times into short, exact strings for the tables."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from jobcore import History
from jobcore.display import duration, preview

SPARK_CHARS = "▁▂▃▄▅▆▇█"


def count(n: int) -> str:
    """Exact, with thousands separators: numbers an operator can trust."""
    return f"{n:,}"


def rate(per_second: float | None) -> str:
    if per_second is None:
        return "-"
    if per_second >= 100:
        return f"{per_second:,.0f}"
    return f"{per_second:.1f}"


def clock(at: datetime) -> str:
    """UTC wall-clock time, like the JSON logs."""
    return at.astimezone(UTC).strftime("%H:%M:%S")


def stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def short_id(job_id: str | None) -> str:
    return job_id[:8] if job_id else "?"


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def pretty_json(data: Any, whole: str = "") -> str:
    """Indented JSON, with what json leaves raw (DEL, C1 controls, bidi overrides) escaped;
    a bounded preview of it when long (``whole``: the command that prints it all)."""
    text = json.dumps(data, indent=2, sort_keys=True, default=str, ensure_ascii=False)
    return preview(text, multiline=True, whole=whole)


def whole_command(job_id: str | None) -> str:
    """The command that prints a job whose preview was cut in full (its args, its reason)."""
    return f"jobcore find {job_id} --json" if job_id else ""


def sparkline(values: Sequence[float | None]) -> str:
    """One character per value, scaled to the largest; blank where there is no data yet."""
    known = [v for v in values if v is not None]
    top = max(known, default=0.0)
    out = []
    for v in values:
        if v is None:
            out.append(" ")
        elif top <= 0 or v <= 0:
            out.append(SPARK_CHARS[0])
        else:
            out.append(SPARK_CHARS[min(len(SPARK_CHARS) - 1, int(v / top * (len(SPARK_CHARS) - 1) + 0.5))])
    return "".join(out)


def per_minute(history: History | None, job_type: str, minutes: int, width: int) -> list[float | None]:
    """Jobs settled (processed + failed + dead) in the last ``minutes`` minutes of
    ``history``, added up into ``width`` equal slices, oldest first; None before
    the first read, zeros for a type with nothing kept."""
    if history is None:
        return [None] * width
    th = history.types.get(job_type)
    rows = th.rows[-minutes:] if th else ()
    values = [float(r.processed + r.failed + r.dead) for r in rows]
    values = [0.0] * (minutes - len(values)) + values
    return [sum(values[i * minutes // width : (i + 1) * minutes // width]) for i in range(width)]


def millis(ms: float | None) -> str:
    """A run time: 0.4ms, 12ms, 1.2s, 4m05s; "-" when nothing ran."""
    if ms is None:
        return "-"
    if ms < 10:
        return f"{ms:.1f}ms"
    if ms < 1000:
        return f"{ms:.0f}ms"
    return duration(ms / 1000)


BAR_CHARS = " ▁▂▃▄▅▆▇█"


def bars(values: Sequence[float | None], height: int) -> list[str]:
    """A bar chart ``height`` rows high, one column per value scaled to the largest
    (eighths of a row), top row first; a value above zero shows at least a sliver."""
    top = max((v for v in values if v is not None), default=0.0)
    levels = [0 if not v or top <= 0 else max(1, round(v / top * height * 8)) for v in values]
    rows = []
    for r in range(height):
        floor = (height - 1 - r) * 8
        rows.append("".join(BAR_CHARS[min(8, max(0, lv - floor))] for lv in levels))
    return rows
