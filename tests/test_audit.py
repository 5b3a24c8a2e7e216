"""The audit trail (issue 21): every operator action, refused ones too, with its
actor, on every backend and topology."""

from __future__ import annotations

import pytest

import jobcore
from jobcore import Job
from jobcore.errors import TypeInUse, UnknownJobType
from jobcore.records import Outcome


async def test_every_operator_action_is_recorded_with_its_actor_newest_first(queue: jobcore.Queue) -> None:
    queue.actor = "ops-1"
    await queue.register_types({"launch": {"type": "object"}})
    ids = await queue.enqueue_many([Job(type="launch", args={"n": n}, account_id=n) for n in range(4)])
    await queue.pause("launch")
    await queue.resume("launch")
    got = await queue.fetch("w1", ["launch"], 2, 0)
    await queue.settle("w1", [Outcome("launch", d.entry_id, "dead", 1, "boom") for d in got])
    assert await queue.requeue("dead", "launch") == 2
    assert await queue.delete_pending("launch", ids=[ids[3]]) == 1
    await queue.set_fair("launch", True)
    await queue.set_limit("launch", per_account=2)
    with pytest.raises(TypeInUse):
        await queue.remove_type("launch")
    queue.actor = "ops-2"
    with pytest.raises(UnknownJobType):
        await queue.pause("lanch")
    records = await queue.audit()
    assert [(r.actor, r.action, r.job_type) for r in records] == [
        ("ops-2", "pause", "lanch"),
        ("ops-1", "remove type", "launch"),
        ("ops-1", "limit", "launch"),
        ("ops-1", "fair", "launch"),
        ("ops-1", "delete pending", "launch"),
        ("ops-1", "requeue", "launch"),
        ("ops-1", "resume", "launch"),
        ("ops-1", "pause", "launch"),
    ]
    refused = records[0]
    assert refused.outcome.startswith("refused: unknown job type 'lanch'") and refused.count is None
    assert records[1].outcome.startswith("refused:") and "wait" in records[1].outcome
    requeued = records[5]
    assert (requeued.count, requeued.outcome, requeued.target) == (2, "ok", "which=dead")
    assert records[4].count == 1 and str(ids[3]) in records[4].target
    assert "per_account=2" in records[2].target
    assert all(r.at.year >= 2026 for r in records)
    assert [r.action for r in await queue.audit(limit=2)] == ["pause", "remove type"]
    assert [r.action for r in await queue.audit(job_type="lanch")] == ["pause"]
    assert records[0].to_dict()["type"] == "lanch"


async def test_a_record_that_cannot_be_written_never_fails_the_action(queue: jobcore.Queue) -> None:
    await queue.register_types({"launch": {"type": "object"}})
    await queue.enqueue(Job(type="launch", args={}))

    async def broken(fields: dict[str, str], keep: int) -> None:
        raise ConnectionError("the audit stream is out of reach")

    queue._audit_write = broken  # type: ignore[method-assign]
    await queue.pause("launch")
    assert (await queue.stats()).types["launch"].paused
