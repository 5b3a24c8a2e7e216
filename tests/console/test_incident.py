"""Pilot tests of the incident controls (issue 11), against memory:// and a real private
redis-server: filter, find, pause / resume, cancel, failures grouped by cause, history
and why. Each reads what the screen shows and compares it with what the queue holds."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

import jobcore
from jobconsole.app import JobConsole
from jobconsole.components.audit import AuditScreen
from jobconsole.components.badjobs import BadJobsScreen, BadTable, GroupTable
from jobconsole.components.confirm import ConfirmScreen
from jobconsole.components.detail import JobDetailScreen
from jobconsole.components.find import FindScreen, FoundTable
from jobconsole.components.history import HistoryChart, HistoryScreen
from jobconsole.components.main_screen import MainScreen
from jobconsole.components.waiting import WaitingScreen, WaitingTable
from jobconsole.components.why import WhyScreen
from jobconsole.format import millis
from jobcore import Identity, Job
from jobcore.ops.audit import default_actor
from jobcore.records import Outcome

from .conftest import cell, fresh_snapshot, press, screen_text, wait_for
from .test_console import console, in_flight, queues


def tenant(account: int) -> dict[str, Any]:
    return {"account_id": account, "identity": Identity(account_number=f"{account:06d}", org_id=f"org-{account % 3}")}


async def type_in(pilot: Pilot[Any], text: str) -> None:
    await press(pilot, *text)  # each key handled; no wait for the process to go idle between keys
    await pilot.pause()


async def focus_queue_row(pilot: Pilot[Any], app: JobConsole, job_type: str) -> None:
    table = queues(app)
    table.focus()
    await wait_for(pilot, lambda: f"type:{job_type}" in table._cells, what=f"the {job_type} row")
    table.move_cursor(row=table._order.index(f"type:{job_type}"))
    await pilot.pause()


def notes(app: JobConsole) -> list[str]:
    return [str(n.message) for n in app._notifications]


# ---- filter --------------------------------------------------------------------------


async def test_filter_narrows_in_flight_to_an_account_and_says_a_bad_word_inline(url: str) -> None:
    async with console(url, size=(120, 40)) as (pilot, app, q):
        await q.enqueue_many(
            [Job(type="launch", args={"reservation_id": 700 + i}, **tenant(a)) for i, a in enumerate((41, 42, 42, 43))]
        )
        await q.fetch("w-1", ["launch"], 10, 0)
        await fresh_snapshot(pilot)
        assert in_flight(app).row_count == 4
        await press(pilot, "slash")
        await type_in(pilot, "account:42")
        want = {j.job_id for j in await q.in_flight() if j.account_id == 42}
        table = in_flight(app)
        await wait_for(pilot, lambda: {j.job_id for j in table.jobs.values()} == want, what="account 42's jobs")
        await fresh_snapshot(pilot)  # and the poll taken with the filter agrees
        assert {j.job_id for j in table.jobs.values()} == want and len(want) == 2
        assert "In flight 2 of 4 · account:42" in screen_text(pilot)
        # Combined words: res: narrows further.
        await type_in(pilot, " res:702")
        await wait_for(pilot, lambda: table.row_count == 1, what="one job")
        # A bad word: said inline, the last good filter stays, nothing crashes.
        await type_in(pilot, " bogus:1")
        await pilot.pause()
        assert "✖ unknown find word 'bogus:1'" in screen_text(pilot)
        assert table.row_count == 1 and isinstance(app.screen, MainScreen)
        await press(pilot, "escape")  # clears
        await wait_for(pilot, lambda: table.row_count == 4, what="every row again")
        assert app.scope.query is None


async def test_the_filter_narrows_the_dead_list_and_its_groups(url: str) -> None:
    async with console(url, size=(120, 40)) as (pilot, app, q):
        await q.register_types({"sleep": {}})
        await q.enqueue_many([Job(type="sleep", args={"seconds": 1}, **tenant(a)) for a in (7, 7, 8)])
        got = await q.fetch("w-1", ["sleep"], 3, 0)
        await q.settle(
            "w-1", [Outcome("sleep", d.entry_id, "dead", 1, f"TimeoutError: took {i}s") for i, d in enumerate(got)]
        )
        await fresh_snapshot(pilot)
        await press(pilot, "d")
        await wait_for(pilot, lambda: isinstance(app.screen, BadJobsScreen))
        screen = app.screen
        assert isinstance(screen, BadJobsScreen)
        groups = screen.query_one(GroupTable)
        await wait_for(pilot, lambda: groups.row_count == 1)
        assert cell(groups, next(iter(groups._cells)), "count") == "3"
        await press(pilot, "slash")
        await type_in(pilot, "acct:000007")
        await wait_for(pilot, lambda: cell(groups, next(iter(groups._cells)), "count") == "2", what="2 of 3")
        want = {d.job_id for d in await q.dead() if d.envelope and d.envelope.account_id == 7}
        await press(pilot, "enter", "enter")  # to the groups, then into the group
        table = screen.query_one(BadTable)
        await wait_for(pilot, lambda: table.row_count == 2, what="the group's jobs")
        assert {j.job_id for j in screen.rows.values()} == want


# ---- find ----------------------------------------------------------------------------


async def find(pilot: Pilot[Any], app: JobConsole, text: str) -> FindScreen:
    await press(pilot, "j")
    await wait_for(pilot, lambda: isinstance(app.screen, FindScreen), what="the find dialog")
    screen = app.screen
    assert isinstance(screen, FindScreen)
    await type_in(pilot, text)
    await press(pilot, "enter")
    return screen


async def test_find_a_job_by_an_id_from_a_log_line_wherever_it_is(url: str) -> None:
    async with console(url, size=(120, 40)) as (pilot, app, q):
        ids = await q.enqueue_many(
            [Job(type="launch", args={"reservation_id": 900 + a}, **tenant(a)) for a in (1, 2, 3)]
        )
        running = (await q.fetch("w-9", ["launch"], 1, 0))[0]
        await q.settle("w-9", [])
        dead = (await q.fetch("w-9", ["launch"], 1, 0))[0]
        await q.settle("w-9", [Outcome("launch", dead.entry_id, "dead", 1, "KeyError: 'x'")])
        await fresh_snapshot(pilot)
        by_where = {}
        for job_id in ids:
            found = await q.find(str(job_id))
            by_where[found[0].where] = (job_id, found[0])
        assert set(by_where) == {"in_flight", "dead", "pending"}, by_where
        for where, (job_id, record) in by_where.items():
            # The whole id as a log line prints it opens the job's detail at once.
            screen = await find(pilot, app, str(job_id))
            await wait_for(pilot, lambda: isinstance(app.screen, JobDetailScreen), what=f"the {where} job's detail")
            text = screen_text(pilot)
            assert str(job_id) in text and record.describe() in text
            assert f"{record.account_id}" in text and str(record.account_number) in text
            await press(pilot, "escape")
            await wait_for(pilot, lambda: isinstance(app.screen, FindScreen))
            results = app.screen.query_one(FoundTable)
            assert results.row_count == 1
            shown = str(results.get_cell("0", "where")).strip()
            assert shown == ("in flight on w-9" if record.where == "in_flight" else record.where)
            await press(pilot, "escape")
            await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        assert running.entry_id in str(by_where["in_flight"][1].ref)
        # By its first 8 hex characters, too.
        screen = await find(pilot, app, str(by_where["dead"][0])[:8])
        await wait_for(pilot, lambda: isinstance(app.screen, JobDetailScreen))
        await press(pilot, "escape", "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        # An id nobody has: not found, said in the list.
        screen = await find(pilot, app, "0" * 8 + "-0000-8000-8000-" + "0" * 12)
        await wait_for(pilot, lambda: "nothing found" in screen_text(pilot), what="nothing found")
        assert "not found" in str(screen.query_one(FoundTable).get_cell("0", "where"))
        await press(pilot, "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        # A bad word is said inline, and nothing is searched.
        screen = await find(pilot, app, "account:forty")
        await pilot.pause()
        assert "account: takes a whole number" in str(screen.query_one("#find-status", Static).render())
        assert isinstance(app.screen, FindScreen)


# ---- pause / resume ------------------------------------------------------------------


@pytest.mark.memory_too
async def test_pause_and_resume_a_type_from_its_row(url: str) -> None:
    async with console(url, size=(120, 40)) as (pilot, app, q):
        await q.enqueue_many([Job(type="sleep", args={"seconds": 1}) for _ in range(3)])
        await fresh_snapshot(pilot)
        await focus_queue_row(pilot, app, "sleep")
        await press(pilot, "P")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="asks first")
        assert "Pause sleep?" in screen_text(pilot)
        await press(pilot, "y")

        async def paused() -> bool:
            return (await q.stats()).types["sleep"].paused

        deadline = time.monotonic() + 10
        while not await paused():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await fresh_snapshot(pilot)
        assert "paused" in cell(queues(app), "type:sleep", "type")
        assert await q.fetch("w-1", ["sleep"], 3, 0) == []  # Redis holds the flag: no worker takes one
        await focus_queue_row(pilot, app, "sleep")
        await press(pilot, "P")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Resume sleep?" in screen_text(pilot)
        await press(pilot, "y")
        deadline = time.monotonic() + 10
        while await paused():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await fresh_snapshot(pilot)
        assert "paused" not in cell(queues(app), "type:sleep", "type")
        # Both actions are in the audit trail, with who did them (u shows it).
        await press(pilot, "u")
        await wait_for(pilot, lambda: isinstance(app.screen, AuditScreen), what="the audit dialog")
        await pilot.pause()
        text = screen_text(pilot)
        actor = q.actor or default_actor()
        assert f"{actor} resume sleep: ok" in text and f"{actor} pause sleep: ok" in text
        assert text.index("resume sleep") < text.index("pause sleep")  # newest first
        await press(pilot, "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))


# ---- cancel --------------------------------------------------------------------------


async def test_cancel_one_running_job_of_several(url: str) -> None:
    async with console(url, size=(120, 40), grace=0.2) as (pilot, app, q):
        await q.enqueue_many([Job(type="sleep", args={"seconds": 60}, account_id=a) for a in (1, 2, 3)])
        await press(pilot, "s")
        await wait_for(pilot, lambda: app.embedded.status().busy == 3, what="three running")
        await fresh_snapshot(pilot)
        table = in_flight(app)
        table.focus()
        await wait_for(pilot, lambda: table.row_count == 3)
        target = table.selected_job()
        assert target is not None and target.job_id
        await press(pilot, "c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="asks first")
        assert target.job_id in screen_text(pilot)
        await press(pilot, "y")
        # The answer comes once the worker has filed the job: it is failed already.
        await wait_for(pilot, lambda: any(f"{target.job_id} (sleep) cancelled on worker" in n for n in notes(app)))
        failed = await q.failed("sleep")
        assert [f.job_id for f in failed] == [target.job_id]
        assert failed[0].reason.startswith("cancelled by operator")
        assert len(await q.in_flight()) == 2  # the others run on
        await fresh_snapshot(pilot)
        assert target.job_id not in {j.job_id for j in table.jobs.values()}
        await press(pilot, "s")
        await wait_for(pilot, lambda: not app.embedded.running, timeout=15)


async def test_cancel_of_a_job_that_finished_meanwhile_says_so() -> None:
    async with console("memory://") as (pilot, app, q):
        await q.enqueue_many([Job(type="sleep", args={"seconds": 1})])
        got = await q.fetch("w-1", ["sleep"], 1, 0)
        await fresh_snapshot(pilot)
        table = in_flight(app)
        table.focus()
        await pilot.pause()
        await press(pilot, "c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await q.settle("w-1", [Outcome("sleep", got[0].entry_id, "ack", 1)])  # it finishes before the y
        await press(pilot, "y")
        await wait_for(pilot, lambda: any("nothing was cancelled" in n for n in notes(app)), what="the answer")
        # Nothing kept says it was processed: the answer does not claim it (issue 18, case 14).
        (note,) = [n for n in notes(app) if "nothing was cancelled" in n]
        assert "not found in flight, dead or failed" in note and "processed" not in note


# ---- failures grouped by cause -------------------------------------------------------


async def test_failures_grouped_by_cause_drill_in_and_requeue_a_group(url: str) -> None:
    async with console(url, size=(120, 40)) as (pilot, app, q):
        await q.register_types({"launch": {}})
        await q.enqueue_many([Job(type="launch", args={"reservation_id": i}, account_id=i) for i in range(4)])
        got = await q.fetch("w-1", ["launch"], 4, 0)
        reasons = ["TimeoutError: account 42 took 31.2s", "TimeoutError: account 7 took 30.1s", "KeyError: 'x'"]
        reasons.append(reasons[0])
        await q.settle("w-1", [Outcome("launch", d.entry_id, "dead", 1, r) for d, r in zip(got, reasons, strict=True)])
        await fresh_snapshot(pilot)
        await press(pilot, "d")
        await wait_for(pilot, lambda: isinstance(app.screen, BadJobsScreen))
        screen = app.screen
        assert isinstance(screen, BadJobsScreen)
        groups = screen.query_one(GroupTable)
        want = await q.failure_groups("dead")
        await wait_for(pilot, lambda: groups.row_count == len(want) == 2)
        assert groups._order == [g.key for g in want]  # the largest first, as jobcore orders them
        for g in want:
            assert cell(groups, g.key, "count") == str(g.count)
            assert cell(groups, g.key, "cause") == g.label
        big = want[0]
        assert big.label == "TimeoutError: account <n> took <n>s" and big.count == 3
        await press(pilot, "enter")  # into the largest group
        table = screen.query_one(BadTable)
        await wait_for(pilot, lambda: table.row_count == 3, what="the group's jobs")
        assert {j.id for j in screen.rows.values()} == set(big.refs)
        await press(pilot, "escape")  # back to the groups
        await wait_for(pilot, lambda: screen.showing_groups)
        await press(pilot, "r")  # the group: asks first
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert f"group {big.key}" in screen_text(pilot)
        await press(pilot, "y")
        await wait_for(pilot, lambda: groups.row_count == 1, what="one group left")
        left = await q.failure_groups("dead")
        assert [g.key for g in left] == [want[1].key] and groups._order == [want[1].key]
        assert (await q.stats()).types["launch"].pending == 3
        await press(pilot, "x")  # purge the other group
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "cannot be undone" in screen_text(pilot)
        await press(pilot, "y")
        await wait_for(pilot, lambda: groups.row_count == 0, what="no group left")
        assert await q.dead() == []


# ---- history and why -----------------------------------------------------------------


async def settle_five_noops(q: jobcore.Queue) -> None:
    await q.enqueue_many([Job(type="noop", args={}) for _ in range(5)])
    got = await q.fetch("w-1", ["noop"], 5, 0)
    await q.settle("w-1", [Outcome("noop", d.entry_id, "ack", 1, took=0.02) for d in got[:4]])
    await q.settle("w-1", [Outcome("noop", got[4].entry_id, "fail", 1, "RuntimeError: no", took=0.3)])


async def test_history_is_there_the_moment_the_console_opens(url: str) -> None:
    if not url.startswith("memory"):  # settled before the console starts: its first read shows it
        async with jobcore.connect(url) as before:
            await settle_five_noops(before)
    async with console(url, size=(120, 40), history_refresh=3600) as (pilot, app, q):
        if url.startswith("memory"):  # the queue lives in the app: settle, then read as at start
            await settle_five_noops(q)
            app.read_history()
        await wait_for(pilot, lambda: app.history is not None and "noop" in app.history.types, what="history")
        await fresh_snapshot(pilot)
        want = (await q.history(minutes=60)).types["noop"]
        assert (want.processed, want.failed) == (4, 1)
        trend = cell(queues(app), "type:noop", "trend")
        assert set(trend) - {" ", "▁"}  # the last hour's chart has a bar
        await press(pilot, "h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await pilot.pause()
        text = screen_text(pilot)
        assert "4 processed · 1 failed · 0 dead" in text
        assert f"run time p50 {millis(want.p50_ms)} · p95 {millis(want.p95_ms)}" in text
        assert app.screen.query_one(HistoryChart) is not None
        await press(pilot, "h")  # 24 hours
        await wait_for(pilot, lambda: app.history is not None and app.history.minutes == 1440, what="a day")
        await pilot.pause()
        assert "the last 24 hours" in screen_text(pilot)
        assert "4 processed · 1 failed" in screen_text(pilot)
        await press(pilot, "escape")
        await wait_for(pilot, lambda: app.history_minutes == 60 and isinstance(app.screen, MainScreen))


@pytest.mark.memory_too
async def test_why_on_a_queue_row_says_it_in_jobcores_words(url: str) -> None:
    async with console(url, size=(120, 40)) as (pilot, app, q):
        await q.enqueue_many([Job(type="launch", args={"reservation_id": 1}) for _ in range(2)])
        await fresh_snapshot(pilot)
        await focus_queue_row(pilot, app, "launch")
        await press(pilot, "w")
        await wait_for(pilot, lambda: isinstance(app.screen, WhyScreen), what="the why dialog")
        text = " ".join(screen_text(pilot).split())
        assert "no live worker serves launch" in text
        for sentence in (await q.why("launch")).sentences:
            if "wait, the oldest" not in sentence:  # the one sentence with a moving age
                assert " ".join(sentence.split())[:50] in text
        await press(pilot, "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))


# ---- read-only -----------------------------------------------------------------------


async def test_read_only_filters_finds_and_explains_but_refuses_pause_cancel_requeue() -> None:
    async with console("memory://", size=(120, 40), read_only=True) as (pilot, app, q):
        ids = await q.enqueue_many([Job(type="sleep", args={"seconds": 1}, account_id=a) for a in (1, 2)])
        await q.fetch("w-1", ["sleep"], 2, 0)
        await fresh_snapshot(pilot)
        footer = screen_text(pilot).splitlines()[-1]
        assert "Filter" in footer and "Pause" not in footer and "Cancel" not in footer
        await press(pilot, "slash")
        await type_in(pilot, "account:2")
        await wait_for(pilot, lambda: in_flight(app).row_count == 1, what="the filter works")
        await press(pilot, "enter")
        await press(pilot, "c")  # refused, with the reason
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert any("read-only: cancel is disabled" in n for n in notes(app))
        await focus_queue_row(pilot, app, "sleep")
        await press(pilot, "P")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert any("read-only: pause / resume is disabled" in n for n in notes(app))
        assert not (await q.stats()).types["sleep"].paused
        await press(pilot, "w")
        await wait_for(pilot, lambda: isinstance(app.screen, WhyScreen), what="why works")
        await press(pilot, "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        await press(pilot, "u")  # the audit trail is for reading: open in read-only too
        await wait_for(pilot, lambda: isinstance(app.screen, AuditScreen), what="the audit works")
        await press(pilot, "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        await find(pilot, app, str(ids[0]))
        await wait_for(pilot, lambda: isinstance(app.screen, JobDetailScreen), what="find works")
        await press(pilot, "escape", "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        await press(pilot, "h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen), what="history works")
        assert len(await q.in_flight()) == 2


async def open_waiting(pilot: Pilot[Any], app: JobConsole, job_type: str, rows: int) -> WaitingScreen:
    """``v`` on ``job_type``'s queue row, until its waiting screen lists ``rows`` jobs."""
    await fresh_snapshot(pilot)
    await focus_queue_row(pilot, app, job_type)
    await press(pilot, "v")
    await wait_for(pilot, lambda: isinstance(app.screen, WaitingScreen), what="the waiting jobs")
    screen = app.screen
    assert isinstance(screen, WaitingScreen)
    table = screen.query_one(WaitingTable)
    await wait_for(pilot, lambda: table.row_count == rows, what=f"{rows} waiting rows")
    return screen


