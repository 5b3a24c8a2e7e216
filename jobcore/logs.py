"""Job log context: every record logged while a job runs carries its six fields.

A log-record factory copies the fields from a context variable onto each record,
so records from any logger (the handler's own included) get them, in threads too
(sync handlers run in a copied context).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from jobcore.display import field_text, printable
from jobcore.model import Job

LOG_FIELDS = ("account_id", "account_number", "org_id", "job_id", "job_type", "reservation_id")
TRACE_FIELDS = ("trace_id", "span_id")  # on a job's lines while it runs in a trace (views/tracing.py)

_current: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("jobcore_job_fields", default=None)
_install_lock = threading.Lock()
_installed = False


def install_record_factory() -> None:
    """Wrap the logging record factory once per process (idempotent)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            fields = _current.get()
            if fields is not None:
                for key, value in fields.items():
                    if not hasattr(record, key):
                        setattr(record, key, value)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True


Token = contextvars.Token[dict[str, Any] | None]


def enter_job(job: Job[Any], **extra: Any) -> Token:
    """Make ``job``'s fields those of every record from here on; ``leave_job`` undoes
    it. (The worker calls these directly: a context manager per job costs more.)"""
    fields = job.log_fields()
    if extra:
        fields.update(extra)
    return _current.set(fields)


def leave_job(token: Token) -> None:
    _current.reset(token)


@contextmanager
def job_context(job: Job[Any], **extra: Any) -> Iterator[dict[str, Any]]:
    token = enter_job(job, **extra)
    try:
        fields = _current.get()
        assert fields is not None
        yield fields
    finally:
        leave_job(token)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; job fields at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in (*LOG_FIELDS, *TRACE_FIELDS, "reservation", "worker_id", "attempt", "duration_ms"):
            if hasattr(record, key):
                out[key] = _plain(getattr(record, key))
        if record.exc_info:
            out["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(out, default=str)


def _field(value: Any) -> str:
    """A key=value value: escaped, and quoted (logfmt style) when it holds a space,
    a quote or an "=", so no value can pass for a field of its own."""
    text = field_text(value)
    if text and not any(c.isspace() or c in '"=' for c in text):
        return text
    return '"' + text.replace('"', '\\"') + '"' if text else ""


class TextFormatter(logging.Formatter):
    """``time level logger message key=value ...`` with the job fields when present.

    A record is one line whatever the data in it: the message and the fields come
    with control characters escaped (a newline in an org_id cannot forge a
    record); only a traceback spans lines after it."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        return printable(super().formatException(ei), multiline=True)

    def formatStack(self, stack_info: str) -> str:
        return printable(super().formatStack(stack_info), multiline=True)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = [f"{k}={_field(getattr(record, k))}" for k in (*LOG_FIELDS, *TRACE_FIELDS) if hasattr(record, k)]
        if not extra:
            return line
        first, nl, rest = line.partition("\n")
        return f"{first} {' '.join(extra)}{nl}{rest}"


def configure(level: str = "INFO", fmt: str = "text", stream: Any = None) -> None:
    """Set up root logging for the CLI worker."""
    install_record_factory()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
