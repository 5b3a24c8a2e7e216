"""OpenTelemetry traces from enqueue to run (issue 22), with opentelemetry-sdk's
in-memory exporter, on every backend: an HTTP handler's span is the parent of
the PRODUCER span, which is the parent of (and linked from) each CONSUMER span
that runs the job, a requeued run included; a job's log lines carry trace_id
and span_id; old and new envelopes read both ways; without OpenTelemetry
imported nothing is imported and nothing is carried."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import Iterator

import msgspec
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import jobcore
from jobcore import Handlers, Identity, Job, Worker
from jobcore.logs import install_record_factory
from jobcore.model import decode_envelope, encode_job
from jobcore.views import tracing

from ..helpers import running, wait_until


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """A tracer provider for this test and its spans. Set globally, as a service
    would, and unset after it (as OpenTelemetry's own test utilities do), so the
    other tests in this process trace nothing."""
    from opentelemetry.util._once import Once

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    try:
        yield exporter
    finally:
        provider.shutdown()
        trace._TRACER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
        trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]


class Order(msgspec.Struct, kw_only=True):
    n: int
    reservation_id: int = 0


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def by_kind(found: tuple[ReadableSpan, ...], kind: SpanKind) -> list[ReadableSpan]:
    return [s for s in found if s.kind == kind]


async def test_one_trace_spans_the_request_the_enqueue_and_every_run(
    queue: jobcore.Queue, spans: InMemorySpanExporter
) -> None:
    install_record_factory()
    lines = Lines()
    logger = logging.getLogger("service.orders")
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    runs: list[int] = []
    handlers = Handlers()

    @handlers.handler("order", Order)
    async def order(job: Job[Order]) -> None:
        runs.append(job.attempt)
        logger.info("placing order %d", job.args.n)
        if len(runs) == 1:
            raise RuntimeError("card declined")

    queue.declare_handlers(handlers)
    tracer = trace.get_tracer("service")
    job = Job(
        type="order",
        args=Order(n=7, reservation_id=77),
        account_id=42,
        identity=Identity(account_number="000123", org_id="org-9"),
    )
    try:
        with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER) as http:
            await queue.enqueue(job)
        async with running(Worker(queue, handlers, concurrency=2)):
            await wait_until(lambda: _failed(queue, "order", 1))
            assert await queue.requeue("failed", "order") == 1
            await wait_until(lambda: _ready(len(runs) == 2))
            await wait_until(lambda: _ready(len(by_kind(spans.get_finished_spans(), SpanKind.CONSUMER)) == 2))
    finally:
        logger.removeHandler(lines)
    found = spans.get_finished_spans()
    (producer,) = by_kind(found, SpanKind.PRODUCER)
    consumers = by_kind(found, SpanKind.CONSUMER)
    trace_id = http.get_span_context().trace_id
    assert producer.name == "send order" and producer.context is not None
    assert producer.parent is not None and producer.parent.span_id == http.get_span_context().span_id
    assert producer.context.trace_id == trace_id
    assert producer.attributes is not None and producer.attributes["messaging.system"] == "jobcore"
    for run in consumers:
        assert run.name == "process order" and run.context is not None
        assert run.context.trace_id == trace_id
        assert run.parent is not None and run.parent.span_id == producer.context.span_id
        assert [link.context.span_id for link in run.links] == [producer.context.span_id]
        attrs = dict(run.attributes or {})
        assert attrs["messaging.destination.name"] == "order" and attrs["messaging.operation.type"] == "process"
        assert attrs["messaging.message.id"] == str(job.id)
        assert (attrs["jobcore.account_id"], attrs["jobcore.account_number"], attrs["jobcore.org_id"]) == (
            42, "000123", "org-9",
        )  # fmt: skip
        assert attrs["jobcore.job_id"] == str(job.id) and attrs["jobcore.reservation_id"] == 77
    first, second = sorted(consumers, key=lambda s: s.start_time or 0)
    assert first.status.status_code == StatusCode.ERROR and "card declined" in (first.status.description or "")
    assert dict(first.attributes or {})["jobcore.outcome"] == "fail"
    assert dict(second.attributes or {})["jobcore.outcome"] == "ack"
    ids = {(r.trace_id, r.span_id) for r in lines.records}  # type: ignore[attr-defined]
    assert ids == {
        (format(trace_id, "032x"), format(s.context.span_id, "016x")) for s in consumers if s.context is not None
    }


async def _ready(value: bool) -> bool:
    return value


async def _failed(q: jobcore.Queue, job_type: str, n: int) -> bool:
    return (await q.stats()).types[job_type].failed == n


async def test_without_an_active_span_nothing_is_carried(queue: jobcore.Queue, spans: InMemorySpanExporter) -> None:
    await queue.register_types({"order": {"type": "object"}})
    await queue.enqueue(Job(type="order", args={"n": 1}))
    await queue.enqueue_many([Job(type="order", args={"n": 2})])
    got = await queue.fetch("w1", ["order"], 2, 0)
    assert [decode_envelope(d.raw or b"").trace for d in got] == [b"", b""]
    assert not by_kind(spans.get_finished_spans(), SpanKind.PRODUCER)


async def test_a_batch_is_one_producer_span_every_envelope_carries(spans: InMemorySpanExporter) -> None:
    q = jobcore.connect("memory://")
    await q.register_types({"a": {"type": "object"}, "b": {"type": "object"}})
    with trace.get_tracer("service").start_as_current_span("import"):
        await q.enqueue_many([Job(type="a", args={"n": 1}), Job(type="b", args={"n": 2})])
    (producer,) = by_kind(spans.get_finished_spans(), SpanKind.PRODUCER)
    assert producer.name == "send" and producer.context is not None
    got = await q.fetch("w1", ["a", "b"], 2, 0)
    for d in got:
        carrier = msgspec.msgpack.decode(decode_envelope(d.raw or b"").trace)
        assert f"{producer.context.span_id:016x}" in carrier["traceparent"]
    await q.close()


class _WireOfVersionOne(msgspec.Struct, array_like=True):
    """The envelope body as jobcore read it before traces: seven elements."""

    id: bytes
    type: str
    account_id: int
    account_number: str
    org_id: str
    enqueued_at_ms: int
    args: msgspec.Raw


def test_old_readers_skip_the_trace_and_new_readers_read_old_envelopes(spans: InMemorySpanExporter) -> None:
    job = Job(type="order", args={"n": 1}, account_id=3)
    with trace.get_tracer("service").start_as_current_span("request"), tracing.sending("order"):
        new = encode_job(job)
    old = encode_job(job)
    assert len(new) > len(old) and new[: len(old) - 1] != old[: len(old) - 1]  # an 8-element array, and more bytes
    seen_by_old = msgspec.msgpack.decode(new[1:], type=_WireOfVersionOne)
    assert (seen_by_old.type, seen_by_old.account_id) == ("order", 3)
    assert decode_envelope(old).trace == b"" and decode_envelope(new).trace != b""


def test_a_trace_that_does_not_read_never_fails_the_job(spans: InMemorySpanExporter) -> None:
    body = msgspec.msgpack.decode(encode_job(Job(type="order", args={"n": 1}))[1:])
    hostile = bytes([1]) + msgspec.msgpack.encode([*body, [1, {"x": b"\xff"}]])
    env = decode_envelope(hostile)  # the job reads
    run = tracing.running(env, env.job({"n": 1}, 1))
    assert run is not None
    run.end("ack")
    (consumer,) = by_kind(spans.get_finished_spans(), SpanKind.CONSUMER)
    assert consumer.parent is None and not consumer.links  # a root span, no link


def test_without_opentelemetry_imported_jobcore_imports_none_of_it() -> None:
    code = (
        "import asyncio, sys, jobcore\n"
        "from jobcore import Handlers, Job, Worker\n"
        "async def main():\n"
        "    q = jobcore.connect('memory://')\n"
        "    h = Handlers()\n"
        "    done = []\n"
        "    @h.handler('t', dict)\n"
        "    async def t(job): done.append(job.id)\n"
        "    await q.enqueue(Job(type='t', args={'n': 1}))\n"
        "    w = Worker(q, h)\n"
        "    task = asyncio.create_task(w.run())\n"
        "    while not done: await asyncio.sleep(0.01)\n"
        "    await w.stop(); await task\n"
        "asyncio.run(main())\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


async def test_a_job_handed_back_by_a_stop_runs_again_in_the_trace_that_enqueued_it(
    spans: InMemorySpanExporter,
) -> None:
    q = jobcore.connect("memory://")
    handlers = Handlers()
    started = asyncio.Event()
    runs: list[int] = []

    @handlers.handler("slow", Order)
    async def slow(job: Job[Order]) -> None:
        runs.append(job.attempt)
        started.set()
        if len(runs) == 1:
            await asyncio.sleep(60)  # the stop's grace runs out: handed back

    q.declare_handlers(handlers)
    with trace.get_tracer("service").start_as_current_span("POST /slow"):
        await q.enqueue(Job(type="slow", args=Order(n=1)))
    first = Worker(q, handlers, concurrency=1, grace=0.2)
    task = asyncio.create_task(first.run())
    await asyncio.wait_for(started.wait(), 10)
    await first.stop()
    await task
    async with running(Worker(q, handlers, concurrency=1)):
        await wait_until(lambda: _ready(len(runs) == 2))
        await wait_until(lambda: _ready(len(by_kind(spans.get_finished_spans(), SpanKind.CONSUMER)) == 2))
    (producer,) = by_kind(spans.get_finished_spans(), SpanKind.PRODUCER)
    consumers = sorted(by_kind(spans.get_finished_spans(), SpanKind.CONSUMER), key=lambda s: s.start_time or 0)
    assert producer.context is not None
    assert [dict(s.attributes or {})["jobcore.outcome"] for s in consumers] == ["released", "ack"]
    for run in consumers:
        assert run.parent is not None and run.parent.span_id == producer.context.span_id
        assert run.context is not None and run.context.trace_id == producer.context.trace_id
    await q.close()
