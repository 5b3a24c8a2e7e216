"""How commands print: JSON, a rich table, lines to stdout that survive its reader
going away (``| head``), and notes on stderr."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a reader that went away


def print_json(data: Any) -> None:
    """``data`` as indented JSON, exact (a value JSON lacks, such as a datetime, as its str)."""
    print(json.dumps(data, indent=2, default=str))


class Out:
    """stdout that survives its reader going away (``| head``): what is printed
    after that is dropped, and the command ends with EXIT_BROKEN_PIPE."""

    def __init__(self) -> None:
        self.gone = False

    def write(self, text: str) -> None:
        if self.gone:
            return
        try:
            sys.stdout.write(text)
        except BrokenPipeError:
            self.gone = True
            drop_stdout()


def pipe_console() -> Console:
    """A rich Console whose broken pipe ends the command like any other print's."""
    from rich.console import Console

    class _PipeConsole(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError  # rich would exit 1; main() exits quietly with 141

    return _PipeConsole()


def note_cut(shown: int, total: int, what: str) -> None:
    """Say on stderr that a list stops short, so stdout stays the rows."""
    if shown < total:
        print(f"{shown} of {total} {what} shown (--limit)", file=sys.stderr)


def drop_stdout() -> None:
    """Send what stdout still holds, and anything printed later, to /dev/null: its
    reader is gone, and Python's flush at exit would print a traceback."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
