"""The Grafana dashboard in deploy/ asks only for metrics that the gateway exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from minewatch.ingest.maintenance import MaintenanceMetrics
from minewatch.ingest.metrics import GatewayMetrics

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "minewatch-gateway.json"
SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}


def _exposed() -> set[str]:
    registry = CollectorRegistry()
    GatewayMetrics(registry)
    MaintenanceMetrics(registry)
    return {family.name + suffix for family in registry.collect()
            for suffix in SUFFIXES.get(family.type, [""])}  # fmt: skip


def _expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return exprs


def test_every_metric_on_the_dashboard_is_one_the_gateway_exposes() -> None:
    asked = {name for expr in _expressions() for name in re.findall(r"minewatch_[a-z_]+", expr)}
    assert asked, "the dashboard asks for no metric"
    assert asked <= _exposed(), asked - _exposed()


def test_the_dashboard_shows_rates_lag_quarantine_spool_retries_and_retention() -> None:
    text = " ".join(_expressions())
    for metric in ("readings_stored_total", "lag_seconds", "quarantined_total", "spool_records",
                   "write_retries_total", "maintenance_last_round_timestamp_seconds"):  # fmt: skip
        assert f"minewatch_{metric}" in text
