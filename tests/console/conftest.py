"""Fixtures for the console tests: a frozen clock, and helpers to drive the app."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from textual.pilot import Pilot

import jobcore
import jobcore.memory
import jobcore.model
import jobcore.queue
from jobconsole.app import JobConsole
from jobconsole.components.tables import LiveTable

FROZEN_MS = 1_767_268_800_000  # 2026-01-01 12:00:00 UTC


class FrozenClock:
    """Stands in for the memory backend's clock so ids, ages and rates are fixed."""

    def __init__(self, ms: int = FROZEN_MS) -> None:
        self.ms = ms

    def now_ms(self) -> int:
        return self.ms

    def advance(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FrozenClock]:
    clock = FrozenClock()

    class FrozenDatetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return datetime.fromtimestamp(clock.ms / 1000, tz=tz or UTC)

    fake_time = SimpleNamespace(time=lambda: clock.ms / 1000, monotonic=time.monotonic)
    monkeypatch.setattr(jobcore.memory, "_now_ms", clock.now_ms)
    monkeypatch.setattr(jobcore.queue, "time", fake_time)
    monkeypatch.setattr(jobcore.model, "time", fake_time)
    yield clock


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that takes ``url`` runs on a real private redis-server; one marked
    ``memory_too`` on memory:// as well (the console's --memory mode: the contract
    suite holds the two backends to one behaviour, so a few screens suffice)."""
    given = any("url" in str(m.args[0]) for m in metafunc.definition.iter_markers("parametrize"))
    if "url" in metafunc.fixturenames and not given:
        both = metafunc.definition.get_closest_marker("memory_too") is not None
        metafunc.parametrize("url", ["memory", "redis"] if both else ["redis"], indirect=True)


@pytest.fixture
def url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("redis_url"))


def job_id(n: int) -> uuid.UUID:
    """Fixed, but as varied as real ids."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"https://jobcore.test/job/{n}")


async def wait_for(pilot: Pilot[Any], check: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Until check() holds, then until the screen has handled what that caused."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.01)  # the app runs on this loop: plain sleeps let it work
    await pilot.pause(0)


async def press(pilot: Pilot[Any], *keys: str) -> None:
    """Like ``pilot.press``: the same key events through the same driver, but without
    waiting for the whole process to go CPU-idle after each key (with a worker
    running it rarely is), only for the screen to handle the key."""
    import unicodedata

    from textual import events
    from textual.keys import REPLACED_KEYS, _character_to_key, _get_unicode_name_from_key

    app = pilot.app
    driver = app._driver
    assert driver is not None
    for key in keys:
        if len(key) == 1 and not key.isalnum():
            key = _character_to_key(key)
        original = REPLACED_KEYS.get(key, key)
        try:
            char: str | None = unicodedata.lookup(_get_unicode_name_from_key(original))
        except KeyError:
            char = key if len(key) == 1 else None
        event = events.Key(key, char)
        event.set_sender(app)
        driver.send_message(event)
        await pilot.pause(0)
        await pilot.pause(0)


async def fresh_snapshot(pilot: Pilot[Any], settle: bool = True) -> None:
    """Poll now and wait until the answer is on screen."""
    app = pilot.app
    assert isinstance(app, JobConsole)
    await wait_for(pilot, lambda: not app.poller.polling, what="the running poll")
    before = app.snapshot.seq if app.snapshot else 0
    app.poll_now()
    await wait_for(pilot, lambda: app.snapshot is not None and app.snapshot.seq > before, what="a new snapshot")
    if settle:
        await pilot.pause()


def cell(table: LiveTable, row: str, column: str) -> str:
    return str(table.get_cell(row, column)).strip()


def screen_text(pilot: Pilot[Any]) -> str:
    """Everything on the top screen as plain text: what a person would read."""
    strips = pilot.app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)


TRACEBACK = """Traceback (most recent call last):
  File "/srv/app/jobs/billing.py", line 88, in charge
    gateway.charge(account, amount)
  File "/srv/app/payments/gateway.py", line 141, in charge
    raise PaymentDeclined(reply.code)
payments.gateway.PaymentDeclined: card declined (code 51)"""


