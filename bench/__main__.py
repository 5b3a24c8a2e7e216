"""``python -m bench [--quick] [--only WORKLOADS] [--libs LIBS] [--out DIR]``.

Starts a private redis-server, runs the workloads for jobcore and its peers
(rq, arq, dramatiq, saq, streaq, taskiq, celery: from the ``bench`` extra, never
installed here; a peer that is missing is reported as not installed), and writes
``results.json`` and ``RESULTS.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.support.servers import RedisServer

from . import report, workloads
from .adapters import LIBS, load
from .common import REPO, Adapter

WORKLOADS = ("enqueue", "drain", "latency", "memory", "stats", "scale", "concurrent", "cpu")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _csv(allowed: Sequence[str]) -> Any:
    def parse(text: str) -> list[str]:
        items = [x.strip() for x in text.split(",") if x.strip()]
        bad = [x for x in items if x not in allowed]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown: {', '.join(bad)} (choose from {', '.join(allowed)})")
        return items

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="a smoke run: small sizes, default workers only (~1 min)")
    p.add_argument("--only", type=_csv(WORKLOADS), default=list(WORKLOADS), help=f"comma list of {','.join(WORKLOADS)}")
    p.add_argument("--libs", type=_csv(LIBS), default=list(LIBS), help=f"comma list of {','.join(LIBS)}")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="results directory")
    return p


def machine(server: RedisServer) -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "jobcore_source": jobcore_source(),
        "load_average_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "redis_version": server.version(),
    }


def jobcore_source() -> str:
    """The jobcore measured: its git commit (``-dirty`` with local changes), or a
    hash of its sources when there is no git checkout (e.g. a ``git archive``)."""
    import jobcore

    pkg = Path(jobcore.__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "-C", str(pkg), "describe", "--always", "--dirty", "--abbrev=10"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if rev.returncode == 0 and rev.stdout.strip():
            return f"git {rev.stdout.strip()}"
    except (OSError, subprocess.TimeoutExpired):
        pass
    digest = hashlib.sha1()
    for f in sorted([*pkg.glob("*.py"), *pkg.glob("lua/*.lua")]):
        digest.update(f.name.encode() + f.read_bytes())
    return f"sources sha1 {digest.hexdigest()[:12]} ({pkg})"


def run(args: argparse.Namespace) -> dict[str, Any]:
    params = workloads.Params.quick() if args.quick else workloads.Params()
    log_dir: Path = args.out / "tmp"
    started = time.monotonic()
    res: dict[str, Any] = {
        "command": "python -m bench " + shlex.join(sys.argv[1:]),
        "date": datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "params": {k: getattr(params, k) for k in params.__dataclass_fields__},
        "versions": {},
        "not_installed": {},
        "workloads": {},
        "notes": [],
    }
    with RedisServer() as server:
        r = server.client()
        res["machine"] = machine(server)
        _log(f"private redis-server {res['machine']['redis_version']} at {server.url}")
        adapters: dict[str, Adapter] = {}
        for lib in args.libs:
            try:
                adapters[lib] = load(lib, server.url)
            except ImportError as exc:
                note = f"{lib} skipped: not installed ({exc}); install the bench extra: pip install -e '.[bench]'"
                _log(note)
                res["notes"].append(note)
                res["not_installed"][lib] = str(exc)
                continue
            res["versions"][lib] = adapters[lib].version
        w: dict[str, Any] = res["workloads"]
        try:
            if "enqueue" in args.only:
                _log("== 1. enqueue")
                w["enqueue"] = {}
                res["enqueue_floor"] = enqueue_rounds(adapters, r, params, server.port, w["enqueue"])
            if "drain" in args.only:
                _log("== 2. drain")
                w["drain"] = {}
                for lib, a in adapters.items():
                    variants = a.variants() if params.all_variants else a.variants()[:1]
                    for v in variants:
                        row = workloads.drain(
                            a, r, [v.argv], params.drain_n, params.drain_cap_s, log_dir, f"drain-{lib}"
                        )
                        w["drain"][v.label] = {"lib": lib, "argv": shlex.join(v.argv), "note": v.note, **row}
                        _log(
                            f"  {v.label}: {row['done']:,}/{row['n']:,} in {row['elapsed_s']:.1f}s = "
                            f"{row['jobs_per_s']:,.0f}/s (after first: {row.get('jobs_per_s_after_first', 0):,.0f}/s)"
                            + (f" ERROR {row['error']}" if row["error"] else "")
                        )
            if "latency" in args.only:
                _log("== 3. latency")
                w["latency"] = {}
                for lib, a in adapters.items():
                    variants = a.variants() if params.all_variants else a.variants()[:1]
                    for v in variants:
                        row = workloads.latency(a, r, v.argv, params, log_dir, f"latency-{lib}")
                        w["latency"][v.label] = {"lib": lib, **row}
                        if "error" in row:
                            _log(f"  {v.label}: ERROR {row['error']}")
                        else:
                            _log(f"  {v.label}: p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms")
            if "memory" in args.only:
                _log("== 4. memory")
                w["memory"] = {}
                for lib, a in adapters.items():
                    row = workloads.memory(a, r, params)
                    w["memory"][lib] = {"lib": lib, **row}
                    _log(f"  {lib}: {row['bytes_per_job']:,.0f} B/job")
            if "stats" in args.only and "jobcore" in adapters:
                _log("== 5. console/stats cost (jobcore)")
                w["stats"] = workloads.stats_cost(server.url, r, params, _log)
            if "scale" in args.only and "jobcore" in adapters:
                _log("== 6. jobcore drain by worker processes")
                a = adapters["jobcore"]
                w["scale"] = {}
                for n_proc in params.scale_procs:
                    argvs = a.scale_argv(n_proc) or []
                    row = workloads.drain(a, r, argvs, params.drain_n, params.drain_cap_s, log_dir, f"scale-{n_proc}")
                    w["scale"][str(n_proc)] = row
                    _log(f"  {n_proc} process(es): {row['jobs_per_s']:,.0f}/s")
            if "concurrent" in args.only:
                _log("== 7. concurrent enqueue")
                w["concurrent"] = concurrent_rounds(adapters, r, params)
            if "cpu" in args.only:
                _log("== 8. Redis CPU and commands per job")
                w["cpu"] = {}
                for lib, a in adapters.items():
                    v = a.cpu_variant()
                    has_batch = type(a).enqueue_batch is not Adapter.enqueue_batch
                    modes = ["single", "batch"] if has_batch else ["single"]
                    for mode in modes:
                        row = workloads.redis_cpu(
                            a, r, params, v.argv, log_dir, f"cpu-{lib}-{mode}", batch=mode == "batch"
                        )
                        key = v.label if mode == "single" else f"{v.label}, batch enqueue"
                        w["cpu"][key] = {
                            "lib": lib,
                            "worker": v.label,
                            "argv": shlex.join(v.argv),
                            "note": v.note,
                            **row,
                        }
                        if "cpu_us_per_job" in row:
                            _log(
                                f"  {key}: {row['cpu_us_per_job']:.1f} µs/job "
                                f"(enqueue {row['cpu_enqueue_us_per_job']:.1f}, "
                                f"worker {row['cpu_worker_us_per_job']:.1f}),"
                                f" {row['commands_per_job']:.2f} commands/job, drained in {row['drain_s']:.1f}s"
                            )
                        else:
                            _log(f"  {key}: {row['done']:,}/{row['n']:,} done in {row['drain_s']:.1f}s {row['error']}")
        finally:
            for a in adapters.values():
                a.close()
    res["machine"]["load_average_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    res["duration_s"] = time.monotonic() - started
    res["targets"] = report.targets(res)
    return res


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def enqueue_rounds(
    adapters: dict[str, Any], r: Any, params: workloads.Params, port: int, out: dict[str, Any]
) -> dict[str, Any]:
    """Each library once per round, the order rotating from round to round, and
    the round-trip floor before each round: the machine's speed drifts over
    minutes, and a library always measured first or last would carry that drift.
    Each library's figures are the median of its rounds."""
    libs = list(adapters)
    rows: dict[str, list[dict[str, Any]]] = {lib: [] for lib in libs}
    floors: list[float] = []
    for i in range(params.enqueue_rounds):
        floors.append(workloads.round_trip_floor("127.0.0.1", port, params.enqueue_n))
        order = libs[i % len(libs) :] + libs[: i % len(libs)]
        for lib in order:
            row = workloads.enqueue(adapters[lib], r, params)
            rows[lib].append(row)
            batch = f", batch {row['batch_jobs_per_s']:,.0f}/s" if "batch_jobs_per_s" in row else ""
            _log(f"  round {i + 1}: {lib}: single {row['single_jobs_per_s']:,.0f}/s{batch}")
    floors.append(workloads.round_trip_floor("127.0.0.1", port, params.enqueue_n))
    _log(f"  round-trip floor: {', '.join(f'{f:,.0f}/s' for f in floors)}")
    for lib, runs in rows.items():
        row = {"lib": lib, "n": runs[0]["n"], "rounds": len(runs)}
        row["single_jobs_per_s"] = statistics.median(x["single_jobs_per_s"] for x in runs)
        row["single_rounds"] = [x["single_jobs_per_s"] for x in runs]
        if "batch_jobs_per_s" in runs[0]:
            row["batch_jobs_per_s"] = statistics.median(x["batch_jobs_per_s"] for x in runs)
            row["batch_rounds"] = [x["batch_jobs_per_s"] for x in runs]
        out[lib] = row
    return {"min_jobs_per_s": min(floors), "max_jobs_per_s": max(floors), "each": floors}


