"""SVG snapshots of every screen at 80x24 and 120x40, on fixed data and a frozen clock.

Update with ``pytest tests/console/test_snapshots.py --snapshot-update`` and read the
report before committing new baselines.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import TextArea

from jobconsole.app import JobConsole, make_app
from jobconsole.components.badjobs import BadJobsScreen, BadTable, GroupTable
from jobconsole.components.confirm import ConfirmScreen
from jobconsole.components.detail import JobDetailScreen
from jobconsole.components.enqueue import EnqueueScreen
from jobconsole.components.find import FindScreen, FoundTable
from jobconsole.components.help import HelpScreen
from jobconsole.components.history import HistoryScreen
from jobconsole.components.panels import InFlightTable
from jobconsole.components.tables import LiveTable
from jobconsole.components.why import WhyScreen
from jobconsole.settings import Settings

from .conftest import FrozenClock, freeze_cursors, fresh_snapshot, load_fixed_data, press, wait_for

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


@pytest.fixture(autouse=True)
def no_slow_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """A poll's time is real (CI once saw a 274 ms one under load): never shown in a snapshot."""
    monkeypatch.setattr("jobconsole.components.status.SLOW_SERVER_S", float("inf"))


def snapshot_app() -> JobConsole:
    # A long refresh: only the polls the test asks for happen, so nothing moves.
    return make_app(Settings(url="memory://", refresh=3600))


async def _main(pilot: Pilot[Any], clock: FrozenClock, history: bool = False) -> None:
    app = pilot.app
    assert isinstance(app, JobConsole)
    await load_fixed_data(pilot, clock, history)
    app.read_history()  # the chart's read (every history_refresh s when live) of what was settled
    await wait_for(
        pilot, lambda: not app.poller.history_reading and app.history is not None and "noop" in app.history.types
    )
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_main_screen(snap_compare: Any, frozen_clock: FrozenClock, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _main(pilot, frozen_clock, history=True)

    assert snap_compare(snapshot_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_enqueue_modal_with_a_validation_error(
    snap_compare: Any, frozen_clock: FrozenClock, size: tuple[int, int]
) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _main(pilot, frozen_clock)
        await press(pilot, "e")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, EnqueueScreen))
        await pilot.pause(0.2)  # the type list from the queue
        pilot.app.screen.query_one("#args", TextArea).text = '{"seconds": -5}'
        freeze_cursors(pilot)
        await pilot.pause()

    assert snap_compare(snapshot_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_dead_jobs_view(snap_compare: Any, frozen_clock: FrozenClock, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _main(pilot, frozen_clock)
        await press(pilot, "d")  # grouped by cause
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, BadJobsScreen))
        await wait_for(pilot, lambda: pilot.app.screen.query_one(GroupTable).row_count == 2)
        await pilot.pause()

    assert snap_compare(snapshot_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_job_detail(snap_compare: Any, frozen_clock: FrozenClock, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _main(pilot, frozen_clock)
        table = pilot.app.screen.query_one(InFlightTable)
        launch = next(k for k, j in table.jobs.items() if j.job_type == "launch")
        table.move_cursor(row=table.get_row_index(launch))
        await press(pilot, "enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, JobDetailScreen))
        await pilot.pause()

    assert snap_compare(snapshot_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare: Any, frozen_clock: FrozenClock, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _main(pilot, frozen_clock)
        await press(pilot, "question_mark")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))
        await pilot.pause()

    assert snap_compare(snapshot_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_read_only_main_screen(snap_compare: Any, frozen_clock: FrozenClock, size: tuple[int, int]) -> None:
    """No key that changes the queue in the footer, and none in the help."""

    async def run_before(pilot: Pilot[Any]) -> None:
        await _main(pilot, frozen_clock)

    app = make_app(Settings(url="memory://", refresh=3600, read_only=True))
    assert snap_compare(app, terminal_size=size, run_before=run_before)


# ---- the incident views (issue 11) ----------------------------------------------------


async def _focus_row(pilot: Pilot[Any], table_id: str, key: str) -> None:
    table = pilot.app.screen.query_one(table_id, LiveTable)
    table.focus()
    table.move_cursor(row=table._order.index(key))
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES)
def test_filter_by_org(snap_compare: Any, frozen_clock: FrozenClock, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _main(pilot, frozen_clock)
        await press(pilot, "slash")
        await pilot.press(*"org:org-2")
        await press(pilot, "enter")
        await fresh_snapshot(pilot)
        freeze_cursors(pilot)

    assert snap_compare(snapshot_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_find_results(snap_compare: Any, frozen_clock: FrozenClock, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _main(pilot, frozen_clock)
        await press(pilot, "j")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, FindScreen))
        await pilot.press(*"type:launch")
        await press(pilot, "enter")
        await wait_for(pilot, lambda: pilot.app.screen.query_one(FoundTable).row_count > 1)
        freeze_cursors(pilot)
        await pilot.pause()

    assert snap_compare(snapshot_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_paused_type_and_the_cancel_question(
    snap_compare: Any, frozen_clock: FrozenClock, size: tuple[int, int]
) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, JobConsole)
        await _main(pilot, frozen_clock)
        await app.queue.pause("report")
        await fresh_snapshot(pilot)
        table = app.screen.query_one(InFlightTable)
        launch = next(k for k, j in table.jobs.items() if j.job_type == "launch")
        await _focus_row(pilot, "#in-flight", launch)
        await press(pilot, "c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.pause()

    assert snap_compare(snapshot_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_why_dialog(snap_compare: Any, frozen_clock: FrozenClock, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _main(pilot, frozen_clock)
        await _focus_row(pilot, "#queues", "type:launch")
        await press(pilot, "w")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, WhyScreen))
        await pilot.pause()

    assert snap_compare(snapshot_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_history_chart(snap_compare: Any, frozen_clock: FrozenClock, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, JobConsole)
        await _main(pilot, frozen_clock)
        await press(pilot, "h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await wait_for(pilot, lambda: app.history is not None and "noop" in app.history.types)
        await pilot.pause()

    assert snap_compare(snapshot_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_failed_jobs_of_one_group(snap_compare: Any, frozen_clock: FrozenClock, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await _main(pilot, frozen_clock)
        await press(pilot, "f")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, BadJobsScreen))
        await wait_for(pilot, lambda: pilot.app.screen.query_one(GroupTable).row_count == 1)
        await press(pilot, "enter")  # into the group
        await wait_for(pilot, lambda: pilot.app.screen.query_one(BadTable).row_count == 2)
        await pilot.pause()

    assert snap_compare(snapshot_app(), terminal_size=size, run_before=run_before)
