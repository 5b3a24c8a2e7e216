"""Results file: JSON, plus Markdown tables with jobcore's ratio to the best peer."""

from __future__ import annotations

import math
from typing import Any

Row = dict[str, Any]


def _f(x: float | None, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:,.{digits}f}"


def _best(rows: dict[str, Row], key: str, lowest: bool = False) -> tuple[str, float] | None:
    vals = [
        (label, float(r[key]))
        for label, r in rows.items()
        if r.get("lib") != "jobcore" and r.get(key) is not None and not math.isnan(float(r[key]))
    ]
    if not vals:
        return None
    return min(vals, key=lambda v: v[1]) if lowest else max(vals, key=lambda v: v[1])


def _jobcore(rows: dict[str, Row]) -> Row | None:
    for r in rows.values():
        if r.get("lib") == "jobcore":
            return r
    return None


def _floor_note(floor: dict[str, Any] | None, jobs_per_s: float) -> str:
    if not floor:
        return ""
    best = floor["max_jobs_per_s"]
    return f" (round-trip floor up to {_f(best)}/s: jobcore at {jobs_per_s / best:.0%} of it)"


def targets(res: dict[str, Any]) -> list[Row]:
    """Each target of the issue, with the figure measured in this run."""
    w = res["workloads"]
    out: list[Row] = []

    def add(name: str, figure: str, met: bool | None) -> None:
        out.append({"target": name, "figure": figure, "met": met})

    enq = w.get("enqueue", {})
    jc = _jobcore(enq)
    best = _best(enq, "single_jobs_per_s")
    if jc and best:
        ratio = jc["single_jobs_per_s"] / best[1]
        add(
            "single enqueue ≥ 3x best peer",
            f"{_f(jc['single_jobs_per_s'])}/s vs {best[0]} {_f(best[1])}/s = {ratio:.2f}x"
            + _floor_note(res.get("enqueue_floor"), jc["single_jobs_per_s"]),
            ratio >= 3,
        )
    if jc and jc.get("batch_jobs_per_s"):
        add("batch enqueue ≥ 100,000 jobs/s", f"{_f(jc['batch_jobs_per_s'])}/s", jc["batch_jobs_per_s"] >= 100_000)

    dr = w.get("drain", {})
    jc = _jobcore(dr)
    best = _best(dr, "jobs_per_s")
    if jc and best:
        ratio = jc["jobs_per_s"] / best[1]
        add(
            "drain, 1 worker process ≥ 5x best peer (start-up included)",
            f"{_f(jc['jobs_per_s'])}/s vs {best[0]} {_f(best[1])}/s = {ratio:.2f}x",
            ratio >= 5,
        )
        add(
            "drain, 1 worker process ≥ 10,000 jobs/s (start-up included)",
            f"{_f(jc['jobs_per_s'])}/s",
            jc["jobs_per_s"] >= 10_000,
        )
        after = jc.get("jobs_per_s_after_first")
        if after:
            add("(same, start-up excluded: from the first completion)", f"{_f(after)}/s", after >= 10_000)

    lat = w.get("latency", {})
    jc = _jobcore(lat)
    if jc and "p50_ms" in jc:
        add("idle latency p50 ≤ 1 ms", f"{jc['p50_ms']:.2f} ms", jc["p50_ms"] <= 1)
        add("idle latency p99 ≤ 3 ms", f"{jc['p99_ms']:.2f} ms", jc["p99_ms"] <= 3)

    mem = w.get("memory", {})
    jc = _jobcore(mem)
    best = _best(mem, "bytes_per_job", lowest=True)
    if jc and best:
        ratio = jc["bytes_per_job"] / best[1]
        add(
            "Redis memory per pending job ≤ 1/3 of best peer",
            f"{_f(jc['bytes_per_job'])} B vs {best[0]} {_f(best[1])} B = {ratio:.2f}x (target ≤ 0.33x)",
            ratio <= 1 / 3,
        )

    st = w.get("stats", {}).get("by_pending", {})
    if st:
        sizes = sorted(st, key=int)
        lo, hi = st[sizes[0]], st[sizes[-1]]
        for key, what in (("refresh_ms", "stats() + in_flight(1000)"), ("stats_ms", "stats() alone")):
            ratio = hi[key] / lo[key]
            add(
                f"refresh [{what}] at {int(sizes[-1]):,} pending ≤ 1.2x the {int(sizes[0]):,} figure",
                f"{hi[key]:.2f} ms vs {lo[key]:.2f} ms = {ratio:.2f}x",
                ratio <= 1.2,
            )
            add(f"refresh [{what}] at {int(sizes[-1]):,} pending < 5 ms", f"{hi[key]:.2f} ms", hi[key] < 5)
    return out


