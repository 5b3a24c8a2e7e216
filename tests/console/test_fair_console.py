"""Issue 20: the console shows a fair type and lets an operator change it, asking first
(never in --read-only)."""

from __future__ import annotations

import pytest
from textual.widgets import Static

import jobcore
from jobconsole.app import JobConsole
from jobconsole.components.confirm import ConfirmScreen
from jobconsole.components.fairness import FairScreen, LimitScreen
from jobconsole.components.main_screen import MainScreen
from jobconsole.components.panels import QueuesTable
from jobcore import Job

from .conftest import cell, fresh_snapshot, press, screen_text, wait_for
from .test_console import console


def fair_text(app: JobConsole) -> str:
    screen = app.screen
    assert isinstance(screen, FairScreen)
    return str(screen.query_one("#fair-lines", Static).render())


async def open_fair(pilot: object, app: JobConsole, q: jobcore.Queue) -> None:
    await fresh_snapshot(pilot)  # type: ignore[arg-type]
    queues = app.screen.query_one(QueuesTable)
    queues.focus()
    queues.move_cursor(row=0)
    await pilot.pause()  # type: ignore[attr-defined]
    await press(pilot, "a")  # type: ignore[arg-type]
    await wait_for(pilot, lambda: isinstance(app.screen, FairScreen), what="the fairness dialog")  # type: ignore[arg-type]


@pytest.mark.memory_too
async def test_a_fair_type_is_marked_and_its_limit_set_after_a_question(url: str) -> None:
    async with console(url, size=(120, 40)) as (pilot, app, q):
        await q.enqueue_many([Job(type="sleep", args={}, account_id=a) for a in (1, 1, 1, 2)])
        await q.set_fair("sleep", True)
        await q.fetch("w-1", ["sleep"], 1, 0)  # takes the jobs in: who waits is known
        await fresh_snapshot(pilot)
        queues = app.screen.query_one(QueuesTable)
        await wait_for(pilot, lambda: "fair" in cell(queues, "type:sleep", "type"), what="the fair mark")
        await open_fair(pilot, app, q)
        text = fair_text(app)
        assert "sleep: fair (accounts take turns); no limit per account" in text
        assert "2 account(s) with jobs waiting; most: 1 (2), 2 (1)" in text

        await press(pilot, "l")
        await wait_for(pilot, lambda: isinstance(app.screen, LimitScreen), what="the limit box")
        await press(pilot, "3", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        assert "Set sleep to at most 3 of one account's jobs at once?" in screen_text(pilot)
        await press(pilot, "y")
        await wait_for(pilot, lambda: isinstance(app.screen, FairScreen), what="back to the dialog")
        await wait_for(pilot, lambda: "at most 3 of an account's jobs run at once" in fair_text(app), what="re-read")
        assert (await q.fair_info("sleep")).settings.per_account == 3

        await press(pilot, "t")  # off, after a question answered no: nothing changes
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Make sleep first in, first out again?" in screen_text(pilot)
        await press(pilot, "n")
        await wait_for(pilot, lambda: isinstance(app.screen, FairScreen))
        assert (await q.fair_info("sleep")).settings.on
        await press(pilot, "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))


async def test_read_only_shows_fairness_and_changes_nothing() -> None:
    async with console("memory://", size=(120, 40), read_only=True) as (pilot, app, q):
        await q.enqueue_many([Job(type="sleep", args={}, account_id=1)])
        await q.set_fair("sleep", True)
        await open_fair(pilot, app, q)
        assert "l: limit" not in screen_text(pilot) and "t: fair on/off" not in screen_text(pilot)
        await press(pilot, "l", "t")
        await pilot.pause()
        assert isinstance(app.screen, FairScreen)
        assert any("read-only: the limit is disabled" in n.message for n in app._notifications)
        assert any("read-only: fairness is disabled" in n.message for n in app._notifications)
        info = await q.fair_info("sleep")
        assert info.settings.on and info.settings.per_account == 0
