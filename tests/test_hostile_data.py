"""Issue 10: the promises hold when the data misbehave.

Text read from Redis is data (never markup, never raw escapes), a payload of
any shape is shown as undecodable instead of crashing its reader, no URL is
printed with its secrets, the CLI survives absurd input and a closed pipe, and
the metrics server binds loopback unless told otherwise. Every case runs
against the suite's real redis-server, through the real ``jobcore`` command
where a person would meet it.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jobcore
from jobcore.display import printable, redacted_url, scrubbed
from jobcore.errors import ArgsError, PayloadError
from jobcore.logs import configure, job_context
from jobcore.model import VERSION_BYTE, Identity, Job, decode_args, decode_envelope
from jobcore.records import Outcome
from jobcore.redis.backend import RedisQueue
from tests.cli.test_cli import ENQUEUE_TIMEOUT, start_worker, stats, wait_for
from tests.support.cli import run_cli
from tests.support.servers import RedisServer, free_port

from .helpers import plant

ESC_TITLE = "\x1b]0;pwned\x07"  # "set title"
ESC_CLEAR = "\x1b[2J"  # "clear screen"
RED = "\x1b[31mRED\x1b[0m"
DEEP = b"\x91" * 100_000 + b"\xc0"  # 100,000 nested one-element arrays
RAW_CONTROLS = ("\x1b", "\x07", "\x9b", "\r")


def jc(env: dict[str, str], *args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    """The command as a person runs it (in this process: tests/support/cli.py), on
    a wide terminal so tables do not fold."""
    argv = [*(["--url", url] if url else []), *args]
    return run_cli(argv, {**env, "COLUMNS": "200"}, timeout=ENQUEUE_TIMEOUT)


def ok(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    return res.stdout


def one_line_error(res: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    assert res.stderr.count("\n") == 1, res.stderr
    return res.stderr


def no_raw_controls(text: str) -> None:
    for ch in RAW_CONTROLS:
        assert ch not in text, f"raw {ch!r} reached the terminal: {text!r}"


def envelope(job_type: str, args: bytes, **fields: Any) -> bytes:
    """An envelope as jobcore writes it, with any field forced to any value."""
    wire = {
        "id": uuid.uuid4().bytes,
        "type": job_type,
        "account_id": 7,
        "account_number": "",
        "org_id": "",
        "enqueued_at_ms": int(time.time() * 1000),
        "args": msgspec.Raw(args),
    }
    wire.update(fields)
    return VERSION_BYTE + msgspec.msgpack.encode(tuple(wire.values()))


def poison(job_type: str) -> dict[str, tuple[bytes, str]]:
    """Payloads no decoder may choke on, each with what its reason says."""
    return {
        "deep args": (envelope(job_type, DEEP), "nested too deeply"),
        "deep map args": (envelope(job_type, b"\x81\xa1k" * 100_000 + b"\xc0"), "nested too deeply"),
        "deep envelope": (VERSION_BYTE + DEEP, "corrupt envelope"),
        "deep entry, no version byte": (DEEP, "unknown envelope version 145"),
        "4 GiB array declared": (envelope(job_type, b"\xdd\xff\xff\xff\xff"), "truncated"),
        "4 GiB string declared": (envelope(job_type, b"\xdb\xff\xff\xff\xff"), "truncated"),
        "4 GiB envelope declared": (VERSION_BYTE + b"\xdd\xff\xff\xff\xff", "truncated"),
        "account_id a string": (envelope(job_type, b"\x80", account_id="seven"), "corrupt envelope"),
        "enqueued in year 10000": (envelope(job_type, b"\x80", enqueued_at_ms=2**62), "corrupt envelope"),
    }


POISON = poison("t")
# Decodable, but nothing JSON has a form for: map keys that are bytes, arrays and nil; an ext type.
ODD_ARGS = b"\x84\xc4\x01a\x01\x92\x01\x02\x02\xc0\x03\xa1x\xd4\x05\x01"


# ---- the one escaping rule ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text, ünïcode ✓ [b]markup[/b]", "plain text, ünïcode ✓ [b]markup[/b]"),
        (RED, "\\x1b[31mRED\\x1b[0m"),
        (ESC_TITLE + ESC_CLEAR, "\\x1b]0;pwned\\x07\\x1b[2J"),
        ("a\nb\r\tc", "a\\nb\\r\\tc"),
        ("csi \x9b2J del \x7f", "csi \\x9b2J del \\x7f"),
        ("bidi \u202egnp.exe", "bidi \\u202egnp.exe"),
        ("line\u2028sep", "line\\u2028sep"),
        ("lone \udcff surrogate", "lone \\udcff surrogate"),
    ],
)
def test_printable_escapes_controls_and_keeps_text(raw: str, shown: str) -> None:
    assert printable(raw) == shown
    assert printable(shown) == shown  # escaping twice changes nothing


def test_printable_multiline_keeps_line_breaks_only() -> None:
    assert printable("Traceback:\n\tFile x\r\x1b[2J", multiline=True) == "Traceback:\n\tFile x\\r\\x1b[2J"


# ---- A. text from Redis is data, in the CLI -------------------------------------------


def test_markup_in_type_names_is_printed_as_text(cli_env: dict[str, str], redis_url: str) -> None:
    names = ["report[/]", "x[link=https://evil.example]click[/link]", "[bold red]boo"]
    for name in names:
        ok(jc(cli_env, "enqueue", name, "{}", "--no-validate", url=redis_url))
    table = ok(jc(cli_env, "stats", url=redis_url))
    types = ok(jc(cli_env, "types", url=redis_url))
    for name in names:
        assert name in table and name in types
        assert f"no live worker serves {name!r}" in table
    assert "\x1b]8;" not in table  # no hyperlink escape made from [link=...]


def test_escapes_from_redis_are_printed_escaped_and_json_stays_exact(cli_env: dict[str, str], redis_url: str) -> None:
    evil_type = "esc" + ESC_TITLE
    worker_id = "w" + RED
    ok(jc(cli_env, "enqueue", evil_type, '{"reservation_id": "r' + "\\u001b[2J" + '"}', "--no-validate",
          "--org-id", RED, "--account-number", ESC_CLEAR, url=redis_url))  # fmt: skip
    ok(jc(cli_env, "enqueue", evil_type, "{}", "--no-validate", url=redis_url))

    async def in_flight_and_failed() -> None:
        q = RedisQueue(redis_url)
        await q.register_types({evil_type: {}})
        got = await q.fetch(worker_id, [evil_type], 2, 0)
        await q.settle(worker_id, [Outcome(evil_type, got[1].entry_id, "fail", 1, "boom" + ESC_TITLE + ESC_CLEAR)])
        await q.heartbeat({"id": worker_id, "host": "h" + ESC_CLEAR, "pid": 1, "types": [evil_type]}, 60_000)
        await q.close()

    asyncio.run(in_flight_and_failed())
    for args in (["stats"], ["types"], ["in-flight"], ["workers"], ["failed", "list"]):
        out = ok(jc(cli_env, *args, url=redis_url))
        no_raw_controls(out)
        assert "\\x1b" in out, args
    assert "\\x1b]0;pwned\\x07\\x1b[2J" in ok(jc(cli_env, "failed", "list", url=redis_url))
    assert "reservation=r\\x1b[2J" in ok(jc(cli_env, "in-flight", url=redis_url))
    # JSON is for programs: exact, escapes and all (as JSON escapes them).
    (row,) = json.loads(ok(jc(cli_env, "in-flight", "--json", url=redis_url)))
    assert (row["job_type"], row["worker"]) == (evil_type, worker_id)
    assert (row["org_id"], row["account_number"]) == (RED, ESC_CLEAR)
    (failed,) = json.loads(ok(jc(cli_env, "failed", "list", "--json", url=redis_url)))
    assert failed["reason"] == "boom" + ESC_TITLE + ESC_CLEAR
    (w,) = json.loads(ok(jc(cli_env, "workers", "--json", url=redis_url)))
    assert w["id"] == worker_id and w["host"] == "h" + ESC_CLEAR


def test_bytes_that_are_not_utf8_never_give_a_traceback(
    cli_env: dict[str, str], redis_url: str, redis_server: RedisServer
) -> None:
    client = redis_server.client()
    client.sadd("jobcore:{jobcore}:types", b"bad\xff\x1b[2J")
    client.close()
    for args in (["types"], ["stats"], ["types", "--json"]):
        res = jc(cli_env, *args, url=redis_url)
        assert "Traceback" not in res.stderr
        no_raw_controls(res.stdout + res.stderr)
        if res.returncode:  # refused in one line, or (once decoded leniently) listed escaped
            one_line_error(res)


def test_a_handlers_exception_text_is_listed_escaped(cli_env: dict[str, str], redis_url: str) -> None:
    """The case as reported: a real worker files the failure, `failed list` shows it."""
    ok(jc(cli_env, "enqueue", "fail", json.dumps({"message": "set title" + ESC_TITLE + "clear" + ESC_CLEAR}),
          "--no-validate", url=redis_url))  # fmt: skip
    worker = start_worker(cli_env, redis_url)
    try:
        wait_for(lambda: stats(cli_env, redis_url)["types"]["fail"]["failed"] == 1)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    no_raw_controls(err)  # the worker's own text log of the failure too
    assert "RuntimeError: set title\\x1b]0;pwned\\x07clear\\x1b[2J" in err
    out = ok(jc(cli_env, "failed", "list", url=redis_url))
    no_raw_controls(out)
    assert "reason=RuntimeError: set title\\x1b]0;pwned\\x07clear\\x1b[2J" in out


def test_a_newline_in_org_id_cannot_forge_a_text_log_line(cli_env: dict[str, str], redis_url: str) -> None:
    forged = "2026-01-01 00:00:00,000 INFO    jobcore.worker all good"
    ok(jc(cli_env, "enqueue", "launch", '{"reservation_id": 9, "step_seconds": 0}', "--no-validate",
          "--org-id", "org-1\n" + forged, "--account-number", RED, url=redis_url))  # fmt: skip
    worker = start_worker(cli_env, redis_url)
    try:
        wait_for(lambda: stats(cli_env, redis_url)["types"]["launch"]["processed"] == 1)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    lines = err.splitlines()
    assert not any(line.startswith(forged) for line in lines)
    no_raw_controls(err)
    done = next(line for line in lines if "launch done" in line)
    assert f'org_id="org-1\\n{forged}"' in done and "account_number=\\x1b[31mRED\\x1b[0m" in done


def test_json_logs_keep_the_fields_exact() -> None:
    out = io.StringIO()
    configure("INFO", "json", out)
    try:
        job = Job(type="t", args={}, identity=Identity(account_number=ESC_CLEAR, org_id="a\nb" + RED))
        with job_context(job):
            logging.getLogger("svc").info("hello")
    finally:
        logging.getLogger().handlers.clear()
    (line,) = out.getvalue().splitlines()
    record = json.loads(line)
    assert (record["account_number"], record["org_id"]) == (ESC_CLEAR, "a\nb" + RED)


# ---- B. payloads of any shape ----------------------------------------------------------


@given(st.binary(max_size=300))
@settings(max_examples=400, deadline=None)
def test_decode_envelope_raises_only_payload_error(raw: bytes) -> None:
    for candidate in (raw, VERSION_BYTE + raw):
        try:
            env = decode_envelope(candidate)
        except PayloadError:
            continue
        json.dumps(env.args_json())  # whatever decodes can be shown


@pytest.mark.parametrize("name", sorted(POISON))
def test_poison_decodes_to_payload_error(name: str) -> None:
    raw, why = POISON[name]
    with pytest.raises(PayloadError, match=why):
        decode_envelope(raw)


def test_deep_args_do_not_fit_any_type() -> None:
    for args_type in (Any, list[Any], dict[str, Any]):
        with pytest.raises(ArgsError):
            decode_args(DEEP, args_type)


async def test_readers_show_poison_as_undecodable(cli_env: dict[str, str], redis_url: str) -> None:
    """in_flight(), dead(), failed(), and the CLI on top of them: a row with the reason, never a crash."""
    q = RedisQueue(redis_url)
    try:
        await q.register_types({"t": {}})
        for raw, _ in POISON.values():
            await plant(q, "t", raw)
        await plant(q, "t", envelope("t", ODD_ARGS))
        got = await q.fetch("w-1", ["t"], 100, 0)
        assert len(got) == len(POISON) + 1

        rows = await q.in_flight()
        assert sum(1 for r in rows if r.error) == len(POISON)
        reasons = sorted(r.error or "" for r in rows)
        for _, why in POISON.values():
            assert any(why in reason for reason in reasons), why
        text = ok(jc(cli_env, "in-flight", url=redis_url))
        assert text.count(" undecodable: ") == len(POISON)
        shown = json.loads(ok(jc(cli_env, "in-flight", "--json", url=redis_url)))
        (odd,) = [r for r in shown if not r["error"]]
        assert odd["args"] == {"b'a'": 1, "(1, 2)": 2, "None": 3, "x": "<msgpack ext 5: 01>"}

        half = len(got) // 2
        await q.settle("w-1", [Outcome("t", d.entry_id, "dead", 1, "poison") for d in got[:half]])
        await q.settle("w-1", [Outcome("t", d.entry_id, "fail", 1, "poison") for d in got[half:]])
        bad = [*(await q.dead()), *(await q.failed())]
        assert len(bad) == len(got)
        assert sum(1 for b in bad if b.envelope is None and b.payload_error) == len(POISON)
    finally:
        await q.close()
    for which in ("dead", "failed"):
        listed = json.loads(ok(jc(cli_env, which, "list", "--json", "--limit", "100", url=redis_url)))
        for row in listed:
            assert row["payload_error"] or row["job_id"]
            assert (row["raw_hex"] is None) == (row["payload_error"] is None)
        text = ok(jc(cli_env, which, "list", "--limit", "100", url=redis_url))
        assert text.count("(undecodable: ") == sum(1 for row in listed if row["payload_error"])


def test_a_worker_files_poison_as_dead_and_keeps_working(cli_env: dict[str, str], redis_url: str) -> None:
    async def plant_all() -> None:
        q = RedisQueue(redis_url)
        for raw, _ in poison("noop").values():
            await plant(q, "noop", raw)
        await q.close()

    asyncio.run(plant_all())
    worker = start_worker(cli_env, redis_url)
    try:
        wait_for(lambda: stats(cli_env, redis_url)["types"]["noop"]["dead"] == len(POISON))
        ok(jc(cli_env, "enqueue", "noop", "{}", url=redis_url))
        wait_for(lambda: stats(cli_env, redis_url)["types"]["noop"]["processed"] == 1)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0 and "Traceback" not in err and "internal error" not in err
    dead = json.loads(ok(jc(cli_env, "dead", "list", "--json", "--limit", "100", url=redis_url)))
    reasons = " | ".join(d["reason"] for d in dead)
    for _, why in POISON.values():
        assert why in reasons
    assert stats(cli_env, redis_url)["types"]["noop"]["failed"] == 0


# ---- C. secrets --------------------------------------------------------------------------

SECRET = "s3cret-pw"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"redis://jc:{SECRET}@db:6379/0", "redis://***@db:6379/0"),
        (f"redis://:{SECRET}@db/0", "redis://***@db/0"),
        (f"redis://db/0?password={SECRET}&replicas=1", "redis://db/0?password=***&replicas=1"),
        (f"redis://db/0?PassWord={SECRET}", "redis://db/0?PassWord=***"),
        (f"redis://db/0?pass%77ord={SECRET}", "redis://db/0?pass%77ord=***"),
        (f"redis://db/0?x=1;password={SECRET}#password={SECRET}", "redis://db/0?x=1;password=***#password=***"),
        (
            f"redis+sentinel://u:{SECRET}@s1:26379,s2:26379/svc/0?sentinel_password={SECRET}",
            "redis+sentinel://***@s1:26379,s2:26379/svc/0?sentinel_password=***",
        ),
        (
            f"rediss://db/0?ssl_ca_certs=/ca.pem&ssl_password={SECRET}",
            "rediss://db/0?ssl_ca_certs=/ca.pem&ssl_password=***",
        ),
        (f"unix:///run/redis.sock?db=1&password={SECRET}", "unix:///run/redis.sock?db=1&password=***"),
        (f"unix://u:{SECRET}@/run/redis.sock", "unix://***@/run/redis.sock"),
        ("unix:///run/a@b.sock", "unix:///run/a@b.sock"),
        (f"redis://jc:{SECRET}/x@db/0", "redis://***@db/0"),  # a "/" in the password
        (f"redis://jc:{SECRET}?x@db/0", "redis://***@db/0"),  # a "?" in the password
        (f"jc:{SECRET}@db:6379", "***@db:6379"),  # no scheme at all
        ("redis://db:6379/0?ssl_certfile=/a@b.pem", "redis://db:6379/0?ssl_certfile=/a@b.pem"),
        ("memory://", "memory://"),
    ],
)
def test_one_redaction_rule_for_every_url(url: str, shown: str) -> None:
    from jobcore.url import redacted

    assert redacted_url(url) == shown
    assert jobcore.redacted_url(url) == shown and redacted(url) == shown  # the same rule, whichever name
    assert SECRET not in scrubbed(f"unsupported queue URL {url!r}: ...", url)


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(Path(tmp_path_factory.mktemp("auth")), password=SECRET)
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(f"cannot start the private redis-server with a password: {exc}", pytrace=False)
    yield server
    server.cleanup()


def test_urls_with_secrets_are_never_printed(cli_env: dict[str, str], auth_server: RedisServer) -> None:
    port = auth_server.port
    for url, shown in [
        (f"redis://default:{SECRET}@127.0.0.1:{port}/0", f"redis://***@127.0.0.1:{port}/0"),
        (f"redis://127.0.0.1:{port}/0?password={SECRET}", f"redis://127.0.0.1:{port}/0?password=***"),
    ]:
        table = ok(jc(cli_env, "stats", url=url))
        assert f"jobcore at {shown}, standalone" in table and SECRET not in table
    dead_port = free_port()
    for url in [
        f"redis://jc:{SECRET}@127.0.0.1:{dead_port}/0",  # unreachable
        f"redis://127.0.0.1:{dead_port}/0?password={SECRET}&sentinel_password={SECRET}",
        f"redis://jc:wrong-{SECRET}@127.0.0.1:{port}/0",  # refused
        f"redis://127.0.0.1:{port}/0?password=wrong-{SECRET}",
        f"http://jc:{SECRET}@127.0.0.1/0",  # unsupported
    ]:
        for args in (["stats"], ["enqueue", "noop", "{}", "--no-validate"], ["dead", "list"]):
            err = one_line_error(jc(cli_env, *args, url=url))
            assert SECRET not in err and "***" in err, err


def test_the_worker_logs_its_url_redacted(cli_env: dict[str, str], auth_server: RedisServer) -> None:
    url = f"redis://default:{SECRET}@127.0.0.1:{auth_server.port}/0?password={SECRET}"
    worker = start_worker(cli_env, url)
    try:
        wait_for(lambda: stats(cli_env, auth_server.url)["workers"] == 1)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    assert f"using the queue at redis://***@127.0.0.1:{auth_server.port}/0?password=***" in err
    assert SECRET not in err
    # Unreachable: the worker's retry warnings quote the URL too.
    worker = start_worker(cli_env, f"redis://jc:{SECRET}@127.0.0.1:{free_port()}/0?sentinel_password={SECRET}")
    time.sleep(2)
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=30)
    assert "cannot start serving yet" in err and "redis://***@127.0.0.1:" in err and SECRET not in err


# ---- D. the CLI against absurd input and closed pipes -------------------------------------


def test_count_is_bounded(cli_env: dict[str, str], redis_url: str) -> None:
    err = one_line_error(jc(cli_env, "enqueue", "noop", "{}", "--count", "100000000", url=redis_url), code=2)
    assert "at most 1,000,000 jobs per enqueue" in err
    err = one_line_error(jc(cli_env, "enqueue", "noop", "{}", "--account-id", "9" * 30, url=redis_url), code=2)
    assert "does not fit in 64 bits" in err
    assert stats(cli_env, redis_url)["totals"]["pending"] == 0


def test_enqueue_memory_stays_flat_with_the_count(cli_env: dict[str, str], redis_url: str) -> None:
    """Jobs are built and sent a batch at a time: 100 times the jobs, about the same peak memory."""

    def peak_kib(count: int) -> int:
        # VmHWM, not ru_maxrss: that one keeps the peak of the pytest process forked to start this.
        code = (
            "import re, sys\n"
            "from jobcore.cli import main\n"
            f"rc = main(['--url', {redis_url!r}, 'enqueue', 'noop', '{{}}', '--count', '{count}', '--json',"
            " '--no-validate'])\n"
            "peak = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1)\n"
            "print(rc, peak, file=sys.stderr)\n"
        )
        res = subprocess.run([sys.executable, "-c", code], env=cli_env, capture_output=True, text=True, timeout=120)
        rc, peak = res.stderr.split()[-2:]
        assert rc == "0", res.stderr
        assert len(json.loads(res.stdout)) == count
        return int(peak)

    small, large = peak_kib(1_000), peak_kib(100_000)
    assert stats(cli_env, redis_url)["types"]["noop"]["pending"] == 101_000
    assert large - small < 15 * 1024, f"peak grew by {(large - small) // 1024} MiB for 99,000 more jobs"


def test_a_failure_midway_says_how_many_landed(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from jobcore.cli import main as cli_main
    from jobcore.errors import EnqueueError

    real = RedisQueue.enqueue_many
    calls = 0

    async def third_fails(self: RedisQueue, jobs: Any) -> list[uuid.UUID]:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise EnqueueError("2,500 job(s) not enqueued: Redis at redis://*** is unreachable")
        return await real(self, jobs)

    monkeypatch.setattr(RedisQueue, "enqueue_many", third_fails)
    argv = ["--url", redis_url, "enqueue", "noop", "{}", "--count", "2500", "--json", "--no-validate"]
    assert cli_main(argv) == 1
    out, err = capsys.readouterr()
    assert len(json.loads(out)) == 2000  # stdout: the ids that did land, as valid JSON
    assert err.strip().endswith("(2,000 of 2,500 jobs were enqueued before it)") and err.count("\n") == 1
    monkeypatch.undo()
    assert stats({}, redis_url)["types"]["noop"]["pending"] == 2000


@pytest.mark.parametrize(
    ("args_json", "message", "code"),
    [
        ("[" * 50_000 + "]" * 50_000, "ARGS_JSON is nested too deeply", 2),  # argv takes 128 KiB an argument
        ('{"a": ' + "[" * 100_000, "ARGS_JSON is nested too deeply", 2),
        ('{"n": ' + "9" * 5000 + "}", "ARGS_JSON is not valid JSON", 2),
        ('{"n": ' + "9" * 30 + "}", "cannot be encoded", 1),
    ],
    ids=["nested arrays", "nested, unclosed", "5000-digit int", "int beyond 64 bits"],
)
def test_absurd_args_json_is_one_line(
    cli_env: dict[str, str], redis_url: str, args_json: str, message: str, code: int
) -> None:
    # What the command line alone says is wrong is a usage error (2); what Redis refuses, 1.
    err = one_line_error(jc(cli_env, "enqueue", "noop", args_json, "--no-validate", url=redis_url), code)
    assert message in err
    assert stats(cli_env, redis_url)["totals"]["pending"] == 0


def test_a_closed_pipe_ends_enqueue_quietly_with_every_job_sent(cli_env: dict[str, str], redis_url: str) -> None:
    """`jobcore enqueue noop '{}' --count 3000 --json | head -c 10`"""
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobcore", "--url", redis_url, "enqueue", "noop", "{}", "--count", "3000", "--json",
         "--no-validate"],
        env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(10).startswith(b'["')
    proc.stdout.close()  # what head does once it has its 10 bytes
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert err == ""
    assert stats(cli_env, redis_url)["types"]["noop"]["pending"] == 3000


def test_a_closed_pipe_ends_listings_quietly(cli_env: dict[str, str], redis_url: str) -> None:
    """`jobcore workers --json | head -1`, through a real shell pipe, with more output than a pipe holds."""

    async def many_workers() -> None:
        q = RedisQueue(redis_url)
        for i in range(1500):
            await q.heartbeat({"id": f"worker-{i:04d}", "host": "h", "pid": i, "types": ["noop"]}, 60_000)
        await q.close()

    asyncio.run(many_workers())
    ok(jc(cli_env, "enqueue", "noop", "{}", "--count", "500", "--no-validate", url=redis_url))
    for args in ("workers --json", "workers", "stats", "types --json"):
        script = f'{sys.executable} -m jobcore --url {redis_url} {args} | head -1; echo "exit=${{PIPESTATUS[0]}}" >&2'
        res = subprocess.run(["bash", "-c", script], env=cli_env, capture_output=True, text=True, timeout=60)
        *errors, status = res.stderr.splitlines()
        assert errors == [], res.stderr
        assert status in ("exit=0", "exit=141"), args
    # A reader gone before anything is written: the write fails at the final flush.
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobcore", "--url", redis_url, "workers", "--json"],
        env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and err == ""


# ---- E. metrics bind loopback unless told otherwise ---------------------------------------


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _scrape(host: str, port: int) -> str:
    return urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5).read().decode()


@pytest.mark.parametrize(
    ("flags", "bound", "other"),
    [([], "127.0.0.1", "127.0.0.2"), (["--metrics-host", "127.0.0.2"], "127.0.0.2", "127.0.0.1")],
)
def test_metrics_bind_only_their_host(
    cli_env: dict[str, str], redis_url: str, flags: list[str], bound: str, other: str
) -> None:
    port = free_port()
    worker = start_worker(cli_env, redis_url, "--metrics-port", str(port), *flags)
    try:
        wait_for(lambda: _answers(bound, port))
        assert "jobcore_pending_jobs" in _scrape(bound, port)
        # Every 127/8 address reaches this host: a server on 0.0.0.0 would answer here too.
        assert not _answers(other, port)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    assert f"serving Prometheus metrics on http://{bound}:{port}/metrics" in err


def test_a_metrics_host_that_cannot_be_bound_is_one_line(cli_env: dict[str, str], redis_url: str) -> None:
    res = jc(cli_env, "worker", "jobcore.demo:handlers", "--metrics-port", str(free_port()), "--metrics-host",
             "192.0.2.1", url=redis_url)  # fmt: skip
    assert res.returncode == 1 and "Traceback" not in res.stderr
    # After the worker's start-up log line, one line says why.
    assert res.stderr.splitlines()[-1].startswith("jobcore: error: cannot serve metrics on http://192.0.2.1:")


def test_library_default_is_loopback() -> None:
    import inspect

    from jobcore.worker.metrics import WorkerMetrics

    assert inspect.signature(WorkerMetrics).parameters["addr"].default == "127.0.0.1"


# ---- D. numbers that are not numbers (issue 18, case 10) ----------------------------------

NOT_COUNTS = {"abc": b"abc", "400 digits": b"9" * 400, "a unicode digit": "²".encode(), "a float": b"1e5"}


def _corrupt_numbers(redis_url: str, job_type: str, value: bytes, counters: bool = True) -> None:
    """A counter (unless not ``counters``) and this minute's history value that are not counts."""
    import redis

    from jobcore.keys import Keys

    k = Keys().of_type(job_type)
    r = redis.Redis.from_url(redis_url)
    minute = int(r.time()[0]) // 60
    if counters:
        r.hset(k.stats, mapping={"processed": value, "failed": value})
        # Worker records: a lease of 400 digits, a record nested past the JSON parser's depth.
        big = "9" * 400
        r.hset(Keys().workers, mapping={"w1": f'{{"lease_ms": {big}, "pid": {big}, "types": ["{job_type}"]}}',
                                        "w2": "[" * 100_000})  # fmt: skip
        r.zadd(Keys().leases, {"w1": 1e300, "w2": float("inf")})
    r.hset(k.history, mapping={str(minute): value + b" 1 0 " + value + b" 0 3", "lo": value, "last": value})
    r.close()


@pytest.mark.parametrize("value", NOT_COUNTS.values(), ids=list(NOT_COUNTS))
def test_counters_that_are_not_counts_are_a_placeholder_and_a_warning(
    cli_env: dict[str, str], redis_url: str, value: bytes
) -> None:
    ok(jc(cli_env, "enqueue", "noop", "{}", "--count", "3", "--no-validate", url=redis_url))
    _corrupt_numbers(redis_url, "noop", value)
    text = ok(jc(cli_env, "stats", url=redis_url))
    assert "not a count" in text and text.count("not a count") == 1, text
    row = json.loads(ok(jc(cli_env, "stats", "--json", url=redis_url)))["types"]["noop"]
    assert row["processed"] == row["failed"] == 0, row  # read as 0, the problem says why
    assert row["pending"] == 3 and "not a count" in row["problem"]
    assert {w["id"] for w in json.loads(ok(jc(cli_env, "workers", "--json", url=redis_url)))} == {"w1", "w2"}
    why = ok(jc(cli_env, "why", "noop", url=redis_url))
    assert "noop" in why
    hist = json.loads(ok(jc(cli_env, "stats", "--history", "--json", url=redis_url)))
    assert hist
