"""`jobcore enqueue TYPE ARGS --key K` (issue 21): a second call adds nothing
and says which job holds the key; the key's window from the URL; misuse refused."""

from __future__ import annotations

import json

from jobcore import SyncQueue

from .test_cli import jc


def test_enqueue_with_a_key_twice_makes_one_job_and_says_so(cli_env: dict[str, str], redis_url: str) -> None:
    first = jc(cli_env, "enqueue", "order", '{"n": 1}', "--no-validate", "--key", "order-77", url=redis_url)
    assert first.returncode == 0 and "enqueued order job" in first.stdout and "'order-77'" in first.stdout
    job_id = first.stdout.split("job ")[1].split()[0]
    again = jc(cli_env, "enqueue", "order", '{"n": 2}', "--no-validate", "--key", "order-77", "--json", url=redis_url)
    assert again.returncode == 0 and json.loads(again.stdout) == [job_id]
    said = jc(cli_env, "enqueue", "order", '{"n": 3}', "--no-validate", "--key", "order-77", url=redis_url)
    assert f"order job {job_id} already holds key 'order-77': nothing enqueued" in said.stdout
    args = ["enqueue", "order", '{"n": 4}', "--no-validate", "--key", "order-77", "--account-id", "2"]
    mine = jc(cli_env, *args, url=redis_url)
    assert "enqueued order job" in mine.stdout
    with SyncQueue(redis_url) as q:
        assert q.stats().types["order"].pending == 2


def test_a_key_goes_with_one_job_and_the_window_with_the_url(cli_env: dict[str, str], redis_url: str) -> None:
    many = jc(cli_env, "enqueue", "order", "{}", "--no-validate", "--key", "k", "--count", "3", url=redis_url)
    assert many.returncode == 2 and "--key enqueues one job" in many.stderr
    assert len(many.stderr.strip().splitlines()) == 1
    bad = jc(cli_env, "enqueue", "order", "{}", "--no-validate", "--key", "k", url=redis_url + "?key_ttl_s=soon")
    assert bad.returncode != 0 and "key_ttl_s in the queue URL must be a number" in bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
