"""OpenTelemetry traces from enqueue to run (the ``otel`` extra). Used only when
the application has imported OpenTelemetry and set a tracer provider: jobcore
never imports it itself, and without it each send and each run costs one
dictionary lookup (``sys.modules``).

- An enqueue inside an active, recording span makes a PRODUCER span, a child of
  it, and every envelope of that send carries the producer span's context (the
  global propagator's carrier, W3C trace context by default) as its 8th element.
- A worker runs each job in a CONSUMER span whose parent is that context (and
  which links to it), with the messaging attributes and the six log fields; a
  redelivery or a requeue runs the same envelope, so it stays in the trace that
  enqueued the job. While it runs, the job's log lines carry trace_id and span_id.

Names follow OpenTelemetry's messaging semantic conventions."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import msgspec

from jobcore.model import Envelope, Job, sending_trace

SYSTEM = "jobcore"
_carrier_decoder = msgspec.msgpack.Decoder(dict[str, str])


def _trace_api() -> Any | None:
    """OpenTelemetry's trace API when the application uses it with a provider set."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return None
    return trace


class _NoSend:
    """The send context when nothing is traced: no span, nothing carried."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        return None


_NO_SEND = _NoSend()


def sending(destination: str | None) -> contextlib.AbstractContextManager[None]:
    """Around an enqueue to ``destination`` (a type; None for a batch, which may
    span types): a PRODUCER span when the caller's span records."""
    trace = _trace_api()
    if trace is None or not trace.get_current_span().is_recording():
        return _NO_SEND
    return _producer(trace, destination)


@contextlib.contextmanager
def _producer(trace: Any, destination: str | None) -> Iterator[None]:
    from opentelemetry import propagate

    tracer = trace.get_tracer("jobcore")
    attributes: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": "send",
        "messaging.operation.name": "enqueue" if destination else "enqueue_many",
    }
    if destination:
        attributes["messaging.destination.name"] = destination
    name = f"send {destination}" if destination else "send"
    with tracer.start_as_current_span(name, kind=trace.SpanKind.PRODUCER, attributes=attributes):
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        token = sending_trace.set(msgspec.msgpack.encode(carrier))
        try:
            yield
        finally:
            sending_trace.reset(token)


def _carried(env: Envelope) -> dict[str, str]:
    """The producer's carrier from an envelope; one that does not read is no
    trace (never a reason to fail the job)."""
    if not env.trace:
        return {}
    try:
        return _carrier_decoder.decode(env.trace)
    except Exception:
        return {}


class Processing:
    """The CONSUMER span of one run (``running`` starts it); ``ids`` are the
    trace_id and span_id its log lines carry."""

    def __init__(self, span: Any, scope: Any) -> None:
        self.span = span
        self._scope = scope
        ctx = span.get_span_context()
        self.ids = {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}

    def end(self, outcome: str, reason: str | None = None, error: BaseException | None = None) -> None:
        from opentelemetry.trace import Status, StatusCode

        self.span.set_attribute("jobcore.outcome", outcome)
        if error is not None:
            self.span.record_exception(error)
        if outcome in ("fail", "dead"):
            lines = (reason or "").strip().splitlines()
            self.span.set_status(Status(StatusCode.ERROR, (lines[-1] if lines else outcome)[:500]))
        self._scope.__exit__(None, None, None)
        self.span.end()


def running(env: Envelope, job: Job[Any]) -> Processing | None:
    """Start the CONSUMER span of a job's run (None when nothing is traced)."""
    trace = _trace_api()
    if trace is None:
        return None
    from opentelemetry import propagate

    parent = propagate.extract(_carried(env))
    producer = trace.get_current_span(parent).get_span_context()
    links = [trace.Link(producer, {"jobcore.attempt": job.attempt})] if producer.is_valid else []
    attributes: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": "process",
        "messaging.operation.name": "run",
        "messaging.destination.name": job.type,
        "messaging.message.id": str(job.id),
        "jobcore.attempt": job.attempt,
    }
    for key, value in job.log_fields().items():
        if value is not None and value != "":
            attributes[f"jobcore.{key}"] = value if isinstance(value, (str, int, float, bool)) else str(value)
    span = trace.get_tracer("jobcore").start_span(
        f"process {job.type}", context=parent, kind=trace.SpanKind.CONSUMER, attributes=attributes, links=links
    )
    scope = trace.use_span(span, end_on_exit=False)
    scope.__enter__()
    return Processing(span, scope)
