"""Shared core of minewatch: settings, the domain's code tables, the database schema and the CLI.

Kept deliberately small; the real work lives in ``ingest``, ``alarms``, ``api`` and
``simulators``.
"""

__version__ = "0.1.0"
