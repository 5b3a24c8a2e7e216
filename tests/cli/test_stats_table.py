"""`jobcore stats` at 80 columns and piped: no cell ever wraps (issue 19 item 8)."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios

from jobcore import Job, SyncQueue
from jobcore.records import Outcome
from jobcore.redis.backend import RedisQueue

from .test_cli import jc

LONG = "example.provision"


def _busy_queue(url: str) -> None:
    """A partitioned, paused type and a type whose failed list dropped some (12 failed, 9 kept)."""
    with SyncQueue(url) as q:
        q.set_partitions(LONG, 4)
        q.enqueue_many([Job(type=LONG, args={}, account_id=i) for i in range(3)])
        q.pause(LONG)

    async def fail_twelve() -> None:
        async with RedisQueue(url) as q:
            q.keep_failed(9)
            await q.enqueue_many([Job(type="fail", args={"n": i}) for i in range(12)])
            got = await q.fetch("w", ["fail"], 12, 0)
            await q.settle("w", [Outcome("fail", d.entry_id, "fail", 1, "boom") for d in got])

    asyncio.run(fail_twelve())


def _rows(text: str) -> dict[str, str]:
    """The table's lines by their first word."""
    return {line.split()[0]: line for line in text.splitlines() if line.strip()}


def test_piped_stats_are_whole_rows_whatever_columns(cli_env: dict[str, str], redis_url: str) -> None:
    _busy_queue(redis_url)
    res = jc(dict(cli_env, COLUMNS="80"), "stats", "--partitions", url=redis_url)
    assert res.returncode == 0, res.stderr
    rows = _rows(res.stdout.split("\nno live worker")[0])
    header = rows["type"].split()
    assert header == ["type", "state", "parts", "pending", "in", "flight", "processed", "failed", "dead", "oldest",
                      "workers"]  # fmt: skip
    assert rows[LONG].split()[:5] == [LONG, "paused", "4", "3", "0"]
    assert rows["fail"].split()[:7] == ["fail", "1", "0", "0", "0", "12", "(9"] and "12 (9 kept)" in rows["fail"]
    assert sum(int(rows[f"p{p}"].split()[1]) for p in range(4)) == 3
    # Nothing wrapped: no line is the tail of a cell, the notes are whole lines too.
    assert "paused" not in [line.strip() for line in res.stdout.splitlines()]
    assert (
        "type 'example.provision' is paused: workers take none of its jobs until it is resumed"
        in res.stdout.splitlines()
    )


def _on_a_terminal(env: dict[str, str], args: list[str], columns: int) -> str:
    """What the command prints on a terminal ``columns`` wide."""
    main, side = pty.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")}
    env.update(NO_COLOR="1", TERM="xterm")
    proc = subprocess.Popen([sys.executable, "-m", "jobcore", *args], stdout=side, stderr=subprocess.DEVNULL, env=env)
    os.close(side)
    out = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the other side closed
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=30)
    os.close(main)
    return re.sub(r"\x1b\[[0-9;]*m", "", out.decode().replace("\r\n", "\n"))  # bold and dim go


def test_stats_at_80_columns_never_wraps_a_cell(cli_env: dict[str, str], redis_url: str) -> None:
    _busy_queue(redis_url)
    text = _on_a_terminal(cli_env, ["--url", redis_url, "stats", "--partitions"], 80)
    table = text.split("\nno live worker")[0].splitlines()
    assert all(len(line) <= 80 for line in table), text
    rows = _rows("\n".join(table))
    # One line a type: its name cut with …, its state, its numbers and "12 (9 kept)" whole.
    (long_row,) = [line for first, line in rows.items() if first.startswith("exampl")]
    assert long_row.split()[0].endswith("…") and long_row.split()[1:5] == ["paused", "4", "3", "0"]
    assert "12 (9 kept)" in rows["fail"]
    assert {first for first in rows if not first.startswith("─")} == {
        "jobcore", "type", long_row.split()[0], "p0", "p1", "p2", "p3", "fail", "total"
    }  # fmt: skip
    # Wide enough, nothing is cut.
    wide = _on_a_terminal(cli_env, ["--url", redis_url, "stats"], 120)
    assert LONG in _rows(wide)
