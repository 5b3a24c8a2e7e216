"""Encoding, the registry, connect(), log formatting and the sync facade."""

from __future__ import annotations

import dataclasses
import inspect
import io
import json
import logging
import os
import pickle
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, cast

import msgspec
import pytest

import jobcore
from jobcore import ArgsError, Handlers, Identity, Job, PayloadError, SyncQueue, UnknownJobType
from jobcore.logs import JsonFormatter, TextFormatter, install_record_factory, job_context
from jobcore.model import (
    _Wire,
    convert_args,
    decode_args,
    decode_envelope,
    encode_args,
    encode_job,
    encode_valid_args,
    new_job_id,
)
from jobcore.ops.find import uuid_time_ms
from jobcore.schema import check_args, describe
from tests.support.servers import RedisServer


class Args(msgspec.Struct, kw_only=True):
    reservation_id: int
    tags: list[str] = []


@dataclass
class DcArgs:
    n: int


def job(**kw: object) -> Job[Args]:
    return Job(
        type="t",
        args=Args(reservation_id=7, tags=["a"]),
        account_id=3,
        identity=Identity(account_number="00042", org_id="o1"),
        **kw,
    )  # type: ignore[arg-type]


def test_envelope_round_trip_keeps_every_field() -> None:
    j = job()
    env = decode_envelope(encode_job(j))
    assert (env.id, env.type, env.account_id, env.identity) == (j.id, "t", 3, j.identity)
    assert decode_args(env.args, Args) == j.args
    delivered = env.job(decode_args(env.args, Args), attempt=2)
    assert delivered.attempt == 2 and delivered.enqueued_at is not None and delivered.reservation_id == 7


def test_dataclass_args_work_too() -> None:
    env = decode_envelope(encode_job(Job(type="d", args=DcArgs(n=4))))
    assert decode_args(env.args, DcArgs) == DcArgs(n=4)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty payload"),
        (b"\x02" + b"\x90", "unknown envelope version 2"),
        (b"\x01\xc1", "corrupt envelope"),
        (b"\x01\x97\xa3abc", "corrupt envelope"),
    ],
)
def test_bad_envelopes_raise_payload_error_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        decode_envelope(raw)


def test_truncated_envelope_and_bad_id_length() -> None:
    raw = encode_job(job())
    with pytest.raises(PayloadError, match="truncated"):
        decode_envelope(raw[:-3])
    bad = msgspec.msgpack.encode([b"short", "t", 1, "", "", 0, None])
    with pytest.raises(PayloadError, match=r"corrupt envelope: Invalid UUID bytes - at `\$\[0\]`"):
        decode_envelope(b"\x01" + bad)


def test_args_that_do_not_fit_name_the_field() -> None:
    raw = msgspec.msgpack.encode({"reservation_id": "x"})
    with pytest.raises(ArgsError, match=r"args do not fit Args: Expected `int`, got `str` - at `\$.reservation_id`"):
        decode_args(raw, Args)


def test_nothing_in_a_payload_is_ever_imported_or_unpickled() -> None:
    # A payload naming a module and a pickle blob stays plain data.
    evil = msgspec.msgpack.encode({"reservation_id": 1, "tags": ["os:system", "cposix\nsystem\n"]})
    assert decode_args(evil, Args) == Args(reservation_id=1, tags=["os:system", "cposix\nsystem\n"])


def test_registry_rules() -> None:
    h = Handlers()

    @h.handler("a", Args)
    async def a(job: Job[Args]) -> None: ...

    with pytest.raises(ValueError, match="already registered"):
        h.register("a", a, Args)
    with pytest.raises(TypeError):
        h.register("b", "not callable", Args)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        h.register("", a, Args)
    with pytest.raises(TypeError):
        h.register("c", a, object)  # msgspec cannot decode into it
    with pytest.raises(UnknownJobType):
        h.get("zzz")
    assert h.types == ["a"] and "a" in h and len(h) == 1
    assert h.get("a").is_async
    assert h.schemas()["a"]["$defs"]["Args"]["required"] == ["reservation_id"]


def test_connect_picks_the_backend_by_scheme() -> None:
    assert type(jobcore.connect("memory://")).__name__ == "MemoryQueue"
    for url in ("redis://localhost:1/0", "rediss://localhost:1/0", "unix:///tmp/nope.sock"):
        assert type(jobcore.connect(url)).__name__ == "RedisQueue"
    with pytest.raises(ValueError, match="unsupported queue URL"):
        jobcore.connect("amqp://x")


