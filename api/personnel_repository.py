"""SQL of the personnel positioning API (人员定位), one function per query, named parameters.

Head-counts come from the derived tables the feed writer keeps (personnel_trips for the mine,
personnel_stays for areas): a card counts at instant t in an interval [entered_at, left_at)
that contains t.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection
from psycopg.rows import dict_row

Rows = list[dict[str, object]]

_PERSON_NOW = (
    "LEFT JOIN personnel_people pe ON pe.mine_code = {t}.mine_code "
    "AND pe.card_code = {t}.card_code AND pe.valid_to IS NULL"
)


async def underground_now(conn: AsyncConnection, mine: str, area: str | None) -> Rows:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT pr.card_code, pe.name, pe.job, pe.title, pe.team, "
        "coalesce(pe.is_leader, false) AS is_leader, coalesce(pe.is_special, false) AS is_special, "
        "pr.entered_at, pr.area_code, a.name AS area_name, a.area_type, pr.area_since, "
        "pr.station_code, pr.station_since, pr.distance_m, pr.last_seen_at, "
        "EXTRACT(EPOCH FROM (now() - pr.entered_at))::float8 AS underground_s "
        "FROM personnel_presence pr " + _PERSON_NOW.format(t="pr") + " "
        "LEFT JOIN personnel_areas a ON a.mine_code = pr.mine_code "
        "AND a.area_code = pr.area_code AND a.valid_to IS NULL "
        "WHERE pr.mine_code = %(mine)s AND pr.underground "
        "AND (%(area)s::text IS NULL OR pr.area_code = %(area)s) "
        "ORDER BY pr.area_code, pr.card_code",
        {"mine": mine, "area": area},
    )
    return await cur.fetchall()


async def headcount_now(conn: AsyncConnection, mine: str) -> Rows:
    """Per area (every current area, plus areas with people but no definition)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "WITH counts AS (SELECT area_code, count(*)::int AS n, "
        "  count(*) FILTER (WHERE pe.is_leader)::int AS leaders "
        "  FROM personnel_presence pr " + _PERSON_NOW.format(t="pr") + " "
        "  WHERE pr.mine_code = %(mine)s AND pr.underground GROUP BY area_code), "
        "areas AS (SELECT area_code, name, area_type, approved_count FROM personnel_areas "
        "  WHERE mine_code = %(mine)s AND valid_to IS NULL) "
        "SELECT coalesce(a.area_code, c.area_code) AS area_code, a.name, a.area_type, "
        "a.approved_count, coalesce(c.n, 0) AS count, coalesce(c.leaders, 0) AS leaders "
        "FROM areas a FULL JOIN counts c ON c.area_code = a.area_code ORDER BY 1",
        {"mine": mine},
    )
    return await cur.fetchall()


async def headcount_series(
    conn: AsyncConnection, mine: str, start: dt.datetime, end: dt.datetime, step: dt.timedelta
) -> tuple[Rows, Rows]:
    """(mine totals per instant, area counts per instant) at start, start + step, ... < end."""
    params = {"mine": mine, "start": start, "end": end, "step": step}
    grid = "generate_series(%(start)s::timestamptz, %(end)s::timestamptz, %(step)s::interval)"
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"SELECT g.t AS time, count(t.card_code)::int AS count FROM {grid} AS g(t) "
        "LEFT JOIN personnel_trips t ON t.mine_code = %(mine)s AND t.entered_at <= g.t "
        "AND (t.left_at IS NULL OR t.left_at > g.t) WHERE g.t < %(end)s GROUP BY 1 ORDER BY 1",
        params,
    )
    totals = await cur.fetchall()
    await cur.execute(
        f"SELECT g.t AS time, s.area_code, count(*)::int AS count FROM {grid} AS g(t) "
        "JOIN personnel_stays s ON s.mine_code = %(mine)s AND s.entered_at <= g.t "
        "AND (s.left_at IS NULL OR s.left_at > g.t) WHERE g.t < %(end)s "
        "GROUP BY 1, 2 ORDER BY 1, 2",
        params,
    )
    return totals, await cur.fetchall()


