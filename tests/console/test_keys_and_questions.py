"""Issue 19 items 3, 16, 17: a key acts on the row the user sees under the cursor,
asks before it changes the queue, and its question's buttons say what happens."""

from __future__ import annotations

from textual.widgets import Button, Static

import jobcore
from jobconsole.app import JobConsole
from jobconsole.components.badjobs import BadJobsScreen, BadTable, GroupTable
from jobconsole.components.confirm import ConfirmScreen
from jobconsole.components.main_screen import MainScreen
from jobconsole.components.panels import InFlightTable, QueuesTable, WorkersTable
from jobconsole.components.why import WhyScreen
from jobcore import Job
from jobcore.records import Outcome

from .conftest import fresh_snapshot, press, wait_for
from .test_console import console


def buttons(app: JobConsole) -> tuple[str, str]:
    screen = app.screen
    assert isinstance(screen, ConfirmScreen)
    return str(screen.query_one("#yes", Button).label), str(screen.query_one("#no", Button).label)


def asked(app: JobConsole) -> str:
    """The question alone (screen_text also has the screen under the dialog)."""
    screen = app.screen
    assert isinstance(screen, ConfirmScreen)
    return str(screen.query_one("#question", Static).render())


def notes(app: JobConsole) -> list[str]:
    return [n.message for n in app._notifications]


async def test_pause_and_why_act_on_the_focused_in_flight_rows_type(url: str) -> None:
    async with console(url, size=(120, 40)) as (pilot, app, q):
        # "aaa.first" sorts first: the queues table's cursor sits on it, out of focus.
        await q.enqueue_many([Job(type="aaa.first", args={}, account_id=1), Job(type="sleep", args={}, account_id=2)])
        await q.fetch("w-1", ["sleep"], 1, 0)
        await fresh_snapshot(pilot)
        flight = app.screen.query_one(InFlightTable)
        await wait_for(pilot, lambda: flight.row_count == 1, what="the in-flight row")
        flight.focus()
        await pilot.pause()
        running = flight.selected_job()
        assert running is not None

        await press(pilot, "P")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the pause question")
        question = asked(app)
        assert "Pause sleep?" in question and "aaa.first" not in question
        assert buttons(app) == ("Yes, pause it (y)", "Leave it running (n)")
        await press(pilot, "n")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))

        await press(pilot, "w")
        await wait_for(pilot, lambda: isinstance(app.screen, WhyScreen), what="the why dialog")
        why = app.screen
        assert isinstance(why, WhyScreen)
        assert why.explanation.job_type == "sleep"
        assert why.explanation.job_id == running.job_id
        await press(pilot, "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))

        queues = app.screen.query_one(QueuesTable)  # focused: its cursor's row, the one shown
        queues.focus()
        queues.move_cursor(row=0)
        await pilot.pause()
        await press(pilot, "P")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Pause aaa.first?" in asked(app)
        await press(pilot, "n")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))

        app.screen.query_one(WorkersTable).focus()  # no type under the cursor: none acted on
        await pilot.pause()
        await press(pilot, "P", "w")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert sum("select a queue row or an in-flight job first" in n for n in notes(app)) == 2
        assert not (await q.stats()).types["aaa.first"].paused and not (await q.stats()).types["sleep"].paused


async def test_cancel_says_what_each_answer_does() -> None:
    async with console("memory://", size=(120, 40)) as (pilot, app, q):
        await q.enqueue_many([Job(type="sleep", args={}, account_id=2)])
        await q.fetch("w-1", ["sleep"], 1, 0)
        await fresh_snapshot(pilot)
        flight = app.screen.query_one(InFlightTable)
        await wait_for(pilot, lambda: flight.row_count == 1)
        flight.focus()
        await press(pilot, "c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert buttons(app) == ("Yes, cancel it (y)", "Keep it running (n)")
        await press(pilot, "n")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        app.screen.query_one(QueuesTable).focus()  # the in-flight cursor hidden: c acts on nothing
        await pilot.pause()
        await press(pilot, "c")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert "cancel: select a running job in the in-flight table first" in notes(app)
        assert len(await q.in_flight()) == 1


async def two_groups(q: jobcore.Queue) -> None:
    """Three dead sleep jobs: two of one cause (the older), then one of another (the newest)."""
    await q.register_types({"sleep": {}})
    await q.enqueue_many([Job(type="sleep", args={}, account_id=i) for i in range(3)])
    got = await q.fetch("w-1", ["sleep"], 3, 0)
    reasons = ["KeyError: 'a'", "KeyError: 'a'", "TimeoutError: slow"]
    for d, reason in zip(got, reasons, strict=True):
        await q.settle("w-1", [Outcome("sleep", d.entry_id, "dead", 1, reason)])


async def test_requeue_asks_naming_the_job_and_the_notice_names_it(redis_url: str) -> None:
    async with console(redis_url, size=(120, 40)) as (pilot, app, q):
        await two_groups(q)
        await fresh_snapshot(pilot)
        await press(pilot, "d")
        await wait_for(pilot, lambda: isinstance(app.screen, BadJobsScreen) and len(app.screen.groups) == 2)
        screen = app.screen
        assert isinstance(screen, BadJobsScreen)
        groups = screen.query_one(GroupTable)
        await wait_for(pilot, lambda: groups.row_count == 2)
        # The group of two is listed first (largest first); its pane shows its newest job.
        group = screen.selected_group()
        assert group is not None and group.count == 2

        await press(pilot, "g")  # every job: the cursor on the job the pane showed, not the newest of all
        table = screen.query_one(BadTable)
        await wait_for(pilot, lambda: table.row_count == 3)
        job = screen.selected()
        assert job is not None and job.id == group.example.id
        assert table.cursor_row == 1  # not the top row: the newest job overall has the other cause

        await press(pilot, "r")  # one job: asks, naming it
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the requeue question")
        question = asked(app)
        assert "Requeue this dead job?" in question and f"sleep job {job.job_id}" in question
        assert buttons(app) == ("Yes, requeue it (y)", "Leave it dead (n)")
        await press(pilot, "n")
        await wait_for(pilot, lambda: app.screen is screen)
        assert (await q.stats()).types["sleep"].dead == 3

        await press(pilot, "r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await press(pilot, "y")
        await wait_for(pilot, lambda: table.row_count == 2, what="the requeued row gone")
        assert job.id not in [d.id for d in await q.dead()]
        assert job.job_id is not None
        assert f"requeued dead sleep job {job.job_id[:8]} (1 job)" in notes(app)

        await press(pilot, "g")  # back to the groups: the cursor on the group of the job looked at
        await wait_for(pilot, lambda: screen.showing_groups and groups.row_count == 2)
        looked = screen.selected()
        assert looked is not None
        selected = screen.selected_group()
        assert selected is not None and looked in screen.triaged.members[selected.key]
        await press(pilot, "x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert buttons(app) == ("Yes, purge 1 (y)", "Keep them (n)")
        await press(pilot, "escape")
        await wait_for(pilot, lambda: app.screen is screen)
