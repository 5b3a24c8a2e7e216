"""What fits at 80x24 and 120x40 (issue 19 item 19): every header value whole and labelled,
column headers whole, a filter's error in full, in-flight rows with their attempt and worker."""

from __future__ import annotations

import time
from typing import Any

import pytest
from textual.pilot import Pilot

import jobcore
from jobconsole.app import JobConsole
from jobconsole.components.panels import InFlightTable
from jobcore import Job
from jobcore.keys import partition_of
from jobcore.records import Outcome

from .conftest import fresh_snapshot, press, screen_text, wait_for
from .test_console import console

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
ORIGIN = "local server: nothing on 127.0.0.1:6379"


async def a_worker(q: jobcore.Queue, wid: str = "billing-7f3a-1", busy: int = 1) -> None:
    info = {
        "id": wid,
        "host": "billing-host",
        "pid": 4242,
        "concurrency": 10,
        "busy": busy,
        "types": ["sleep"],
        "started_ms": int(time.time() * 1000),
        "processed": 0,
        "failed": 0,
        "heartbeat_interval_ms": 5000,
    }
    await q.heartbeat(info, 60_000)


def header(pilot: Pilot[Any]) -> str:
    return screen_text(pilot).splitlines()[0]


@pytest.mark.parametrize("size", SIZES)
async def test_the_header_keeps_the_server_version_and_the_worker_count(redis_url: str, size: tuple[int, int]) -> None:
    """No URL given (the origin says why this server), a standalone Redis, one worker."""
    async with console(redis_url, size=size, origin=ORIGIN) as (pilot, app, q):
        await a_worker(q)
        await wait_for(pilot, lambda: bool(app.server_version), what="the server's version")
        await fresh_snapshot(pilot)
        line = header(pilot)
        assert len(line.rstrip()) <= size[0]
        assert app.server_version in line and app.server_version.split()[0] in ("Redis", "Valkey"), line
        ends = ("│ 1 worker", "· slow", "│ standalone", "│ refresh 0.5s")  # a loaded machine: "· slow"
        assert line.rstrip().endswith(ends), line  # never a bare "1"
        assert "│ 1 worker" in line and "● connected" in line, line
        host = redis_url.removeprefix("redis://").split("/")[0]
        assert host in line, line  # the URL gives way, but says where
        if size[0] >= 120:
            assert (
                f"{redis_url.removeprefix('redis://')} ({ORIGIN}) │ {app.server_version} │ 1 worker" in line
                and "│ standalone" in line
            ), line


async def test_a_narrow_header_cuts_no_value_in_the_middle() -> None:
    """Read-only, with a policy that may evict jobs, at 80 columns."""
    async with console("memory://", size=(80, 24), read_only=True) as (pilot, app, _):
        assert isinstance(app, JobConsole)
        app.evicting = "allkeys-lru"
        await pilot.pause()
        line = header(pilot)
        for value in ("READ-ONLY", "● up", "memory://", "memory", "0 workers", "⚠ evicts: allkeys-lru"):
            assert value in line, line
        assert "…" not in line, line


@pytest.mark.parametrize("size", SIZES)
async def test_queue_column_headers_are_whole_with_wide_rows(redis_url: str, size: tuple[int, int]) -> None:
    """A paused, partitioned type whose failed count reads "3 (2 kept)": the row is at its widest."""
    async with console(redis_url, size=size) as (pilot, _app, q):
        await q.register_types({"provision.example": {}})
        await q.set_partitions("provision.example", 3)
        one = [a for a in range(100) if partition_of(a, 3) == 0][:3]  # one partition: its cap of 2 drops one
        await q.enqueue_many([Job(type="provision.example", args={"n": i}, account_id=a) for i, a in enumerate(one)])
        got = await q.fetch("w1", ["provision.example"], 3, 0)
        q.keep_failed(2)  # the cap drops one: "3 (2 kept)" (a purge takes its job off both numbers)
        await q.settle("w1", [Outcome("provision.example", d.entry_id, "fail", 1, "boom") for d in got])
        await q.pause("provision.example")
        await fresh_snapshot(pilot)
        lines = screen_text(pilot).splitlines()
        head = next(line for line in lines if " pending " in line)
        for column in ("type", "pending", "in flight", "processed", "failed", "dead", "oldest", "proc/s"):
            assert f" {column} " in head, head
        # The chart gives way whole (h shows the history), and then the type name is cut, its marks kept.
        assert " last 1h " in head if size[0] >= 120 else "last" not in head, head
        row = next(line for line in lines if "provisi" in line and " ×3 paused" in line)  # noqa: RUF001
        assert "3 (2 kept)" in row, row


@pytest.mark.parametrize("size", SIZES)
async def test_a_filter_error_is_shown_in_full(size: tuple[int, int]) -> None:
    async with console("memory://", size=size) as (pilot, _app, _):
        await press(pilot, "slash", *"account:42 zzz:1")
        error = "unknown find word 'zzz:1': use account:N, org:ID, acct:NUMBER, res:ID, type:TYPE or a job id"
        await wait_for(pilot, lambda: "zzz:1" in screen_text(pilot), what="the filter's answer")
        await pilot.pause()
        text = " ".join(" ".join(screen_text(pilot).split()).split("│"))
        assert " ".join(error.split()) in " ".join(text.split()), screen_text(pilot)
        assert "(its first 8+ hex characters)" in " ".join(text.split())
        assert "still showing account:42" in " ".join(text.split())


@pytest.mark.parametrize("size", SIZES)
async def test_in_flight_shows_its_attempt_and_worker_and_more_rows(redis_url: str, size: tuple[int, int]) -> None:
    async with console(redis_url, size=size) as (pilot, app, q):
        await q.register_types({"sleep": {}})
        for t in ("fail", "launch", "noop", "report"):
            await q.register_types({t: {}})
            await q.enqueue_many([Job(type=t, args={})])
        await q.enqueue_many([Job(type="sleep", args={"seconds": 30}, account_id=100 + i) for i in range(12)])
        await q.fetch("billing-7f3a-1", ["sleep"], 12, 0)
        await a_worker(q, busy=10)
        await fresh_snapshot(pilot)
        lines = screen_text(pilot).splitlines()
        head = next(line for line in lines if " job_type " in line)
        for column in ("job_type", "job_id", "running", "attempt", "worker"):
            assert f" {column} " in head or head.rstrip(" │").endswith(f" {column}"), head
        rows = [line for line in lines if "billing-7f3a-1" in line and " sleep " in line]
        table = app.screen.query_one(InFlightTable)
        assert table.row_count == 12
        assert len(rows) >= (6 if size[1] < 30 else 12), "\n".join(lines)
