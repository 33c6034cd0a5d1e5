"""SQL of the remote-inspection reports added after the first five (report_repository.py):
threshold conformance, personnel, output against capacity and the six-system supervision
check (专项督查). One function per query, named parameters only; every query is narrowed to the
caller's ``scope`` (a prefix of mine codes) and, if given, one ``mine``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from minewatch.alarms.codes import RULES, Category
from minewatch.alarms.output_store import (
    DEFAULT_WRAP_FRACTION,
    OUTPUT_SENSOR_TYPE,
    output_totals,
)
from minewatch.codes import METHANE_SENSOR_TYPES

Rows = list[dict[str, object]]

_SCOPED = (
    "(%(scope)s::text IS NULL OR starts_with({c}, %(scope)s)) "
    "AND (%(mine)s::text IS NULL OR {c} = %(mine)s)"
)


def _scoped(column: str) -> str:
    return _SCOPED.format(c=column)


async def threshold_conformance(
    conn: AsyncConnection, scope: str | None, mine: str | None, limit: int
) -> Rows:
    """Every methane point with the regulation row its location matches
    (``methane_regulation``: the lowest priority whose pattern matches the location and whose
    tag, if any, is the point's; none: ``row_no`` None) and its levels against the row's: an
    alarm or power-off level above the row's, a restore level above it, or no power-off level
    where the row asks for one, is looser than the regulation."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT p.mine_code, m.name AS mine_name, p.code AS point_code, p.sensor_type, "
        "p.location, p.tag, p.alarm_high, p.poweroff_high, p.restore_high, r.row_no, "
        "r.location AS regulation_location, r.alarm_pct, r.poweroff_pct, r.restore_pct, r.source "
        "FROM points p JOIN mines m ON m.code = p.mine_code "
        "LEFT JOIN LATERAL (SELECT * FROM methane_regulation r WHERE p.location ~ r.pattern "
        "  AND (r.tag IS NULL OR r.tag = p.tag) ORDER BY r.priority, r.row_no LIMIT 1) r "
        "  ON true "
        "WHERE p.sensor_type = ANY(%(types)s) AND " + _scoped("p.mine_code") + " "
        "ORDER BY p.mine_code, p.code LIMIT %(limit)s",
        {"types": sorted(METHANE_SENSOR_TYPES), "scope": scope, "mine": mine, "limit": limit},
    )
    rows = await cur.fetchall()
    for row in rows:
        row["findings"] = looser_levels(row) if row["row_no"] is not None else None
    return rows


def looser_levels(row: dict[str, object]) -> list[str]:
    """Which of the point's levels are looser than its regulation row (empty: conforming)."""
    found = []
    pairs = (("alarm_high", "alarm_pct", "报警门限偏高"), ("poweroff_high", "poweroff_pct",
             "断电门限偏高"), ("restore_high", "restore_pct", "复电门限偏高"))  # fmt: skip
    for level, rule, finding in pairs:
        have, want = row[level], row[rule]
        if want is None:
            continue
        if have is None:
            if level != "restore_high":
                found.append(finding.replace("偏高", "缺失"))
            continue
        if float(have) > float(want) + 1e-9:  # type: ignore[arg-type]
            found.append(finding)
    return found


#: The personnel alarm rules the personnel report counts (alarms/rules/personnel.py).
PERSONNEL_RULES = (
    "overtime", "area_overcrowding", "mine_overcrowding", "restricted_area", "sos",
    "leader_absent",
)  # fmt: skip


