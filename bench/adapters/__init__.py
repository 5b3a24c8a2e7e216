"""One adapter per library, all implementing :class:`bench.common.Adapter`."""

from __future__ import annotations

import importlib

from ..common import Adapter

LIBS = ("jobcore", "rq", "arq", "dramatiq", "saq", "streaq", "taskiq", "celery")


def load(lib: str, url: str) -> Adapter:
    """The adapter for ``lib``; ImportError when the library is not installed
    (peers come from the ``bench`` extra: ``pip install -e '.[bench]'``)."""
    module = importlib.import_module(f"{__name__}.{lib}_")
    adapter: Adapter = module.ADAPTER(url)
    return adapter
