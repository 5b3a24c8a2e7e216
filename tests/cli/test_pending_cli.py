"""`jobcore pending TYPE` (issue 21): pages, filters, JSON, and one-line refusals."""

from __future__ import annotations

import json

from jobcore import Identity, Job, SyncQueue

from .test_cli import jc


def test_pending_pages_filters_and_prints_json(cli_env: dict[str, str], redis_url: str) -> None:
    with SyncQueue(redis_url) as q:
        ids = q.enqueue_many(
            [
                Job(
                    type="launch",
                    args={"n": n},
                    account_id=1 + n % 2,
                    identity=Identity(account_number="a", org_id="org-9"),
                )
                for n in range(5)
            ]
        )
    res = jc(cli_env, "pending", "launch", "--limit", "2", url=redis_url)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 2 and str(ids[0]) in lines[0] and str(ids[1]) in lines[1]
    assert "account_id=1" in lines[0] and "org_id=org-9" in lines[0] and "args={'n': 0}" in lines[0]
    assert "--after " in res.stderr
    after = res.stderr.split("--after ")[1].split()[0]
    rows = json.loads(jc(cli_env, "pending", "launch", "--json", "--after", after, url=redis_url).stdout)
    assert [r["id"] for r in rows] == [str(i) for i in ids[2:]]
    assert set(rows[0]) == {
        "id", "entry", "job_type", "account_id", "account_number", "org_id", "reservation_id", "enqueued_at", "args",
        "problem",
    }  # fmt: skip
    assert rows[0]["args"] == {"n": 2} and rows[0]["entry"] and rows[0]["enqueued_at"]
    mine = json.loads(jc(cli_env, "pending", "launch", "--account", "2", "--json", url=redis_url).stdout)
    assert [r["args"]["n"] for r in mine] == [1, 3]
    none = jc(cli_env, "pending", "launch", "--org", "nobody", url=redis_url)
    assert none.returncode == 0 and "no job of 'launch' waits that matches" in none.stdout


def test_pending_refuses_an_unknown_type_and_bad_flags_in_one_line(cli_env: dict[str, str], redis_url: str) -> None:
    with SyncQueue(redis_url) as q:
        q.enqueue(Job(type="launch", args={"n": 0}))
    res = jc(cli_env, "pending", "lanch", url=redis_url)
    assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1 and "lanch" in res.stderr
    bad = jc(cli_env, "pending", "launch", "--account", "forty", url=redis_url)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_pending_delete_by_id_filter_and_all_asks_first(cli_env: dict[str, str], redis_url: str) -> None:
    with SyncQueue(redis_url) as q:
        ids = q.enqueue_many([Job(type="launch", args={"n": n}, account_id=1 + n % 2) for n in range(6)])
    refused = jc(cli_env, "pending", "delete", "launch", "--all", url=redis_url)  # not a terminal, no --yes
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1 and "--yes" in refused.stderr
    by_id = jc(cli_env, "pending", "delete", "launch", str(ids[0]), str(ids[1])[:8], "--yes", url=redis_url)
    assert by_id.returncode == 0 and "deleted 2 waiting job(s) of 'launch'" in by_id.stdout, by_id.stderr
    by_account = jc(cli_env, "pending", "delete", "launch", "--account", "2", "--yes", "--json", url=redis_url)
    assert json.loads(by_account.stdout) == {"deleted": 2}  # 3 and 5
    left = json.loads(jc(cli_env, "pending", "launch", "--json", url=redis_url).stdout)
    assert [r["args"]["n"] for r in left] == [2, 4]
    everything = jc(cli_env, "pending", "delete", "launch", "--all", "--yes", "--json", url=redis_url)
    assert json.loads(everything.stdout) == {"deleted": 2}
    # Usage: exit 2 before connecting.
    for bad in (
        ["pending", "delete", "launch"],
        ["pending", "delete", "launch", str(ids[2]), "--all"],
        ["pending", "launch", "--all"],
        ["pending", "launch", "other"],
    ):
        res = jc(cli_env, *bad, url=redis_url)
        assert res.returncode == 2 and "Traceback" not in res.stderr, (bad, res.stderr)


def test_types_remove_refuses_while_jobs_wait_then_retires_a_typo(cli_env: dict[str, str], redis_url: str) -> None:
    with SyncQueue(redis_url) as q:
        q.enqueue(Job(type="example.provision", args={"n": 1}))
    busy = jc(cli_env, "types", "remove", "example.provision", "--yes", url=redis_url)
    assert busy.returncode == 1 and len(busy.stderr.strip().splitlines()) == 1
    assert "1 job(s) waiting" in busy.stderr and "pending delete example.provision --all" in busy.stderr
    asked = jc(cli_env, "types", "remove", "example.provision", url=redis_url)  # not a terminal, no --yes
    assert asked.returncode == 1 and "--yes" in asked.stderr
    jc(cli_env, "pending", "delete", "example.provision", "--all", "--yes", url=redis_url)
    done = jc(cli_env, "types", "remove", "example.provision", "--yes", url=redis_url)
    assert done.returncode == 0 and "removed type 'example.provision'" in done.stdout, done.stderr
    assert "example.provision" not in jc(cli_env, "stats", url=redis_url).stdout
    assert "example.provision" not in jc(cli_env, "types", url=redis_url).stdout
    again = jc(cli_env, "types", "remove", "example.provision", "--yes", url=redis_url)
    assert again.returncode == 1 and "unknown job type" in again.stderr
    assert jc(cli_env, "types", "rm", "x", url=redis_url).returncode == 2


def test_audit_lists_who_did_what_with_actor_from_the_flag_or_the_environment(
    cli_env: dict[str, str], redis_url: str
) -> None:
    with SyncQueue(redis_url) as q:
        q.enqueue(Job(type="launch", args={"n": 0}))
    assert jc(cli_env, "--actor", "alice", "pause", "launch", url=redis_url).returncode == 0
    assert jc(cli_env, "resume", "launch", "--actor", "bob", url=redis_url).returncode == 0  # after the command too
    assert jc({**cli_env, "JOBCORE_ACTOR": "carol"}, "pause", "nope", url=redis_url).returncode == 1
    rows = json.loads(jc(cli_env, "audit", "--json", url=redis_url).stdout)
    assert [(r["actor"], r["action"], r["type"]) for r in rows] == [
        ("carol", "pause", "nope"),
        ("bob", "resume", "launch"),
        ("alice", "pause", "launch"),
    ]
    assert set(rows[0]) == {"at", "actor", "action", "type", "target", "count", "outcome"}
    assert rows[0]["outcome"].startswith("refused: unknown job type")
    text = jc(cli_env, "audit", "--type", "launch", url=redis_url).stdout.splitlines()
    assert len(text) == 2 and "bob  resume launch: ok" in text[0] and "alice  pause launch: ok" in text[1]
