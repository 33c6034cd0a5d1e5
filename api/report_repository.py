"""The console's and the reports' SQL that the other repositories do not have: the latest value
of every point, the jurisdiction's mines at a glance, and the remote-inspection reports
(exceedance ranking, disposal compliance, data integrity). One function per query, named
parameters only; every query is narrowed to the caller's ``scope`` (a prefix of mine codes)."""

from __future__ import annotations

import datetime as dt

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from minewatch.codes import METHANE_SENSOR_TYPES, SENSOR_TYPES

Rows = list[dict[str, object]]

#: The rules whose episodes are exceedances of a level (超限): the exceedance ranking counts
#: their episodes classified as real exceedances (not calibrations, not interference).
EXCEEDANCE_RULES = ("upper_alarm", "power_off", "lower_alarm")


#: The ranking flags a mine with a methane value at or above this (%) in the period ...
FLAG_METHANE_PCT = 3.0
#: ... or with at least this many exceedances.
FLAG_EPISODES = 5


async def latest_readings(conn: AsyncConnection, mine: str) -> Rows:
    """Every point of the mine with its latest reading (value, time, status bits; kept per point
    by the gateway in ``point_latest``), its levels and its open alarms' rules (an empty list:
    none open)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT p.id, p.code, p.sensor_type, p.value_type, p.unit, p.location, "
        "p.alarm_high, p.poweroff_high, p.restore_high, r.time, r.value, r.status, "
        "coalesce((SELECT array_agg(DISTINCT a.rule ORDER BY a.rule) FROM alarms a "
        "  WHERE a.point_id = p.id AND a.ended_at IS NULL), '{}') AS open_rules "
        "FROM points p LEFT JOIN point_latest r ON r.point_id = p.id "
        "WHERE p.mine_code = %(mine)s ORDER BY p.code",
        {"mine": mine},
    )
    rows = await cur.fetchall()
    for row in rows:
        row["sensor_name"] = SENSOR_TYPES.get(str(row["sensor_type"]), "")
    return rows


async def substation_states(conn: AsyncConnection, mine: str) -> Rows:
    """Every defined substation of the mine with its newest reported state (FZSS, national
    files): ``run_state`` 0 通信正常, 1 通信中断, 2 故障, 9 未知, None: never reported."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT s.code, s.location, f.time, f.run_state, f.power_state FROM substations s "
        "LEFT JOIN LATERAL (SELECT time, run_state, power_state FROM substation_status f "
        "  WHERE f.mine_code = s.mine_code AND f.substation_code = s.code "
        "  ORDER BY time DESC LIMIT 1) f ON true "
        "WHERE s.mine_code = %(mine)s ORDER BY s.code",
        {"mine": mine},
    )
    return await cur.fetchall()


