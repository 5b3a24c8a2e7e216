"""The ``jobcore`` command. ``jobcore.cli.parser`` (the parser, which jobconsole
shares) imports without the commands; :func:`main` loads them when it runs."""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main", "run"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``jobcore`` with ``argv`` (default: the process's); the exit code."""
    from jobcore.cli.dispatch import main as run_command_line

    return run_command_line(argv)


def run() -> None:
    """The console script: ``main()``, then exit with its code."""
    sys.exit(main())
