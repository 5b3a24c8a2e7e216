"""Encoding, the registry, connect(), log formatting and the sync facade."""

from __future__ import annotations

import io
import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest

import jobcore
from jobcore import ArgsError, Handlers, Identity, Job, PayloadError, SyncQueue, UnknownJobType
from jobcore.logs import JsonFormatter, TextFormatter, install_record_factory, job_context
from jobcore.model import decode_args, decode_envelope, encode_job
from jobcore.schema import check_args, describe
from jobcore.testing import RedisServer


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
    with pytest.raises(PayloadError, match="job id has 5 bytes"):
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