def _missing(res: dict[str, Any], cols: int) -> list[str]:
    """A row per peer that was asked for but is not installed."""
    return [f"| {lib} | not installed |" + " |" * (cols - 2) for lib in (res.get("not_installed") or {})]


def _top(cmds: dict[str, float]) -> str:
    return ", ".join(f"{k.upper()} {v:.2f}" for k, v in cmds.items())


def _ratio(jc: Row | None, best: tuple[str, float] | None, key: str, suffix: str = "x") -> str:
    if not jc or not best or jc.get(key) is None or not best[1]:
        return "-"
    return f"{float(jc[key]) / best[1]:.2f}{suffix} {best[0]}"


def markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    w = res["workloads"]
    lines = [
        "# jobcore benchmark results",
        "",
        f"Command: `{res['command']}`  ",
        f"Date: {res['date']}; took {res['duration_s']:.0f} s",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu']}), Linux {m['kernel']}; redis-server {m['redis_version']} "
        f"(private, started by the run, no persistence); Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in res["versions"].items()),
        "",
        f"jobcore measured: {m.get('jobcore_source', '?')}. Load average (1/5/15 min) at start "
        f"{m.get('load_average_at_start', '?')}, at end {m.get('load_average_at_end', '?')}: anything else "
        "running on the machine shows up in the figures.",
        "",
        "One process per library enqueues; one worker process (each library's own CLI) "
        "drains. Ratios are jobcore ÷ the best peer in this same run. Numbers are noisy: "
        "compare ratios within one run only.",
        "",
    ]
    enq = w.get("enqueue")
    if enq:
        best_s = _best(enq, "single_jobs_per_s")
        best_b = _best(enq, "batch_jobs_per_s")
        lines += [
            f"## 1. Enqueue ({next(iter(enq.values()))['n']:,} small jobs)",
            "",
            "| library | one call per job, jobs/s | batch API, jobs/s |",
            "| --- | ---: | ---: |",
        ]
        for label, r in enq.items():
            batch = _f(r.get("batch_jobs_per_s")) if r.get("batch_jobs_per_s") else "none"
            lines.append(f"| {label} | {_f(r.get('single_jobs_per_s'))} | {batch} |")
        lines += _missing(res, 3)
        jc = _jobcore(enq)
        lines += [
            f"| **jobcore ÷ best peer** | {_ratio(jc, best_s, 'single_jobs_per_s')} "
            f"| {_ratio(jc, best_b, 'batch_jobs_per_s')} |",
            "",
        ]
        floor = res.get("enqueue_floor")
        rounds = next(iter(enq.values())).get("rounds", 1)
        if rounds > 1:
            lines += [
                f"Each figure is the median of {rounds} rounds; each round ran every library once, "
                "the order rotating from round to round.",
                "",
            ]
        if floor:
            lines += [
                "Round-trip floor in this run: one blocking socket sending a pre-encoded 146-byte XADD "
                "and waiting for each reply, no library at all, measured before each round and at the "
                f"end: {_f(floor['min_jobs_per_s'])} to {_f(floor['max_jobs_per_s'])}/s. One call per job "
                "that waits for its confirmation cannot go faster than this.",
                "",
            ]
    dr = w.get("drain")
    if dr:
        best = _best(dr, "jobs_per_s")
        best_after = _best(dr, "jobs_per_s_after_first")
        n = next(iter(dr.values()))["n"]
        lines += [
            f"## 2. Drain {n:,} no-op jobs, one worker process",
            "",
            f"Timed from the worker start command (process start-up included) until all are done; a run "
            f"still going after {res['params']['drain_cap_s']:.0f} s is stopped and its rate is done ÷ time (partial). "
            "'After first' excludes start-up: from the first completion seen to the last.",
            "",
            "| worker | done | seconds | jobs/s | start-up s | jobs/s after first |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for label, r in dr.items():
            done = f"{r['done']:,}" + (" (partial)" if r.get("partial") else "")
            lines.append(
                f"| {label} | {done} | {_f(r.get('elapsed_s'), 1)} | {_f(r.get('jobs_per_s'))} | "
                f"{_f(r.get('startup_s'), 2)} | {_f(r.get('jobs_per_s_after_first'))} |"
            )
        lines += _missing(res, 6)
        jc = _jobcore(dr)
        lines += [
            f"| **jobcore ÷ best peer** | | | {_ratio(jc, best, 'jobs_per_s')} | "
            f"| {_ratio(jc, best_after, 'jobs_per_s_after_first')} |",
            "",
        ]
    lat = w.get("latency")
    if lat:
        n = next(iter(lat.values())).get("n", 0)
        lines += [
            f"## 3. Enqueue → start latency, idle worker ({n} jobs, 5 ms apart)",
            "",
            "| worker | p50 ms | p90 ms | p99 ms | max ms |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for label, r in lat.items():
            if "error" in r:
                lines.append(f"| {label} | error: {r['error'][:80]} | | | |")
                continue
            lines.append(
                f"| {label} | {_f(r['p50_ms'], 2)} | {_f(r['p90_ms'], 2)} | {_f(r['p99_ms'], 2)} "
                f"| {_f(r['max_ms'], 1)} |"
            )
        lines += _missing(res, 5)
        jc = _jobcore(lat)
        lines += [
            f"| **jobcore ÷ best peer** (lower is better) | {_ratio(jc, _best(lat, 'p50_ms', True), 'p50_ms')} | | "
            f"{_ratio(jc, _best(lat, 'p99_ms', True), 'p99_ms')} | |",
            "",
        ]
    mem = w.get("memory")
    if mem:
        n = next(iter(mem.values()))["n"]
        lines += [
            f"## 4. Redis memory per pending job ({n:,} jobs)",
            "",
            "INFO memory before and after enqueuing, divided by the job count; client "
            "connection buffers (mem_clients_normal) are left out, raw used_memory shown too.",
            "",
            "| library | bytes per job | raw used_memory per job |",
            "| --- | ---: | ---: |",
        ]
        for label, r in mem.items():
            lines.append(f"| {label} | {_f(r['bytes_per_job'])} | {_f(r['used_memory_bytes_per_job'])} |")
        lines += _missing(res, 3)
        jc = _jobcore(mem)
        lines += [
            f"| **jobcore ÷ best peer** (lower is better) "
            f"| {_ratio(jc, _best(mem, 'bytes_per_job', True), 'bytes_per_job')} | |",
            "",
        ]
    st = w.get("stats")
    if st:
        rows = st["by_pending"]
        first = rows[min(rows, key=int)]
        lines += [
            f"## 5. Console refresh cost (jobcore): {st['types']} types, {st['in_flight']:,} in flight",
            "",
            "One refresh = `stats()` + `in_flight(1000)` on a long-lived client in a fresh process "
            "(`bench/stats_probe.py`); the sizes sit in one Redis under their own namespaces and are "
            "probed in alternating turns; median of the refreshes.",
            "",
            "| pending jobs | stats() ms | in_flight() ms | refresh ms | refresh p90 ms | vs smallest |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for _size, r in sorted(rows.items(), key=lambda kv: int(kv[0])):
            lines.append(
                f"| {r['pending']:,} | {r['stats_ms']:.2f} | {r['in_flight_ms']:.2f} | {r['refresh_ms']:.2f} | "
                f"{r['refresh_p90_ms']:.2f} | {r['refresh_ms'] / first['refresh_ms']:.2f}x |"
            )
        lines.append("")
    sc = w.get("scale")
    if sc:
        one = sc.get("1")
        lines += [
            "## 6. jobcore drain by worker processes",
            "",
            "| processes | done | seconds | jobs/s | jobs/s after first | vs 1 process |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for k, r in sorted(sc.items(), key=lambda kv: int(kv[0])):
            vs = f"{r['jobs_per_s'] / one['jobs_per_s']:.2f}x" if one and one.get("jobs_per_s") else "-"
            lines.append(
                f"| {k} | {r['done']:,} | {_f(r['elapsed_s'], 2)} | {_f(r['jobs_per_s'])} | "
                f"{_f(r.get('jobs_per_s_after_first'))} | {vs} |"
            )
        lines += ["", f"(the machine has {m['nproc']} cores, shared by redis-server, the workers and the harness)", ""]
    cc = w.get("concurrent")
    if cc:
        lines += _concurrent(res, cc)
    cpu = w.get("cpu")
    if cpu:
        lines += _cpu(res, cpu)
    tg = res.get("targets") or []
    if tg:
        lines += ["## Targets (jobcore's default settings)", "", "| target | this run | met? |", "| --- | --- | --- |"]
        for t in tg:
            met = "—" if t["met"] is None else ("**met**" if t["met"] else "**not met**")
            lines.append(f"| {t['target']} | {t['figure']} | {met} |")
        lines.append("")
    notes = res.get("notes") or []
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


def _concurrent(res: dict[str, Any], cc: dict[str, Row]) -> list[str]:
    first = next(iter(cc.values()))
    p = res["params"]
    per_co = p["concurrent_n"] // p["concurrent_coroutines"]
    per_th = p["concurrent_n"] // p["concurrent_threads"]
    single = res["workloads"].get("enqueue", {})
    lines = [
        f"## 7. Concurrent enqueue ({first['n']:,} small jobs, one awaited call per job)",
        "",
        f"asyncio libraries: {p['concurrent_coroutines']} coroutines x {per_co:,} enqueue calls each, "
        f"awaited one after the other; blocking libraries: {p['concurrent_threads']} threads x {per_th:,} calls "
        "each, one client shared as the library allows. Timed from the start until every call has returned"
        + (
            f"; median of {first['rounds']} rounds, every library once per round, the order rotating."
            if first.get("rounds", 1) > 1
            else "."
        ),
        "",
        "| library | how | jobs/s | vs its one-call-per-job figure (workload 1) |",
        "| --- | --- | ---: | ---: |",
    ]
    for label, r in cc.items():
        how = f"{r['workers']} {r['mode']}"
        base = single.get(label, {}).get("single_jobs_per_s")
        vs = f"{r['jobs_per_s'] / base:.1f}x" if base else "-"
        lines.append(f"| {label} | {how} | {_f(r['jobs_per_s'])} | {vs} |")
    lines += _missing(res, 4)
    jc = _jobcore(cc)
    lines += [f"| **jobcore ÷ best peer** | | {_ratio(jc, _best(cc, 'jobs_per_s'), 'jobs_per_s')} | |", ""]
    return lines


def _cpu(res: dict[str, Any], cpu: dict[str, Row]) -> list[str]:
    n = next(iter(cpu.values()))["n"]
    lines = [
        f"## 8. Redis CPU and commands per job, over a job's whole life ({n - 1:,} no-op jobs)",
        "",
        f"Per job = ÷ {n:,}: the enqueue makes one warm-up job first, which goes through its life too. "
        "INFO cpu (used_cpu_sys + used_cpu_user) and INFO commandstats read before the jobs are enqueued "
        "(one call per job, or the batch API where the library has one) and after the library's worker "
        "(started after the enqueue) has done them all and has been stopped; Redis flushed between "
        "libraries. The harness's own INFO calls and its done-yet polls are taken out (the polls' CPU as "
        "measured by polling alone). Commands that Lua scripts call are counted by commandstats as well "
        "as the EVALSHA. 'One Redis core' = 10⁶ ÷ µs per job: the jobs/s a single Redis node's core could "
        "carry at 100 % for this library, enqueue and work included.",
        "",
        "| worker | enqueue | Redis µs/job: enqueue | worker | total | one Redis core, jobs/s "
        "| commands/job | main commands per job |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for label, r in cpu.items():
        how = "batch API" if r["enqueue"] == "batch" else "one call per job"
        if "cpu_us_per_job" not in r:
            why = r.get("error") or f"partial: {r['done']:,} of {r['n']:,} done in {r['drain_s']:.0f} s"
            lines.append(f"| {label} | {how} | {why[:100]} | | | | | |")
            continue
        lines.append(
            f"| {label} | {how} | {_f(r['cpu_enqueue_us_per_job'], 1)} | {_f(r['cpu_worker_us_per_job'], 1)} "
            f"| {_f(r['cpu_us_per_job'], 1)} | {_f(1e6 / r['cpu_us_per_job'])} | {_f(r['commands_per_job'], 2)} "
            f"| {_top(r.get('top_commands_per_job', {}))} |"
        )
    lines += _missing(res, 8)
    single = {k: r for k, r in cpu.items() if r["enqueue"] == "single"}
    jc_single = _jobcore(single)
    jc_any = min(
        (r for r in cpu.values() if r.get("lib") == "jobcore" and "cpu_us_per_job" in r),
        key=lambda r: r["cpu_us_per_job"],
        default=None,
    )
    lines += [
        "| **jobcore ÷ best peer** (lower is better), one call per job | | | | "
        f"{_ratio(jc_single, _best(single, 'cpu_us_per_job', True), 'cpu_us_per_job')} | | "
        f"{_ratio(jc_single, _best(single, 'commands_per_job', True), 'commands_per_job')} | |",
    ]
    if jc_any is not None and jc_any is not jc_single:
        lines.append(
            "| **jobcore batch ÷ best peer, either way** (lower is better) | | | | "
            f"{_ratio(jc_any, _best(cpu, 'cpu_us_per_job', True), 'cpu_us_per_job')} | | "
            f"{_ratio(jc_any, _best(cpu, 'commands_per_job', True), 'commands_per_job')} | |"
        )
    notes = sorted({f"{r['worker']}: {r['note']}" for r in cpu.values() if r.get("note")})
    lines += [""] + ([f"Workers: {'; '.join(notes)}.", ""] if notes else [])
    return lines
