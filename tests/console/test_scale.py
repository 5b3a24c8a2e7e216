"""The console against 1,000,000 pending jobs and 1,000 in flight on a real redis-server.

A poll reads counts and one page of in-flight jobs, never a whole queue, so its
cost stays small and the UI stays responsive however deep the queue is.
"""

from __future__ import annotations

import time

import pytest

import jobcore
from jobconsole.app import make_app
from jobconsole.components.history import HistoryScreen
from jobconsole.components.panels import InFlightTable, QueuesTable
from jobconsole.settings import Settings
from jobcore import Job
from jobcore.keys import Keys
from jobcore.model import encode_job
from jobcore.records import Outcome
from jobcore.redis.backend import RedisQueue

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
            # Seen, not asserted: a poll's cost is held by the command-count test below.
            print(f"poll latency with {PENDING:,} pending, {IN_FLIGHT:,} in flight: {snap.latency * 1000:.1f} ms")
            queues = app.screen.query_one(QueuesTable)
            assert cell(queues, "type:bulk", "pending") == f"{PENDING:,}"
            assert cell(queues, "type:bulk", "in_flight") == f"{IN_FLIGHT:,}"
            table = app.screen.query_one(InFlightTable)
            assert table.row_count == 100
            assert "page 1/10" in str(table.border_subtitle)
            # The UI answers keys while a poll waits on Redis: with the server paused,
            # a poll is stuck, yet three page keys are taken before it returns.
            await wait_for(pilot, lambda: not app.poller.polling)
            await q.transport.call("CLIENT", "PAUSE", 3000, "ALL")  # lifts itself
            app.poll_now()
            assert app.poller.polling
            for _ in range(3):
                await pilot.press("right_square_bracket")
            assert table.page == 3
            assert app.poller.polling, "the paused poll returned before the keys were taken"
            await fresh_snapshot(pilot)
            assert "page 4/10" in str(table.border_subtitle)
    finally:
        await q.close()


def _command_calls(info: bytes | str) -> dict[str, tuple[int, int]]:
    """INFO commandstats as {command: (calls, usec)}; commands a script runs count too."""
    text = info.decode() if isinstance(info, bytes) else info
    out = {}
    for line in text.splitlines():
        if line.startswith("cmdstat_"):
            name, _, rest = line.partition(":")
            fields = dict(part.split("=", 1) for part in rest.split(","))
            out[name[len("cmdstat_") :]] = (int(fields["calls"]), int(fields["usec"]))
    return out


@pytest.mark.slow
async def test_a_refresh_costs_the_same_at_a_thousand_and_a_million_pending_with_filter_and_history(
    redis_url: str,
) -> None:
    """The same Redis commands, the same number of times, per refresh (one poll with the
    filter active plus one read of the history the chart shows) at 1,000 pending jobs
    and at 1,000,000: nothing in a refresh grows with the queue's length."""
    q = jobcore.connect(redis_url)
    try:
        assert isinstance(q, RedisQueue)
        await q.register_types({"bulk": {}})
        raw = encode_job(Job(type="bulk", args={"n": 1}, account_id=1))
        stream = Keys().of_type("bulk").stream
        await q.transport.call("EVAL", BULK_ADD, 1, stream, 1_000 + IN_FLIGHT + 10, raw)
        got = await q.fetch("busy-worker", ["bulk"], IN_FLIGHT + 10, 0)
        await q.settle("busy-worker", [Outcome("bulk", d.entry_id, "ack", 1, took=0.01) for d in got[:10]])

        app = make_app(Settings(url=redis_url, refresh=3600, history_refresh=3600))
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None, timeout=20)
            await pilot.press("slash", *"account:1", "enter")  # matches every job in flight: the most work
            await pilot.press("h")  # the chart is on screen
            await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))

            async def refresh() -> tuple[dict[str, int], float, float, int]:
                """One poll and one history read; the commands they sent, their times, server usec."""
                await wait_for(pilot, lambda: not app.poller.polling and not app.poller.history_reading)
                before = _command_calls(await q.transport.call("INFO", "commandstats"))
                started = time.perf_counter()
                app.read_history()
                assert app.poller.history_reading
                await wait_for(pilot, lambda: not app.poller.history_reading, what="a history read")
                history_s = time.perf_counter() - started
                await fresh_snapshot(pilot)
                after = _command_calls(await q.transport.call("INFO", "commandstats"))
                calls = {
                    c: after[c][0] - before.get(c, (0, 0))[0]
                    for c in after
                    if c != "info" and after[c][0] != before.get(c, (0, 0))[0]
                }
                usec = sum(after[c][1] - before.get(c, (0, 0))[1] for c in after if c != "info")
                snap = app.snapshot
                assert snap is not None and snap.query is not None and snap.in_flight_matches == IN_FLIGHT
                return calls, snap.latency, history_s, usec

            await refresh()  # warm: the in-flight payloads are read once and kept
            small, small_poll, small_history, small_usec = await refresh()
            assert app.snapshot is not None and app.snapshot.stats.pending == 1_000

            added = PENDING - 1_000
            await q.transport.call("EVAL", BULK_ADD, 1, stream, added, raw)
            await refresh()
            big, big_poll, big_history, big_usec = await refresh()
            assert app.snapshot is not None and app.snapshot.stats.pending == PENDING
            queues = app.screen_stack[0].query_one(QueuesTable)
            assert cell(queues, "type:bulk", "pending") == f"{PENDING:,}"
            print(
                f"refresh with filter (1,000 in flight matched) and history chart: "
                f"1,000 pending: poll {small_poll * 1000:.1f} ms, history {small_history * 1000:.1f} ms, "
                f"{sum(small.values())} commands, {small_usec} us server; "
                f"{PENDING:,} pending: poll {big_poll * 1000:.1f} ms, history {big_history * 1000:.1f} ms, "
                f"{sum(big.values())} commands, {big_usec} us server; commands {sorted(big.items())}"
            )
            assert big == small  # the same commands, as many times: none grows with the queue
    finally:
        await q.close()
