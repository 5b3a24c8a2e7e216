"""The ``jobcore`` command."""

from jobcore.cli.main import main, run

__all__ = ["main", "run"]