async def personnel(
    conn: AsyncConnection, scope: str | None, mine: str | None, start: dt.datetime,
    end: dt.datetime,
) -> Rows:  # fmt: skip
    """Per mine: people underground now against the mine's quota (核定下井人数), of them longer
    than the mine's overtime limit now, areas over their 核定人数 now, leaders underground now;
    and the personnel alarms that began in ``[start, end)`` per rule (超时, 区域超员, 矿井超员,
    限制区域, 求救, 带班空岗: a shift with workers underground and no leader)."""
    cur = conn.cursor(row_factory=dict_row)
    counts = ", ".join(
        f"count(*) FILTER (WHERE a.rule = '{rule}')::int AS {rule}" for rule in PERSONNEL_RULES
    )
    await cur.execute(
        "WITH now_down AS (SELECT pr.mine_code, pr.card_code, pr.area_code, pr.entered_at, "
        "  coalesce(pe.is_leader, false) AS is_leader FROM personnel_presence pr "
        "  LEFT JOIN personnel_people pe ON pe.mine_code = pr.mine_code "
        "  AND pe.card_code = pr.card_code AND pe.valid_to IS NULL "
        "  WHERE pr.underground AND " + _scoped("pr.mine_code") + "), "
        "areas AS (SELECT a.mine_code, a.area_code, a.approved_count, count(d.card_code) AS n "
        "  FROM personnel_areas a LEFT JOIN now_down d ON d.mine_code = a.mine_code "
        "  AND d.area_code = a.area_code WHERE a.valid_to IS NULL "
        "  AND a.approved_count IS NOT NULL AND " + _scoped("a.mine_code") + " "
        "  GROUP BY a.mine_code, a.area_code, a.approved_count) "
        "SELECT m.code AS mine_code, m.name AS mine_name, m.max_underground_people, "
        "m.max_underground_h, "
        "(SELECT count(*) FROM now_down d WHERE d.mine_code = m.code)::int AS underground, "
        "(SELECT count(*) FROM now_down d WHERE d.mine_code = m.code AND d.is_leader)::int "
        "  AS leaders_underground, "
        "(SELECT count(*) FROM now_down d WHERE d.mine_code = m.code "
        "  AND m.max_underground_h IS NOT NULL "
        "  AND now() - d.entered_at > make_interval(secs => m.max_underground_h * 3600))::int "
        "  AS overtime_now, "
        "(SELECT count(*) FROM areas x WHERE x.mine_code = m.code AND x.n > x.approved_count)"
        "  ::int AS areas_over_now, "
        f"{counts} "
        "FROM mines m LEFT JOIN alarms a ON a.mine_code = m.code "
        "  AND a.rule = ANY(%(rules)s) AND a.started_at >= %(start)s AND a.started_at < %(end)s "
        "WHERE " + _scoped("m.code") + " GROUP BY m.code ORDER BY m.code",
        {"scope": scope, "mine": mine, "start": start, "end": end,
         "rules": list(PERSONNEL_RULES)},
    )  # fmt: skip
    return await cur.fetchall()


async def mines_in_scope(conn: AsyncConnection, scope: str | None, mine: str | None) -> Rows:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT code, name, approved_capacity_t, timezone FROM mines WHERE "
        + _scoped("code") + " ORDER BY code",
        {"scope": scope, "mine": mine},
    )  # fmt: skip
    return await cur.fetchall()


#: The six systems of the supervision check, in the order of the report.
SYSTEMS = ("platform", "safety", "personnel", "output", "video", "comms")
#: Width of the slots of completeness in seconds (a slot holding any data counts), per system:
#: the national files come every few minutes, the live feeds every cycle.
SLOT_S = {"platform": 300, "safety": 60, "personnel": 60, "output": 300, "video": 60,
          "comms": 60}  # fmt: skip
#: Maintenance rules (faults) open on a point: the safety system's (and the output's, on the
#: belt scale) open faults.
FAULT_RULES = tuple(sorted(r for r, (_, c) in RULES.items() if c is Category.MAINTENANCE))