async def test_enqueue_rejects_bad_jobs_before_sending() -> None:
    q = jobcore.connect("memory://")
    with pytest.raises(jobcore.EnqueueError, match="not allowed"):
        await q.enqueue(Job(type="a{b}", args={}))
    with pytest.raises(jobcore.EnqueueError, match=r"expected a jobcore\.Job"):
        await q.enqueue({"type": "x"})  # type: ignore[arg-type]
    with pytest.raises(ArgsError, match="cannot be encoded"):
        await q.enqueue(Job(type="a", args=object()))
    assert (await q.stats()).pending == 0


def test_json_and_text_log_formats_carry_the_six_fields() -> None:
    install_record_factory()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("test.fmt")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        j = job()
        with job_context(j):
            log.info("hello %s", "there")
        log.info("outside")
        handler.setFormatter(TextFormatter())
        with job_context(j):
            log.info("text line")
    finally:
        log.removeHandler(handler)
    first, second, third = stream.getvalue().splitlines()
    rec = json.loads(first)
    assert rec["message"] == "hello there"
    assert {k: rec[k] for k in ("account_id", "account_number", "org_id", "job_id", "job_type", "reservation_id")} == {
        "account_id": 3,
        "account_number": "00042",
        "org_id": "o1",
        "job_id": str(j.id),
        "job_type": "t",
        "reservation_id": 7,
    }
    assert "job_id" not in json.loads(second)
    assert third.endswith(
        f"text line account_id=3 account_number=00042 org_id=o1 job_id={j.id} job_type=t reservation_id=7"
    )


def test_schema_check_and_describe() -> None:
    schema = msgspec.json.schema(Args)
    check_args("t", {"reservation_id": 1}, schema)
    with pytest.raises(ArgsError, match="at reservation_id: 'x' is not of type 'integer'"):
        check_args("t", {"reservation_id": "x"}, schema)
    assert describe(schema) == [("reservation_id", "integer", True, None), ("tags", "array", False, [])]


def test_sync_facade_on_memory() -> None:
    with SyncQueue("memory://") as q:
        q.declare("t", Args)
        one = q.enqueue(job())
        many = q.enqueue_many([job(), job()])
        assert isinstance(one, uuid.UUID) and len(many) == 2
        assert q.stats().types["t"].pending == 3
        with pytest.raises(ArgsError):
            q.enqueue(Job(type="t", args={"reservation_id": "bad"}))


def test_sync_facade_on_redis(redis_url: str) -> None:
    with SyncQueue(redis_url) as q:
        q.enqueue_many([job() for _ in range(5)])
        assert q.stats().types["t"].pending == 5
        assert q.workers() == [] and q.in_flight() == [] and q.dead() == []


def test_sync_facade_reports_unreachable_redis() -> None:
    with SyncQueue("redis://127.0.0.1:1/0") as q, pytest.raises(jobcore.EnqueueError, match="unreachable"):
        q.enqueue(job())


async def test_unix_socket_url(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "unix", unixsocket=True)
    server.start()
    try:
        q = jobcore.connect(f"unix://{server.socket_path}")
        await q.enqueue(job())
        assert (await q.stats()).types["t"].pending == 1
        assert (await q.server_version()).count(".") == 2
        await q.close()
    finally:
        server.cleanup()


# ---- job ids, Job construction and the enqueue encoding fast paths ----------


def test_default_job_ids_are_random_first_version_8_uuids_ending_in_their_time() -> None:
    before = int(time.time() * 1000)
    ids = [Job(type="t", args=None).id for _ in range(3000)] + [new_job_id() for _ in range(3000)]
    after = int(time.time() * 1000)
    assert len(set(ids)) == len(ids)
    assert len({str(u)[:8] for u in ids}) > len(ids) * 0.99  # the first 8 hex digits tell jobs apart
    for u in ids[:600] + ids[-600:]:
        assert type(u) is uuid.UUID
        assert (u.version, u.variant) == (8, uuid.RFC_4122)
        assert before <= (uuid_time_ms(u) or 0) <= after
        assert int(str(u)[-12:], 16) == uuid_time_ms(u)
        same = uuid.UUID(str(u))
        assert u == same and hash(u) == hash(same) and u.bytes == same.bytes and u.is_safe == same.is_safe
        assert pickle.loads(pickle.dumps(u)) == u
    # Random bits everywhere above the time but the version and variant bits (74 of them).
    ones = [sum((u.int >> bit) & 1 for u in ids) for bit in range(128)]
    fixed = {76, 77, 78, 79, 62, 63}  # version nibble (1000) and variant (10)
    assert all(0.4 < ones[bit] / len(ids) < 0.6 for bit in range(48, 128) if bit not in fixed)


