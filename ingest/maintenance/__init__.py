"""Keeping the database as the rules require: retention (drop_chunks, per table, as data in
``retention_policies``) and the 1- and 5-minute statistics per point (rollups)."""

from minewatch.ingest.maintenance.retention import Policy, policies
from minewatch.ingest.maintenance.rollups import recompute
from minewatch.ingest.maintenance.task import Maintenance, MaintenanceMetrics

__all__ = ["Maintenance", "MaintenanceMetrics", "Policy", "policies", "recompute"]
