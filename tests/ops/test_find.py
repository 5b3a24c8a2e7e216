"""The find query words (jobcore/find.py): pure, no backend."""

from __future__ import annotations

import uuid

import pytest

from jobcore.errors import BadQuery
from jobcore.model import new_job_id
from jobcore.ops.find import CancelResult, FoundJob, JobQuery, parse_job_id, parse_query, uuid_time_ms

ID = uuid.UUID("0190c4e2-7a1b-8c3d-8e4f-0190c4e27a1b")
FIELDS = {
    "job_id": str(ID),
    "job_type": "launch",
    "account_id": 42,
    "account_number": "000123",
    "org_id": "org-9",
    "reservation_id": 777,
}


def test_every_key_word_reads_into_its_field_and_they_combine() -> None:
    q = parse_query(["account:42", "org:org-9", "acct:000123", "res:777", "type:launch"])
    want = JobQuery(account_id=42, org_id="org-9", account_number="000123", reservation_id="777", job_type="launch")
    assert q == want
    assert q.matches(**FIELDS)
    assert not q.matches(**{**FIELDS, "account_id": 43})
    assert not q.matches(**{**FIELDS, "reservation_id": None})
    assert parse_query(["account:42 type:launch"]) == JobQuery(account_id=42, job_type="launch")


def test_a_bare_id_is_a_whole_id_or_a_prefix_of_8_or_more_hex() -> None:
    assert parse_query([str(ID)]) == JobQuery(job_id=ID)
    assert parse_query([ID.hex.upper()]) == JobQuery(job_id=ID)
    assert parse_query(["0190c4e2"]) == JobQuery(id_prefix="0190c4e2")
    assert parse_query(["0190C4E2-7a1b"]) == JobQuery(id_prefix="0190c4e27a1b")
    assert parse_query(["0190c4e2"]).matches(**FIELDS)
    assert not parse_query(["0190c4e3"]).matches(**FIELDS)
    assert parse_query([str(ID), "account:42"]).matches(**FIELDS)
    assert not parse_query([str(uuid.uuid4())]).matches(**FIELDS)
    assert parse_job_id(str(ID)) == ID and parse_job_id("0190c4e2") == "0190c4e2"


@pytest.mark.parametrize(
    ("words", "says"),
    [
        (["nope:1"], "unknown find word 'nope:1'"),
        (["account:x"], "account: takes a whole number"),
        (["org:"], "org: needs a value"),
        (["0190c4e"], "too short: give at least 8 hex characters"),
        (["zzzzzzzzzz"], "not a job id"),
        (["account:1", "account:2"], "given once"),
        ([str(ID), "0190c4e2"], "given once"),
        ([], "nothing to find"),
    ],
)
def test_a_bad_word_is_one_clear_line(words: list[str], says: str) -> None:
    with pytest.raises(BadQuery) as err:
        parse_query(words)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_a_job_id_carries_its_time_only_when_it_is_version_8() -> None:
    assert uuid_time_ms(ID) == 0x0190C4E27A1B
    assert uuid_time_ms(uuid.uuid4()) is None
    assert uuid_time_ms(new_job_id()) is not None


def test_found_jobs_and_cancel_results_say_where_in_words() -> None:
    f = FoundJob("in_flight", str(ID), "launch", "1-0", 42, "000123", "org-9", 777, worker="w1")
    assert f.describe() == "in flight on worker w1 (entry 1-0)"
    assert f.log_fields() == FIELDS
    assert f.to_dict()["where"] == "in_flight"
    assert CancelResult("cancelled", f).message.startswith(f"job {ID} (launch) cancelled on worker w1: its handler was")
    assert "ran to its end" in CancelResult("ran_on", f).message
    assert "cannot be interrupted" in CancelResult("cancelling", f, sync=True).message
    said = CancelResult("requested", f, waited_s=2.5).message
    assert "cancel requested of worker w1" in said and "not yet confirmed" in said and "2.5 s" in said
    assert (
        "finished first on worker w1: processed" in CancelResult("finished", f, outcome="processed", asked=True).message
    )
    failed = FoundJob("failed", str(ID), "launch", "7-0", worker="w1")
    assert (
        "finished first on worker w1: failed (id 7-0)"
        in CancelResult("finished", failed, outcome="failed", asked=True).message
    )
    kept = FoundJob("failed", str(ID), "launch", "7-0", reason="Traceback\nKeyError: 1")
    said = CancelResult("finished", kept, outcome="failed").message
    assert said.endswith("is not in flight: it is failed (id 7-0): KeyError: 1; nothing was cancelled")
    assert "handed it back" in CancelResult("handed_back", f).message
    assert "pending" in CancelResult("pending", FoundJob("pending", str(ID), "launch", "2-0")).message


def test_not_found_never_says_processed_and_names_the_window() -> None:
    """No record of a processed job is kept: "not found" says what was searched
    and what the job may be, never that it was processed (issue 18, case 14)."""
    gone = FoundJob("not_found", str(ID))
    text = gone.describe()
    assert "processed" not in text
    assert "not found in flight, dead or failed, nor pending in the window (±10 s of the id's time)" in text
    assert "it may still wait" in text
    untimed = FoundJob("not_found", str(uuid.uuid4())).describe()
    assert "processed" not in untimed and "pending is not searched: the id carries no time" in untimed
    said = CancelResult("not_found", gone).message
    assert "processed" not in said and "may still wait" in said and "nothing was cancelled" in said
