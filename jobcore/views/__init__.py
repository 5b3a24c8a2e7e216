"""The queue seen from outside a terminal: a Prometheus exporter, SLO checks for
cron and probes, and OpenTelemetry traces from enqueue to run."""
