"""jobcore handlers for the cluster bench (``bench/cluster.py``): ten no-op types
``c0``..``c9`` and the partitioned no-op type ``hot``."""

from __future__ import annotations

from jobcore import Handlers, Job

from .tasks import BenchArgs

TYPES = [f"c{i}" for i in range(10)]
HOT = "hot"
handlers = Handlers()


async def _noop(job: Job[BenchArgs]) -> None:
    """No-op."""


for _name in [*TYPES, HOT]:
    handlers.register(_name, _noop, BenchArgs)
