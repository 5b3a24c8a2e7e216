"""``jobcore worker``: one worker as a process: logs, metrics, the first signal a
graceful stop, the second a hard one."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from typing import NoReturn

from jobcore.cli.errors import CliError, UsageError, load_handlers
from jobcore.display import printable, redacted_url
from jobcore.errors import WorkerIdTaken
from jobcore.queue import Queue
from jobcore.worker.worker import DEFAULT_PREFETCH, Worker

log = logging.getLogger("jobcore.cli")


def worker_types(a: argparse.Namespace) -> list[str] | None:
    return [t.strip() for t in a.types.split(",") if t.strip()] if a.types else None


def check_worker_usage(a: argparse.Namespace) -> None:
    """The registry loaded into ``a.registry`` and --types checked against it,
    before anything connects: what is wrong is a usage error."""
    a.registry = load_handlers(a.handlers)
    chosen = worker_types(a) or a.registry.types
    unknown = [t for t in chosen if t not in a.registry]
    if unknown:
        raise UsageError(f"no handler registered for type(s): {', '.join(printable(t) for t in unknown)}")
    if not chosen:
        raise UsageError(f"the handler registry {a.handlers} is empty: nothing to serve")


async def cmd_worker(q: Queue, a: argparse.Namespace) -> int:
    from jobcore.logs import configure

    configure(a.log_level, a.log_format)
    handlers = a.registry  # loaded (and --types checked) before connecting
    types = worker_types(a)
    try:
        worker = Worker(
            q,
            handlers,
            concurrency=a.concurrency,
            timeout=a.timeout,
            types=types,
            lease=a.lease,
            max_attempts=a.max_attempts,
            grace=a.grace,
            worker_id=a.id,
            prefetch=DEFAULT_PREFETCH if a.prefetch is None else a.prefetch,
            allow_eviction=a.allow_eviction,
            failed_keep=a.failed_keep,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    log.info("worker %s using the queue at %s", worker.id, redacted_url(q.url))
    metrics = None
    poller = None
    if a.metrics_port:
        from jobcore.worker.metrics import WorkerMetrics, metrics_url

        where = metrics_url(a.metrics_host, a.metrics_port)
        try:
            metrics = WorkerMetrics(worker, q, a.metrics_port, a.metrics_host)
        except (RuntimeError, OSError) as exc:
            raise CliError(f"cannot serve metrics on {where}: {exc}") from None
        poller = asyncio.create_task(metrics.poll())
        log.info("serving Prometheus metrics on %s", where)

    loop = asyncio.get_running_loop()
    signals = 0

    def on_signal(signame: str) -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            log.info("%s: stopping gracefully (grace %.0fs); again to stop at once", signame, worker.grace)
            worker.request_stop()
        else:
            log.warning("%s again: stopping at once", signame)
            worker.request_hard_stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig.name)
    try:
        await worker.run()
    except WorkerIdTaken as exc:
        if worker.threads_busy:
            # Their jobs are the id's new owner's now: do not wait for them.
            print(f"jobcore: error: {printable(exc)}", file=sys.stderr)
            _exit_now(1)
        raise
    finally:
        if poller:
            poller.cancel()
        if metrics:
            metrics.close()
    if worker.threads_busy:
        # Their jobs were handed back and may already run elsewhere: exit now
        # rather than wait for the threads (Python cannot stop them).
        log.warning("exiting with %d sync handler(s) still running jobs that were handed back", worker.threads_busy)
        _exit_now(0)
    return 0


def _exit_now(code: int) -> NoReturn:
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