_IN = "{t} >= %(start)s AND {t} < %(end)s AND " + _SCOPED
# Per system: (mine_code, time, on_time) of its data in [start, end) in the scope; on_time is
# whether it arrived on time where minewatch knows when it arrived (safety: a reading not
# flagged late; comms: stored within on_time_s of its time), else NULL.
_DATA = {
    "platform": (
        "SELECT mine_code, time, NULL::bool AS on_time FROM substation_status WHERE "
        + _IN.format(t="time", c="mine_code")
        + " UNION ALL SELECT mine_code, data_time, NULL FROM reported_statistics WHERE "
        + _IN.format(t="data_time", c="mine_code")
    ),
    "safety": (
        "SELECT p.mine_code, r.time, (r.flags & 1 = 0) FROM readings r "
        "JOIN points p ON p.id = r.point_id WHERE p.sensor_type <> '3001' AND "
        + _IN.format(t="r.time", c="p.mine_code")
    ),
    "personnel": (
        "SELECT mine_code, time, NULL::bool FROM personnel_positions WHERE "
        + _IN.format(t="time", c="mine_code")
        + " UNION ALL SELECT mine_code, time, NULL FROM personnel_station_status WHERE "
        + _IN.format(t="time", c="mine_code")
    ),
    "output": (
        "SELECT p.mine_code, r.time, NULL::bool FROM readings r "
        "JOIN points p ON p.id = r.point_id WHERE p.sensor_type = '3001' AND "
        + _IN.format(t="r.time", c="p.mine_code")
    ),
    "video": (
        "SELECT mine_code, time, NULL::bool FROM video_heartbeats WHERE "
        + _IN.format(t="time", c="mine_code")
    ),
    "comms": (
        "SELECT mine_code, time, received_at - time <= make_interval(secs => %(on_time_s)s) "
        "FROM comms_status_reports WHERE " + _IN.format(t="time", c="mine_code")
    ),
}
# Per system: per mine of the scope, the newest data time (never any: no row); for the safety
# and output systems, the newest of their points' newest readings (point_latest, migration 0029).
_LAST = {
    "platform": (
        "SELECT mine_code, max(t) FROM (SELECT mine_code, max(time) AS t FROM substation_status "
        "WHERE " + _scoped("mine_code") + " GROUP BY 1 UNION ALL SELECT mine_code, "
        "max(data_time) FROM reported_statistics WHERE "
        + _scoped("mine_code")
        + " GROUP BY 1) x GROUP BY 1"
    ),
    "safety": (
        "SELECT p.mine_code, max(l.time) FROM points p JOIN point_latest l ON l.point_id = p.id "
        "WHERE p.sensor_type <> '3001' AND " + _scoped("p.mine_code") + " GROUP BY 1"
    ),
    "personnel": (
        "SELECT mine_code, max(t) FROM (SELECT mine_code, max(time) AS t FROM "
        "personnel_positions WHERE " + _scoped("mine_code") + " GROUP BY 1 UNION ALL "
        "SELECT mine_code, max(time) FROM personnel_station_status WHERE "
        + _scoped("mine_code")
        + " GROUP BY 1 UNION ALL SELECT mine_code, snapshot_at FROM "
        "personnel_feed_state WHERE " + _scoped("mine_code") + ") x GROUP BY 1"
    ),
    "output": (
        "SELECT p.mine_code, max(l.time) FROM points p JOIN point_latest l ON l.point_id = p.id "
        "WHERE p.sensor_type = '3001' AND " + _scoped("p.mine_code") + " GROUP BY 1"
    ),
    "video": (
        "SELECT mine_code, max(last_heartbeat_at) FROM video_camera_status WHERE "
        + _scoped("mine_code")
        + " GROUP BY 1"
    ),
    "comms": (
        "SELECT mine_code, max(last_report_at) FROM comms_device_status WHERE "
        + _scoped("mine_code")
        + " GROUP BY 1"
    ),
}
# Per system: per mine, the faults open now (a system without any notion of a fault that
# minewatch can see, the platform, has no query).
_FAULTS = {
    "safety": (
        "SELECT a.mine_code, count(*) FROM alarms a JOIN points p ON p.id = a.point_id "
        "WHERE a.ended_at IS NULL AND a.rule = ANY(%(faults)s) AND p.sensor_type <> '3001' "
        "AND " + _scoped("a.mine_code") + " GROUP BY 1"
    ),
    "personnel": (
        "SELECT mine_code, count(*) FILTER (WHERE run_state <> 0) FROM (SELECT DISTINCT ON "
        "(mine_code, station_code) mine_code, run_state FROM personnel_station_status WHERE "
        + _scoped("mine_code")
        + " ORDER BY mine_code, station_code, time DESC) s GROUP BY 1"
    ),
    "output": (
        "SELECT a.mine_code, count(*) FROM alarms a JOIN points p ON p.id = a.point_id "
        "WHERE a.ended_at IS NULL AND a.rule = ANY(%(faults)s) AND p.sensor_type = '3001' "
        "AND " + _scoped("a.mine_code") + " GROUP BY 1"
    ),
    "video": (
        "SELECT mine_code, count(*) FILTER (WHERE NOT online) FROM video_camera_status WHERE "
        + _scoped("mine_code")
        + " GROUP BY 1"
    ),
    "comms": (
        "SELECT s.mine_code, count(*) FILTER (WHERE NOT s.online OR s.fault IS NOT NULL OR "
        "s.last_report_at < now() - make_interval(secs => coalesce(d.heartbeat_timeout_s, "
        "%(timeout_s)s))) FROM comms_device_status s LEFT JOIN comms_devices d "
        "ON d.mine_code = s.mine_code AND d.device_code = s.device_code AND d.valid_to IS NULL "
        "WHERE " + _scoped("s.mine_code") + " GROUP BY 1"
    ),
}


