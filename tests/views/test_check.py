"""`jobcore check` (issue 22): one line per breach and exit 1, exit 0 when every
rule holds, exit 2 when it cannot tell (Redis unreachable, an unknown type, a
rule that does not read); `*` for every type; --json."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from jobcore import Job, SyncQueue
from jobcore.records import QueueStats, TypeStats
from jobcore.views.checks import ANY, BadRule, Limit, UnknownTypes, duration, judge, parse_limit
from tests.support.cli import run_cli


def stats(**types: TypeStats) -> QueueStats:
    return QueueStats(types=dict(types), workers=0, taken_at=datetime.now(tz=UTC))


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("250ms", 0.25), ("12", 12)]
)
def test_durations_read_as_people_write_them(text: str, seconds: float) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "5 minutes", "1x", "", "-5"])
def test_a_duration_that_does_not_read_is_refused(text: str) -> None:
    with pytest.raises(BadRule):
        duration(text)


def test_a_rule_for_one_type_wins_over_the_rule_for_every_type() -> None:
    s = stats(
        launch=TypeStats("launch", pending=50, oldest_pending_age=90.0, served_by=1),
        email=TypeStats("email", pending=5, oldest_pending_age=10.0),
    )
    limits = [parse_limit("max_age", "*=1m"), parse_limit("max_age", "launch=2m"), parse_limit("max_pending", "*=10")]
    got = judge(s, [*limits, Limit("served", ANY, 1)])
    assert [(b.job_type, b.rule, b.value, b.limit) for b in got] == [
        ("email", "served", 0, 1),
        ("launch", "max_pending", 50, 10),
    ]
    assert got[1].line() == "launch: 50 jobs waiting (limit 10)"
    assert judge(s, [parse_limit("max_age", "launch=1m")])[0].line() == (
        "launch: the oldest waiting job is 90 s old (limit 60 s)"
    )
    with pytest.raises(UnknownTypes, match="'lanch'"):
        judge(s, [parse_limit("max_dead", "lanch=0")])
    with pytest.raises(BadRule, match="TYPE=VALUE"):
        parse_limit("max_dead", "launch")
    with pytest.raises(BadRule, match="whole number"):
        parse_limit("max_pending", "launch=many")


def check(env: dict[str, str], url: str, *args: str) -> tuple[int, str, str]:
    res = run_cli(["-q", "--url", url, "check", *args], env, timeout=30)
    return res.returncode, res.stdout, res.stderr


def test_check_exit_codes_and_lines(cli_env: dict[str, str], redis_url: str) -> None:
    with SyncQueue(redis_url) as q:
        q.enqueue_many([Job(type="launch", args={"n": n}) for n in range(3)])
    code, out, err = check(cli_env, redis_url, "--max-pending", "launch=2", "--served", "launch")
    assert code == 1 and err == ""
    assert out.splitlines() == ["BREACH launch: 3 jobs waiting (limit 2)", "BREACH launch: no live worker serves it"]
    code, out, _ = check(cli_env, redis_url, "--max-pending", "*=10", "--max-age", "*=1h", "--max-dead", "launch=0")
    assert code == 0 and out.startswith("OK: 3 rule(s) hold over 1 type(s)")
    code, out, _ = check(cli_env, redis_url, "--all-served", "--json")
    assert code == 1
    assert json.loads(out) == {"ok": False, "breaches": [{"type": "launch", "rule": "served", "value": 0, "limit": 1}]}
    code, out, err = check(cli_env, redis_url, "--max-pending", "lanch=1")
    assert code == 2 and out == "" and "'lanch'" in err and len(err.splitlines()) == 1
    code, _, err = check(cli_env, "redis://127.0.0.1:1/0", "--all-served")
    assert code == 2 and "unreachable" in err and len(err.splitlines()) == 1
    code, _, err = check(cli_env, redis_url, "--max-age", "launch=soon")
    assert code == 2 and "not a duration" in err
    code, _, err = check(cli_env, redis_url)
    assert code == 2 and "give at least one rule" in err