async def mines_overview(conn: AsyncConnection, scope: str | None) -> Rows:
    """The mines of the scope: open alarms per grade, the time of the newest reading
    (``point_latest``; None: never any), people underground and cameras online now."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT m.code, m.name, m.approved_capacity_t, "
        "(SELECT max(l.time) FROM points p JOIN point_latest l ON l.point_id = p.id "
        " WHERE p.mine_code = m.code) AS last_data_at, "
        "count(a.id) FILTER (WHERE a.grade = 'red')::int AS red, "
        "count(a.id) FILTER (WHERE a.grade = 'orange')::int AS orange, "
        "count(a.id) FILTER (WHERE a.grade = 'yellow')::int AS yellow, "
        "count(a.id) FILTER (WHERE a.grade = 'blue')::int AS blue, "
        "(SELECT count(*) FROM personnel_presence pr WHERE pr.mine_code = m.code "
        "   AND pr.underground)::int AS underground, "
        "(SELECT count(*) FROM video_camera_status s WHERE s.mine_code = m.code "
        "   AND s.online)::int AS cameras_online "
        "FROM mines m LEFT JOIN alarms a ON a.mine_code = m.code AND a.ended_at IS NULL "
        "WHERE %(scope)s::text IS NULL OR starts_with(m.code, %(scope)s) "
        "GROUP BY m.code ORDER BY m.code",
        {"scope": scope},
    )
    return await cur.fetchall()


async def exceedance_ranking(
    conn: AsyncConnection,
    scope: str | None,
    mine: str | None,
    start: dt.datetime,
    end: dt.datetime,
    limit: int,
) -> Rows:
    """Per mine and point, the exceedance episodes starting in ``[start, end)`` (CO alarms
    classed as suspected vehicle exhaust included: the limit was exceeded): how many,
    the highest value, the longest and the total duration (each up to its end, or up to
    now when still open, and at most up to ``end``: an export of the same period agrees);
    most frequent first, then highest, then longest (高频次、高浓度、长时间). Each row also
    carries its mine's totals over the period (``mine_episodes``, the highest methane value
    ``mine_methane_max``) and ``mine_flagged``: the mine had any methane value at or above
    FLAG_METHANE_PCT or at least FLAG_EPISODES exceedances (重点关注)."""
    cur = conn.cursor(row_factory=dict_row)
    # Aggregated per point first (narrow rows, hashed), joined to points and mines after: the
    # per-mine totals are window sums over the points, not over every alarm.
    await cur.execute(
        "WITH e AS (SELECT a.point_id, count(*)::int AS episodes, "
        "  max(a.max_value) AS max_value, "
        "  max(d.s) AS longest_s, sum(d.s) AS total_s "
        "  FROM alarms a CROSS JOIN LATERAL (SELECT date_part('epoch', "  # float8, not numeric
        "    least(coalesce(a.ended_at, now()), %(end)s) - a.started_at) AS s) d "
        "  WHERE a.rule = ANY(%(rules)s) "
        # a CO alarm classed a vehicle puff (issue 13) is still an exceedance of the limit
        "  AND a.classification IN ('exceedance', 'co_vehicle_suspected') "
        "  AND a.started_at >= %(start)s AND a.started_at < %(end)s "
        "  AND (%(scope)s::text IS NULL OR starts_with(a.mine_code, %(scope)s)) "
        "  AND (%(mine)s::text IS NULL OR a.mine_code = %(mine)s) GROUP BY a.point_id) "
        "SELECT p.mine_code, m.name AS mine_name, p.id AS point_id, p.code AS point_code, "
        "p.sensor_type, p.location, p.unit, e.episodes, e.max_value, e.longest_s, e.total_s, "
        "(sum(e.episodes) OVER w)::int AS mine_episodes, "
        "max(CASE WHEN p.sensor_type = ANY(%(methane)s) THEN e.max_value END) OVER w "
        "  AS mine_methane_max "
        "FROM e JOIN points p ON p.id = e.point_id JOIN mines m ON m.code = p.mine_code "
        "WINDOW w AS (PARTITION BY p.mine_code) "
        "ORDER BY e.episodes DESC, e.max_value DESC NULLS LAST, e.longest_s DESC, p.id "
        "LIMIT %(limit)s",
        {
            "rules": list(EXCEEDANCE_RULES),
            "methane": sorted(METHANE_SENSOR_TYPES),
            "start": start,
            "end": end,
            "scope": scope,
            "mine": mine,
            "limit": limit,
        },
    )
    rows = await cur.fetchall()
    for row in rows:
        row["sensor_name"] = SENSOR_TYPES.get(str(row["sensor_type"]), "")
        methane_max = row["mine_methane_max"]
        row["mine_flagged"] = int(row["mine_episodes"]) >= FLAG_EPISODES or (
            methane_max is not None and float(methane_max) >= FLAG_METHANE_PCT
        )
    return rows


async def disposal_compliance(
    conn: AsyncConnection,
    scope: str | None,
    mine: str | None,
    start: dt.datetime,
    end: dt.datetime,
    hours: float,
) -> Rows:
    """Per mine, the alarms starting in ``[start, end)``: how many, disposed within ``hours``
    of their start, disposed later, and not disposed although ``hours`` have passed
    (overdue); compliance is the share disposed in time of those whose time is up."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "WITH a AS (SELECT mine_code, started_at, disposed_at, "
        "  started_at + make_interval(secs => %(secs)s) AS due FROM alarms "
        "  WHERE started_at >= %(start)s AND started_at < %(end)s "
        "  AND (%(scope)s::text IS NULL OR starts_with(mine_code, %(scope)s)) "
        "  AND (%(mine)s::text IS NULL OR mine_code = %(mine)s)) "
        "SELECT a.mine_code, m.name AS mine_name, count(*)::int AS alarms, "
        "count(*) FILTER (WHERE disposed_at <= due)::int AS disposed_in_time, "
        "count(*) FILTER (WHERE disposed_at > due)::int AS disposed_late, "
        "count(*) FILTER (WHERE disposed_at IS NULL AND due <= now())::int AS overdue, "
        "count(*) FILTER (WHERE disposed_at IS NULL AND due > now())::int AS pending "
        "FROM a JOIN mines m ON m.code = a.mine_code GROUP BY a.mine_code, m.name "
        "ORDER BY overdue DESC, a.mine_code",
        {"secs": hours * 3600.0, "start": start, "end": end, "scope": scope, "mine": mine},
    )
    rows = await cur.fetchall()
    for row in rows:
        due = int(row["disposed_in_time"]) + int(row["disposed_late"]) + int(row["overdue"])
        row["compliance_pct"] = None if due == 0 else 100.0 * int(row["disposed_in_time"]) / due
    return rows


