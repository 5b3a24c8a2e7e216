"""``jobcore enqueue``: ARGS_JSON checked against a schema, then sent a batch at a time."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jobcore.cli.errors import CliError, UsageError, load_handlers
from jobcore.cli.output import EXIT_BROKEN_PIPE, Out
from jobcore.display import printable
from jobcore.errors import JobcoreError
from jobcore.model import Identity, Job
from jobcore.queue import KEY_MAX, Queue
from jobcore.registry import Handlers
from jobcore.schema import check_args

ENQUEUE_BATCH = 1_000  # jobs built and sent per round trip: memory stays flat whatever --count


def read_args_json(spec: str) -> dict[str, Any]:
    """ARGS_JSON as given: the text itself, ``-`` for stdin or ``@FILE`` (an args
    object too big for a command line). Read and parsed before connecting: what
    is wrong with it is a usage error."""
    if spec == "-":
        text = sys.stdin.read()
    elif spec.startswith("@"):  # JSON never starts with @
        try:
            text = Path(spec[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read ARGS_JSON from {printable(spec[1:])}: {printable(exc)}") from None
    else:
        text = spec
    try:
        args = json.loads(text)
    except RecursionError:
        raise UsageError("ARGS_JSON is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, or an integer of thousands of digits
        raise UsageError(f"ARGS_JSON is not valid JSON: {exc}") from None
    if not isinstance(args, dict):
        raise UsageError(f"ARGS_JSON must be a JSON object, got {type(args).__name__}")
    return args


def check_enqueue_usage(a: argparse.Namespace) -> None:
    """ARGS_JSON read into ``a.args_value`` and --handlers loaded into ``a.registry``
    (and checked to have TYPE), before anything connects."""
    if a.handlers and a.no_validate:
        raise UsageError("--handlers checks the args and --no-validate skips the check: give one of them")
    if a.key is not None and a.count != 1:
        raise UsageError("--key enqueues one job: it cannot go with --count (the others would be the same job)")
    if a.key is not None and not 0 < len(a.key) <= KEY_MAX:
        raise UsageError(f"--key must be 1 to {KEY_MAX} characters")
    a.args_value = read_args_json(a.args)
    a.registry = load_handlers(a.handlers) if a.handlers else None
    if a.registry is not None and a.type not in a.registry:
        known = ", ".join(printable(t) for t in a.registry.types) or "none"
        raise UsageError(f"{a.handlers} has no handler for job type {printable(repr(a.type))} (it has: {known})")


async def _schema_for(q: Queue, a: argparse.Namespace) -> dict[str, Any] | None:
    """The args schema ARGS_JSON must fit: the --handlers registry's type, else
    the one a worker published (waiting briefly for a worker that is starting)."""
    if a.no_validate:
        return None
    if a.handlers:
        registry: Handlers = a.registry  # loaded and checked before connecting
        return registry.get(a.type).schema()
    deadline = time.monotonic() + max(0.0, a.wait_schema)
    while True:
        schemas = await q.schemas()
        if a.type in schemas:
            return schemas[a.type]
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.2)
    known = ", ".join(printable(t) for t in sorted(schemas)) or "none"
    raise CliError(
        f"no args schema known for job type {printable(repr(a.type))}: no worker has served it yet (known: {known}); "
        "start its worker, or pass --handlers MODULE:HANDLERS to check against your own types, "
        "or --no-validate to send it unchecked"
    )


async def cmd_enqueue(q: Queue, a: argparse.Namespace) -> int:
    args: dict[str, Any] = a.args_value  # read before connecting
    schema = await _schema_for(q, a)
    try:
        if schema is not None:
            check_args(a.type, args, schema)
    except RecursionError:
        raise CliError("ARGS_JSON is nested too deeply") from None
    ident = Identity(account_number=a.account_number, org_id=a.org_id)
    if a.key is not None:
        return await _enqueue_once(q, Job(type=a.type, args=args, account_id=a.account_id, identity=ident), a)
    out = Out()
    done = 0
    first = last = None
    try:
        # In batches, so a million jobs never sit in memory at once; the ids
        # are printed as each batch lands. All jobs are sent even when stdout
        # is gone: the jobs are what was asked for, the ids only a report.
        for n in _batches(a.count, ENQUEUE_BATCH):
            jobs = [Job(type=a.type, args=args, account_id=a.account_id, identity=ident) for _ in range(n)]
            ids = await q.enqueue_many(jobs)
            if a.json:
                out.write(("[" if done == 0 else ", ") + ", ".join(f'"{i}"' for i in ids))
            if first is None:
                first = ids[0]
            last = ids[-1]
            done += len(ids)
    except JobcoreError as exc:
        if not done:
            raise
        if a.json:
            out.write("]\n")  # the ids of what did land, as valid JSON
        raise CliError(f"{exc} ({done:,} of {a.count:,} jobs were enqueued before it)") from None
    except (asyncio.CancelledError, KeyboardInterrupt):  # Ctrl-C: asyncio.run cancels, then exits 130
        if a.json and done:
            out.write("]\n")
        sending = min(ENQUEUE_BATCH, a.count - done)
        span = f" ({first} ... {last})" if done else ""
        print(
            f"jobcore: interrupted: {done:,} of {a.count:,} {printable(a.type)} jobs were enqueued{span}; "
            f"the batch being sent ({sending:,}) may or may not have landed",
            file=sys.stderr,
        )
        raise
    name = printable(a.type)
    if a.json:
        out.write("]\n")
    elif done == 1:
        out.write(f"enqueued {name} job {first}\n")
    else:
        out.write(f"enqueued {done} {name} jobs ({first} ... {last})\n")
    return EXIT_BROKEN_PIPE if out.gone else 0


async def _enqueue_once(q: Queue, job: Job[Any], a: argparse.Namespace) -> int:
    job_id = await q.enqueue(job, key=a.key)
    out = Out()
    name = printable(a.type)
    if a.json:
        out.write(json.dumps([str(job_id)]) + "\n")
    elif job_id == job.id:
        out.write(f"enqueued {name} job {job_id} (key {printable(repr(a.key))})\n")
    else:
        out.write(f"{name} job {job_id} already holds key {printable(repr(a.key))}: nothing enqueued\n")
    return EXIT_BROKEN_PIPE if out.gone else 0


def _batches(total: int, size: int) -> Iterator[int]:
    while total > 0:
        yield min(size, total)
        total -= size
