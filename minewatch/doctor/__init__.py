"""``minewatch doctor``: checks of a deployment (database, broker, its configuration, disk),
each a :class:`Finding` in plain words."""

from minewatch.doctor.findings import Finding, Level

__all__ = ["Finding", "Level"]
