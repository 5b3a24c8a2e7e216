"""The console in a browser (issue 22): ``jobconsole --serve`` opened in a real
headless chromium: the page shows a type's pending count from Redis, a key
pressed in the page reaches the console, and the serving flags refuse what
cannot work with one line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from jobconsole.serve import console_command
from jobcore import Job, SyncQueue
from tests.support.browser import CHROMIUM, browser_page, served_console

REQUIRE = "JOBCORE_REQUIRE_BROWSER"  # .ci/run sets it: there a missing chromium fails the test


def need_chromium() -> None:
    if CHROMIUM:
        return
    why = "no chromium for the browser test: apt-get install chromium (or set JOBCORE_CHROMIUM)"
    if os.environ.get(REQUIRE):
        pytest.fail(why, pytrace=False)
    pytest.skip(why)


async def test_a_browser_shows_the_live_console_and_its_keys_work(cli_env: dict[str, str], redis_url: str) -> None:
    need_chromium()
    with SyncQueue(redis_url) as q:
        q.enqueue_many([Job(type="launch", args={"n": n}) for n in range(4321)])
    with served_console(redis_url, cli_env) as address:
        async with browser_page(address) as (page, screen):
            await screen.wait_for("4,321")  # the queue table's pending count for launch
            assert "launch" in screen.text
            await page.mouse.click(300, 300)
            await page.keyboard.press("?")
            await screen.wait_for("these keys")  # the help screen
            with SyncQueue(redis_url) as q:
                q.enqueue(Job(type="launch", args={"n": 0}))
            await page.keyboard.press("Escape")
            await screen.wait_for("4,322")  # live: the next poll's count


def test_the_served_command_drops_the_url_and_the_serving_flags() -> None:
    cmd = console_command(
        ["--url", "redis://:secret@h:6379/0", "--serve", "--port=9000", "--host", "0.0.0.0", "--read-only"]
    )
    assert cmd.endswith("-m jobconsole --read-only") and "secret" not in cmd and "9000" not in cmd


def test_serve_refuses_memory_and_a_taken_port_in_one_line(cli_env: dict[str, str], redis_url: str) -> None:
    mem = subprocess.run(
        [sys.executable, "-m", "jobconsole", "--memory", "--serve"], env=cli_env, capture_output=True, text=True
    )
    assert mem.returncode == 2 and "--serve with --memory" in mem.stderr and len(mem.stderr.splitlines()) == 1
    with served_console(redis_url, cli_env) as address:
        port = address.rsplit(":", 1)[1].strip("/")
        taken = subprocess.run(
            [sys.executable, "-m", "jobconsole", "--url", redis_url, "--serve", "--port", port],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert taken.returncode == 1 and f"cannot serve on 127.0.0.1:{port}" in taken.stderr, taken.stderr