@pytest.mark.memory_too
async def test_the_waiting_jobs_of_a_row_page_open_and_delete_after_a_question(url: str) -> None:
    async with console(url, size=(120, 40)) as (pilot, app, q):
        ids = await q.enqueue_many([Job(type="sleep", args={"seconds": 1}, account_id=a) for a in (1, 2, 3)])
        await q.fetch("w-1", ["sleep"], 1, 0)  # in flight: not listed
        screen = await open_waiting(pilot, app, "sleep", 2)
        table = screen.query_one(WaitingTable)
        assert [j.job_id for j in screen.jobs.values()] == [
            str(ids[1]),
            str(ids[2]),
        ]  # oldest first, not the running one
        assert str(ids[1])[:8] in cell(table, screen.jobs[next(iter(screen.jobs))].ref or "", "job_id")
        await press(pilot, "enter")  # the oldest: its details
        await wait_for(pilot, lambda: isinstance(app.screen, JobDetailScreen), what="the detail")
        assert str(ids[1]) in screen_text(pilot)
        await press(pilot, "escape")
        await wait_for(pilot, lambda: app.screen is screen)
        await press(pilot, "D")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="asks first")
        asked = screen_text(pilot)
        assert "Delete waiting job" in asked and str(ids[1])[:8] in asked and "Keep it (n)" in asked
        await press(pilot, "y")
        await wait_for(pilot, lambda: table.row_count == 1, what="the row gone")
        page = await q.pending("sleep")
        assert [j.job_id for j in page.jobs] == [str(ids[2])]
        assert (await q.audit(limit=1))[0].action == "delete pending"
        await press(pilot, "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))


async def test_the_waiting_jobs_filter_and_delete_every_match_after_a_question_naming_the_count(url: str) -> None:
    async with console(url, size=(120, 40)) as (pilot, app, q):
        await q.enqueue_many([Job(type="sleep", args={"seconds": 1}, account_id=a) for a in (1, 2, 3, 2, 2)])
        screen = await open_waiting(pilot, app, "sleep", 5)
        table = screen.query_one(WaitingTable)
        await press(pilot, "X")  # no filter yet: it says what to do
        await wait_for(pilot, lambda: any("set a filter first" in n for n in notes(app)), what="the hint")
        await press(pilot, "slash", *"account:2", "enter")
        await wait_for(pilot, lambda: table.row_count == 3, what="account 2's rows")
        assert "matching account:2" in screen_text(pilot)
        await press(pilot, "X")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="asks first")
        asked = screen_text(pilot)
        assert "Delete the 3 waiting job(s) of sleep matching account:2" in asked
        await press(pilot, "y")
        await wait_for(pilot, lambda: table.row_count == 0, what="the matching rows gone")
        page = await q.pending("sleep")
        assert sorted(j.account_id for j in page.jobs) == [1, 3]
        record = (await q.audit(limit=1))[0]
        assert record.action == "delete pending" and record.count == 3
        await press(pilot, "slash", "escape")  # the filter cleared: every row again
        await wait_for(pilot, lambda: table.row_count == 2, what="the other accounts' rows")


