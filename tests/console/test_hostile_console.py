"""Issue 10 in the console: what Redis holds is shown as text, escapes escaped,
poison as undecodable, and the URL without its secrets. Pilot tests on
memory:// and the suite's real redis-server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Select, Static

import jobcore
from jobconsole.__main__ import main
from jobconsole.app import JobConsole
from jobconsole.components.badjobs import BadJobsScreen, BadTable
from jobconsole.components.detail import JobDetailScreen
from jobconsole.components.enqueue import EnqueueScreen
from jobconsole.components.history import HistoryScreen
from jobconsole.components.main_screen import MainScreen
from jobconsole.components.panels import InFlightTable, QueuesTable
from jobcore import Identity, Job
from jobcore.records import Outcome
from jobcore.redis.backend import RedisQueue
from tests.support.servers import RedisServer

from ..helpers import plant
from ..test_hostile_data import ESC_CLEAR, ESC_TITLE, NOT_COUNTS, RAW_CONTROLS, RED, SECRET, _corrupt_numbers, poison
from .conftest import fresh_snapshot, press, screen_text, wait_for
from .test_console import console

MARKUP_TYPES = ["report[/]", "x[link=https://evil.example]click[/link]", "[bold red]boo"]


def shown(pilot: Pilot[Any]) -> str:
    """The screen's text, checked for raw control characters on the way."""
    text = screen_text(pilot)
    for ch in RAW_CONTROLS:
        assert ch not in text, f"raw {ch!r} on screen:\n{text}"
    return text


async def test_markup_in_type_names_is_text(url: str) -> None:
    async with console(url, size=(160, 40)) as (pilot, app, q):
        await q.enqueue_many([Job(type=t, args={}) for t in MARKUP_TYPES])  # nobody serves them
        for _ in range(3):  # the first poll once stopped the console (MarkupError in the subtitle)
            await fresh_snapshot(pilot)
        assert app.is_running and app.link.state == "connected"
        text = shown(pilot)
        assert "⚠ no live worker serves: " + ", ".join(sorted(MARKUP_TYPES)) in text
        for name in MARKUP_TYPES:
            assert name in text

        await press(pilot, "e")  # the enqueue form lists them as they are
        await wait_for(pilot, lambda: isinstance(app.screen, EnqueueScreen))
        select = app.screen.query_one("#type", Select)
        await wait_for(pilot, lambda: set(MARKUP_TYPES) <= {v for _, v in select._options}, what="the types")
        select.value = "report[/]"
        await pilot.pause()
        assert "report[/]" in shown(pilot)
        await press(pilot, "escape")

        await q.register_types({t: {} for t in MARKUP_TYPES})
        await q.fetch("w-1", MARKUP_TYPES, 3, 0)
        await fresh_snapshot(pilot)
        for job in await q.in_flight():
            await q.settle("w-1", [Outcome(job.job_type, job.entry_id, "dead", 1, "[red]not markup[/red]")])
        await fresh_snapshot(pilot)
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        await press(pilot, "d")
        await wait_for(pilot, lambda: isinstance(app.screen, BadJobsScreen))
        await press(pilot, "g")  # every job, not grouped by cause
        table = app.screen.query_one(BadTable)
        await wait_for(pilot, lambda: table.row_count == 3, what="three dead rows")
        assert "[red]not markup[/red]" in shown(pilot)
        for name in sorted(MARKUP_TYPES):  # filter by each type: the title and the notice name it
            await press(pilot, "t")
            await wait_for(pilot, lambda: table.row_count == 1, what="one row of the type")
            await pilot.pause()
            assert f"Dead jobs · {name} · 1" in shown(pilot)
            notices = [n for n in app._notifications if n.message == f"showing dead jobs of {name}"]
            assert notices and not notices[-1].markup
        await press(pilot, "R")  # the confirmation names the types
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ConfirmScreen")
        question = str(app.screen.query_one("#question", Static).render())  # wrapped on screen
        assert question.startswith(f"Requeue 1 dead job(s) ({MARKUP_TYPES[1]} 1)?")