async def _by_mine(
    conn: AsyncConnection, sql: str, params: Mapping[str, object]
) -> dict[str, object]:
    cur = await conn.execute(sql, params)
    return {str(row[0]): row[1] for row in await cur.fetchall()}


async def system_days(
    conn: AsyncConnection, system: str, scope: str | None, mine: str | None,
    start: dt.datetime, end: dt.datetime, tz: str, on_time_s: float,
) -> dict[tuple[str, dt.datetime], tuple[int, float | None]]:  # fmt: skip
    """Per (mine, day of ``tz``) in ``[start, end)``: the slots (``SLOT_S``) of one system
    holding any of its data, and the share (0-1) of its data that arrived on time (None: not
    known for this system)."""
    params = {"scope": scope, "mine": mine, "start": start, "end": end, "tz": tz,
              "on_time_s": on_time_s, "slot": dt.timedelta(seconds=SLOT_S[system])}  # fmt: skip
    cur = await conn.execute(
        "SELECT mine_code, time_bucket('1 day'::interval, time, %(tz)s) AS day, "
        "count(DISTINCT time_bucket(%(slot)s::interval, time))::int, "
        "(count(*) FILTER (WHERE on_time))::float8 / nullif(count(on_time), 0) "
        f"FROM ({_DATA[system]}) d(mine_code, time, on_time) GROUP BY 1, 2",
        params,
    )
    return {(str(m), day): (int(n), share) for m, day, n, share in await cur.fetchall()}


async def system_now(
    conn: AsyncConnection, system: str, scope: str | None, mine: str | None,
    default_timeout_s: float,
) -> tuple[dict[str, object], dict[str, object] | None]:  # fmt: skip
    """Per mine of the scope: (newest data time of one system, its faults open now; None:
    not known for this system)."""
    params = {"scope": scope, "mine": mine, "faults": list(FAULT_RULES),
              "timeout_s": default_timeout_s}  # fmt: skip
    last = await _by_mine(conn, _LAST[system], params)
    faults = await _by_mine(conn, _FAULTS[system], params) if system in _FAULTS else None
    return last, faults


async def mines_with_output(conn: AsyncConnection, scope: str | None) -> Rows:
    """The mines of the scope with a belt scale (an output point, 3001), with their approved
    capacity and time zone."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT m.code, m.approved_capacity_t, m.timezone FROM mines m WHERE "
        "(%(scope)s::text IS NULL OR starts_with(m.code, %(scope)s)) AND EXISTS (SELECT 1 "
        "FROM points p WHERE p.mine_code = m.code AND p.sensor_type = %(type)s) ORDER BY 1",
        {"scope": scope, "type": OUTPUT_SENSOR_TYPE},
    )
    return await cur.fetchall()


def period_start(now: dt.datetime, period: str, tz: str) -> dt.datetime:
    """The start of the local day or month (``period``) of ``tz`` that contains ``now``."""
    local = now.astimezone(ZoneInfo(tz))
    day = local.date() if period == "day" else local.date().replace(day=1)
    return dt.datetime.combine(day, dt.time(), ZoneInfo(tz))


async def output_so_far(
    conn: AsyncConnection, mine: str, period: str, tz: str, now: dt.datetime
) -> float:
    """The mine's output (t) since the start of the local day or month: the production API's
    counter rule (docs/feeds.md, "Output")."""
    start = period_start(now, period, tz)
    rows = await output_totals(conn, mine, period, start, now, tz, DEFAULT_WRAP_FRACTION)
    return sum((float(r["output_t"]) for r in rows), 0.0)  # type: ignore[arg-type]