async def trajectory(
    conn: AsyncConnection, mine: str, card: str, start: dt.datetime, end: dt.datetime,
    limit: int,
) -> Rows:  # fmt: skip
    """The stations a card passed (行进轨迹): each arrival at a station, and each 出/入井."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT x.time, x.station_code, st.name AS station_name, x.area_code, "
        "a.name AS area_name, x.distance_m, x.in_mine FROM ("
        "  SELECT time, station_code, area_code, distance_m, in_mine, "
        "  lag(station_code) OVER w AS prev_station, lag(in_mine) OVER w AS prev_in_mine "
        "  FROM personnel_positions WHERE mine_code = %(mine)s AND card_code = %(card)s "
        "  AND time >= %(start)s AND time < %(end)s WINDOW w AS (ORDER BY time)) x "
        "LEFT JOIN personnel_stations st ON st.mine_code = %(mine)s "
        "AND st.station_code = x.station_code AND st.valid_to IS NULL "
        "LEFT JOIN personnel_areas a ON a.mine_code = %(mine)s "
        "AND a.area_code = x.area_code AND a.valid_to IS NULL "
        "WHERE x.prev_station IS DISTINCT FROM x.station_code "
        "OR x.prev_in_mine IS DISTINCT FROM x.in_mine ORDER BY x.time LIMIT %(limit)s",
        {"mine": mine, "card": card, "start": start, "end": end, "limit": limit},
    )
    return await cur.fetchall()


async def time_underground(
    conn: AsyncConnection, mine: str, start: dt.datetime, end: dt.datetime, card: str | None
) -> Rows:
    """Per card: trips and seconds underground within [start, end) (open trips up to now)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT t.card_code, pe.name, coalesce(pe.is_leader, false) AS is_leader, "
        "count(*)::int AS trips, sum(greatest(0, EXTRACT(EPOCH FROM ("
        "  least(coalesce(t.left_at, now()), %(end)s) - greatest(t.entered_at, %(start)s)"
        "))))::float8 AS underground_s, bool_or(t.left_at IS NULL) AS underground_now "
        "FROM personnel_trips t " + _PERSON_NOW.format(t="t") + " "
        "WHERE t.mine_code = %(mine)s AND t.entered_at < %(end)s "
        "AND (t.left_at IS NULL OR t.left_at > %(start)s) "
        "AND (%(card)s::text IS NULL OR t.card_code = %(card)s) "
        "GROUP BY t.card_code, pe.name, pe.is_leader ORDER BY t.card_code",
        {"mine": mine, "start": start, "end": end, "card": card},
    )
    return await cur.fetchall()


def shift_grid(
    start: dt.datetime, shift_hours: int, first_shift_hour: int, tz: str
) -> tuple[dt.datetime, float]:
    """The start of the shift containing ``start`` and the epoch offset (s) of shift starts."""
    offset = ZoneInfo(tz).utcoffset(start.replace(tzinfo=None))
    assert offset is not None
    shift_s = shift_hours * 3600
    origin = (first_shift_hour * 3600 - offset.total_seconds()) % shift_s
    first = origin + (start.timestamp() - origin) // shift_s * shift_s
    return dt.datetime.fromtimestamp(first, dt.UTC), origin


async def leader_coverage(
    conn: AsyncConnection, mine: str, start: dt.datetime, end: dt.datetime, shift_hours: int,
    first_shift_hour: int, tz: str,
) -> Rows:  # fmt: skip
    """Per shift in [start, end): its workers and leaders (带班). A trip belongs to the shift
    whose start is nearest to its entry (crews go down shortly before their shift)."""
    first, origin = shift_grid(start, shift_hours, first_shift_hour, tz)
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "WITH shifts AS ("
        "  SELECT s AS shift_start, s + %(shift)s AS shift_end FROM generate_series("
        "  %(first)s::timestamptz, %(end)s::timestamptz, %(shift)s) AS s WHERE s < %(end)s), "
        "trips AS ("
        "  SELECT t.card_code, t.entered_at, t.left_at, pe.name, "
        "  coalesce(pe.is_leader, false) AS is_leader, to_timestamp(%(origin)s + round("
        "  (EXTRACT(EPOCH FROM t.entered_at) - %(origin)s) / %(shift_s)s) * %(shift_s)s) "
        "  AS shift_start FROM personnel_trips t "
        "  LEFT JOIN personnel_people pe ON pe.mine_code = t.mine_code "
        "  AND pe.card_code = t.card_code AND pe.valid_from <= t.entered_at "
        "  AND (pe.valid_to IS NULL OR pe.valid_to > t.entered_at) "
        "  WHERE t.mine_code = %(mine)s AND t.entered_at >= %(first)s - %(shift)s "
        "  AND t.entered_at < %(end)s + %(shift)s) "
        "SELECT s.shift_start, s.shift_end, "
        "count(t.card_code) FILTER (WHERE NOT t.is_leader)::int AS workers, "
        "coalesce(json_agg(json_build_object('card_code', t.card_code, 'name', t.name, "
        "  'entered_at', t.entered_at, 'left_at', t.left_at) ORDER BY t.entered_at) "
        "  FILTER (WHERE t.is_leader), '[]') AS leaders, "
        "count(*) FILTER (WHERE t.is_leader AND t.left_at IS NULL)::int "
        "  AS leaders_underground_now, "
        "min(t.entered_at) FILTER (WHERE NOT t.is_leader) AS first_worker_entered_at, "
        "CASE WHEN bool_or(t.left_at IS NULL) FILTER (WHERE NOT t.is_leader) THEN NULL "
        "  ELSE max(t.left_at) FILTER (WHERE NOT t.is_leader) END AS last_worker_left_at "
        "FROM shifts s LEFT JOIN trips t ON t.shift_start = s.shift_start "
        "GROUP BY s.shift_start, s.shift_end ORDER BY s.shift_start",
        {
            "mine": mine, "first": first, "end": end, "origin": origin,
            "shift": dt.timedelta(hours=shift_hours), "shift_s": shift_hours * 3600,
        },
    )  # fmt: skip
    return await cur.fetchall()
