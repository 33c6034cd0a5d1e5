"""Which database errors are worth retrying, for every writer of the pipeline.

Transient: connection loss (class 08), deadlock/serialisation (40), insufficient resources
(53), object in use / lock not available (55), operator intervention such as a shutdown (57),
system errors (58). Anything else is permanent: retrying it would starve good data, so the
writer sets the batch aside in quarantine instead (Telegraf's postgresql output does the same).
"""

from __future__ import annotations

import psycopg

_TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "55", "57", "58")


def is_transient(error: BaseException) -> bool:
    """Whether retrying the same write can succeed."""
    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError | OSError):
        return True
    sqlstate = getattr(error, "sqlstate", None) or ""
    return sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES
