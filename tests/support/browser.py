"""The console served to a real headless browser (Debian's chromium, driven by
Playwright): ``jobconsole --serve`` started on a free port, a page opened on
it, and what the page received read back as text (the terminal is drawn on a
canvas: its text arrives in the websocket's frames, escape sequences and all)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Mapping
from typing import Any

from tests.support.servers import free_port

CHROMIUM = os.environ.get("JOBCORE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
_ESCAPES = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]")


class Screen:
    """The frames a page got from its console, as text."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def on_frame(self, payload: Any) -> None:
        self.frames.append(payload if isinstance(payload, bytes) else str(payload).encode())

    @property
    def text(self) -> str:
        return _ESCAPES.sub(b"", b"".join(self.frames)).decode("utf-8", "replace")

    async def wait_for(self, needle: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text:
            if time.monotonic() > deadline:
                raise AssertionError(f"the page never showed {needle!r}; it got: {self.text[-2000:]!r}")
            await asyncio.sleep(0.1)


@contextlib.contextmanager
def served_console(url: str, env: Mapping[str, str], *args: str) -> Any:
    """``jobconsole --serve`` on a free port for ``url``; yields its page's address."""
    port = free_port()
    cmd = [sys.executable, "-m", "jobconsole", "--url", url, "--serve", "--port", str(port), *args]
    proc = subprocess.Popen(cmd, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    address = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(address, timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    raise RuntimeError(f"jobconsole --serve did not start: {out[-2000:]}") from None
                time.sleep(0.2)
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.asynccontextmanager
async def browser_page(address: str, width: int = 1400, height: int = 900) -> AsyncIterator[tuple[Any, Screen]]:
    """A headless chromium page on ``address`` and the text its console sent."""
    from playwright.async_api import async_playwright

    if CHROMIUM is None:
        raise RuntimeError("no chromium: install Debian's chromium (apt-get install chromium) or set JOBCORE_CHROMIUM")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = await browser.new_page(viewport={"width": width, "height": height})
            screen = Screen()
            page.on("websocket", lambda ws: ws.on("framereceived", screen.on_frame))
            await page.goto(address)
            yield page, screen
        finally:
            await browser.close()
