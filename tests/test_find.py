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
    assert "cancel requested of worker w1" in CancelResult("requested", f).message
    assert "cannot be interrupted" in CancelResult("requested", f, sync=True).message
    gone = FoundJob("not_found", str(ID))
    assert gone.describe() == "not found: processed and not kept, or never enqueued"
    assert "finished (processed and not kept) or was never enqueued" in CancelResult("finished", gone).message
    assert "pending" in CancelResult("pending", FoundJob("pending", str(ID), "launch", "2-0")).message
