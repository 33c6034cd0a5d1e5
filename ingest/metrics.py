"""Prometheus metrics of one gateway, in its own registry (no process-wide globals)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

#: Bounds (s) of the latency histograms: a quiet gateway commits within 0.1-0.3 s of receipt,
#: a loaded one in seconds, one that fell behind in minutes (docs/benchmarks.md, issue 14).
LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "minewatch_messages_total", "Messages received", ["kind"], registry=r
        )
        self.readings_in = Counter(
            "minewatch_readings_in_total", "Readings received", ["mine"], registry=r
        )
        self.readings_stored = Counter(
            "minewatch_readings_stored_total", "Readings committed to the database", registry=r
        )
        self.quarantined = Counter(
            "minewatch_quarantined_total",
            "Messages or readings quarantined",
            ["reason"],
            registry=r,
        )
        self.duplicates = Counter(
            "minewatch_duplicate_messages_total",
            "Redelivered messages not stored again",
            registry=r,
        )
        self.sequence_gaps = Counter(
            "minewatch_sequence_gaps_total", "Messages missing in a source's sequence", registry=r
        )
        self.flushes = Histogram(
            "minewatch_flush_seconds", "Duration of one database write transaction", registry=r
        )
        self.write_retries = Counter(
            "minewatch_write_retries_total", "Database writes retried", registry=r
        )
        self.pending = Gauge(
            "minewatch_pending_messages",
            "Messages received and not yet durable (queued or in the write batch)",
            registry=r,
        )
        self.lag = Gauge(
            "minewatch_lag_seconds", "Receive-to-commit delay of the last write", registry=r
        )
        self.data_age = Gauge(
            "minewatch_data_age_seconds",
            "Age of the newest reading the last write committed: the commit's wall-clock time "
            "minus that reading's own time (the mine's clock); it grows with a backlog before "
            "the gateway (the broker's queue, the socket, the mine's link), which the "
            "receive-to-commit figures do not see",
            registry=r,
        )
        self.receive_to_commit = Histogram(
            "minewatch_receive_to_commit_seconds",
            "Per safety message stored: from its receipt by the gateway to the commit of its "
            "readings",
            buckets=LATENCY_BUCKETS_S, registry=r,
        )  # fmt: skip
        self.commit_to_notify = Histogram(
            "minewatch_commit_to_notify_seconds",
            "Per alarm change published on minewatch/v1/<mine>/alarms: from its commit (the "
            "change's time in alarm_changes) to the broker's acknowledgement of its publication",
            buckets=LATENCY_BUCKETS_S, registry=r,
        )  # fmt: skip
        self.source_messages = Counter(
            "minewatch_source_messages_total", "Messages received per source", ["source"],
            registry=r,
        )  # fmt: skip
        self.source_readings = Counter(
            "minewatch_source_readings_total", "Readings received per source", ["source"],
            registry=r,
        )  # fmt: skip
        self.sparkplug_refusals = Counter(
            "minewatch_sparkplug_refusals_total",
            "Sparkplug births (and deaths) refused: the node is left as it was",
            ["source", "kind"], registry=r,
        )  # fmt: skip
        self.registry_reloads = Counter(
            "minewatch_registry_reloads_total",
            "Point registry reloads (after mine definitions, and every registry_refresh_s)",
            registry=r,
        )
        self.spool_depth = Gauge(
            "minewatch_spool_records", "Records in a source's durable spool not yet stored",
            ["source"], registry=r,
        )  # fmt: skip


@contextlib.contextmanager
def metrics_endpoint(registry: CollectorRegistry, host: str, port: int | None) -> Iterator[None]:
    """Serve ``registry`` on http://host:port/metrics for the block (nothing when port is None)."""
    if port is None:
        yield
        return
    server, thread = start_http_server(port, host, registry)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
