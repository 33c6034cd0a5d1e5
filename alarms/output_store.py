"""Output (产量) from the cumulative counters (type 3001, LJ): the one SQL definition of the
counter rule, used by the production API (api/production_repository.py) and by the output
alarms (alarms/rules/output.py), so both always agree.

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
from dataclasses import dataclass

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from minewatch.alarms.rules.output import PeriodOutput
from minewatch.timeutil import datetime_to_us

OUTPUT_SENSOR_TYPE = "3001"
#: The production API's default: a decrease from at least 90% of range_high is a wrap.
DEFAULT_WRAP_FRACTION = 0.9

# Increments of every output point of a mine in [start, end), one row per reading.
_INCREMENTS = """
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
    SELECT r.point_id, r.time, r.value, pts.range_high,
           lag(r.value) OVER (PARTITION BY r.point_id ORDER BY r.time) AS prev
    FROM r JOIN pts ON pts.id = r.point_id
), inc AS (
    SELECT point_id, time, CASE
        WHEN prev IS NULL THEN 0
        WHEN value >= prev THEN value - prev
        WHEN range_high IS NOT NULL AND prev >= %(wrap_fraction)s * range_high
            THEN range_high - prev + value
        ELSE value
    END AS increment, (prev IS NOT NULL AND value < prev) AS restarted
    FROM d WHERE time >= %(start)s
)
"""

_TOTALS = (
    _INCREMENTS
    + """
SELECT date_trunc(%(period)s, time, %(tz)s) AS period_start,
       round(sum(increment)::numeric, 3)::float8 AS output_t,
       count(*)::int AS readings, count(*) FILTER (WHERE restarted)::int AS restarts
FROM inc GROUP BY 1 ORDER BY 1
"""
)

# Per period: the total, and the first reading at which the running total (rounded like the
# totals) went strictly over the limit.
_CROSSINGS = (
    _INCREMENTS
    + """
, run AS (
    SELECT time, date_trunc(%(period)s, time, %(tz)s) AS period_start,
           round(sum(increment) OVER (PARTITION BY date_trunc(%(period)s, time, %(tz)s)
                 ORDER BY time, point_id ROWS UNBOUNDED PRECEDING)::numeric, 3) AS running
    FROM inc
)
SELECT period_start, max(running)::float8 AS output_t,
       min(time) FILTER (WHERE running > %(limit)s::numeric) AS crossed_at
FROM run GROUP BY 1 ORDER BY 1
"""
)


def _params(mine: str, start: dt.datetime, end: dt.datetime, period: str, tz: str,
            wrap_fraction: float) -> dict[str, object]:  # fmt: skip
    return {
        "mine": mine, "sensor_type": OUTPUT_SENSOR_TYPE, "start": start, "end": end,
        "period": period, "tz": tz, "wrap_fraction": wrap_fraction,
    }  # fmt: skip


async def output_totals(
    conn: AsyncConnection, mine: str, period: str, start: dt.datetime, end: dt.datetime,
    tz: str, wrap_fraction: float,
) -> list[dict[str, object]]:  # fmt: skip
    """Output per period (day, month, year) starting in [start, end), mine local time."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_TOTALS, _params(mine, start, end, period, tz, wrap_fraction))
    return await cur.fetchall()


async def output_crossings(
    conn: AsyncConnection, mine: str, period: str, start: dt.datetime, end: dt.datetime,
    tz: str, limit_t: float, wrap_fraction: float = DEFAULT_WRAP_FRACTION,
) -> list[PeriodOutput]:  # fmt: skip
    """Per period from ``start`` (a period start) to ``end``: total and limit crossing."""
    params = _params(mine, start, end, period, tz, wrap_fraction) | {"limit": limit_t}
    cur = await conn.execute(_CROSSINGS, params)
    return [
        PeriodOutput(datetime_to_us(s), float(total), None if at is None else datetime_to_us(at))
        for s, total, at in await cur.fetchall()
    ]


@dataclass(frozen=True, slots=True)
class OutputMine:
    """A mine with output points: its capacity, shares, time zone and latest output reading."""

    mine: str
    capacity_t: float | None
    month_share: float
    year_share: float
    timezone: str
    latest: dt.datetime | None


async def output_mines(conn: AsyncConnection) -> list[OutputMine]:
    cur = await conn.execute(
        "SELECT m.code, m.approved_capacity_t, m.output_month_share, m.output_year_share, "
        "m.timezone, (SELECT max(last.time) FROM points p CROSS JOIN LATERAL ("
        "  SELECT time FROM readings r WHERE r.point_id = p.id ORDER BY time DESC LIMIT 1"
        ") last WHERE p.mine_code = m.code AND p.sensor_type = %(sensor_type)s) "
        "FROM mines m WHERE EXISTS (SELECT 1 FROM points p WHERE p.mine_code = m.code "
        "AND p.sensor_type = %(sensor_type)s) ORDER BY m.code",
        {"sensor_type": OUTPUT_SENSOR_TYPE},
    )
    return [
        OutputMine(str(code), None if cap is None else float(cap), float(ms), float(ys), str(tz),
                   latest)
        for code, cap, ms, ys, tz, latest in await cur.fetchall()
    ]  # fmt: skip
