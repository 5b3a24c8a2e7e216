"""Redis instructions per job, plain and fair types side by side, counted by
valgrind's callgrind (repeatable where wall-clock CPU on this shared VM is not):
``python -m bench.fair_instructions [N] [--tree DIR]``.

A redis-server runs under callgrind; for each mode N no-op jobs are queued (a
plain type; a fair type over 1,000 accounts; a fair type with one account), the
counters are zeroed, one ``jobcore worker`` (concurrency 10, from ``--tree``,
default this checkout) drains them, and the instructions Redis executed in
between are divided by N. The worker's start, heartbeats and stop and this
script's stats polls (every 0.5 s) are in every mode alike. Plain runs first
and last: the two show the spread. Needs valgrind (Debian's package).
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from bench.fairness import fill, processed
from tests.support.servers import free_port

MODES = ("plain", "fair, 1,000 accounts", "fair, one account", "plain")
REPO = Path(__file__).resolve().parent.parent


def _instructions(pid: int, out: Path) -> int:
    for f in glob.glob(f"{out}*"):
        os.remove(f)
    subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True, check=False)
    deadline = time.monotonic() + 30
    while not glob.glob(f"{out}*") and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    text = subprocess.run(["callgrind_annotate", glob.glob(f"{out}*")[-1]], capture_output=True, text=True).stdout
    found = re.search(r"([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", text)
    if not found:
        raise RuntimeError(f"callgrind_annotate gave no totals: {text[:500]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("n", nargs="?", type=int, default=2000, help="jobs per mode")
    p.add_argument("--tree", default=str(REPO), help="the jobcore source tree the worker runs")
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="jobcore-callgrind-"))
    out = work / "callgrind.out"
    port = free_port()
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "redis-server", "--port", str(port),
         "--save", "", "--appendonly", "no", "--dir", str(work)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    r = redis.Redis(port=port)
    rows: list[tuple[str, float]] = []
    try:
        for _ in range(300):
            try:
                r.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.2)
        env = dict(os.environ, PYTHONPATH=a.tree)
        for mode in MODES:
            r.flushall()
            asyncio.run(fill(url, mode, a.n))
            subprocess.run(["callgrind_control", "-z", str(server.pid)], capture_output=True, check=False)
            worker = subprocess.Popen(
                [sys.executable, "-m", "jobcore", "-q", "--url", url, "worker", "bench.tasks:handlers"],
                env=env,
                cwd=a.tree,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            while asyncio.run(processed(url, "bench")) < a.n:
                time.sleep(0.5)
            worker.terminate()
            worker.wait(60)
            rows.append((mode, _instructions(server.pid, out) / a.n))
            print(f"{mode:<24} {rows[-1][1]:>10,.0f} instructions/job", flush=True)
    finally:
        server.terminate()
        server.wait(60)
    plain = sum(x for m, x in rows if m == "plain") / 2
    print("\n| mode | Redis instructions per job | vs plain |\n|---|---:|---:|")
    for mode, x in rows[1:-1]:
        print(f"| {mode} | {x:,.0f} | {x / plain:.2f}x |")
    print(f"| plain (first, last) | {rows[0][1]:,.0f}, {rows[-1][1]:,.0f} | 1.00x |")


if __name__ == "__main__":
    main()
