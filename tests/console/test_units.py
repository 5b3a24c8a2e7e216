"""The console's pure parts: rates and sparklines, formatting, the log bridge."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from jobconsole.embedded import LogBridge
from jobconsole.format import count, sparkline
from jobconsole.snapshot import RateHistory
from jobcore import Identity, Job, QueueStats, TypeStats
from jobcore.display import duration
from jobcore.logs import install_record_factory, job_context


def stats_at(seconds: float, processed: int) -> QueueStats:
    at = datetime.fromtimestamp(1_700_000_000 + seconds, tz=UTC)
    return QueueStats(types={"t": TypeStats("t", processed=processed)}, workers=1, taken_at=at)


def test_rate_over_the_last_seconds_and_a_reset_counter() -> None:
    h = RateHistory(window=120, buckets=12, recent=5)
    assert h.rate("t") is None
    for s in range(0, 11):
        h.add(stats_at(s, s * 10))  # 10 jobs/s
    assert h.rate("t") == pytest.approx(10.0)
    h.add(stats_at(11, 5))  # counters reset (keys deleted): no negative rate
    assert h.rate("t") is None
    h.add(stats_at(12, 25))
    assert h.rate("t") == pytest.approx(20.0)


def test_trend_buckets_fill_from_history() -> None:
    h = RateHistory(window=120, buckets=12)
    for s in range(5, 121, 5):
        h.add(stats_at(s, s * 2 if s < 60 else 120 + (s - 60) * 4))
    trend = h.trend("t")
    assert len(trend) == 12
    assert trend[0] is None  # no sample before the window started
    assert trend[2] == pytest.approx(2.0) and trend[-1] == pytest.approx(4.0)
    line = sparkline(trend)
    assert line[0] == " " and line[-1] == "█" and len(line) == 12


def test_formatting() -> None:
    assert count(1_000_000) == "1,000,000"
    assert [duration(s) for s in (0.04, 59.9, 61, 3725, 90061)] == ["0.0s", "59.9s", "1m01s", "1h02m", "1d01h"]
    assert duration(None) == "-"
    assert sparkline([None, 0, 1, 2, 4]) == " ▁▃▅█"


def _record(name: str, msg: str = "hello") -> logging.LogRecord:
    return logging.getLogger(name).makeRecord(name, logging.INFO, __file__, 1, msg, (), None)


def test_log_bridge_is_bounded_and_counts_what_it_drops() -> None:
    bridge = LogBridge(capacity=5)
    for i in range(8):
        bridge.emit(_record("jobcore.worker", f"line {i}"))
    bridge.emit(_record("urllib3", "not ours"))
    lines, dropped = bridge.drain(3)
    assert [x.message for x in lines] == ["line 0", "line 1", "line 2"]
    assert dropped == 3
    lines, dropped = bridge.drain(100)
    assert [x.message for x in lines] == ["line 3", "line 4"] and dropped == 0


def test_log_lines_carry_the_six_job_fields() -> None:
    install_record_factory()
    bridge = LogBridge()
    job = Job(
        type="launch",
        args={"reservation_id": 42},
        account_id=7,
        identity=Identity(account_number="ACC-7", org_id="org-3"),
    )
    with job_context(job):
        record = logging.getLogRecordFactory()("myapp.handlers", logging.INFO, __file__, 1, "launching", (), None)
    bridge.emit(record)
    (line,), _ = bridge.drain(10)
    assert dict(line.fields) == {
        "account_id": 7,
        "account_number": "ACC-7",
        "org_id": "org-3",
        "job_id": str(job.id),
        "job_type": "launch",
        "reservation_id": 42,
    }


def test_an_empty_field_reads_the_same_in_the_console_the_worker_logs_and_the_cli() -> None:
    from jobconsole.components.panels import render_line
    from jobconsole.embedded import LogLine
    from jobcore.display import field_text
    from jobcore.logs import TextFormatter

    assert field_text(None) == field_text("") == ""
    assert field_text(0) == "0" and field_text("r\x1b") == "r\\x1b"
    fields = (("org_id", ""), ("reservation_id", None), ("account_id", 7))
    shown = render_line(LogLine(0.0, 20, "INFO", "x", "done", fields)).plain  # type: ignore[union-attr]
    assert shown.endswith("done org_id= reservation_id= account_id=7")
    record = logging.LogRecord("jobcore.demo", logging.INFO, __file__, 1, "done", None, None)
    record.org_id, record.reservation_id, record.account_id = "", None, 7
    assert TextFormatter().format(record).endswith("done account_id=7 org_id= reservation_id=")


def test_the_screenshots_draw_sparkline_blocks_as_cells() -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "screenshots.py"
    spec = importlib.util.spec_from_file_location("screenshots", path)
    assert spec is not None and spec.loader is not None
    shots = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shots)
    svg = (
        '<text class="t-r1" x="97.6" y="44.4" textLength="48.8" clip-path="url(#l1)">&#160;▁&lt;█</text>'
        '<text class="t-r2" x="0" y="44.4" textLength="24.4" clip-path="url(#l1)">ok</text>'
    )
    out = shots.blocks_as_cells(svg)
    assert "▁" not in out and "█" not in out
    assert ">&#160;&#160;&lt;&#160;</text>" in out  # the other characters stay where they were
    assert '<text class="t-r2" x="0" y="44.4" textLength="24.4" clip-path="url(#l1)">ok</text>' in out
    rects = [dict(re.findall(r'(\w+)="([^"]+)"', r)) for r in re.findall(r"<rect [^>]+/>", out)]
    assert [(r["x"], r["width"]) for r in rects] == [("109.8", "12.2"), ("134.2", "12.2")]
    for r in rects:  # both sit on the bottom of their row (y - 20 + 1.5 + 24.4)
        assert float(r["y"]) + float(r["height"]) == pytest.approx(50.3, abs=0.1)
    assert [float(r["height"]) for r in rects] == pytest.approx([24.4 / 8, 24.4], abs=0.05)  # ▁ and █


def test_destructive_keys_are_uppercase_or_ask_first_and_every_mutating_key_has_a_refusal() -> None:
    from textual.binding import Binding

    from jobconsole.keys import SECTIONS, bindings

    for _, table in SECTIONS:
        for k in table:
            if k.action_name in ("purge",) or (k.mutating and k.action and k.action.endswith("(True)")):
                assert k.confirms or k.keys.isupper(), k
        made = bindings(table)
        for k in table:
            if k.mutating and k.action:
                twins = [b for b in made if isinstance(b, Binding) and b.key == k.keys]
                assert len(twins) == 2 and twins[0].action == k.action
                assert twins[1].action.startswith("app.refuse(") and not twins[1].show


def test_widgets_know_the_console_only_as_a_context_and_do_no_queue_io() -> None:
    import ast
    from pathlib import Path

    components = Path(__file__).resolve().parents[2] / "jobconsole" / "components"
    for path in components.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.module not in ("app", "jobconsole.app", "runner", "jobconsole.runner"), path.name
            if isinstance(node, ast.Attribute):
                # The queue, the runner and the concrete app's helpers are the app's business.
                assert node.attr not in ("runner", "queue", "embedded", "JobConsole"), (path.name, node.lineno)
            if isinstance(node, ast.Name):
                assert node.id != "JobConsole", path.name


def test_triage_filters_groups_and_keeps_each_groups_jobs_in_list_order() -> None:
    from jobconsole.scope import Scope, triage_bad
    from jobcore.records import make_bad_job

    reasons = ["TimeoutError: account 42 took 31.2s", "KeyError: 'a'", "TimeoutError: account 7 took 30.1s"]
    rows = [make_bad_job("launch", f"17000000000{i:02d}-0", r, b"", 1, "w") for i, r in enumerate(reasons)]
    every = triage_bad("failed", rows, None)
    assert every.matching == tuple(rows)
    timeouts, keys = every.groups.values()  # the largest first
    assert every.members == {timeouts.key: (rows[0], rows[2]), keys.key: (rows[1],)}
    # Undecodable entries have no fields to match: any filter leaves them out.
    assert triage_bad("failed", rows, Scope().with_text("account:42").query) == type(every)()


async def test_the_dead_list_is_triaged_off_the_ui_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    import jobconsole.app
    from jobconsole.app import make_app
    from jobconsole.settings import Settings

    threads: list[int] = []
    real = jobconsole.app.triage_bad

    def spy(*args: Any) -> Any:
        threads.append(threading.get_ident())
        return real(*args)

    monkeypatch.setattr(jobconsole.app, "triage_bad", spy)
    app = make_app(Settings(url="memory://"))
    assert (await app.triage("dead", [], None)).groups == {}
    assert threads and threads[0] != threading.get_ident()