async def data_integrity(
    conn: AsyncConnection,
    scope: str | None,
    mine: str | None,
    start: dt.datetime,
    end: dt.datetime,
    tz: str,
    limit: int,
) -> Rows:
    """Per point and day of ``tz`` in ``[start, end)``: readings received against those its
    polling cycle (巡检周期) asks for over the part of the day in the range (completeness in
    percent, at most 100), its data interruptions (数据中断) starting that day, its readings
    that arrived late (after newer ones of the point: flag ``late``) and the messages of its
    substation that never arrived (sequence gaps found that day). Points without a polling
    cycle have no expected count (completeness None)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "WITH days AS (SELECT d AS day, greatest(d, %(start)s) AS lo, "
        "  least(d + interval '1 day', %(end)s) AS hi FROM generate_series("
        "  time_bucket('1 day'::interval, %(start)s::timestamptz, %(tz)s), "
        "  %(end)s::timestamptz - interval '1 microsecond', '1 day'::interval) d) "
        "SELECT p.mine_code, p.id AS point_id, p.code AS point_code, p.location, "
        "p.poll_cycle_s, d.day, "
        "(SELECT count(*) FROM readings r WHERE r.point_id = p.id AND r.time >= d.lo "
        "   AND r.time < d.hi)::int AS received, "
        "CASE WHEN p.poll_cycle_s IS NULL THEN NULL ELSE "
        "   floor(EXTRACT(EPOCH FROM d.hi - d.lo) / p.poll_cycle_s)::int END AS expected, "
        "(SELECT count(*) FROM alarms a WHERE a.point_id = p.id AND a.rule = 'data_interruption' "
        "   AND a.started_at >= d.lo AND a.started_at < d.hi)::int AS interruptions, "
        "(SELECT count(*) FROM readings r WHERE r.point_id = p.id AND r.time >= d.lo "
        "   AND r.time < d.hi AND r.flags & 1 = 1)::int AS late, "
        "(SELECT coalesce(sum(g.missing - g.filled), 0) FROM sequence_gaps g "
        "   WHERE g.source = p.mine_code || '/' || p.substation_code "
        "   AND g.next_time >= d.lo AND g.next_time < d.hi)::int AS messages_missing "
        "FROM points p CROSS JOIN days d "
        "WHERE (%(scope)s::text IS NULL OR starts_with(p.mine_code, %(scope)s)) "
        "AND (%(mine)s::text IS NULL OR p.mine_code = %(mine)s) AND d.hi > d.lo "
        "ORDER BY d.day, p.mine_code, p.code LIMIT %(limit)s",
        {"start": start, "end": end, "tz": tz, "scope": scope, "mine": mine, "limit": limit},
    )
    rows = await cur.fetchall()
    for row in rows:
        expected = row["expected"]
        row["completeness_pct"] = (
            None if not expected else min(100.0, 100.0 * int(row["received"]) / int(expected))
        )
    return rows


#: Catalytic methane sensors (环境瓦斯, 0001): AQ 6201 asks for a calibration every 15 days.
CATALYTIC_METHANE = ("0001",)
#: Episodes that are calibrations, declared or not.
CALIBRATION_CLASSES = ("calibration_declared", "calibration_flagged", "calibration_undeclared")


async def calibration_compliance(
    conn: AsyncConnection,
    scope: str | None,
    mine: str | None,
    start: dt.datetime,
    end: dt.datetime,
    limit: int,
) -> Rows:
    """Per catalytic methane point: its last calibration before ``end`` (a declared window,
    or an episode the engine classified as a calibration, declared or not; None: never) and
    the undeclared calibrations (未报备标校) that began in ``[start, end)``."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT p.mine_code, p.id AS point_id, p.code AS point_code, p.location, greatest("
        "  (SELECT max(c.started_at) FROM calibrations c WHERE c.point_id = p.id "
        "   AND c.started_at < %(end)s), "
        "  (SELECT max(a.started_at) FROM alarms a WHERE a.point_id = p.id "
        "   AND a.classification = ANY(%(classes)s) AND a.started_at < %(end)s)"
        ") AS last_calibration, "
        "(SELECT count(*) FROM alarms a WHERE a.point_id = p.id "
        "  AND a.classification = 'calibration_undeclared' "
        "  AND a.started_at >= %(start)s AND a.started_at < %(end)s)::int AS undeclared "
        "FROM points p WHERE p.sensor_type = ANY(%(types)s) "
        "AND (%(scope)s::text IS NULL OR starts_with(p.mine_code, %(scope)s)) "
        "AND (%(mine)s::text IS NULL OR p.mine_code = %(mine)s) "
        "ORDER BY p.mine_code, p.code LIMIT %(limit)s",
        {
            "classes": list(CALIBRATION_CLASSES),
            "types": list(CATALYTIC_METHANE),
            "start": start,
            "end": end,
            "scope": scope,
            "mine": mine,
            "limit": limit,
        },
    )
    return await cur.fetchall()