def concurrent_rounds(adapters: dict[str, Adapter], r: Any, params: workloads.Params) -> dict[str, Any]:
    """As for the enqueue workload: every library once per round, the order
    rotating; each library's figure is the median of its rounds."""
    libs = list(adapters)
    rows: dict[str, list[dict[str, Any]]] = {lib: [] for lib in libs}
    for i in range(params.concurrent_rounds):
        order = libs[i % len(libs) :] + libs[: i % len(libs)]
        for lib in order:
            row = workloads.concurrent_enqueue(adapters[lib], r, params)
            rows[lib].append(row)
            _log(f"  round {i + 1}: {lib}: {row['workers']} {row['mode']}: {row['jobs_per_s']:,.0f}/s")
    out: dict[str, Any] = {}
    for lib, runs in rows.items():
        out[lib] = {
            "lib": lib,
            "n": runs[0]["n"],
            "mode": runs[0]["mode"],
            "workers": runs[0]["workers"],
            "rounds": len(runs),
            "jobs_per_s": statistics.median(x["jobs_per_s"] for x in runs),
            "each": [x["jobs_per_s"] for x in runs],
        }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Stop cleanly on SIGTERM too (and on SIGINT even when started in the
    # background, where SIGINT starts out ignored): workers and redis-server go.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    res = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(res, indent=2, default=str) + "\n")
    md = report.markdown(res)
    (args.out / "RESULTS.md").write_text(md)
    print(md)
    _log(f"wrote {args.out / 'results.json'} and {args.out / 'RESULTS.md'} in {res['duration_s']:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
