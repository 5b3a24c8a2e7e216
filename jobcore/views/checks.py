"""``jobcore check``: service-level rules over one stats read, for cron, a
Kubernetes probe or Nagios. Pure: the rules are parsed here and judged against
a QueueStats; the command reads the stats and prints."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from jobcore.errors import JobcoreError
from jobcore.records import QueueStats, TypeStats

Rule = Literal["max_age", "max_pending", "max_dead", "served"]
ANY = "*"
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


class BadRule(JobcoreError):
    """A rule that does not read (a usage error: said before connecting)."""


def duration(text: str) -> float:
    """Seconds from ``30s``, ``5m``, ``1h30m``, ``250ms`` or a plain number of seconds."""
    t = text.strip().lower()
    try:
        value = float(t)
    except ValueError:
        parts = _PART.findall(t)
        if not parts or "".join(n + u for n, u in parts) != t:
            raise BadRule(f"{text!r} is not a duration (30s, 5m, 1h, 1h30m, 250ms)") from None
        value = sum(float(n) * _UNITS[u] for n, u in parts)
    if value < 0:
        raise BadRule(f"{text!r} is not a duration: it is negative")
    return value


@dataclass(frozen=True, slots=True)
class Limit:
    rule: Rule
    job_type: str  # a type, or * for every type
    limit: float  # seconds for max_age, jobs otherwise; 1 (a live worker) for served


def parse_limit(rule: Rule, text: str) -> Limit:
    """``TYPE=VALUE`` of --max-age (a duration), --max-pending or --max-dead (a count)."""
    job_type, eq, value = text.rpartition("=")
    flag = "--" + rule.replace("_", "-")
    if not eq or not job_type:
        raise BadRule(f"{flag} takes TYPE=VALUE (TYPE may be * for every type), got {text!r}")
    if rule == "max_age":
        return Limit(rule, job_type, duration(value))
    if not value.isdigit():
        raise BadRule(f"{flag} {text!r}: the limit must be a whole number of jobs")
    return Limit(rule, job_type, int(value))


@dataclass(frozen=True, slots=True)
class Breach:
    job_type: str
    rule: Rule
    value: float
    limit: float

    def line(self) -> str:
        if self.rule == "served":
            return f"{self.job_type}: no live worker serves it"
        if self.rule == "max_age":
            return f"{self.job_type}: the oldest waiting job is {_secs(self.value)} old (limit {_secs(self.limit)})"
        what = "waiting" if self.rule == "max_pending" else "dead"
        return f"{self.job_type}: {self.value:,.0f} jobs {what} (limit {self.limit:,.0f})"

    def to_dict(self) -> dict[str, object]:
        return {"type": self.job_type, "rule": self.rule, "value": self.value, "limit": self.limit}


def _secs(s: float) -> str:
    if s < 120:
        return f"{s:.1f} s" if s < 10 else f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def _value(rule: Rule, t: TypeStats) -> float:
    if rule == "max_age":
        return t.oldest_pending_age or 0.0
    if rule == "max_pending":
        return t.pending
    if rule == "max_dead":
        return t.dead
    return t.served_by


class UnknownTypes(JobcoreError):
    """A rule names a type the queue does not know: the check cannot tell."""


def judge(stats: QueueStats, limits: Sequence[Limit]) -> list[Breach]:
    """Every breach of ``limits``, by type then rule. A rule for one type wins
    over the same rule for ``*``. Raises UnknownTypes for a type never seen."""
    unknown = sorted({lim.job_type for lim in limits if lim.job_type != ANY and lim.job_type not in stats.types})
    if unknown:
        known = ", ".join(sorted(stats.types)) or "none"
        raise UnknownTypes(f"no job type {', '.join(map(repr, unknown))} in this queue (known: {known})")
    chosen: dict[tuple[str, Rule], Limit] = {}
    for lim in limits:
        targets = stats.types if lim.job_type == ANY else [lim.job_type]
        for t in targets:
            if lim.job_type != ANY or (t, lim.rule) not in chosen or chosen[t, lim.rule].job_type == ANY:
                chosen[t, lim.rule] = lim
    breaches = []
    for (t, rule), lim in sorted(chosen.items()):
        value = _value(rule, stats.types[t])
        if (value < lim.limit) if rule == "served" else (value > lim.limit):
            breaches.append(Breach(t, rule, value, lim.limit))
    return breaches
