"""``jobconsole [--url URL | --memory] [--refresh SECONDS] [--read-only] ...``"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

import jobcore
from jobcore.cli.parser import CommandLineParser
from jobcore.display import printable, scrubbed
from jobcore.local import URL_HELP, LocalServerError, resolve

from .settings import (
    DEFAULT_CONCURRENCY,
    DEFAULT_GRACE,
    DEFAULT_HANDLERS,
    DEFAULT_REFRESH,
    Settings,
    SettingsError,
    load_handlers,
)
from .snapshot import take_snapshot


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


def _port(text: str) -> int:
    return int(_number(text, 1, 65535))


def _concurrency(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"must be 1 to 1000, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = CommandLineParser(
        prog="jobconsole",
        description="The jobcore operations console: live queues, in-flight jobs, enqueue, an embedded worker.",
    )
    p.add_argument("--version", action="version", version=f"jobconsole {jobcore.__version__}")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--url",
        default=None,
        help=URL_HELP,
    )
    where.add_argument("--memory", action="store_true", help="an in-memory queue in this process (try it out)")
    p.add_argument(
        "--refresh",
        type=_refresh,
        default=DEFAULT_REFRESH,
        metavar="SECONDS",
        help="seconds between polls (default %(default)g)",
    )
    p.add_argument(
        "--read-only", action="store_true", help="disable enqueue, requeue, purge, pause, cancel and the worker"
    )
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
    web = p.add_argument_group("in a browser (the web extra)")
    web.add_argument("--serve", action="store_true", help="serve the console to browsers instead of this terminal")
    web.add_argument("--host", default="127.0.0.1", help="--serve: the address to bind (default %(default)s)")
    web.add_argument("--port", type=_port, default=8765, help="--serve: the port (default %(default)s)")
    return p


async def check_server(url: str, namespace: str | None) -> None:
    """Raise JobcoreError before any screen is drawn: the server answers, accepts our
    credentials and lets this user run what one poll runs (a user allowed PING alone
    would otherwise open a console that calls the server unreachable)."""
    queue = jobcore.connect(url) if namespace is None else jobcore.connect(url, namespace=namespace)
    try:
        await queue.ping()
        await take_snapshot(queue, seq=0, in_flight_limit=1, want_version=True)
    finally:
        await queue.close()


# Redis's own reply codes: stable across Redis and Valkey, whatever words wrap them.
_REFUSALS = {
    "WRONGPASS": "refused the user name or password",
    "NOAUTH": "asks for a password and none was given",
    "NOPERM": "does not let this user run what the console needs",
}
_REFUSAL_HINTS = {
    "WRONGPASS": "check the user and password in the URL (redis://USER:PASSWORD@HOST:PORT/DB)",
    "NOAUTH": "put the password in the URL (redis://:PASSWORD@HOST:PORT/DB)",
    "NOPERM": "grant the user jobcore's keys and commands (see README), or connect as another user",
}


def startup_error(exc: BaseException, url: str, source: str) -> str:
    """One line naming why the console cannot start on ``url``; ``source`` is where the
    URL came from ("--url", "JOBCORE_URL" or "default"), so the hint never asks for what was given."""
    where = printable(jobcore.redacted_url(url))
    code = exc.code if isinstance(exc, jobcore.JobcoreError) else None
    if isinstance(exc, jobcore.JobcoreError) and code in _REFUSALS:
        reply = scrubbed(_server_reply(exc, code), url).rstrip(". ")
        return f"{where} {_REFUSALS[code]} ({printable(reply)}); {_REFUSAL_HINTS[code]}"
    if source == "--url":
        hint = "check the URL and that the server runs"
    elif source == "JOBCORE_URL":
        hint = "check JOBCORE_URL and that the server runs, or pass --url"
    else:
        hint = "start Redis or pass --url"
    return f"cannot reach {where}: {printable(scrubbed(_reason(exc), url))}; {hint}, or try the console with --memory"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    a = build_parser().parse_args(args)
    if a.serve and a.memory:
        print(
            "jobconsole: error: --serve with --memory: each browser tab would get an empty queue of its own; "
            "give a Redis URL (or none, for the local server)",
            file=sys.stderr,
        )
        return 2
    where = None
    if not a.memory:
        try:
            where = resolve(a.url)
        except LocalServerError as exc:
            print(f"jobconsole: error: {printable(exc)}", file=sys.stderr)
            return 1
    url = where.url if where else "memory://"
    settings = Settings(
        url=url,
        origin=where.brief if where else "",
        origin_note=where.why if where and where.implicit else "",
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
            asyncio.run(check_server(url, settings.namespace))
    except SettingsError as exc:
        print(f"jobconsole: error: {printable(exc)}", file=sys.stderr)
        return 2
    except ValueError as exc:  # an unsupported URL scheme, which the message quotes
        print(f"jobconsole: error: {printable(scrubbed(str(exc), url))}", file=sys.stderr)
        return 2
    except jobcore.JobcoreError as exc:
        source = "--url" if a.url else ("JOBCORE_URL" if os.environ.get("JOBCORE_URL") else "default")
        print(f"jobconsole: error: {startup_error(exc, url, source)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if a.serve:
        return _serve(args, url, a.host, a.port)

    from .app import make_app

    app = make_app(settings, handlers=handlers)
    app.run()
    return app.return_code or 0  # 128 + the signal after a SIGTERM or SIGHUP, once the terminal is restored


def _serve(args: Sequence[str], url: str, host: str, port: int) -> int:
    from .serve import ServeError, serve

    try:
        serve(args, url, host, port)
    except ServeError as exc:
        print(f"jobconsole: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the port is taken, or the address is not this host's
        print(f"jobconsole: error: cannot serve on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _reason(exc: BaseException) -> str:
    """Why the server is unreachable, as the wire said it (not jobcore's sentence around it)."""
    if isinstance(exc, jobcore.ConnectionFailed) and exc.code is None and exc.cause:
        return exc.cause.rstrip(".")
    return str(exc)


def _server_reply(exc: jobcore.JobcoreError, code: str) -> str:
    """The server's refusal as it worded it (the kind was read from ``code``)."""
    if isinstance(exc, jobcore.ConnectionFailed | jobcore.PermissionDenied | jobcore.RedisRefused) and exc.reply:
        return exc.reply
    return code


if __name__ == "__main__":
    sys.exit(main())
