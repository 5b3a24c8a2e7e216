"""What a command says when it cannot go on: one line on stderr and an exit code."""

from __future__ import annotations

from jobcore.registry import Handlers
from jobcore.registry import load_handlers as registry_load_handlers


class CliError(Exception):
    """A user-facing error: printed as one line, exit 1."""


class UsageError(CliError):
    """The command line asks for something that cannot be: exit 2, like argparse's own."""


def load_handlers(spec: str) -> Handlers:
    """The MODULE:HANDLERS registry, or a UsageError saying why it cannot be loaded
    (exit 2, as jobconsole's --handlers: the option names what is not there)."""
    try:
        return registry_load_handlers(spec)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
