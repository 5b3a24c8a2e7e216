"""Rolling deploys: a job whose args carry fields the worker's type does not know
is dead-lettered with them named (unless the type opts in to ignoring them), and
live workers that disagree on a type's args schema are shown in stats, `types`
and the console."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from typing import TypedDict

import msgspec
import pytest

import jobcore
from jobcore import Handlers, Job, UnknownArgsFields, Worker
from jobcore.demo import LaunchArgs
from jobcore.demo import handlers as demo_handlers
from jobcore.memory import MemoryQueue
from jobcore.model import encode_args, encode_job, field_names, unknown_fields
from jobcore.schema import check_args

from .helpers import plant, running, wait_until


class V1(msgspec.Struct):
    n: int


class V2(msgspec.Struct):
    n: int
    region: str = "us"


class Renamed(msgspec.Struct, rename="camel"):
    first_name: str


def test_unknown_fields_names_the_extra_fields() -> None:
    assert unknown_fields(encode_args(V2(1, "eu")), V1) == ["region"]
    assert unknown_fields(encode_args(V1(1)), V1) == []
    assert unknown_fields(encode_args(V1(1)), V2) == []  # fewer fields: defaults fill them
    assert unknown_fields(encode_args({"firstName": "a"}), Renamed) == []  # encoded names count
    assert unknown_fields(encode_args({"firstName": "a", "x": 1}), Renamed) == ["x"]
    big = {f"k{i}": i for i in range(40)}  # a map16 header
    assert unknown_fields(encode_args({"n": 1, **big}), V1) == sorted(big)
    assert unknown_fields(encode_args({"n": 1, "x": 2}), dict) == []  # any map fits a dict
    assert unknown_fields(b"\x81\xa1", V1) == []  # truncated: decoding says what is wrong


async def _value(v: bool) -> bool:
    return v


def v1_handlers(seen: list[V1], unknown: str = "dead") -> Handlers:
    h = Handlers()

    @h.handler("launch", V1, unknown_fields=unknown)  # type: ignore[arg-type]
    async def launch(job: Job[V1]) -> None:
        seen.append(job.args)

    return h


async def test_a_newer_producers_field_is_never_dropped_in_silence(queue: jobcore.Queue) -> None:
    seen: list[V1] = []
    await queue.enqueue(Job(type="launch", args=V2(n=1, region="eu")))
    await queue.enqueue(Job(type="launch", args=V1(n=2)))
    async with running(Worker(queue, v1_handlers(seen))):

        async def settled() -> bool:
            t = (await queue.stats()).types["launch"]
            return t.processed == 1 and t.dead == 1

        await wait_until(settled, timeout=10)
    assert seen == [V1(n=2)]
    (bad,) = await queue.dead("launch")
    assert (
        "args for 'launch' carry field(s) `region` that this worker's V1 does not know (its fields: `n`;" in bad.reason
    )
    assert bad.envelope is not None and bad.envelope.args_json() == {"n": 1, "region": "eu"}


async def test_a_type_can_opt_in_to_ignoring_unknown_fields(queue: jobcore.Queue) -> None:
    seen: list[V1] = []
    await queue.enqueue(Job(type="launch", args=V2(n=1, region="eu")))
    async with running(Worker(queue, v1_handlers(seen, "ignore"))):
        await wait_until(lambda: _value(seen == [V1(n=1)]), timeout=10)


async def test_live_workers_that_disagree_on_a_schema_are_shown(redis_url: str, cli_env: dict[str, str]) -> None:
    v2 = Handlers()

    @v2.handler("launch", V2)
    async def launch(job: Job[V2]) -> None:
        pass

    old, new = jobcore.connect(redis_url), jobcore.connect(redis_url)
    try:

        async def versions(n: int) -> bool:  # running() returns before the worker registers
            t = (await old.stats()).types.get("launch")
            return t is not None and t.schema_versions == n

        async with running(Worker(old, v1_handlers([]))):
            await wait_until(lambda: versions(1))
            async with running(Worker(new, v2)):
                await wait_until(lambda: versions(2))
                stats = await old.stats()
                assert stats.types["launch"].schema_versions == 2
                assert stats.to_dict()["types"]["launch"]["schema_versions"] == 2
                for command in (["stats"], ["types"]):
                    proc = await asyncio.create_subprocess_exec(
                        sys.executable, "-m", "jobcore", "--url", redis_url, *command,
                        env={**cli_env, "COLUMNS": "200"}, stdout=asyncio.subprocess.PIPE,
                        stderr=asyncio.subprocess.PIPE,
                    )  # fmt: skip
                    out, err = await asyncio.wait_for(proc.communicate(), 30)
                    assert proc.returncode == 0, err.decode()
                    text = " ".join(out.decode().split())
                    if command == ["stats"]:
                        assert "its live workers run 2 different args schemas (a rolling deploy?)" in text
                    else:
                        assert "live workers disagree: schema" in text and "on 1 worker(s)" in text
    finally:
        await old.close()
        await new.close()


@pytest.mark.parametrize("unknown", ["dead", "ignore"])
def test_registry_takes_only_dead_or_ignore(unknown: str) -> None:
    h = Handlers()
    h.register("t", lambda job: None, V1, unknown_fields=unknown)  # type: ignore[arg-type]
    assert h.get("t").unknown_fields == unknown
    with pytest.raises(ValueError, match="unknown_fields"):
        h.register("u", lambda job: None, V1, unknown_fields="drop")  # type: ignore[arg-type]


# ---- one rule for unknown fields: producer, published schema, worker (issue 19 item 1)

KNOWN = "(its fields: `count`, `instance_type`, `reservation_id`, `step_seconds`)"


class Tagged(msgspec.Struct, tag=True):
    n: int = 0


class Dict(TypedDict):
    n: int


@dataclasses.dataclass
class Data:
    n: int = 0


def test_unknown_fields_reads_every_name_whatever_the_count() -> None:
    # One field added, one (with a default) left out: the map is no larger than the type.
    typo = encode_args({"reservation_id": 8, "instance_typ": "m5.24xlarge"})
    assert unknown_fields(typo, LaunchArgs) == ["instance_typ"]
    assert unknown_fields(encode_args({"m": 1}), V2) == ["m"]
    assert unknown_fields(encode_args({}), V1) == []
    assert unknown_fields(encode_args(Tagged(1)), Tagged) == []  # its tag is one of its names
    assert unknown_fields(encode_args({"type": "Tagged", "x": 1}), Tagged) == ["x"]
    for kind in (Dict, Data):
        assert unknown_fields(encode_args({"n": 1}), kind) == []
        assert unknown_fields(encode_args({"x": 1}), kind) == ["x"]
    assert field_names(Renamed) == ("firstName",) and field_names(Renamed, "ignore") is None
    assert field_names(dict) is None


async def test_the_producer_refuses_an_unknown_field_by_name() -> None:
    q = MemoryQueue()
    q.declare("launch", LaunchArgs)
    typo = Job(type="launch", args={"reservation_id": 8, "instance_typ": "m5.24xlarge"})
    for send in (q.enqueue, lambda job: q.enqueue_many([Job(type="launch", args={"reservation_id": 1}), job])):
        with pytest.raises(UnknownArgsFields) as err:
            await send(typo)
        said = "args for 'launch' carry field(s) `instance_typ` that LaunchArgs does not know"
        assert str(err.value) == f"{said} {KNOWN}"
        assert err.value.fields == ["instance_typ"] and err.value.known == list(LaunchArgs.__struct_fields__)
    assert (await q.stats()).pending == 0
    # A type registered to ignore unknown fields takes them, at the producer too.
    loose = Handlers()
    loose.register("launch", lambda job: None, LaunchArgs, unknown_fields="ignore")
    q2 = MemoryQueue()
    q2.declare_handlers(loose)
    await q2.enqueue(typo)
    q3 = MemoryQueue()
    q3.declare_handlers(demo_handlers)
    with pytest.raises(UnknownArgsFields, match="`bogus`"):
        await q3.enqueue(Job(type="sleep", args={"seconds": 1, "bogus": 2}))


def test_the_published_schema_forbids_unknown_fields_unless_the_type_ignores_them() -> None:
    def target(schema: dict[str, object]) -> dict[str, object]:
        ref = str(schema["$ref"]).rsplit("/", 1)[1]
        return schema["$defs"][ref]  # type: ignore[index,no-any-return]

    for job_type in demo_handlers:
        assert target(demo_handlers.get(job_type).schema())["additionalProperties"] is False
    schema = demo_handlers.get("sleep").schema()
    with pytest.raises(UnknownArgsFields) as err:
        check_args("sleep", {"seconds": 15, "secnds": 3}, schema)
    assert (
        str(err.value)
        == "args for 'sleep' carry field(s) `secnds` that SleepArgs does not know (its fields: `seconds`)"
    )
    loose = Handlers()
    loose.register("launch", lambda job: None, V1, unknown_fields="ignore")
    assert "additionalProperties" not in target(loose.get("launch").schema())
    check_args("launch", {"n": 1, "region": "eu"}, loose.get("launch").schema())


async def test_the_worker_dead_letters_a_planted_unknown_field_by_name(queue: jobcore.Queue) -> None:
    """A producer that adds one field and drops another (with a default) sends a map
    no larger than the type: the worker reads its names, not its size."""
    seen: list[LaunchArgs] = []
    h = Handlers()

    @h.handler("launch", LaunchArgs)
    async def launch(job: Job[LaunchArgs]) -> None:
        seen.append(job.args)

    for args in (
        {"reservation_id": 8, "instance_typ": "m5.24xlarge"},
        {"reservation_id": 9, "instance_typ": "m5.large"},
        {"reservation_id": 8, "regoin": "eu"},
        {"reservation_id": 8, "count": 2, "zone": "a", "step_seconds": 0},
    ):
        await plant(queue, "launch", encode_job(Job(type="launch", args=args)))
    async with running(Worker(queue, h)):

        async def settled() -> bool:
            t = (await queue.stats()).types.get("launch")  # listed once the worker has registered
            return t is not None and t.dead == 4

        await wait_until(settled, timeout=10)
    assert seen == []
    reasons = sorted(b.reason for b in await queue.dead("launch"))
    said = "args for 'launch' carry field(s) `instance_typ` that this worker's LaunchArgs does not know"
    hint = "a typo, or a newer producer? deploy workers first, then requeue"
    assert reasons[0].startswith(f"{said} {KNOWN[:-1]}; {hint}")
    # The failure groups keep the field names (each its own cause) and read whole.
    groups = await queue.failure_groups("dead", "launch")
    labels = {g.label: g.count for g in groups}
    assert len(labels) == 3, labels
    prefix = "args for <str> carry field(s) `{}` that this worker's LaunchArgs does not know"
    assert [g.count for g in groups] == [2, 1, 1]
    assert groups[0].label.startswith(prefix.format("instance_typ"))
    assert {g.label[: len(prefix) + 2].split("`")[1] for g in groups} == {"instance_typ", "regoin", "zone"}
    for g in groups:  # whole words, then the cut a long label gets (triage.REASON_MAX)
        assert "LaunchArgs does not know (its fields: `count`, `instance_type`, " in g.label, g.label