@pytest.mark.memory_too
async def test_escapes_from_redis_never_reach_the_terminal(url: str) -> None:
    evil = "esc" + ESC_TITLE
    worker = "w" + RED
    async with console(url, size=(160, 40)) as (pilot, app, q):
        await q.register_types({evil: {}})
        ident = Identity(account_number=ESC_CLEAR, org_id=RED)
        args = {"reservation_id": "r" + ESC_CLEAR, "note": "csi \x9b2J"}
        await q.enqueue_many([Job(type=evil, args=args, account_id=3, identity=ident) for _ in range(2)])
        got = await q.fetch(worker, [evil], 2, 0)
        await q.settle(worker, [Outcome(evil, got[1].entry_id, "fail", 1, "Traceback\nboom" + ESC_TITLE + ESC_CLEAR)])
        await q.heartbeat({"id": worker, "host": "h" + ESC_CLEAR, "pid": 1, "types": [evil]}, 60_000)
        await fresh_snapshot(pilot)
        text = shown(pilot)
        for escaped in ("esc\\x1b]0;pwned\\x07", "\\x1b[31mRED\\x1b[0m", "r\\x1b[2J", "h\\x1b[2J"):
            assert escaped in text

        table = app.screen.query_one(InFlightTable)
        table.focus()
        await press(pilot, "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, JobDetailScreen))
        await pilot.pause()
        text = shown(pilot)
        assert "org_id" in text and "\\x1b[31mRED\\x1b[0m" in text and "csi \\x9b2J" in text
        await press(pilot, "escape")

        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        await press(pilot, "f")
        await wait_for(pilot, lambda: isinstance(app.screen, BadJobsScreen))
        await press(pilot, "g")  # every job, not grouped by cause
        bad = app.screen.query_one(BadTable)
        await wait_for(pilot, lambda: bad.row_count == 1, what="the failed row")
        await pilot.pause()
        text = shown(pilot)
        assert "boom\\x1b]0;pwned\\x07\\x1b[2J" in text and "Traceback" in text  # a traceback keeps its lines
        await press(pilot, "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, JobDetailScreen))
        await pilot.pause()
        assert "boom\\x1b]0;pwned\\x07\\x1b[2J" in shown(pilot)


async def test_poison_shows_as_undecodable_and_the_link_stays_up(url: str) -> None:
    bad = poison("t")
    async with console(url, size=(160, 40)) as (pilot, app, q):
        await q.register_types({"t": {}})
        for raw, _ in bad.values():
            await plant(q, "t", raw)
        await q.fetch("w-1", ["t"], 100, 0)
        await fresh_snapshot(pilot)
        await fresh_snapshot(pilot)
        assert app.link.state == "connected", app.link.error  # once "disconnected, retrying: RecursionError"
        table = app.screen.query_one(InFlightTable)
        assert table.row_count == len(bad)
        table.focus()
        await press(pilot, "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, JobDetailScreen))
        await pilot.pause()
        assert "cannot decode the payload: " in shown(pilot)
        await press(pilot, "escape")

        rows = await q.in_flight()
        await q.settle("w-1", [Outcome("t", r.entry_id, "dead", 1, "poison") for r in rows])
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        await press(pilot, "d")
        await wait_for(pilot, lambda: isinstance(app.screen, BadJobsScreen))
        await press(pilot, "g")  # every job, not grouped by cause
        dead = app.screen.query_one(BadTable)
        await wait_for(pilot, lambda: dead.row_count == len(bad), what="the dead rows")
        reasons = []
        for _ in range(len(bad)):
            await pilot.pause()
            reasons.append(str(app.screen.query_one("#reason", Static).render()))
            await press(pilot, "down")
        assert all(r.startswith("undecodable payload") for r in reasons)
        for _, why in bad.values():
            assert any(why in r for r in reasons), why


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(Path(tmp_path_factory.mktemp("console-auth")), password=SECRET)
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(f"cannot start the private redis-server with a password: {exc}", pytrace=False)
    yield server
    server.cleanup()


@pytest.mark.parametrize("form", ["userinfo", "query"])
async def test_the_header_never_shows_the_password(auth_server: RedisServer, form: str) -> None:
    port = auth_server.port
    url = (
        f"redis://default:{SECRET}@127.0.0.1:{port}/0"
        if form == "userinfo"
        else f"redis://127.0.0.1:{port}/0?password={SECRET}"
    )
    async with console(url, size=(160, 30)) as (pilot, app, _q):
        assert isinstance(app, JobConsole) and app.link.state == "connected"
        text = shown(pilot)
        assert SECRET not in text
        assert ("redis://***@127.0.0.1" if form == "userinfo" else "?password=***") in text


@pytest.mark.parametrize(
    "url",
    [
        f"redis://jc:{SECRET}@127.0.0.1:1/0",
        f"redis://127.0.0.1:1/0?password={SECRET}&sentinel_password={SECRET}",
        f"redis+sentinel://u:{SECRET}@127.0.0.1:1/svc?sentinel_password={SECRET}",
        f"http://jc:{SECRET}@127.0.0.1/0",
    ],
)
def test_start_up_errors_never_show_the_password(capsys: pytest.CaptureFixture[str], url: str) -> None:
    assert main(["--url", url]) in (1, 2)
    out, err = capsys.readouterr()
    assert out == "" and SECRET not in err and "***" in err
    assert len(err.strip().splitlines()) == 1


def test_the_one_redaction_rule_is_the_consoles() -> None:
    from jobconsole.app import redact

    assert redact is jobcore.redacted_url


@pytest.mark.parametrize("value", NOT_COUNTS.values(), ids=list(NOT_COUNTS))
async def test_numbers_that_are_not_counts_keep_the_console_up(redis_url: str, value: bytes) -> None:
    """Issue 18, case 10: once "disconnected, retrying: ValueError", and an OverflowError exit."""
    async with console(redis_url, size=(160, 40)) as (pilot, app, q):
        await q.enqueue_many([Job(type="t", args={}) for _ in range(3)])
        _corrupt_numbers(redis_url, "t", value)
        await fresh_snapshot(pilot)
        await fresh_snapshot(pilot)
        assert app.is_running and app.link.state == "connected", app.link.error
        assert "✖ not what jobcore wrote in the keys of: t" in shown(pilot)
        assert app.snapshot is not None and app.snapshot.stats.types["t"].pending == 3
        app.history = None
        app.read_history()
        await wait_for(pilot, lambda: app.history is not None, what="the history")
        await press(pilot, "h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen), what="the history screen")
        await fresh_snapshot(pilot)
        await pilot.pause()
        assert app.is_running and app.link.state == "connected", app.link.error
        shown(pilot)
        await press(pilot, "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
        queues = app.screen.query_one(QueuesTable)
        queues.focus()
        await press(pilot, "w")
        await pilot.pause()
        await fresh_snapshot(pilot)
        assert app.is_running and app.link.state == "connected", app.link.error


async def test_a_400_digit_history_value_keeps_the_console_up(redis_url: str) -> None:
    """Issue 18, case 10: the console once exited with OverflowError."""
    async with console(redis_url, size=(160, 40)) as (pilot, app, q):
        await q.register_types({"t": {}})
        got = await q.fetch("w-1", ["t"], 1, 0)
        assert got == []
        await q.enqueue_many([Job(type="t", args={})])
        (d,) = await q.fetch("w-1", ["t"], 1, 0)
        await q.settle("w-1", [Outcome("t", d.entry_id, "ack", 1, took=0.01)])
        _corrupt_numbers(redis_url, "t", b"9" * 400, counters=False)
        app.history = None
        app.read_history()
        await wait_for(pilot, lambda: app.history is not None, what="the history")
        for _ in range(2):
            await fresh_snapshot(pilot)
        await press(pilot, "h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen), what="the history screen")
        await pilot.pause()
        shown(pilot)
        assert app.is_running and app.link.state == "connected", app.link.error


async def test_a_dead_entrys_other_fields_show_in_its_detail(redis_url: str) -> None:
    async with console(redis_url, size=(160, 40)) as (pilot, app, q):
        await q.register_types({"t": {}})
        assert isinstance(q, RedisQueue)
        await q.add_raw("t", {b"d": b"\x00bad", b"x": b"from the producer" + ESC_CLEAR.encode()})
        (d,) = await q.fetch("w-1", ["t"], 1, 0)
        await q.settle("w-1", [Outcome("t", d.entry_id, "dead", 1, "poison")])
        await fresh_snapshot(pilot)
        await press(pilot, "d")
        await wait_for(pilot, lambda: isinstance(app.screen, BadJobsScreen))
        await press(pilot, "g")
        dead = app.screen.query_one(BadTable)
        await wait_for(pilot, lambda: dead.row_count == 1, what="the dead row")
        await press(pilot, "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, JobDetailScreen))
        await pilot.pause()
        assert "x=from the producer\\x1b[2J" in shown(pilot)
