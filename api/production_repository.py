"""SQL of the production API (产量): output totals from cumulative counters (type 3001, LJ).

The counter rule (docs/feeds.md, Output): per output point, ordered by time, the increment of
reading i is ``value[i] - value[i-1]``. A decrease means the counter restarted: when the point
declares its rollover value (``range_high``) and the previous value was at least
``wrap_fraction`` of it, the counter wrapped and the increment is
``range_high - value[i-1] + value[i]``; otherwise it was reset to zero and the increment is
``value[i]``. The first reading of a point only sets the baseline (the reading before the
requested range is used when there is one). An increment belongs to the period (day, month,
year in the mine's local time) of reading i. Totals are rounded to 0.001 t.
"""

from __future__ import annotations

import datetime as dt

from psycopg import AsyncConnection
from psycopg.rows import dict_row

OUTPUT_SENSOR_TYPE = "3001"

_TOTALS = """
WITH pts AS (
    SELECT id, range_high FROM points
    WHERE mine_code = %(mine)s AND sensor_type = %(sensor_type)s
), r AS (
    SELECT r.point_id, r.time, r.value FROM readings r JOIN pts ON pts.id = r.point_id
    WHERE r.time >= %(start)s AND r.time < %(end)s
    UNION ALL
    SELECT before.point_id, before.time, before.value FROM pts CROSS JOIN LATERAL (
        SELECT point_id, time, value FROM readings
        WHERE point_id = pts.id AND time < %(start)s ORDER BY time DESC LIMIT 1
    ) AS before
), d AS (
    SELECT r.time, r.value, pts.range_high,
           lag(r.value) OVER (PARTITION BY r.point_id ORDER BY r.time) AS prev
    FROM r JOIN pts ON pts.id = r.point_id
), inc AS (
    SELECT time, CASE
        WHEN prev IS NULL THEN 0
        WHEN value >= prev THEN value - prev
        WHEN range_high IS NOT NULL AND prev >= %(wrap_fraction)s * range_high
            THEN range_high - prev + value
        ELSE value
    END AS increment, (prev IS NOT NULL AND value < prev) AS restarted
    FROM d WHERE time >= %(start)s
)
SELECT date_trunc(%(period)s, time, %(tz)s) AS period_start,
       round(sum(increment)::numeric, 3)::float8 AS output_t,
       count(*)::int AS readings, count(*) FILTER (WHERE restarted)::int AS restarts
FROM inc GROUP BY 1 ORDER BY 1
"""


async def output_totals(
    conn: AsyncConnection, mine: str, period: str, start: dt.datetime, end: dt.datetime,
    tz: str, wrap_fraction: float,
) -> list[dict[str, object]]:  # fmt: skip
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        _TOTALS,
        {
            "mine": mine, "sensor_type": OUTPUT_SENSOR_TYPE, "start": start, "end": end,
            "period": period, "tz": tz, "wrap_fraction": wrap_fraction,
        },
    )  # fmt: skip
    return await cur.fetchall()


async def approved_capacity(conn: AsyncConnection, mine: str) -> tuple[bool, float | None]:
    """(mine known, approved annual capacity in t)."""
    cur = await conn.execute(
        "SELECT approved_capacity_t FROM mines WHERE code = %(mine)s", {"mine": mine}
    )
    row = await cur.fetchone()
    return (False, None) if row is None else (True, row[0])
