"""Prometheus metrics for ``jobcore worker --metrics-port`` (needs the metrics extra).

The server binds 127.0.0.1 unless told otherwise (``--metrics-host``): queue
names and counts are nobody else's business by default."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from jobcore.errors import JobcoreError
from jobcore.queue import Queue
from jobcore.worker.runners import JobDone
from jobcore.worker.worker import Worker

log = logging.getLogger("jobcore.metrics")


def metrics_url(host: str, port: int) -> str:
    """Where the metrics are served, as a person would type it."""
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/metrics"


class WorkerMetrics:
    def __init__(self, worker: Worker, queue: Queue, port: int, addr: str = "127.0.0.1") -> None:
        try:
            import prometheus_client as prom
        except ImportError:
            raise RuntimeError("--metrics-port needs prometheus-client: pip install 'jobcore[metrics]'") from None
        self._queue = queue
        self.registry = prom.CollectorRegistry()
        r = self.registry
        self.pending = prom.Gauge("jobcore_pending_jobs", "Jobs waiting, per type", ["job_type"], registry=r)
        self.in_flight = prom.Gauge(
            "jobcore_in_flight_jobs", "Jobs being processed now, per type", ["job_type"], registry=r
        )
        self.dead_set = prom.Gauge("jobcore_dead_jobs", "Jobs in the dead set, per type", ["job_type"], registry=r)
        self.done = prom.Counter(
            "jobcore_jobs_total",
            "Jobs finished by this worker, by outcome",
            ["job_type", "outcome"],
            registry=r,
        )
        self.duration = prom.Histogram(
            "jobcore_job_duration_seconds",
            "Time a job took in this worker",
            ["job_type"],
            registry=r,
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800),
        )
        self.busy = prom.Gauge("jobcore_worker_busy", "Jobs running in this worker", registry=r)
        self.busy.set_function(lambda: worker.busy)
        names = {"ack": "processed", "fail": "failed", "dead": "dead", "release": "released"}

        def observe(done: JobDone) -> None:
            self.done.labels(done.job_type, names.get(done.kind, done.kind)).inc()
            if done.kind in ("ack", "fail"):
                self.duration.labels(done.job_type).observe(done.duration)

        worker.observers.append(observe)
        self.server: Any = prom.start_http_server(port, addr=addr, registry=r)

    async def poll(self, interval: float = 5.0) -> None:
        """Refresh the queue gauges from the backend until cancelled."""
        while True:
            try:
                stats = await self._queue.stats()
                for t in stats.types.values():
                    self.pending.labels(t.job_type).set(t.pending)
                    self.in_flight.labels(t.job_type).set(t.in_flight)
                    self.dead_set.labels(t.job_type).set(t.dead)
            except JobcoreError as exc:
                log.warning("metrics: stats read failed: %s", exc)
            await asyncio.sleep(interval)

    def close(self) -> None:
        server = self.server[0] if isinstance(self.server, tuple) else self.server
        if server is not None and hasattr(server, "shutdown"):
            server.shutdown()
