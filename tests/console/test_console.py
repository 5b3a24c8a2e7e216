"""Pilot tests: every control, against memory:// and a real private redis-server.

Each test reads what the screen shows and compares it with what the queue holds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Input, Select, Static, TextArea
from textual.widgets.data_table import CellDoesNotExist

import jobcore
from jobconsole.app import JobConsole, make_app
from jobconsole.components.badjobs import BadJobsScreen, BadTable
from jobconsole.components.confirm import ConfirmScreen
from jobconsole.components.detail import JobDetailScreen
from jobconsole.components.enqueue import EnqueueScreen
from jobconsole.components.help import HelpScreen
from jobconsole.components.main_screen import MainScreen
from jobconsole.components.panels import TOTAL_KEY, InFlightTable, QueuesTable, WorkerLog, WorkersTable
from jobconsole.runner import Runner
from jobconsole.settings import Settings
from jobconsole.snapshot import take_snapshot
from jobcore import Identity, Job
from jobcore.model import decode_envelope
from jobcore.records import Outcome
from tests.support.servers import RedisServer

from ..helpers import plant
from .conftest import FrozenClock, cell, fresh_snapshot, press, screen_text, wait_for


@asynccontextmanager
async def console(
    url: str, size: tuple[int, int] = (100, 30), **options: Any
) -> AsyncIterator[tuple[Pilot[Any], JobConsole, jobcore.Queue]]:
    """The app on ``url`` plus a queue to check against: the app's own for memory,
    a second connection for Redis (so we read what the server holds)."""
    options.setdefault("refresh", 0.5)
    options.setdefault("grace", 0.2)
    app = make_app(Settings(url=url, **options))
    check = app.queue if url.startswith("memory") else jobcore.connect(url)
    try:
        async with app.run_test(size=size) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None, what="the first snapshot")
            yield pilot, app, check
    finally:
        if check is not app.queue:
            await check.close()


def queues(app: JobConsole) -> QueuesTable:
    return app.screen.query_one(QueuesTable)


def in_flight(app: JobConsole) -> InFlightTable:
    return app.screen.query_one(InFlightTable)


async def dead_jobs(q: jobcore.Queue, n: int, consumer: str = "test-worker") -> None:
    """Put n sleep jobs in the dead set through the queue's own settle path."""
    await q.register_types({"sleep": {}})
    await q.enqueue_many([Job(type="sleep", args={"seconds": 1}, account_id=i) for i in range(n)])
    got = await q.fetch(consumer, ["sleep"], n, 0)
    await q.settle(
        consumer, [Outcome("sleep", d.entry_id, "dead", d.attempt, f"poison {i}") for i, d in enumerate(got)]
    )


async def open_dead(pilot: Pilot[Any], rows: int) -> BadJobsScreen:
    """Press d and wait for the dead list to show ``rows`` rows."""
    await press(pilot, "d")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, BadJobsScreen), what="the dead jobs view")
    await press(pilot, "g")  # every job, not grouped by cause
    screen = pilot.app.screen
    assert isinstance(screen, BadJobsScreen)
    await wait_for(pilot, lambda: screen.query_one(BadTable).row_count == rows, what=f"{rows} dead rows")
    return screen


# ---- queues ------------------------------------------------------------------


@pytest.mark.memory_too
async def test_queue_rows_equal_what_the_queue_holds(url: str) -> None:
    async with console(url) as (pilot, app, q):
        await q.enqueue_many([Job(type="sleep", args={"seconds": 1}) for _ in range(7)])
        await q.enqueue_many([Job(type="launch", args={"reservation_id": i}) for i in range(3)])
        await dead_jobs(q, 2)
        await fresh_snapshot(pilot)
        stats = await q.stats()
        table = queues(app)
        for name, t in stats.types.items():
            row = f"type:{name}"
            assert cell(table, row, "pending") == f"{t.pending:,}"
            assert cell(table, row, "in_flight") == f"{t.in_flight:,}"
            assert cell(table, row, "processed") == f"{t.processed:,}"
            assert cell(table, row, "failed") == f"{t.failed:,}"
            assert cell(table, row, "dead") == f"{t.dead:,}"
        assert cell(table, "type:sleep", "pending") == "7"
        assert cell(table, "type:launch", "pending") == "3"
        assert cell(table, "type:sleep", "dead") == "2"
        assert cell(table, TOTAL_KEY, "pending") == f"{stats.pending:,}"
        assert cell(table, TOTAL_KEY, "dead") == "2"
        assert "no live worker serves: launch, sleep" in str(table.border_subtitle)
        header = screen_text(pilot).splitlines()[0]
        assert "● connected" in header and app.display_url in header
        assert any(v in header for v in (("memory",) if url.startswith("memory") else ("Redis 7", "Valkey ")))


async def test_a_partitioned_type_shows_its_count_and_adds_its_partitions_up(url: str) -> None:
    async with console(url) as (pilot, app, q):
        assert await q.set_partitions("launch", 3) == 3
        await q.enqueue_many([Job(type="launch", args={"reservation_id": i}, account_id=i) for i in range(9)])
        await fresh_snapshot(pilot)
        table = queues(app)
        assert cell(table, "type:launch", "type") == "launch ×3 ⚠"  # noqa: RUF001 - no worker serves it
        assert cell(table, "type:launch", "pending") == "9"
        assert "launch ×3" in screen_text(pilot)  # noqa: RUF001


