"""Real screenshots of jobconsole for the README: ``.venv/bin/python scripts/screenshots.py``.

Starts a private redis-server, runs a real jobcore worker process plus the
console's embedded worker against it, feeds them real jobs (and some bad data,
so the dead and failed sets fill the honest way), then drives the real app with
Pilot and saves SVGs into ``screenshots/`` (and PNGs when rsvg-convert exists).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual.widgets import TextArea  # noqa: E402

import jobcore  # noqa: E402
from jobconsole.app import JobConsole, make_app  # noqa: E402
from jobconsole.components.audit import AuditScreen  # noqa: E402
from jobconsole.components.badjobs import BadJobsScreen, BadTable, GroupTable  # noqa: E402
from jobconsole.components.confirm import ConfirmScreen  # noqa: E402
from jobconsole.components.detail import JobDetailScreen  # noqa: E402
from jobconsole.components.enqueue import EnqueueScreen  # noqa: E402
from jobconsole.components.fairness import FairScreen  # noqa: E402
from jobconsole.components.find import FindScreen, FoundTable  # noqa: E402
from jobconsole.components.history import HistoryScreen  # noqa: E402
from jobconsole.components.main_screen import MainScreen  # noqa: E402
from jobconsole.components.panels import InFlightTable, QueuesTable  # noqa: E402
from jobconsole.components.waiting import WaitingScreen, WaitingTable  # noqa: E402
from jobconsole.components.why import WhyScreen  # noqa: E402
from jobconsole.settings import Settings  # noqa: E402
from jobcore import Identity, Job  # noqa: E402
from tests.support.browser import browser_page, served_console  # noqa: E402
from tests.support.servers import RedisServer  # noqa: E402

OUT = ROOT / "screenshots"
SIZE = (120, 36)


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def identity(rng: random.Random) -> tuple[int, Identity]:
    account = rng.randint(1000, 1099)
    return account, Identity(account_number=f"ACC-{account}", org_id=f"org-{account % 7 + 1}")


async def feed(url: str, seconds: float, rng: random.Random) -> None:
    """What a busy afternoon looks like: sleeps and launches for the embedded worker,
    noop bursts for the external one, a few failing jobs, a type nobody serves."""
    q = jobcore.connect(url)
    reservation = 7100
    try:
        end = time.monotonic() + seconds
        tick = 0
        while time.monotonic() < end:
            jobs: list[Job[Any]] = []
            for _ in range(rng.randint(1, 3)):
                account, ident = identity(rng)
                jobs.append(
                    Job(type="sleep", args={"seconds": round(rng.uniform(2, 9), 1)}, account_id=account, identity=ident)
                )
            if tick % 2 == 0:
                account, ident = identity(rng)
                reservation += 1
                args = {
                    "reservation_id": reservation,
                    "instance_type": rng.choice(["t3.small", "m5.large"]),
                    "count": rng.randint(1, 4),
                    "step_seconds": rng.choice([3, 4, 6]),
                }
                jobs.append(Job(type="launch", args=args, account_id=account, identity=ident))
            # Busy spells and quiet ones (about a minute apart), as traffic goes: a steady feed
            # draws every sparkline as one flat bar at full height.
            burst = int(5 + 110 * max(0.0, math.sin(tick / 9)) ** 2)
            jobs.extend(Job(type="noop", args={}, account_id=1) for _ in range(burst))
            if tick % 9 == 4:
                account, ident = identity(rng)
                # One cause, different numbers in each message: the failed view groups them as one.
                message = f"quota exceeded for account {account}: {rng.randint(11, 19)} of 10 m5 instances"
                jobs.append(Job(type="fail", args={"message": message}, account_id=account, identity=ident))
            if tick % 5 == 0:
                jobs.append(Job(type="report", args={"month": "2025-12"}, account_id=1))
            await q.enqueue_many(jobs)
            tick += 1
            await asyncio.sleep(1.0)
    finally:
        await q.close()


async def plant_bad_data(url: str) -> None:
    """Jobs a real worker cannot run: corrupt bytes and args that do not fit the type."""
    q = jobcore.connect(url)
    try:
        await q.register_types({"launch": {}, "sleep": {}})
        await q.add_raw("launch", {b"d": b"\x07truncated-by-a-bad-proxy"})  # type: ignore[attr-defined]
        await q.add_raw("sleep", {b"x": b"no payload field"})  # type: ignore[attr-defined]
        account, ident = 1042, Identity(account_number="ACC-1042", org_id="org-3")
        await q.enqueue_many(
            [
                Job(type="launch", args={"reservation_id": "R-17"}, account_id=account, identity=ident),
                Job(type="sleep", args={"seconds": -3}, account_id=account, identity=ident),
            ]
        )
    finally:
        await q.close()


# Rich's SVG geometry (console.export_svg): a text's y is its row's top + 20 - 1.5.
CHAR_HEIGHT = 20.0
LINE_HEIGHT = CHAR_HEIGHT * 1.22
BLOCKS = {ch: (i + 1) / 8 for i, ch in enumerate("▁▂▃▄▅▆▇█")}
TEXT = re.compile(
    r'<text class="(?P<cls>[^"]+)" x="(?P<x>[\d.]+)" y="(?P<y>[\d.]+)" textLength="(?P<len>[\d.]+)"'
    r' clip-path="(?P<clip>[^"]+)">(?P<body>[^<]*)</text>'
)


def blocks_as_cells(svg: str) -> str:
    """Draw the block elements (the sparklines' ▁▂▃▄▅▆▇█) as rectangles filling their cell
    from the bottom, as a terminal draws them. Left to a font, the viewer's fallback font
    (no Fira Code installed) sets them off the line, as tall blocks bleeding into the next row."""

    def cells(m: re.Match[str]) -> str:
        text = html.unescape(m["body"])
        if not any(ch in BLOCKS for ch in text):
            return m[0]
        x, y, width = float(m["x"]), float(m["y"]), float(m["len"]) / len(text)
        bottom = y - CHAR_HEIGHT + 1.5 + LINE_HEIGHT
        rects = []
        for i, ch in enumerate(text):
            if ch in BLOCKS:
                height = LINE_HEIGHT * BLOCKS[ch]
                rects.append(
                    f'<rect class="{m["cls"]}" x="{x + i * width:.1f}" y="{bottom - height:.1f}" '
                    f'width="{width:.1f}" height="{height:.1f}" shape-rendering="crispEdges" clip-path="{m["clip"]}"/>'
                )
        rest = "".join("\u00a0" if ch in BLOCKS else ch for ch in text)
        body = html.escape(rest, quote=False).replace("\u00a0", "&#160;")
        return "".join(rects) + m[0].replace(f">{m['body']}</text>", f">{body}</text>")

    return TEXT.sub(cells, svg)


def to_png(svg: Path) -> Path | None:
    """rsvg-convert collapses the SVG's leading spaces unless told to keep them."""
    rsvg = shutil.which("rsvg-convert")
    if rsvg is None:
        return None
    fixed = svg.with_suffix(".tmp.svg")
    fixed.write_text(svg.read_text().replace("<svg ", '<svg xml:space="preserve" ', 1))
    png = svg.with_suffix(".png")
    try:
        subprocess.run([rsvg, str(fixed), "-o", str(png)], check=True)
    finally:
        fixed.unlink()
    return png


def finish(svg: Path) -> Path | None:
    svg.write_text(blocks_as_cells(svg.read_text()))
    return to_png(svg)


def start_external_worker(url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jobcore",
            "--url",
            url,
            "worker",
            "jobcore.demo:handlers",
            "--types",
            "noop,fail",
            "--concurrency",
            "4",
            "--id",
            "billing-7f3a-1",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait(pilot: Any, check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {check}")
        await asyncio.sleep(0.05)
    await pilot.pause()


async def shoot(app: JobConsole, name: str) -> None:
    path = app.save_screenshot(filename=f"{name}.svg", path=str(OUT))
    png = finish(Path(path))
    say(f"saved {Path(path).relative_to(ROOT)}" + (f" and {png.name}" if png else " (no rsvg-convert: no PNG)"))


async def on_row(pilot: Any, table: Any, key: str) -> None:
    table.focus()
    table.move_cursor(row=table.get_row_index(key))
    await pilot.pause()


async def more_shots(pilot: Any, app: JobConsole, url: str) -> None:
    """The incident controls: filter, find, pause, cancel, history, why. The incident: one
    account's job stuck in a 10-minute sleep (account 1042 also owns the bad data above)."""
    in_flight = app.screen.query_one(InFlightTable)
    queues = app.screen.query_one(QueuesTable)
    async with jobcore.connect(url) as q:
        await q.set_fair("sleep", True)  # the accounts' sleeps in turn, two of each at most
        await q.set_limit("sleep", per_account=2)
        ident = Identity(account_number="ACC-1042", org_id="org-3")
        [stuck] = await q.enqueue_many([Job(type="sleep", args={"seconds": 600}, account_id=1042, identity=ident)])
    await wait(pilot, lambda: any(j.job_id == str(stuck) for j in in_flight.jobs.values()), timeout=180)

    await pilot.press("slash", *"account:1042", "enter")  # the filter, as you type
    await wait(pilot, lambda: app.snapshot is not None and app.snapshot.query is not None)
    await pilot.pause(0.5)
    await shoot(app, "filter")
    await pilot.press("slash", "escape")  # clears it

    # Find it by its id as the worker's log line prints it (the whole id).
    await pilot.press("j", *str(stuck), "enter")
    await wait(pilot, lambda: isinstance(app.screen, JobDetailScreen))
    await pilot.press("escape")
    await wait(pilot, lambda: isinstance(app.screen, FindScreen) and app.screen.query_one(FoundTable).row_count == 1)
    await shoot(app, "find")
    await pilot.press("escape")
    await wait(pilot, lambda: isinstance(app.screen, MainScreen))

    await on_row(pilot, queues, "type:launch")  # pause: confirmed, then shown on the row
    await pilot.press("P")
    await wait(pilot, lambda: isinstance(app.screen, ConfirmScreen))
    await pilot.press("y")
    await wait(pilot, lambda: app.snapshot is not None and app.snapshot.stats.types["launch"].paused)
    await on_row(pilot, queues, "type:launch")
    await shoot(app, "paused")
    await pilot.press("w")  # why: the row's type, in words (paused among them)
    await wait(pilot, lambda: isinstance(app.screen, WhyScreen))
    await shoot(app, "why")
    await pilot.press("escape", "P")
    await wait(pilot, lambda: isinstance(app.screen, ConfirmScreen))
    await pilot.press("y")
    await wait(pilot, lambda: app.snapshot is not None and not app.snapshot.stats.types["launch"].paused)
    await pilot.press("u")  # the audit trail: the pause and the resume, who did them
    await wait(pilot, lambda: isinstance(app.screen, AuditScreen))
    await shoot(app, "audit")
    await pilot.press("escape")
    await wait(pilot, lambda: isinstance(app.screen, MainScreen))
    await on_row(pilot, queues, "type:report")  # its waiting jobs (no worker serves it), oldest first
    await pilot.press("v")
    await wait(pilot, lambda: isinstance(app.screen, WaitingScreen) and app.screen.query_one(WaitingTable).row_count)
    await shoot(app, "waiting")
    await pilot.press("escape")
    await wait(pilot, lambda: isinstance(app.screen, MainScreen))

    await on_row(pilot, queues, "type:sleep")  # fairness across accounts: who waits, who runs, the limit
    await pilot.press("a")
    await wait(pilot, lambda: isinstance(app.screen, FairScreen))
    await pilot.pause(0.5)
    await shoot(app, "fair")
    await pilot.press("escape")
    await wait(pilot, lambda: isinstance(app.screen, MainScreen))

    stuck_row = next(k for k, j in in_flight.jobs.items() if j.job_id == str(stuck))
    await on_row(pilot, in_flight, stuck_row)
    await pilot.press("c")
    await wait(pilot, lambda: isinstance(app.screen, ConfirmScreen))
    await shoot(app, "cancel")
    await pilot.press("y")
    await wait(pilot, lambda: isinstance(app.screen, MainScreen))
    await pilot.pause(1.5)

    await pilot.press("h")
    await wait(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.history is not None)
    await pilot.pause(0.5)
    await shoot(app, "history")
    await pilot.press("escape")


async def browser_shot(url: str) -> None:
    """The same console served to a headless chromium (jobconsole --serve), read-only as one shares it."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with served_console(url, env, "--read-only") as address:
        async with browser_page(address, 1400, 860) as (page, screen):
            await screen.wait_for("in flight", timeout=60)
            await page.wait_for_timeout(2500)  # two polls: the numbers and the sparklines in
            await page.screenshot(path=str(OUT / "browser.png"))
    say("saved screenshots/browser.png")


async def run(warmup: float) -> None:
    OUT.mkdir(exist_ok=True)
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis")
        server.start()
        external: subprocess.Popen[bytes] | None = None
        try:
            url = server.url
            say(f"private redis-server at {url}")
            await plant_bad_data(url)
            # A real worker process, as in production, serving the fast types.
            external = await asyncio.to_thread(start_external_worker, url)
            app = make_app(Settings(url=url, refresh=1.0, concurrency=12, grace=1.0))
            async with app.run_test(size=SIZE) as pilot:
                await wait(pilot, lambda: app.snapshot is not None)
                await pilot.press("s")  # the embedded worker: dead-letters the bad data, runs sleeps and launches
                feeder = asyncio.create_task(feed(url, warmup + 30, rng))
                say(f"feeding jobs for {warmup:.0f}s while both workers run")
                await asyncio.sleep(warmup)
                await wait(pilot, lambda: app.snapshot is not None and app.snapshot.stats.in_flight > 5)
                await pilot.pause(0.5)
                await shoot(app, "main")

                await pilot.press("e")
                await wait(pilot, lambda: isinstance(app.screen, EnqueueScreen))
                await pilot.pause(0.5)
                app.screen.query_one("#args", TextArea).text = '{"seconds": -5}'
                for area in app.screen.query(TextArea):
                    area.cursor_blink = False
                await pilot.pause(0.3)
                await shoot(app, "enqueue-error")
                await pilot.press("escape")
                await wait(pilot, lambda: isinstance(app.screen, MainScreen))

                table = app.screen.query_one(InFlightTable)
                launch = next((k for k, j in table.jobs.items() if j.job_type == "launch"), None)
                if launch is not None:
                    table.focus()
                    table.move_cursor(row=table.get_row_index(launch))
                await pilot.press("enter")
                await wait(pilot, lambda: isinstance(app.screen, JobDetailScreen))
                await shoot(app, "job-detail")
                await pilot.press("escape")
                await wait(pilot, lambda: isinstance(app.screen, MainScreen))

                await pilot.press("d")  # grouped by cause
                await wait(pilot, lambda: isinstance(app.screen, BadJobsScreen))
                await wait(pilot, lambda: app.screen.query_one(GroupTable).row_count >= 3)
                await shoot(app, "dead")
                await pilot.press("tab")
                await wait(pilot, lambda: isinstance(app.screen, BadJobsScreen) and app.screen.which == "failed")
                await wait(pilot, lambda: app.screen.query_one(GroupTable).row_count >= 1)
                await shoot(app, "failed")
                await pilot.press("enter")  # into the largest group
                await wait(pilot, lambda: app.screen.query_one(BadTable).row_count >= 1)
                await shoot(app, "failed-group")
                await pilot.press("escape", "escape")
                await wait(pilot, lambda: isinstance(app.screen, MainScreen))
                feeder.cancel()  # the afternoon calms down: the stuck job gets a slot
                await more_shots(pilot, app, url)
            await browser_shot(url)
        finally:
            if external is not None:
                external.terminate()
                external.wait(15)
            server.cleanup()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--warmup", type=float, default=75.0, help="seconds of traffic before the first shot")
    asyncio.run(run(p.parse_args().warmup))


if __name__ == "__main__":
    main()
