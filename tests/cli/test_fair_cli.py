"""`jobcore fair` and `jobcore limit` against a real Redis (issue 20)."""

from __future__ import annotations

import json

from .test_cli import jc

H = ["--handlers", "jobcore.demo:handlers"]


def test_fair_and_limit_show_set_and_refuse_with_one_line(cli_env: dict[str, str], redis_url: str) -> None:
    env = cli_env
    unknown = jc(env, "fair", "sleep", url=redis_url)
    assert unknown.returncode == 1 and unknown.stderr.count("\n") == 1 and "unknown job type 'sleep'" in unknown.stderr
    assert (
        jc(env, "enqueue", "sleep", '{"seconds": 0}', "--count", "3", "--account-id", "7", *H, url=redis_url).returncode
        == 0
    )
    plain = jc(env, "limit", "sleep", "--per-account", "2", url=redis_url)
    assert plain.returncode == 1 and "sleep is not fair" in plain.stderr and plain.stderr.count("\n") == 1
    assert "not fair (first in, first out)" in jc(env, "fair", "sleep", url=redis_url).stdout
    on = jc(env, "fair", "sleep", "on", url=redis_url)
    assert on.returncode == 0 and "sleep: fair (accounts take turns); no limit per account" in on.stdout
    assert "3 job(s) not yet sorted by account" in on.stdout
    assert jc(env, "limit", "sleep", "--per-account", "2", url=redis_url).returncode == 0
    own = jc(env, "limit", "sleep", "--account", "42", "--max", "10", "--weight", "3", url=redis_url)
    assert own.returncode == 0
    assert own.stdout.splitlines() == [
        "sleep: at most 2 of an account's jobs run at once",
        "  account 42: at most 10",
        "  account 42: weight 3",
    ]
    data = json.loads(jc(env, "fair", "sleep", "--json", url=redis_url).stdout)
    assert data["fair"] is True and data["per_account"] == 2 and data["limits"] == {"42": 10}
    assert data["weights"] == {"42": 3} and data["pending"] == 3 and data["not_taken_in"] == 3
    stats = jc(env, "stats", url=redis_url).stdout
    assert any(line.split()[:2] == ["sleep", "fair"] for line in stats.splitlines())
    usage = jc(env, "limit", "sleep", "--max", "3", url=redis_url)
    assert usage.returncode == 2 and "give --account ID" in usage.stderr
    bad = jc(env, "limit", "sleep", "--per-account", "-1", url=redis_url)
    assert bad.returncode == 2
    off = jc(env, "fair", "sleep", "off", url=redis_url)
    assert off.returncode == 0 and "not fair" in off.stdout
