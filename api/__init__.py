"""HTTP API: one router per user group (dispatchers, regulators) plus the shared catalogue."""

from minewatch.api.app import create_app

__all__ = ["create_app"]