async def test_the_waiting_filter_typed_as_a_person_types_settles_and_enter_goes_back_to_the_list(url: str) -> None:
    """Found by hand in tmux: keys a beat apart let the list steal the focus from the
    line mid-word (its reload focused it), and the main screen's line and this one
    echoed each other's stale text for good (the console froze)."""
    from textual.widgets import Input

    async with console(url, size=(120, 40)) as (pilot, app, q):
        await q.enqueue_many([Job(type="sleep", args={"seconds": 1}, account_id=a) for a in (1, 2, 3, 2)])
        screen = await open_waiting(pilot, app, "sleep", 4)
        table = screen.query_one(WaitingTable)
        await asyncio.sleep(0.5)  # the first load done: the list has the focus, not the hidden line
        await press(pilot, "slash")
        line = screen.query_one("#filter-input", Input)
        for ch in "account:2":
            await press(pilot, ch)
            await asyncio.sleep(0.15)  # each key's reload lands before the next
        assert line.value == "account:2" and app.focused is line
        await wait_for(pilot, lambda: table.row_count == 2, what="account 2's rows")
        await press(pilot, "enter")
        await wait_for(pilot, lambda: app.focused is table, what="back to the list")
        await asyncio.sleep(0.5)
        assert app.screen is screen  # no detail opened by the enter
        main_line = app.screen_stack[0].query_one("#filter-input", Input)
        assert app.scope.text == main_line.value == line.value == "account:2"


async def test_read_only_lists_waiting_jobs_but_refuses_to_delete_them() -> None:
    async with console("memory://", size=(120, 40), read_only=True) as (pilot, app, q):
        await q.enqueue_many([Job(type="sleep", args={"seconds": 1}) for _ in range(2)])
        await fresh_snapshot(pilot)
        await focus_queue_row(pilot, app, "sleep")
        await press(pilot, "v")
        await wait_for(pilot, lambda: isinstance(app.screen, WaitingScreen))
        table = app.screen.query_one(WaitingTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        await press(pilot, "D")
        await pilot.pause()
        assert isinstance(app.screen, WaitingScreen)
        assert any("read-only: delete is disabled" in n for n in notes(app))
        assert len((await q.pending("sleep")).jobs) == 2
