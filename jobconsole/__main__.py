"""``jobconsole [--url URL | --memory] [--refresh SECONDS] [--read-only] ...``"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import NoReturn

import jobcore
from jobcore.display import printable, scrubbed

from .settings import (
    DEFAULT_CONCURRENCY,
    DEFAULT_GRACE,
    DEFAULT_HANDLERS,
    DEFAULT_REFRESH,
    DEFAULT_URL,
    Settings,
    SettingsError,
    default_url,
    load_handlers,
)


def _number(text: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}, got {text}")
    return value


def _refresh(text: str) -> float:
    return _number(text, 0.1, 3600)


def _grace(text: str) -> float:
    return _number(text, 0, 3600)


def _concurrency(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"must be 1 to 1000, got {value}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="jobconsole",
        description="The jobcore operations console: live queues, in-flight jobs, enqueue, an embedded worker.",
    )
    p.add_argument("--version", action="version", version=f"jobconsole {jobcore.__version__}")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--url", default=None, help=f"queue URL (env JOBCORE_URL, default {DEFAULT_URL})")
    where.add_argument("--memory", action="store_true", help="an in-memory queue in this process (try it out)")
    p.add_argument(
        "--refresh",
        type=_refresh,
        default=DEFAULT_REFRESH,
        metavar="SECONDS",
        help="seconds between polls (default %(default)g)",
    )
    p.add_argument("--read-only", action="store_true", help="disable enqueue, requeue, purge and the worker")
    p.add_argument(
        "--handlers",
        default=DEFAULT_HANDLERS,
        metavar="MODULE:HANDLERS",
        help="handlers for the embedded worker (default %(default)s)",
    )
    p.add_argument(
        "--concurrency",
        type=_concurrency,
        default=DEFAULT_CONCURRENCY,
        help="embedded worker concurrency (default %(default)s)",
    )
    p.add_argument(
        "--grace",
        type=_grace,
        default=DEFAULT_GRACE,
        metavar="SECONDS",
        help="how long running jobs may finish when the embedded worker stops (default %(default)g)",
    )
    p.add_argument("--namespace", default=None, help="Redis key prefix (default: jobcore's)")
    return p


async def check_reachable(url: str, namespace: str | None) -> None:
    """Raise ConnectionFailed/JobcoreError before any screen is drawn."""
    queue = jobcore.connect(url) if namespace is None else jobcore.connect(url, namespace=namespace)
    try:
        await queue.ping()
    finally:
        await queue.close()


def main(argv: Sequence[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    url = "memory://" if a.memory else (a.url or default_url())
    settings = Settings(
        url=url,
        refresh=a.refresh,
        read_only=a.read_only,
        handlers=a.handlers,
        concurrency=a.concurrency,
        grace=a.grace,
        namespace=a.namespace,
    )
    try:
        handlers = load_handlers(settings.handlers)
        if not settings.is_memory:
            asyncio.run(check_reachable(url, settings.namespace))
    except SettingsError as exc:
        print(f"jobconsole: error: {printable(exc)}", file=sys.stderr)
        return 2
    except ValueError as exc:  # an unsupported URL scheme, which the message quotes
        print(f"jobconsole: error: {printable(scrubbed(str(exc), url))}", file=sys.stderr)
        return 2
    except jobcore.JobcoreError as exc:
        print(
            f"jobconsole: error: cannot reach {printable(jobcore.redacted_url(url))}: {printable(_reason(exc))}; "
            "start Redis or pass --url, or try the console with --memory",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130

    from .app import make_app

    make_app(settings, handlers=handlers).run()
    return 0


def _reason(exc: BaseException) -> str:
    """The cause inside jobcore's "...: Redis at URL is unreachable (cause)" message."""
    text = str(exc)
    marker = "is unreachable ("
    if marker in text and text.endswith(")"):
        return text.split(marker, 1)[1][:-1].rstrip(".")
    return text.split(": ", 1)[1] if text.startswith("ping: ") else text


if __name__ == "__main__":
    sys.exit(main())
