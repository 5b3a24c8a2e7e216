"""Issue 19 item 2: a 20 MB job must not freeze the console. Every view that shows
a job's args, reason or fields shows a bounded preview that says how much was left
out and which command prints it all; keys keep answering."""

from __future__ import annotations

import time
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Static

import jobcore
from jobconsole.components.badjobs import BadJobsScreen, BadTable
from jobconsole.components.detail import JobDetailScreen
from jobconsole.components.find import FindScreen
from jobconsole.components.main_screen import MainScreen
from jobconsole.components.panels import InFlightTable
from jobcore import Identity, Job
from jobcore.display import clipped, field_text, preview, size
from jobcore.model import encode_job
from jobcore.records import Outcome

from ..helpers import plant
from .conftest import fresh_snapshot, press, screen_text, wait_for
from .test_console import console

MB20 = 20 * 2**20
# Not all printable: escaping runs per character on such text (the slow path).
BIG_ARG = ("x" * 999 + "\x1b") * (MB20 // 1000)
BIG_REASON = ("poison \x07 " * (MB20 // 9)) + "\nValueError: the last line"


def test_the_one_bounding_rule() -> None:
    assert preview("short \x1b") == "short \\x1b"
    cut = preview(BIG_ARG, 100, whole="jobcore find ID --json")
    assert cut == "x" * 100 + "… 20 MB in all, `jobcore find ID --json` for all"
    assert preview("\x1b" * 10, 4) == "\\x1b" * 4 + "… 10 B in all"  # cut, then escaped
    assert clipped("\x1b" * 2**20, 6) == "\\x1b\\…" and clipped("abc", 3) == "abc" and clipped("abcd", 3) == "ab…"
    assert field_text(10**5000, 20) == "<int too large to s…"  # past str()'s digit limit: still shown
    assert [size(n) for n in (900, 12 * 1024, 3 * 2**20 + 2**19, MB20)] == ["900 B", "12 KB", "3.5 MB", "20 MB"]


async def dead_giant(q: jobcore.Queue) -> Job[Any]:
    """One sleep job carrying 20 MB of args, a 20 MB reason and a 1 MB org_id, dead-lettered."""
    await q.register_types({"sleep": {}})
    job = Job(
        type="sleep",
        args={"seconds": 1, "note": BIG_ARG},
        account_id=7,
        identity=Identity(account_number="ACC-7", org_id="o" * 2**20),
    )
    await plant(q, "sleep", encode_job(job))  # past enqueue's checks: only its size matters here
    got = await q.fetch("w-big", ["sleep"], 1, 0)
    await q.settle("w-big", [Outcome("sleep", got[0].entry_id, "dead", 1, BIG_REASON)])
    return job


async def within(pilot: Pilot[Any], check: Any, seconds: float, what: str) -> None:
    start = time.monotonic()
    await wait_for(pilot, check, timeout=seconds, what=what)
    took = time.monotonic() - start
    assert took < seconds, f"{what} took {took:.1f}s"


async def test_a_20_mb_dead_job_shows_a_preview_and_escape_answers(redis_url: str) -> None:
    async with console(redis_url, size=(120, 40)) as (pilot, app, q):
        job = await dead_giant(q)
        await fresh_snapshot(pilot)
        await press(pilot, "d")  # grouped: the pane previews the group's newest job
        await within(pilot, lambda: isinstance(app.screen, BadJobsScreen) and app.screen.groups, 60, "the groups")
        screen = app.screen
        assert isinstance(screen, BadJobsScreen)
        pane = screen.query_one("#reason", Static)
        await within(pilot, lambda: "MB in all" in str(pane.render()), 10, "the group's preview")
        shown = str(pane.render())
        assert len(shown) < 20_000
        assert f"jobcore find {job.id} --json" in shown
        assert "\x1b" not in shown and "\x07" not in shown and "\\x07" in shown  # cut, then escaped

        await press(pilot, "g")  # every job: the one job selected, its preview in the pane
        await within(pilot, lambda: screen.query_one(BadTable).row_count == 1, 10, "the job row")
        await within(pilot, lambda: "MB in all" in str(pane.render()), 10, "the job's preview")
        assert "20 MB in all" in str(pane.render())
        assert "its last line: ValueError: the last line" in str(pane.render())
        row = screen_text(pilot)
        assert "ValueError: the last line" in row  # the reason column: the last line, as always

        await press(pilot, "enter")
        await within(pilot, lambda: isinstance(app.screen, JobDetailScreen), 10, "the job's detail")
        await pilot.pause()
        detail = app.screen
        texts = [str(s.render()) for s in detail.query(Static)]
        assert sum(len(t) for t in texts) < 40_000
        assert any("20 MB in all" in t and f"jobcore find {job.id} --json" in t for t in texts)
        assert "ValueError: the last line" in screen_text(pilot)
        await press(pilot, "escape")
        await within(pilot, lambda: app.screen is screen, 5, "escape back to the list")


async def test_find_on_a_20_mb_job_shows_a_preview() -> None:
    async with console("memory://", size=(120, 40)) as (pilot, app, q):
        job = await dead_giant(q)
        await fresh_snapshot(pilot)
        await press(pilot, "j")
        await wait_for(pilot, lambda: isinstance(app.screen, FindScreen))
        find = app.screen
        assert isinstance(find, FindScreen)
        find.search(str(job.id))  # one found: its detail opens
        await within(pilot, lambda: isinstance(app.screen, JobDetailScreen), 60, "the found job's detail")
        await pilot.pause()
        texts = [str(s.render()) for s in app.screen.query(Static)]
        assert sum(len(t) for t in texts) < 40_000
        assert any(f"jobcore find {job.id} --json" in t for t in texts)
        await press(pilot, "escape")
        await within(pilot, lambda: app.screen is find, 5, "escape back to find")
        where = str(find.query_one("#found-where", Static).render())
        assert len(where) < 5_000 and "ValueError: the last line" in where


async def test_an_in_flight_20_mb_job_opens_with_a_preview() -> None:
    async with console("memory://", size=(120, 40)) as (pilot, app, q):
        await q.register_types({"sleep": {}})
        job = Job(type="sleep", args={"note": BIG_ARG}, account_id=7, identity=Identity(org_id="o" * 2**20))
        await plant(q, "sleep", encode_job(job))
        await q.fetch("w-big", ["sleep"], 1, 0)
        await fresh_snapshot(pilot)
        table = app.screen.query_one(InFlightTable)
        await within(pilot, lambda: table.row_count == 1, 30, "the in-flight row")
        # The 1 MB org_id, cut to its cell (a column that may sit right of the screen: read the row).
        cells = [str(c).strip() for c in table.get_row_at(0)]
        assert any(c.startswith("ooooo") and c.endswith("…") and len(c) <= 64 for c in cells), [c[:70] for c in cells]
        table.focus()
        await press(pilot, "enter")
        await within(pilot, lambda: isinstance(app.screen, JobDetailScreen), 10, "the job's detail")
        await pilot.pause()
        texts = [str(s.render()) for s in app.screen.query(Static)]
        assert sum(len(t) for t in texts) < 40_000
        assert any("20 MB in all" in t and f"jobcore find {job.id} --json" in t for t in texts)
        await press(pilot, "escape")
        await within(pilot, lambda: isinstance(app.screen, MainScreen), 5, "escape back")
