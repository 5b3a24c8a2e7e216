"""Rolling deploys: a job whose args carry fields the worker's type does not know
is dead-lettered with them named (unless the type opts in to ignoring them), and
live workers that disagree on a type's args schema are shown in stats, `types`
and the console."""

from __future__ import annotations

import asyncio
import sys

import msgspec
import pytest

import jobcore
from jobcore import Handlers, Job, Worker
from jobcore.model import encode_args, unknown_fields

from .helpers import running, wait_until


class V1(msgspec.Struct):
    n: int


class V2(msgspec.Struct):
    n: int
    region: str = "us"


class Renamed(msgspec.Struct, rename="camel"):
    first_name: str


def test_unknown_fields_reads_the_map_header_and_names_the_extra_fields() -> None:
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
    assert "args carry field(s) 'region' that this worker's V1 does not know" in bad.reason
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
        async with running(Worker(old, v1_handlers([]))):
            assert (await old.stats()).types["launch"].schema_versions == 1
            async with running(Worker(new, v2)):
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
