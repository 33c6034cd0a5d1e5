"""SQL of the production API (产量): output totals from cumulative counters (type 3001, LJ).

The counter rule and its SQL live in alarms/output_store.py, shared with the output alarms
(超能力), so that an alarm and the API's ``exceeds_limit`` always agree.
"""

from __future__ import annotations

from psycopg import AsyncConnection

from minewatch.alarms.output_store import OUTPUT_SENSOR_TYPE, output_totals

__all__ = ["OUTPUT_SENSOR_TYPE", "approved_capacity", "output_totals"]


async def approved_capacity(conn: AsyncConnection, mine: str) -> tuple[bool, float | None]:
    """(mine known, approved annual capacity in t)."""
    cur = await conn.execute(
        "SELECT approved_capacity_t FROM mines WHERE code = %(mine)s", {"mine": mine}
    )
    row = await cur.fetchone()
    return (False, None) if row is None else (True, row[0])