@pytest.mark.memory_too
async def test_numbers_move_while_the_embedded_worker_runs(url: str) -> None:
    async with console(url) as (pilot, app, q):
        await q.enqueue_many([Job(type="noop", args={}) for _ in range(50)])
        await fresh_snapshot(pilot)
        assert cell(queues(app), "type:noop", "pending") == "50"
        await press(pilot, "s")
        await wait_for(pilot, lambda: app.embedded_status.state == "running", what="worker running")

        async def all_done() -> bool:
            return (await q.stats()).types["noop"].processed == 50

        deadline = time.monotonic() + 10
        while not await all_done():
            assert time.monotonic() < deadline, "the embedded worker did not process the jobs"
            await asyncio.sleep(0.05)
        await fresh_snapshot(pilot)
        assert cell(queues(app), "type:noop", "pending") == "0"
        assert cell(queues(app), "type:noop", "processed") == "50"
        await fresh_snapshot(pilot)
        assert cell(queues(app), "type:noop", "rate") != "-"
        workers = app.screen.query_one(WorkersTable)
        assert cell(workers, app.embedded.worker_id, "state") == "alive"
        await press(pilot, "s")
        await wait_for(pilot, lambda: not app.embedded.running, what="worker stopped")
        await fresh_snapshot(pilot)
        assert (await q.stats()).workers == 0


# ---- enqueue -----------------------------------------------------------------


@pytest.mark.memory_too
async def test_enqueue_modal_sends_one_enqueue_many(url: str) -> None:
    async with console(url) as (pilot, app, q):
        calls: list[int] = []
        real = app.queue.enqueue_many

        async def counting(jobs: Any) -> Any:
            ids = await real(jobs)
            calls.append(len(ids))
            return ids

        app.queue.enqueue_many = counting  # type: ignore[method-assign]
        await press(pilot, "e")
        await wait_for(pilot, lambda: isinstance(app.screen, EnqueueScreen), what="the enqueue modal")
        modal = app.screen
        assert isinstance(modal, EnqueueScreen)
        select: Select[str] = modal.query_one("#type", Select)
        await wait_for(pilot, lambda: "launch" in [o for _, o in select._options], what="types")
        select.value = "launch"
        await pilot.pause()
        args = modal.query_one("#args", TextArea)
        assert '"reservation_id": 1' in args.text  # prefilled from the schema
        args.text = '{"reservation_id": 4242, "step_seconds": 0}'
        modal.query_one("#count", Input).focus()
        await press(pilot, "backspace", "5")
        modal.query_one("#account_id", Input).value = "42"
        modal.query_one("#account_number", Input).value = "A-42"
        modal.query_one("#org_id", Input).value = "org-7"
        await pilot.pause()
        assert "✓" in str(modal.query_one("#error", Static).render())
        assert str(modal.query_one("#send", Button).label) == "Enqueue 5 jobs (ctrl+s)"
        await press(pilot, "ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), what="the modal to close")
        assert calls == [5]
        await fresh_snapshot(pilot)
        stats = await q.stats()
        assert stats.types["launch"].pending == 5
        assert cell(queues(app), "type:launch", "pending") == "5"
        await q.register_types({"launch": {}})
        got = await q.fetch("check", ["launch"], 1, 0)
        env = decode_envelope(got[0].raw or b"")
        assert env.account_id == 42
        assert env.identity == Identity(account_number="A-42", org_id="org-7")
        assert env.args_json() == {"reservation_id": 4242, "step_seconds": 0}


async def test_enqueue_modal_shows_schema_errors_inline_and_sends_nothing() -> None:
    async with console("memory://") as (pilot, app, q):
        await press(pilot, "e")
        await wait_for(pilot, lambda: isinstance(app.screen, EnqueueScreen))
        modal = app.screen
        assert modal.query_one("#type", Select).value == "sleep"
        args = modal.query_one("#args", TextArea)
        error = modal.query_one("#error", Static)
        args.text = '{"seconds": -1}'
        await pilot.pause()
        shown = str(error.render())
        assert "args for 'sleep' do not fit its schema at seconds" in shown
        assert "-1" in shown
        assert modal.query_one("#send", Button).disabled
        await press(pilot, "ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, EnqueueScreen)
        args.text = '{"seconds": 1'
        await pilot.pause()
        assert "args are not valid JSON" in str(error.render())
        args.text = "[1, 2]"
        await pilot.pause()
        assert "must be a JSON object" in str(error.render())
        args.text = '{"seconds": 0.5}'
        modal.query_one("#count", Input).value = "0"
        await pilot.pause()
        assert "count must be 1 to 100,000" in str(error.render())
        await press(pilot, "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        assert (await q.stats()).pending == 0


async def test_enqueue_modal_refuses_an_unknown_field_by_name(url: str) -> None:
    """A misspelled field would run with its default (issue 19 item 1): the form says
    which field, and never "✓ args fit its schema"."""
    async with console(url) as (pilot, app, q):
        await press(pilot, "e")
        await wait_for(pilot, lambda: isinstance(app.screen, EnqueueScreen))
        modal = app.screen
        assert modal.query_one("#type", Select).value == "sleep"
        error = modal.query_one("#error", Static)
        modal.query_one("#args", TextArea).text = '{"seconds": 15, "secnds": 3}'
        await pilot.pause()
        shown = str(error.render())
        assert "✓" not in shown
        assert "args for 'sleep' carry field(s) `secnds` that SleepArgs does not know (its fields: `seconds`)" in shown
        assert modal.query_one("#send", Button).disabled
        await press(pilot, "ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, EnqueueScreen)
        modal.query_one("#args", TextArea).text = '{"seconds": 15}'
        await pilot.pause()
        assert "✓ args fit its schema" in str(error.render())
        await press(pilot, "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        assert (await q.stats()).pending == 0


# ---- in flight, detail, embedded worker log -----------------------------------


@pytest.mark.memory_too
async def test_in_flight_rows_detail_and_worker_log(url: str) -> None:
    async with console(url) as (pilot, app, q):
        ident = Identity(account_number="ACC-7", org_id="org-3")
        sleeper = Job(type="sleep", args={"seconds": 30}, account_id=7, identity=ident)
        launcher = Job(type="launch", args={"reservation_id": 42, "step_seconds": 30}, account_id=8, identity=ident)
        await q.enqueue_many([sleeper, launcher])
        await press(pilot, "s")
        table = in_flight(app)

        def both_running() -> bool:
            return table.row_count == 2

        await wait_for(pilot, both_running, what="two jobs in flight")
        await fresh_snapshot(pilot)
        rows = await q.in_flight(10)
        assert {r.job_id for r in rows} == {str(sleeper.id), str(launcher.id)}
        for r in rows:
            key = InFlightTable.key_of(r)
            assert cell(table, key, "job_type") == r.job_type
            assert cell(table, key, "job_id") == str(r.job_id)[:8]
            assert cell(table, key, "account_id") == str(r.account_id)
            assert cell(table, key, "account_number") == "ACC-7"
            assert cell(table, key, "org_id") == "org-3"
            assert cell(table, key, "attempt") == "1"
            assert cell(table, key, "worker") == app.embedded.worker_id
        launch_row = next(r for r in rows if r.job_type == "launch")
        assert cell(table, InFlightTable.key_of(launch_row), "reservation_id") == "42"
        assert str(table.border_title) == "In flight 2"

        log = app.screen.query_one(WorkerLog)

        def log_text() -> str:
            # Lines wrap in the pane: join them back the way a reader does.
            return " ".join(" ".join(x.text.split()) for x in log.lines)

        await wait_for(pilot, lambda: "launching 1 x t3.small for reservation 42" in log_text(), what="launch log")
        text = log_text()
        line = text[text.index("launching 1 x") :].split(" INFO ")[0]
        for field in ("account_id=8", "account_number=ACC-7", "org_id=org-3", f"job_id={launcher.id}"):
            assert field in line
        assert "job_type=launch" in line

        table.focus()
        table.move_cursor(row=table.get_row_index(InFlightTable.key_of(launch_row)))
        await press(pilot, "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, JobDetailScreen), what="job detail")
        text = screen_text(pilot)
        assert str(launcher.id) in text
        assert '"reservation_id": 42' in text
        assert "ACC-7" in text and "org-3" in text
        assert "running" in text
        await press(pilot, "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))

        await press(pilot, "s")  # graceful stop: grace 0.2 s, then both jobs are handed back
        await wait_for(pilot, lambda: not app.embedded.running, what="worker stopped")
        stats = await q.stats()
        assert stats.in_flight == 0 and stats.pending == 2
        await fresh_snapshot(pilot)
        assert table.row_count == 0
        assert cell(queues(app), TOTAL_KEY, "pending") == "2"


async def test_in_flight_pages() -> None:
    async with console("memory://", in_flight_page=10) as (pilot, app, q):
        await q.register_types({"sleep": {}})
        await q.enqueue_many([Job(type="sleep", args={"seconds": 1}) for _ in range(25)])
        await q.fetch("busy-worker", ["sleep"], 25, 0)
        await fresh_snapshot(pilot)
        table = in_flight(app)
        assert table.row_count == 10
        assert "page 1/3" in str(table.border_subtitle)
        await press(pilot, "right_square_bracket")
        await fresh_snapshot(pilot)
        expected = [InFlightTable.key_of(j) for j in (await q.in_flight(30))[10:20]]
        assert table._order == expected
        assert "page 2/3" in str(table.border_subtitle)
        await press(pilot, "right_square_bracket", "right_square_bracket")
        await fresh_snapshot(pilot)
        assert table.row_count == 5 and "page 3/3" in str(table.border_subtitle)
        await press(pilot, "left_square_bracket")
        await fresh_snapshot(pilot)
        assert "page 2/3" in str(table.border_subtitle)


# ---- dead and failed -------------------------------------------------------------


@pytest.mark.memory_too
async def test_dead_jobs_from_a_real_worker_requeue_and_purge(url: str) -> None:
    async with console(url) as (pilot, app, q):
        await q.register_types({"sleep": {}})
        for _ in range(3):
            await plant(q, "sleep", b"\x09not an envelope")
        await press(pilot, "s")

        async def three_dead() -> bool:
            return (await q.stats()).types["sleep"].dead == 3

        deadline = time.monotonic() + 10
        while not await three_dead():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await press(pilot, "s")
        await wait_for(pilot, lambda: not app.embedded.running)
        await fresh_snapshot(pilot)
        assert cell(queues(app), "type:sleep", "dead") == "3"

        await press(pilot, "d")
        await wait_for(pilot, lambda: isinstance(app.screen, BadJobsScreen))
        await press(pilot, "g")  # every job, not grouped by cause
        screen = app.screen
        assert isinstance(screen, BadJobsScreen)
        table = screen.query_one(BadTable)
        await wait_for(pilot, lambda: table.row_count == 3, what="three dead rows")
        dead = await q.dead()
        assert [k for k in table._order] == [f"sleep\x1f{d.id}" for d in dead]
        first = f"sleep\x1f{dead[0].id}"
        assert "unknown envelope version 9" in cell(table, first, "reason")
        assert "unknown envelope version 9" in str(screen.query_one("#reason", Static).render())

        await press(pilot, "r")  # requeue the selected one: asks first
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await press(pilot, "y")
        await wait_for(pilot, lambda: table.row_count == 2, what="two dead rows after requeue")
        stats = (await q.stats()).types["sleep"]
        assert (stats.dead, stats.pending) == (2, 1)
        assert dead[0].id not in [d.id for d in await q.dead()]

        await press(pilot, "x")  # purge one: asks first
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "cannot be undone" in screen_text(pilot)
        await press(pilot, "n")
        await wait_for(pilot, lambda: isinstance(app.screen, BadJobsScreen))
        assert (await q.stats()).types["sleep"].dead == 2
        await press(pilot, "x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await press(pilot, "y")
        await wait_for(pilot, lambda: table.row_count == 1, what="one dead row after purge")
        assert (await q.stats()).types["sleep"].dead == 1

        await press(pilot, "R")  # requeue all, after confirming
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await press(pilot, "y")
        await wait_for(pilot, lambda: table.row_count == 0, what="no dead rows")
        stats = (await q.stats()).types["sleep"]
        assert (stats.dead, stats.pending) == (0, 2)
        await press(pilot, "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        await fresh_snapshot(pilot)
        assert cell(queues(app), "type:sleep", "dead") == "0"
        assert cell(queues(app), "type:sleep", "pending") == "2"


async def test_failed_jobs_show_the_traceback_and_purge_all(url: str) -> None:
    async with console(url) as (pilot, app, q):
        await q.enqueue_many([Job(type="fail", args={"message": "card declined"}, account_id=5) for _ in range(2)])
        await press(pilot, "s")

        async def failed() -> bool:
            return (await q.stats()).types["fail"].failed == 2

        deadline = time.monotonic() + 10
        while not await failed():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await press(pilot, "s")
        await wait_for(pilot, lambda: not app.embedded.running)
        await press(pilot, "f")
        await wait_for(pilot, lambda: isinstance(app.screen, BadJobsScreen))
        await press(pilot, "g")  # every job, not grouped by cause
        screen = app.screen
        table = screen.query_one(BadTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        reason = str(screen.query_one("#reason", Static).render())
        assert "Traceback (most recent call last)" in reason
        assert "RuntimeError: card declined" in reason
        await press(pilot, "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, JobDetailScreen))
        text = screen_text(pilot)
        assert "Failed job" in text and "RuntimeError: card declined" in text and '"message": "card declined"' in text
        await press(pilot, "escape")
        await press(pilot, "tab")  # to the dead list and back
        await wait_for(pilot, lambda: isinstance(app.screen, BadJobsScreen) and app.screen.which == "dead")
        await press(pilot, "tab")
        await wait_for(pilot, lambda: table.row_count == 2)
        await press(pilot, "X")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await press(pilot, "y")
        await wait_for(pilot, lambda: table.row_count == 0)
        assert await q.failed() == []


# ---- read-only ---------------------------------------------------------------------


async def test_read_only_refuses_every_mutating_action() -> None:
    async with console("memory://", read_only=True) as (pilot, app, q):
        await dead_jobs(q, 1)
        await fresh_snapshot(pilot)
        assert "READ-ONLY" in screen_text(pilot).splitlines()[0]
        await press(pilot, "e")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        await press(pilot, "s")
        await pilot.pause()
        assert not app.embedded.running
        await press(pilot, "plus")
        assert app.embedded.concurrency == 10
        notes = [n.message for n in app._notifications]
        assert any("read-only: enqueue is disabled" in m for m in notes)
        assert any("read-only: the embedded worker is disabled" in m for m in notes)
        await press(pilot, "d")
        await wait_for(pilot, lambda: isinstance(app.screen, BadJobsScreen))
        await press(pilot, "g")  # every job, not grouped by cause
        table = app.screen.query_one(BadTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        for key in ("r", "R", "x", "X"):
            await press(pilot, key)
            await pilot.pause()
            assert isinstance(app.screen, BadJobsScreen)
        assert (await q.stats()).types["sleep"].dead == 1
        assert (await q.stats()).pending == 0
        assert any("read-only: purge is disabled" in n.message for n in app._notifications)


# ---- connection loss -------------------------------------------------------------------


async def test_disconnected_retrying_then_recovers(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        async with console(server.url, refresh=0.2) as (pilot, app, q):
            await q.enqueue_many([Job(type="sleep", args={"seconds": 1})])
            await fresh_snapshot(pilot)
            assert app.link.state == "connected"
            await asyncio.to_thread(server.stop)
            await wait_for(pilot, lambda: app.link.state == "disconnected", what="disconnected")
            await pilot.pause()
            header = screen_text(pilot).splitlines()[0]
            assert "disconnected, retrying" in header
            assert app.screen.query_one("#body").has_class("-stale")
            assert cell(queues(app), "type:sleep", "pending") == "1"  # last known, dimmed
            await asyncio.to_thread(server.start)
            await wait_for(pilot, lambda: app.link.state == "connected", timeout=15, what="reconnected")
            await pilot.pause()
            assert "● connected" in screen_text(pilot).splitlines()[0]
            assert not app.screen.query_one("#body").has_class("-stale")
    finally:
        server.cleanup()


# ---- workers ---------------------------------------------------------------------------


async def test_a_worker_that_stops_heartbeating_is_stale(frozen_clock: FrozenClock) -> None:
    async with console("memory://", refresh=3600) as (pilot, app, q):
        info = {
            "id": "worker-a-1",
            "host": "worker-a",
            "pid": 4242,
            "concurrency": 8,
            "busy": 2,
            "types": ["sleep"],
            "started_ms": frozen_clock.ms - 60_000,
            "processed": 12,
            "failed": 1,
            "heartbeat_interval_ms": 5000,
        }
        await q.heartbeat(info, 60_000)
        await fresh_snapshot(pilot)
        table = app.screen.query_one(WorkersTable)
        assert cell(table, "worker-a-1", "state") == "alive"
        assert cell(table, "worker-a-1", "busy") == "2/8"
        assert cell(table, "worker-a-1", "host") == "worker-a"
        frozen_clock.advance(20)
        await fresh_snapshot(pilot)
        assert cell(table, "worker-a-1", "state") == "stale"
        assert cell(table, "worker-a-1", "heartbeat") == "20.0s ago"
        assert "1 not heartbeating" in str(table.border_title)


# ---- polling -------------------------------------------------------------------------


class SlowRunner(Runner):
    """Every call takes 0.3 s; records how many polls ran at once (the history's own
    slower reads run beside them, by design, and are not counted)."""

    def __init__(self, queue: jobcore.Queue) -> None:
        super().__init__(queue)
        self.running = 0
        self.most = 0
        self.calls = 0

    async def call(self, fn: Any) -> Any:
        if getattr(fn, "func", None) is not take_snapshot:
            return await fn(self.queue)
        self.running += 1
        self.calls += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(0.3)
            return await fn(self.queue)
        finally:
            self.running -= 1


async def test_polls_never_pile_up() -> None:
    app = make_app(Settings(url="memory://", refresh=0.05))
    runner = SlowRunner(app.queue)
    app.runner = runner
    async with app.run_test() as pilot:
        started = time.monotonic()
        for _ in range(10):
            await press(pilot, "r")
            await pilot.pause(0.1)
        await pilot.pause(0.5)
        elapsed = time.monotonic() - started
        assert runner.most == 1  # never two polls at once, however often r is pressed
        assert 3 <= runner.calls <= elapsed / 0.3 + 2  # one poll at a time, each 0.3 s: none queued up
        assert app.snapshot is not None


async def test_p_freezes_the_numbers() -> None:
    async with console("memory://", refresh=0.1) as (pilot, app, q):
        await press(pilot, "p")
        await wait_for(pilot, lambda: not app.poller.polling)
        seq = app.snapshot.seq if app.snapshot else 0
        await q.enqueue_many([Job(type="sleep", args={"seconds": 1})])
        await pilot.pause(0.5)
        assert app.snapshot is not None and app.snapshot.seq == seq
        assert "frozen (p)" in screen_text(pilot).splitlines()[0]
        await press(pilot, "p")
        await wait_for(pilot, lambda: app.snapshot is not None and app.snapshot.seq > seq)
        await pilot.pause()
        assert cell(queues(app), "type:sleep", "pending") == "1"


async def test_help_lists_the_keys() -> None:
    async with console("memory://", size=(100, 50)) as (pilot, app, _q):
        await press(pilot, "question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = screen_text(pilot)
        for words in ("enqueue test jobs", "start / stop the embedded worker", "dead jobs", "failed jobs"):
            assert words in text
        await press(pilot, "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))


# ---- one bindings table (issue 11, item 7) ----------------------------------------


def footer_line(pilot: Pilot[Any]) -> str:
    return screen_text(pilot).splitlines()[-1]


async def footer_shows(pilot: Pilot[Any], keys: list[Any], read_only: bool, where: str) -> None:
    """Each key's label is in the footer unless read-only hides it as mutating. Waits for
    that footer: under load a screen's footer repaints (blank for a frame) after the screen."""

    def wrong() -> list[str]:
        footer = footer_line(pilot)
        return [k.label for k in keys if (k.label in footer) is (read_only and k.mutating)]

    try:
        await wait_for(pilot, lambda: not wrong(), timeout=5.0, what=f"{where}'s footer")
    except AssertionError:
        raise AssertionError(f"{where}'s footer is wrong for {wrong()}: {footer_line(pilot)!r}") from None


@pytest.mark.parametrize("read_only", [False, True])
async def test_footer_help_and_palette_come_from_one_table(read_only: bool) -> None:
    from jobconsole.keys import BAD, MAIN, SECTIONS, visible

    async with console("memory://", size=(160, 130), read_only=read_only) as (pilot, app, q):
        await dead_jobs(q, 1)
        await fresh_snapshot(pilot)
        await footer_shows(pilot, [k for k in MAIN if k.action and k.show], read_only, "the main screen")
        await press(pilot, "question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = screen_text(pilot)  # 130 rows: all of the help, unscrolled
        for _, table in SECTIONS:
            for k in table:
                if k.action != "help" or table is SECTIONS[0][1]:
                    assert (k.help[:40] in text) is not (read_only and k.mutating), k.help  # wider ones wrap
        await press(pilot, "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        await open_dead(pilot, 1)
        await footer_shows(
            pilot, [k for k in visible(BAD, read_only=False) if k.action and k.show], read_only, "the dead list"
        )
        # A hidden key still answers, saying why it does nothing.
        await press(pilot, "X")
        await pilot.pause()
        if read_only:
            assert isinstance(app.screen, BadJobsScreen)
            assert any("read-only: purge is disabled" in n.message for n in app._notifications)
        else:
            assert isinstance(app.screen, ConfirmScreen)  # destructive: asks first
            await press(pilot, "n")
        assert (await q.stats()).types["sleep"].dead == 1


async def test_the_command_palette_runs_any_action_by_name() -> None:
    from textual.command import CommandPalette

    async with console("memory://", size=(120, 40)) as (pilot, app, q):
        await dead_jobs(q, 1)
        await fresh_snapshot(pilot)
        await press(pilot, "ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"dead jobs")
        await wait_for(pilot, lambda: "Dead: dead jobs" in screen_text(pilot), what="the hit")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, BadJobsScreen), what="the dead jobs view")
        await press(pilot, "ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"purge all")
        await wait_for(pilot, lambda: "Purge all" in screen_text(pilot), what="the hit")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="purge asks first")
        await press(pilot, "n")
        assert (await q.stats()).types["sleep"].dead == 1


async def test_in_read_only_the_palette_offers_no_mutating_action() -> None:
    from textual.command import CommandPalette

    async with console("memory://", size=(120, 40), read_only=True) as (pilot, app, _):
        await press(pilot, "ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"enqueue")
        await pilot.pause(0.5)
        assert "Enqueue: enqueue test jobs" not in screen_text(pilot)
        await pilot.press(*["backspace"] * 7, *"refresh")
        await wait_for(pilot, lambda: "Refresh: refresh now" in screen_text(pilot), what="a read-only action")


async def test_quit_with_busy_embedded_worker_asks_and_hands_jobs_back(redis_url: str) -> None:
    async with console(redis_url) as (pilot, app, q):
        await q.enqueue_many([Job(type="sleep", args={"seconds": 30})])
        await press(pilot, "s")
        await wait_for(pilot, lambda: app.embedded.status().busy == 1)
        await press(pilot, "q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await press(pilot, "n")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        assert app.embedded.running
        await press(pilot, "q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await press(pilot, "y")
        await wait_for(pilot, lambda: not app.embedded.running)
        stats = await q.stats()
        assert (stats.pending, stats.in_flight) == (1, 0)


async def test_quit_while_redis_is_down_does_not_hang(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        async with console(server.url) as (pilot, app, q):
            await press(pilot, "s")
            await wait_for(pilot, lambda: app.embedded_status.state == "running")
            await q.enqueue_many([Job(type="sleep", args={"seconds": 30})])
            await wait_for(pilot, lambda: app.embedded.status().busy == 1)
            await asyncio.to_thread(server.kill)
            await wait_for(pilot, lambda: app.link.state == "disconnected")
            started = time.monotonic()
            await press(pilot, "q")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await press(pilot, "y")
            await wait_for(pilot, lambda: not app.embedded.running, timeout=15)
            assert time.monotonic() - started < 8
    finally:
        server.cleanup()


async def test_enter_on_a_queue_row_enqueues_that_type() -> None:
    async with console("memory://") as (pilot, app, q):
        await q.enqueue_many([Job(type="launch", args={"reservation_id": 1})])
        await fresh_snapshot(pilot)
        table = queues(app)
        table.focus()
        table.move_cursor(row=table.get_row_index("type:launch"))
        await press(pilot, "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, EnqueueScreen))
        await wait_for(pilot, lambda: app.screen.query_one("#type", Select).value == "launch")
        assert "reservation_id: integer (required)" in str(app.screen.query_one("#hint", Static).render())


async def test_concurrency_keys_set_the_embedded_worker_size() -> None:
    async with console("memory://") as (pilot, app, _q):
        await press(pilot, "plus", "plus", "minus", "plus")
        assert app.embedded.concurrency == 12
        await press(pilot, "s")
        await wait_for(pilot, lambda: app.embedded_status.state == "running")
        await fresh_snapshot(pilot)
        workers = app.screen.query_one(WorkersTable)
        assert cell(workers, app.embedded.worker_id, "busy") == "0/12"
        assert "0/12 busy" in str(app.screen.query_one(WorkerLog).border_title)


async def test_on_a_cluster_every_view_works_and_the_header_names_it(cluster_url: str) -> None:
    async with console(cluster_url, size=(120, 36)) as (pilot, app, q):
        assert await q.set_partitions("launch", 3) == 3
        await q.enqueue_many([Job(type="launch", args={"reservation_id": i}, account_id=i) for i in range(9)])
        await dead_jobs(q, 2)
        await fresh_snapshot(pilot)
        header = screen_text(pilot).splitlines()[0]
        assert "cluster, 3 masters" in header and "0 workers" in header
        assert cell(queues(app), "type:launch", "pending") == "9"
        await press(pilot, "d")
        await wait_for(pilot, lambda: isinstance(app.screen, BadJobsScreen), what="the dead jobs view")
        await press(pilot, "g")  # every job, not grouped by cause
        await wait_for(pilot, lambda: app.screen.query_one(BadTable).row_count == 2, what="two dead rows")


async def test_through_sentinel_the_header_follows_a_failover(sentinel_setup: Any, sentinel_url: str) -> None:
    async with console(sentinel_url, size=(120, 36)) as (pilot, app, q):
        await fresh_snapshot(pilot)
        first = sentinel_setup.primary()
        header = screen_text(pilot).splitlines()[0]
        # A long URL gives way: the topology and the workers stay on the line.
        assert f"→ 127.0.0.1:{first.port}" in header and "0 workers" in header
        new = await asyncio.to_thread(sentinel_setup.failover)
        await q.enqueue(Job(type="launch", args={"reservation_id": 1}))

        def moved() -> bool:
            line = screen_text(pilot).splitlines()[0]
            return f"→ 127.0.0.1:{new.port}" in line and "● connected" in line

        # Polls that failed during the failover back off (0.5, 1, 2, 4, then 5 s): under CI's
        # load the whole failover and those retries once took over 30 s.
        await wait_for(pilot, moved, timeout=60, what="the header to name the new primary")

        def shown() -> bool:
            try:
                return cell(queues(app), "type:launch", "pending") == "1"
            except CellDoesNotExist:
                return False  # its row is not there yet

        await wait_for(pilot, shown, timeout=20, what="the new job")


async def test_the_console_says_redis_may_evict_what_failed_jobs_are_kept_and_what_is_corrupt(
    tmp_path: Path,
) -> None:
    server = RedisServer(tmp_path / "lru", extra_args=["--maxmemory-policy", "allkeys-lru"])
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(f"cannot start the private redis-server: {exc}", pytrace=False)
    try:
        async with console(server.url, size=(160, 36)) as (pilot, app, q):
            await q.register_types({"t": {}})
            await q.enqueue_many([Job(type="t", args={"n": i}) for i in range(3)])
            got = await q.fetch("w1", ["t"], 3, 0)
            q.keep_failed(2)  # the cap drops one: "3 (2 kept)" (a purge takes its job off both numbers)
            await q.settle("w1", [Outcome("t", d.entry_id, "fail", 1, "boom") for d in got])
            raw = server.client()
            raw.sadd("jobcore:{jobcore}:types", "b")
            raw.set("jobcore:{b}:jobs", "not a stream")
            raw.close()
            await fresh_snapshot(pilot)
            header = screen_text(pilot).splitlines()[0]
            assert "maxmemory-policy allkeys-lru may evict jobs" in header
            table = queues(app)
            assert cell(table, "type:t", "failed") == "3 (2 kept)"
            assert cell(table, "type:b", "type").endswith("✖")
            assert "not what jobcore wrote in the keys of: b" in str(table.border_subtitle)
            assert app.link.state == "connected"
    finally:
        server.cleanup()


async def test_the_queues_table_shows_workers_that_disagree_on_a_schema(url: str) -> None:
    async with console(url) as (pilot, app, q):
        await q.enqueue(Job(type="t", args={"n": 1}))
        for wid, h in (("w-old", "aaaa"), ("w-new", "bbbb")):
            await q.heartbeat({"id": wid, "types": ["t"], "schemas": {"t": h}}, 60_000)
        await fresh_snapshot(pilot)
        table = queues(app)
        assert cell(table, "type:t", "type").endswith("≠")
        assert "live workers disagree on the args schema of: t" in str(table.border_subtitle)


# ---- polish seen live (issue 12) ---------------------------------------------------


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
async def test_help_always_shows_how_to_close_it(size: tuple[int, int]) -> None:
    async with console("memory://", size=size) as (pilot, app, _):
        await press(pilot, "question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause()
        assert "escape to close" in screen_text(pilot)


async def test_the_worker_log_rewraps_on_resize_and_drops_its_hint_once_the_worker_runs() -> None:
    from jobconsole.embedded import LogLine

    async with console("memory://", size=(100, 30)) as (pilot, app, _):
        log = app.screen.query_one(WorkerLog)
        assert "press s to run a worker" in str(log.kept[0])
        line = LogLine(time.time(), 20, "INFO", "jobcore.demo", "word " * 60, (("job_type", "sleep"),))
        log.add([line], 0)
        await pilot.pause()

        def widths() -> list[int]:
            return [strip.cell_length for strip in log.lines]

        narrow = len(log.lines)
        assert max(widths()) <= log.scrollable_content_region.width
        await pilot.resize_terminal(150, 30)
        await wait_for(pilot, lambda: len(log.lines) < narrow, what="the log re-wrapped wider")
        assert max(widths()) <= log.scrollable_content_region.width
        await pilot.resize_terminal(100, 30)
        await wait_for(pilot, lambda: len(log.lines) == narrow, what="the log re-wrapped narrower")
        await press(pilot, "s")
        await wait_for(pilot, lambda: app.embedded.running)
        await wait_for(pilot, lambda: not any("press s" in str(k) for k in log.kept), what="the hint gone")
        assert "press s" not in screen_text(pilot)
        assert "word word" in screen_text(pilot)  # what the log said stays


async def test_the_workers_panel_shows_the_embedded_worker_as_it_is_now() -> None:
    async with console("memory://", size=(120, 40), concurrency=3) as (pilot, app, q):
        await q.enqueue_many([Job(type="noop", args={}) for _ in range(10)])
        await press(pilot, "s")
        await wait_for(pilot, lambda: app.embedded.status().processed == 10, what="10 jobs done")
        await fresh_snapshot(pilot)
        status = app.embedded.status()
        table = app.screen.query_one(WorkersTable)
        # The heartbeat record says what it said up to one interval ago; the row says now.
        assert cell(table, status.worker_id, "processed") == "10"
        assert cell(table, status.worker_id, "busy") == "0/3"
        log = app.screen.query_one(WorkerLog)
        await wait_for(pilot, lambda: str(log.border_subtitle).startswith("this run: 10 done · 0 failed · 0 dead-"))


async def test_the_enqueue_button_label_fits_whatever_the_count() -> None:
    async with console("memory://", size=(80, 24)) as (pilot, app, _):
        await press(pilot, "e")
        await wait_for(pilot, lambda: isinstance(app.screen, EnqueueScreen))
        app.screen.query_one("#count", Input).value = "20"
        await pilot.pause()
        await pilot.pause()
        assert "Enqueue 20 jobs (ctrl+s)" in screen_text(pilot)


async def test_purging_one_job_names_it_in_the_question() -> None:
    async with console("memory://", size=(120, 40)) as (pilot, app, q):
        await dead_jobs(q, 2)
        await fresh_snapshot(pilot)
        screen = await open_dead(pilot, 2)
        job = screen.selected()
        assert job is not None and job.envelope is not None
        await press(pilot, "x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        question = screen_text(pilot)
        assert "Purge this dead job?" in question
        assert f"sleep job {job.job_id}" in question
        assert f"account_id {job.envelope.account_id} · attempt {job.attempt}" in question
        assert job.reason in question
        await press(pilot, "y")
        await wait_for(pilot, lambda: isinstance(app.screen, BadJobsScreen))
        await wait_for(pilot, lambda: screen.query_one(BadTable).row_count == 1)
        assert [d.job_id for d in await q.dead()] != [job.job_id]


async def test_at_120_columns_every_worker_column_and_the_dead_jobs_worker_show() -> None:
    async with console("memory://", size=(120, 40)) as (pilot, _, q):
        info = {
            "id": "billing-7f3a-1",
            "host": "billing-host",
            "pid": 4242,
            "concurrency": 4,
            "busy": 1,
            "types": ["launch", "sleep"],
            "started_ms": int(time.time() * 1000),
            "processed": 1234,
            "failed": 56,
            "heartbeat_interval_ms": 5000,
        }
        await q.heartbeat(info, 60_000)
        await dead_jobs(q, 1, consumer="console-vm-9149-00ad")
        await fresh_snapshot(pilot)
        lines = screen_text(pilot).splitlines()
        header = next(line for line in lines if " worker " in line and " state " in line)
        for column in ("processed", "failed", "host", "pid", "types"):
            assert f" {column}" in header
        row = next(line for line in lines if "billing-7f3a-1" in line)
        assert "1,234" in row and " 56 " in row and "billing-host" in row and "4242" in row and "launch,sleep" in row
        await open_dead(pilot, 1)
        await pilot.pause()
        assert "console-vm-9149-00ad" in screen_text(pilot)