def test_job_ids_are_unique_across_threads() -> None:
    per_thread: list[list[uuid.UUID]] = [[] for _ in range(4)]

    def draw(out: list[uuid.UUID]) -> None:
        for _ in range(5000):
            out.append(new_job_id())

    threads = [threading.Thread(target=draw, args=(out,)) for out in per_thread]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [u for out in per_thread for u in out]
    assert len(set(every)) == len(every) == 20000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_never_repeats_the_parents_job_ids() -> None:
    new_job_id()  # the parent now holds a part-used batch the child inherits
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(read_end)
            os.write(write_end, "\n".join(str(new_job_id()) for _ in range(600)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        child = {uuid.UUID(line) for line in f.read().decode().splitlines()}
    os.waitpid(pid, 0)
    parent = {new_job_id() for _ in range(600)}
    assert len(child) == 600 and not child & parent


def test_job_is_still_a_frozen_dataclass_with_the_same_fields() -> None:
    assert [(f.name, f.kw_only) for f in dataclasses.fields(Job)] == [
        ("type", True),
        ("args", True),
        ("account_id", True),
        ("identity", True),
        ("id", True),
        ("attempt", True),
        ("enqueued_at", True),
    ]
    sig = str(inspect.signature(Job))
    assert "identity: 'Identity' = <factory>" in sig or "identity: Identity = <factory>" in sig
    j = Job(type="t", args=Args(reservation_id=1))
    assert (j.account_id, j.identity, j.attempt, j.enqueued_at) == (0, Identity(), 0, None)
    fixed = uuid.UUID("12345678-1234-4234-8234-123456789abc")
    nothing: Any = None
    k = Job(type="t", args=Args(reservation_id=1), id=fixed, identity=nothing)
    assert k.id is fixed and k.identity is nothing  # given values are kept as given, as before
    again = dataclasses.replace(j, attempt=2)
    assert again.id == j.id and again.attempt == 2 and again != j and again == dataclasses.replace(again)
    assert hash(Job(type="t", args=(1, 2), id=fixed)) == hash(Job(type="t", args=(1, 2), id=fixed))
    with pytest.raises(dataclasses.FrozenInstanceError):
        j.attempt = 3  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(j)) == j
    assert repr(j).startswith("Job(type='t', args=Args(reservation_id=1, tags=[]), account_id=0, identity=")
    with pytest.raises(TypeError):
        Job("t", Args(reservation_id=1))  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Job(type="t")  # type: ignore[call-arg]


def test_envelope_bytes_are_exactly_the_wire_struct_encoding() -> None:
    j = job()
    args = msgspec.msgpack.encode(j.args)
    # Seven elements: without a sending span the envelope is byte for byte what version 1 wrote.
    wire = (j.id.bytes, "t", 3, "00042", "o1", 1234, msgspec.Raw(args))
    assert encode_job(j, args, 1234) == b"\x01" + msgspec.msgpack.encode(wire)
    back = msgspec.msgpack.decode(encode_job(j, args, 1234)[1:], type=_Wire)
    assert back.id == j.id and bytes(back.trace) == b""
    assert encode_job(j, None, 1234) == encode_job(j, args, 1234)


class Bounded(msgspec.Struct, kw_only=True):
    n: Annotated[int, msgspec.Meta(ge=0)]
    tags: list[str] = []


class BoundedPlus(Bounded, kw_only=True):
    extra: str = "x"


@pytest.mark.parametrize(
    ("value", "args_type"),
    [
        (Bounded(n=3, tags=["a"]), Bounded),
        (BoundedPlus(n=3), Bounded),  # a subclass: extra fields are dropped, as before
        ({"n": 3}, Bounded),
        (DcArgs(n=4), DcArgs),
        ({"anything": [1, 2]}, Any),
    ],
)
def test_encode_valid_args_matches_convert_then_encode(value: Any, args_type: Any) -> None:
    assert encode_valid_args(value, args_type) == encode_args(convert_args(value, args_type))


def test_encode_valid_args_still_checks_instances_of_the_declared_struct() -> None:
    for bad, match in [
        (Bounded(n=-1), r"args do not fit Bounded: Expected `int` >= 0 - at `\$.n`"),
        (Bounded(n="x"), r"args do not fit Bounded: Expected `int`, got `str` - at `\$.n`"),  # type: ignore[arg-type]
        (Bounded(n=1, tags=[object()]), "args of type Bounded cannot be encoded"),  # type: ignore[list-item]
    ]:
        with pytest.raises(ArgsError, match=match) as new:
            encode_valid_args(bad, Bounded)
        with pytest.raises(ArgsError) as old:
            encode_args(convert_args(bad, Bounded))
        assert str(new.value) == str(old.value)


async def test_job_type_names_are_checked_every_time_even_after_good_ones() -> None:
    q = jobcore.connect("memory://")
    q.declare("ok", Bounded)
    for _ in range(2):
        await q.enqueue_many([Job(type="ok", args=Bounded(n=1))])
        for bad, match in [
            ("a{b}", "is not allowed"),
            ("x\n", "is not allowed"),
            ("", "non-empty string"),
            (None, "non-empty string"),
            (["ok"], "non-empty string"),
            ("y" * 201, "is not allowed"),
        ]:
            with pytest.raises(jobcore.EnqueueError, match=match):
                await q.enqueue_many([Job(type="ok", args=Bounded(n=1)), Job(type=bad, args={})])  # type: ignore[arg-type]
        with pytest.raises(ArgsError, match="args do not fit Bounded"):
            await q.enqueue_many([Job(type="ok", args=Bounded(n=1)), Job(type="ok", args=Bounded(n=-1))])
    assert (await q.stats()).types["ok"].pending == 2
    await q.close()


class SubJob(Job[Any]):
    __slots__ = ()


async def test_enqueue_many_encodes_every_job_as_encode_does(monkeypatch: pytest.MonkeyPatch) -> None:
    q = jobcore.connect("memory://")
    q.declare("b", Bounded)
    q.declare("d", DcArgs)
    sent: list[dict[str, list[bytes]]] = []

    async def capture(by_type: dict[str, list[bytes]]) -> None:
        sent.append(by_type)

    monkeypatch.setattr(q, "_add_many", capture)
    jobs: list[Job[Any]] = [
        Job(type="b", args=Bounded(n=1), identity=Identity(account_number="a1", org_id="o1"), account_id=7),
        Job(type="free", args={"x": [1, 2]}),
        Job(type="b", args=BoundedPlus(n=2)),  # a subclass of the declared type
        Job(type="b", args={"n": 3}),  # plain data
        Job(type="d", args=DcArgs(n=4)),
        SubJob(type="b", args=Bounded(n=5)),
        Job(type="b", args=Bounded(n=6, tags=["t"]), id=uuid.UUID(int=6)),
    ]
    ids = await q.enqueue_many(jobs)
    assert ids == [j.id for j in jobs]
    ((by_type,),) = [sent]
    now_ms = decode_envelope(by_type["b"][0]).enqueued_at_ms
    expected: dict[str, list[bytes]] = {}
    for j in jobs:
        expected.setdefault(j.type, []).append(q.encode(j, now_ms))
    assert by_type == expected


@pytest.mark.parametrize(
    "bad",
    [
        Job(type="b", args=Bounded(n=-1)),
        Job(type="b", args=Bounded(n="x")),  # type: ignore[arg-type]
        Job(type="b", args=Bounded(n=1, tags=[object()])),  # type: ignore[list-item]
        Job(type="b", args=Bounded(n=1), account_id=object()),  # type: ignore[arg-type]
        Job(type="b", args=Bounded(n=1), identity=cast(Any, None)),
        Job(type="b", args=Bounded(n=1), id=cast(Any, "not a uuid")),
        Job(type="b", args=None),
        Job(type="b{", args=Bounded(n=1)),
    ],
)
async def test_enqueue_many_raises_what_encode_raises_and_sends_nothing(bad: Job[Any]) -> None:
    q = jobcore.connect("memory://")
    q.declare("b", Bounded)
    with pytest.raises(Exception) as single:
        q.encode(bad, 0)
    for _ in range(2):  # the second time the type name is already checked
        with pytest.raises(type(single.value)) as many:
            await q.enqueue_many([Job(type="b", args=Bounded(n=0)), bad])
        assert str(many.value) == str(single.value)
    assert (await q.stats()).pending == 0
    await q.close()


def test_a_job_id_that_is_not_a_uuid_is_refused_not_encoded() -> None:
    from jobcore.errors import EnqueueError
    from jobcore.model import encode_job

    with pytest.raises(EnqueueError, match=r"job id must be a uuid\.UUID, not str"):
        encode_job(Job(type="b", args={"n": 1}, id=cast(Any, "0" * 16)))
