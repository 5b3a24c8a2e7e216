"""``jobcore exporter``: the whole queue as Prometheus metrics, from one
dashboard read per interval (its cost does not grow with the queues' length);
a scrape between reads is served the last read. When Redis does not answer,
``jobcore_up`` is 0 and the last good numbers stay, with their age in
``jobcore_exporter_read_age_seconds``: an alert on a type can tell stale from fresh."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from jobcore.errors import JobcoreError
from jobcore.queue import Queue
from jobcore.records import Dashboard

log = logging.getLogger("jobcore.exporter")
WORKER_STATES = ("alive", "stale", "lost")


def families(dash: Dashboard | None, up: bool, read_age: float | None) -> list[Any]:
    """The metric families for one read (None: no read has worked yet): every
    known type gets every per-type series, zeros included."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    def per_type(name: str, doc: str, counter: bool = False) -> Any:
        kind = CounterMetricFamily if counter else GaugeMetricFamily
        return kind(name, doc, labels=["job_type"])

    out: list[Any] = [GaugeMetricFamily("jobcore_up", "1 when the last read of Redis worked", value=1 if up else 0)]
    if read_age is not None:
        out.append(
            GaugeMetricFamily(
                "jobcore_exporter_read_age_seconds", "Age of the numbers served (the last read that worked)", read_age
            )
        )
    if dash is None:
        return out
    pending = per_type("jobcore_pending_jobs", "Jobs waiting, per type")
    in_flight = per_type("jobcore_in_flight_jobs", "Jobs taken by a worker and not settled, per type")
    oldest = per_type("jobcore_oldest_pending_age_seconds", "Age of the oldest waiting job, per type (0: none waits)")
    processed = per_type("jobcore_processed_jobs", "Jobs processed, per type", counter=True)
    failed = per_type("jobcore_failed_jobs", "Failed runs (the handler raised or timed out), per type", counter=True)
    dead = per_type("jobcore_dead_jobs", "Jobs in the dead set, per type")
    paused = per_type("jobcore_type_paused", "1 while an operator has paused the type")
    served = per_type("jobcore_type_served", "1 when a live worker serves the type")
    serving = per_type("jobcore_type_workers", "Live workers serving the type")
    for t in sorted(dash.stats.types.values(), key=lambda t: t.job_type):
        label = [t.job_type]
        pending.add_metric(label, t.pending)
        in_flight.add_metric(label, t.in_flight)
        oldest.add_metric(label, t.oldest_pending_age or 0.0)
        processed.add_metric(label, t.processed)
        failed.add_metric(label, t.failures)
        dead.add_metric(label, t.dead)
        paused.add_metric(label, 1 if t.paused else 0)
        served.add_metric(label, 1 if t.served_by else 0)
        serving.add_metric(label, t.served_by)
    workers = GaugeMetricFamily("jobcore_workers", "Workers by state", labels=["state"])
    for state in WORKER_STATES:
        workers.add_metric([state], sum(1 for w in dash.workers if w.state == state))
    return [*out, pending, in_flight, oldest, processed, failed, dead, paused, served, serving, workers]


class QueueCollector:
    """A prometheus_client collector serving the last read (a scrape reads no Redis)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # scrapes run on the HTTP server's threads
        self._dash: Dashboard | None = None
        self._up = False
        self._read_at: float | None = None

    def update(self, dash: Dashboard) -> None:
        with self._lock:
            self._dash, self._up, self._read_at = dash, True, time.monotonic()

    def down(self) -> None:
        with self._lock:
            self._up = False

    def collect(self) -> Iterator[Any]:
        with self._lock:
            dash, up, read_at = self._dash, self._up, self._read_at
        age = None if read_at is None else time.monotonic() - read_at
        yield from families(dash, up, age)


def serve(collector: QueueCollector, host: str, port: int) -> Any:
    """Serve ``collector`` over HTTP (Prometheus text, or OpenMetrics when the
    scraper asks for it) on its own threads; returns the server."""
    try:
        import prometheus_client as prom
    except ImportError:
        raise JobcoreError("the exporter needs prometheus-client: pip install 'jobcore[metrics]'") from None
    registry = prom.CollectorRegistry(auto_describe=False)
    registry.register(collector)
    try:
        server = prom.start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise JobcoreError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None
    return server[0] if isinstance(server, tuple) else server


class Reader:
    """Reads the dashboard into a collector; a change between up and down is logged once."""

    def __init__(self, queue: Queue, collector: QueueCollector) -> None:
        self.queue = queue
        self.collector = collector
        self._was_up: bool | None = None

    async def read(self) -> None:
        try:
            dash = await self.queue.dashboard(0)
        except JobcoreError as exc:
            if self._was_up is not False:
                log.warning("Redis does not answer; serving jobcore_up 0 and the last numbers read (%s)", exc)
            self.collector.down()
            self._was_up = False
        else:
            if self._was_up is False:
                log.warning("Redis answers again")
            self.collector.update(dash)
            self._was_up = True

    async def forever(self, interval: float) -> None:
        """A read every ``interval`` seconds, the first at once, until cancelled."""
        while True:
            await self.read()
            await asyncio.sleep(interval)
