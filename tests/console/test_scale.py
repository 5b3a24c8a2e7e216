"""The console against 1,000,000 pending jobs and 1,000 in flight on a real redis-server.

A poll reads counts and one page of in-flight jobs, never a whole queue, so its
cost stays small and the UI stays responsive however deep the queue is.
"""

from __future__ import annotations

import time

import pytest

import jobcore
from jobconsole.app import make_app
from jobconsole.components.panels import InFlightTable, QueuesTable
from jobconsole.settings import Settings
from jobcore import Job
from jobcore.keys import Keys
from jobcore.model import encode_job
from jobcore.redis_backend import RedisQueue

from .conftest import cell, fresh_snapshot, wait_for

PENDING = 1_000_000
IN_FLIGHT = 1_000

# Server-side bulk load: a million XADDs from Python would take minutes.
BULK_ADD = """
local payload = ARGV[2]
for i = 1, tonumber(ARGV[1]) do
  redis.call('XADD', KEYS[1], '*', 'd', payload)
end
return redis.call('XLEN', KEYS[1])
"""


@pytest.mark.slow
async def test_a_million_pending_and_a_thousand_in_flight(redis_url: str) -> None:
    q = jobcore.connect(redis_url)
    try:
        await q.register_types({"bulk": {}})
        raw = encode_job(Job(type="bulk", args={"n": 1}, account_id=1))
        stream = Keys().of_type("bulk").stream
        assert isinstance(q, RedisQueue)
        assert await q.transport.call("EVAL", BULK_ADD, 1, stream, PENDING + IN_FLIGHT, raw) == PENDING + IN_FLIGHT
        assert len(await q.fetch("busy-worker", ["bulk"], IN_FLIGHT, 0)) == IN_FLIGHT

        app = make_app(Settings(url=redis_url, refresh=0.5))
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None, timeout=20)
            await fresh_snapshot(pilot)
            snap = app.snapshot
            assert snap is not None
            assert snap.latency < 0.5, f"a poll took {snap.latency:.3f}s"
            print(f"poll latency with {PENDING:,} pending, {IN_FLIGHT:,} in flight: {snap.latency * 1000:.1f} ms")
            queues = app.screen.query_one(QueuesTable)
            assert cell(queues, "type:bulk", "pending") == f"{PENDING:,}"
            assert cell(queues, "type:bulk", "in_flight") == f"{IN_FLIGHT:,}"
            table = app.screen.query_one(InFlightTable)
            assert table.row_count == 100
            assert "page 1/10" in str(table.border_subtitle)
            # The UI answers keys at once while polls keep running.
            for _ in range(3):
                started = time.monotonic()
                await pilot.press("right_square_bracket")
                assert time.monotonic() - started < 1.5
            await fresh_snapshot(pilot)
            assert "page 4/10" in str(table.border_subtitle)
            assert app.snapshot is not None and app.snapshot.latency < 0.5
    finally:
        await q.close()
