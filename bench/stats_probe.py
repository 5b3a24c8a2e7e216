"""One console's refreshes, timed in a process of its own: ``python -m bench.stats_probe URL NAMESPACE N``.

The refresh workload fills Redis from the harness process; measuring in that
process would time a heap grown by a million freshly made jobs, which no real
console has. Prints one JSON object: lists of milliseconds and the row count.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import jobcore


async def probe(url: str, namespace: str, repeats: int) -> dict[str, Any]:
    console = jobcore.connect(url, namespace=namespace)
    try:
        stats = await console.stats()  # warm: connection, scripts, the in-flight cache
        await console.in_flight(1000)
        stats_ms: list[float] = []
        in_flight_ms: list[float] = []
        rows: list[Any] = []
        for _ in range(repeats):
            a = time.perf_counter()
            await console.stats()
            b = time.perf_counter()
            rows = await console.in_flight(1000)
            c = time.perf_counter()
            stats_ms.append((b - a) * 1000)
            in_flight_ms.append((c - b) * 1000)
        return {
            "pending": stats.pending,
            "in_flight": stats.in_flight,
            "rows": len(rows),
            "stats_ms": stats_ms,
            "in_flight_ms": in_flight_ms,
        }
    finally:
        await console.close()


def main() -> None:
    print(json.dumps(asyncio.run(probe(sys.argv[1], sys.argv[2], int(sys.argv[3])))))


if __name__ == "__main__":
    main()