async def load_fixed_data(pilot: Pilot[Any], clock: FrozenClock, history: bool = True) -> None:
    """A busy-looking, fully deterministic queue: several types, jobs in flight on two
    workers (one stale), processed counters that moved over two minutes, dead and
    failed jobs. With ``history`` it polls as it goes, so the processed/s sparklines
    fill from real polls (screens that hide them skip it: it is the slow part)."""
    from jobcore.demo import handlers
    from jobcore.records import Outcome

    app = pilot.app
    assert isinstance(app, JobConsole)
    q = app.queue
    n = 0

    def job(job_type: str, args: dict[str, Any], account: int) -> jobcore.Job[Any]:
        nonlocal n
        n += 1
        ident = jobcore.Identity(account_number=f"ACC-{account:04d}", org_id=f"org-{account % 3 + 1}")
        return jobcore.Job(type=job_type, args=args, account_id=account, identity=ident, id=job_id(n))

    await q.register_types(handlers.schemas())
    stale = {
        "id": "worker-b-7731",
        "host": "worker-b",
        "pid": 7731,
        "concurrency": 4,
        "busy": 1,
        "types": ["launch"],
        "started_ms": clock.ms - 3_600_000,
        "processed": 310,
        "failed": 4,
        "heartbeat_interval_ms": 5000,
    }
    await q.heartbeat(stale, 60_000)
    await q.enqueue_many([job("launch", {"reservation_id": 9000 + i, "count": 2}, 100 + i) for i in range(2)])
    await q.fetch("worker-b-7731", ["launch"], 1, 0)
    await q.enqueue_many([job("sleep", {"seconds": 30}, 200 + i) for i in range(60)])
    await q.enqueue_many([job("noop", {}, 300 + i) for i in range(400)])
    await q.enqueue_many([job("launch", {"reservation_id": 9100 + i}, 400 + i) for i in range(18)])
    await q.enqueue_many([job("fail", {"message": "card declined"}, 500 + i) for i in range(3)])
    await q.enqueue_many([job("report", {"month": "2025-12"}, 600 + i) for i in range(5)])
    # Two minutes of work, one poll every 10 s: the sparklines fill from real history.
    worker = "worker-a-4242"
    for step, (noops, sleeps) in enumerate(
        [
            (10, 1),
            (20, 2),
            (35, 2),
            (30, 3),
            (25, 4),
            (40, 2),
            (30, 3),
            (20, 2),
            (15, 1),
            (25, 2),
            (30, 3),
            (40, 4),
            (35, 3),
        ]
    ):
        clock.advance(10)
        got = [d for t in ("noop", "sleep") for d in await q.fetch(worker, [t], noops, 0)]
        done = [d for d in got if d.job_type == "noop"] + [d for d in got if d.job_type == "sleep"][:sleeps]
        await q.settle(worker, [Outcome(d.job_type, d.entry_id, "ack", d.attempt) for d in done])
        leftover = [d for d in got if d.job_type == "sleep"][sleeps:]
        await q.settle(worker, [Outcome(d.job_type, d.entry_id, "release", d.attempt) for d in leftover])
        info = {
            **stale,
            "id": worker,
            "host": "worker-a",
            "pid": 4242,
            "concurrency": 8,
            "busy": 3,
            "types": ["fail", "launch", "noop", "sleep"],
            "processed": 1200 + step * 30,
            "failed": 3,
        }
        await q.heartbeat(info, 15_000)
        if step == 10:  # worker-b's last heartbeat: 24 s old at the end, so stale (not yet lost)
            await q.heartbeat(stale, 60_000)
        if history or step == 12:
            await fresh_snapshot(pilot, settle=False)
    got = [d for t in ("sleep", "launch", "fail") for d in await q.fetch(worker, [t], 3, 0)]
    fails = [d for d in got if d.job_type == "fail"]
    await q.settle(worker, [Outcome(d.job_type, d.entry_id, "fail", d.attempt, TRACEBACK) for d in fails[:2]])
    dead = await q.fetch("worker-b-7731", ["launch"], 2, 0)
    await q.settle(
        "worker-b-7731",
        [
            Outcome(
                "launch",
                d.entry_id,
                "dead",
                6,
                "delivered 6 times, more than max_attempts=5: its worker kept stopping before the job finished",
            )
            for d in dead[:1]
        ]
        + [
            Outcome(
                "launch",
                d.entry_id,
                "dead",
                1,
                "args do not fit LaunchArgs: Expected `int`, got `str` - at `$.reservation_id`",
            )
            for d in dead[1:]
        ],
    )
    clock.advance(4)
    await fresh_snapshot(pilot)


def freeze_cursors(pilot: Pilot[Any]) -> None:
    """No blinking cursors in snapshots."""
    from textual.widgets import Input, TextArea

    for widget in pilot.app.screen.query(Input):
        widget.cursor_blink = False
    for area in pilot.app.screen.query(TextArea):
        area.cursor_blink = False