#: Band kinds of a point's curve: the point's alarm episodes, its calibrations (declared
#: windows and episodes the engine classified as calibrations) and its data interruptions.
INTERRUPTION_RULES = ("data_interruption",)


async def point_bands(
    conn: AsyncConnection, point_id: int, start: dt.datetime, end: dt.datetime, limit: int
) -> Rows:
    """What happened to a point over ``[start, end)``, as spans that overlap the range (an
    open one ends at ``None``): ``kind`` ``episode`` (an alarm episode, with its rule and
    grade), ``calibration`` (a declared window, or an episode classified as a calibration) or
    ``interruption`` (数据中断); oldest first."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT * FROM ("
        "  SELECT CASE WHEN a.rule = ANY(%(interruptions)s) THEN 'interruption' "
        "    WHEN a.classification = ANY(%(classes)s) THEN 'calibration' ELSE 'episode' END "
        "    AS kind, a.id AS alarm_id, a.rule, a.classification, a.grade, "
        "    a.started_at, a.ended_at, NULL::text AS declared_by "
        "  FROM alarms a WHERE a.point_id = %(point)s AND a.started_at < %(end)s "
        "  AND (a.ended_at IS NULL OR a.ended_at > %(start)s) "
        "  UNION ALL "
        "  SELECT 'calibration', NULL, NULL, 'declared', NULL, c.started_at, c.ended_at, "
        "    c.declared_by FROM calibrations c WHERE c.point_id = %(point)s "
        "  AND c.started_at < %(end)s AND c.ended_at > %(start)s"
        ") b ORDER BY started_at, kind LIMIT %(limit)s",
        {
            "point": point_id,
            "start": start,
            "end": end,
            "limit": limit,
            "interruptions": list(INTERRUPTION_RULES),
            "classes": list(CALIBRATION_CLASSES),
        },
    )
    return await cur.fetchall()
