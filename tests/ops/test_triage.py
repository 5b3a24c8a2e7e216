"""The failure normaliser and grouping (jobcore.ops.triage): pure, no backend."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jobcore.ops.triage import REASON_MAX, group_failures, group_key, normalise
from jobcore.records import make_bad_job

TRACEBACK = 'Traceback (most recent call last):\n  File "svc.py", line 12, in launch\n    raise {}\n{}'


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (TRACEBACK.format("x", "TimeoutError: account 42 took 31.2s"), ("TimeoutError", "account <n> took <n>s")),
        ("TimeoutError: account 7 took 30.1s\n", ("TimeoutError", "account <n> took <n>s")),
        ("KeyError: 'reservation'", ("KeyError", "<str>")),
        ('ValueError: bad value "x y" for -3', ("ValueError", "bad value <str> for <n>")),
        ("ConnectionError: 10.0.0.12:6379 refused", ("ConnectionError", "<ip> refused")),
        ("LookupError: job 1b4e28ba-2fa1-11d2-883f-0016d3cca427 gone", ("LookupError", "job <id> gone")),
        ("LookupError: job 1b4e28ba2fa111d2883f0016d3cca427 gone", ("LookupError", "job <id> gone")),
        (
            "RuntimeError: object at 0x7f3a2b10 and sha 9f86d081884c7d65",
            ("RuntimeError", "object at <hex> and sha <hex>"),
        ),
        ("StaleError: entry 1700000000123-4@2 moved", ("StaleError", "entry <entry> moved")),
        (
            "requests.exceptions.ConnectionError: read timed out",
            ("requests.exceptions.ConnectionError", "read timed out"),
        ),
        ("asyncio.exceptions.CancelledError", ("asyncio.exceptions.CancelledError", "")),
        ("timed out after 30s", (None, "timed out after <n>s")),
        ("delivered 6 times, more than max_attempts=5", (None, "delivered <n> times, more than max_attempts=<n>")),
        ("cancelled by operator", (None, "cancelled by operator")),
        ("launching t3.small   for\taccount  9", (None, "launching t3.small for account <n>")),
        ("", (None, "")),
        # An apostrophe inside a word opens no quoted value (issue 19 item 4).
        ("ValueError: can't parse 'abc' for user's 'x'", ("ValueError", "can't parse <str> for user's <str>")),
        ('KeyError: "it\'s"', ("KeyError", "<str>")),
        ("ValueError: got b'\\x00' and rb\"x\" from Bob's", ("ValueError", "got <str> and <str> from Bob's")),
        ("ValueError: 'it\\'s \"x\"' isn't known", ("ValueError", "<str> isn't known")),
        (
            # What workers before this release wrote for an unknown field.
            "args carry field(s) 'region' that this worker's V1 does not know (a newer producer? deploy "
            "workers first, then requeue; or register the type with unknown_fields='ignore')",
            (
                None,
                "args carry field(s) <str> that this worker's V1 does not know (a newer producer? deploy "
                "workers first, then requeue; or register the type with unknown_fields=<str>)",
            ),
        ),
        # Field names in backticks (msgspec's and jobcore's own) are the cause, kept.
        (
            "args do not fit LaunchArgs: Object missing required field `reservation_id`",
            (None, "args do not fit LaunchArgs: Object missing required field `reservation_id`"),
        ),
    ],
)
def test_normalise(reason: str, expected: tuple[str | None, str]) -> None:
    assert normalise(reason) == expected


def test_a_long_message_is_cut_to_a_label() -> None:
    exc, reason = normalise("ValueError: " + "word " * 200)
    assert exc == "ValueError" and len(reason) == REASON_MAX and reason.endswith("…")


def test_group_key_is_stable_and_tells_type_and_cause_apart() -> None:
    key = group_key("launch", "TimeoutError", "account <n> took <n>s")
    assert key == group_key("launch", "TimeoutError", "account <n> took <n>s")
    assert len(key) == 8 and int(key, 16) >= 0
    assert key == "16412714"  # the same in every process and release: a key shown today works tomorrow
    assert key != group_key("other", "TimeoutError", "account <n> took <n>s")
    assert key != group_key("launch", None, "account <n> took <n>s")


def test_group_failures_counts_orders_and_keeps_the_newest_example() -> None:
    rows = [
        make_bad_job("launch", f"17000000000{i:02d}-0", reason, b"", 1, "w")
        for i, reason in enumerate(
            [
                "TimeoutError: account 42 took 31.2s",
                "KeyError: 'a'",
                "TimeoutError: account 7 took 30.1s",
                "TimeoutError: account 9 took 29.0s",
            ]
        )
    ]
    timeouts, keys = group_failures("failed", rows)
    assert (timeouts.count, keys.count) == (3, 1)
    assert timeouts.refs == ("1700000000003-0", "1700000000002-0", "1700000000000-0")
    assert timeouts.example is rows[3] and timeouts.newest == datetime.fromtimestamp(1700000000.003, tz=UTC)
    assert timeouts.label == "TimeoutError: account <n> took <n>s" and keys.label == "KeyError: <str>"
    assert timeouts.to_dict()["refs"] == list(timeouts.refs) and timeouts.to_dict()["which"] == "failed"
    assert group_failures("dead", []) == []
