"""The API's SQL, one function per query, named parameters only."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from minewatch.codes import SENSOR_TYPES


async def list_mines(conn: AsyncConnection, scope: str | None) -> list[dict[str, object]]:
    """The mines whose code starts with ``scope`` (all with None)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT m.code, m.name, m.gas_class, m.approved_capacity_t, m.timezone, "
        "count(p.id)::int AS points "
        "FROM mines m LEFT JOIN points p ON p.mine_code = m.code "
        "WHERE %(scope)s::text IS NULL OR starts_with(m.code, %(scope)s) "
        "GROUP BY m.code ORDER BY m.code",
        {"scope": scope},
    )
    return await cur.fetchall()


async def list_points(conn: AsyncConnection, mine_code: str) -> list[dict[str, object]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT id, mine_code, code, substation_code, sensor_type, value_type, unit, location, "
        "tag, range_low, range_high, alarm_high, alarm_high_clear, poweroff_high, restore_high, "
        "relations FROM points WHERE mine_code = %(mine)s ORDER BY code",
        {"mine": mine_code},
    )
    rows = await cur.fetchall()
    for row in rows:
        row["sensor_name"] = SENSOR_TYPES.get(str(row["sensor_type"]), "")
    return rows


async def mine_exists(conn: AsyncConnection, mine_code: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM mines WHERE code = %(mine)s", {"mine": mine_code})
    return await cur.fetchone() is not None


async def point_mine(conn: AsyncConnection, point_id: int) -> str | None:
    """The mine of a point (None: no such point)."""
    cur = await conn.execute("SELECT mine_code FROM points WHERE id = %(id)s", {"id": point_id})
    row = await cur.fetchone()
    return None if row is None else str(row[0])


async def alarm_mine(conn: AsyncConnection, alarm_id: int) -> str | None:
    """The mine of an alarm (None: no such alarm)."""
    cur = await conn.execute("SELECT mine_code FROM alarms WHERE id = %(id)s", {"id": alarm_id})
    row = await cur.fetchone()
    return None if row is None else str(row[0])


async def reading_buckets(
    conn: AsyncConnection, point_id: int, start: dt.datetime, end: dt.datetime,
    bucket: str, tz: str = "UTC",
) -> list[dict[str, object]]:  # fmt: skip
    """Buckets of ``bucket`` (an ISO 8601 duration, PostgreSQL interval input) aligned in
    ``tz``: a day bucket of Asia/Shanghai starts at local midnight, a month bucket on the 1st."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT time_bucket(%(bucket)s::interval, time, %(tz)s) AS time, avg(value) AS avg, "
        "min(value) AS min, "
        "max(value) AS max, last(value, time) AS last, count(*)::int AS count, "
        "bit_or(status)::int AS status_any, count(*) FILTER (WHERE flags & 1 = 1)::int AS late "
        "FROM readings WHERE point_id = %(point)s AND time >= %(start)s AND time < %(end)s "
        "GROUP BY 1 ORDER BY 1",
        {"bucket": bucket, "point": point_id, "start": start, "end": end, "tz": tz},
    )
    return await cur.fetchall()


@dataclass(frozen=True, slots=True)
class AlarmFilter:
    mine: str | None = None
    point_id: int | None = None
    rule: str | None = None
    active: bool | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    min_duration_s: float | None = None
    limit: int = 100
    subject_kind: str | None = None  # point / person / area / mine
    subject_code: str | None = None  # card, area or mine code (a point's code for points)
    hide_shelved: bool = False  # leave out alarms shelved until a time still to come
    scope: str | None = None  # only mines whose code starts with this (the caller's scope)
    alarm_id: int | None = None  # one alarm
    offset: int = 0  # rows to skip (pages)


# Every alarm, whatever its subject: a point (point_id), a person (card), an area or the mine.
# subject_code is the point's code for point alarms; subject_name the person's, area's or
# mine's name (current definition).
_ALARM_COLUMNS = """
SELECT a.id, a.mine_code, a.point_id, p.code AS point_code,
       coalesce(p.location, pa.name, '') AS location, a.subject_kind,
       coalesce(a.subject_code, p.code) AS subject_code,
       CASE a.subject_kind WHEN 'person' THEN pe.name WHEN 'area' THEN pa.name
                           WHEN 'mine' THEN m.name END AS subject_name,
       a.rule, a.abnormal_type, a.classification, a.state, a.started_at, a.ended_at,
       EXTRACT(EPOCH FROM (a.ended_at - a.started_at))::float8 AS duration_s,
       a.threshold, a.start_value, a.max_value, a.max_at, a.min_value, a.min_at,
       a.value_sum / a.value_count AS mean_value, a.acknowledged_at, a.cause, a.measures,
       a.handled_by, a.disposed_at, a.grade, a.acknowledged_by, a.shelved_by, a.shelved_until,
       a.shelved_reason, a.escalated_at, a.disposed_open_reason, a.raised_at, a.computed_late,
       a.corrected_at,  -- corrected by late readings, each correction kept (migration 0023)
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'corrected_at', c.corrected_at, 'reason', c.reason,
                   'previous', c.previous, 'corrected', c.corrected) ORDER BY c.id), '[]')
        FROM alarm_corrections c WHERE c.alarm_id = a.id) AS corrections,
       fu.area_code AS fusion_area, fu.source_alarm_ids AS fused_alarm_ids,
       fu.cards AS fusion_cards, fu.cameras AS fusion_cameras,
       (SELECT array_agg(fp.code ORDER BY fp.code) FROM points fp WHERE fp.id = ANY(fu.points))
           AS fusion_points
"""
_ALARM_FROM = """
FROM alarms a
LEFT JOIN points p ON p.id = a.point_id
LEFT JOIN alarm_fusions fu ON fu.alarm_id = a.id  -- fused alarms (migration 0010)
LEFT JOIN personnel_people pe ON a.subject_kind = 'person' AND pe.mine_code = a.mine_code
     AND pe.card_code = a.subject_code AND pe.valid_to IS NULL
LEFT JOIN personnel_areas pa ON a.subject_kind = 'area' AND pa.mine_code = a.mine_code
     AND pa.area_code = a.subject_code AND pa.valid_to IS NULL
LEFT JOIN mines m ON a.subject_kind = 'mine' AND m.code = a.mine_code
WHERE (%(mine)s::text IS NULL OR a.mine_code = %(mine)s)
  AND (%(scope)s::text IS NULL OR starts_with(a.mine_code, %(scope)s))
  AND (%(alarm_id)s::bigint IS NULL OR a.id = %(alarm_id)s)
  AND (%(point_id)s::int IS NULL OR a.point_id = %(point_id)s)
  AND (%(rule)s::text IS NULL OR a.rule = %(rule)s)
  AND (%(active)s::bool IS NULL OR (a.ended_at IS NULL) = %(active)s)
  AND (%(since)s::timestamptz IS NULL OR a.started_at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR a.started_at < %(until)s)
  AND (%(min_duration_s)s::float8 IS NULL
       OR coalesce(a.ended_at, now()) - a.started_at >= make_interval(secs => %(min_duration_s)s))
  AND (%(subject_kind)s::text IS NULL OR a.subject_kind = %(subject_kind)s)
  AND (%(subject_code)s::text IS NULL OR coalesce(a.subject_code, p.code) = %(subject_code)s)
  AND (NOT %(hide_shelved)s OR a.shelved_until IS NULL OR a.shelved_until <= now())
"""
_ALARM_SELECT = (
    _ALARM_COLUMNS + _ALARM_FROM + "ORDER BY a.started_at DESC, a.id DESC "
    "LIMIT %(limit)s OFFSET %(offset)s"
)
_ALARM_COUNT = "SELECT count(*) " + _ALARM_FROM


def _alarm_params(where: AlarmFilter) -> dict[str, object]:
    return {
        "mine": where.mine, "point_id": where.point_id, "rule": where.rule,
        "active": where.active, "since": where.since, "until": where.until,
        "min_duration_s": where.min_duration_s, "limit": where.limit, "offset": where.offset,
        "subject_kind": where.subject_kind, "subject_code": where.subject_code,
        "hide_shelved": where.hide_shelved, "scope": where.scope, "alarm_id": where.alarm_id,
    }  # fmt: skip


async def list_alarms(conn: AsyncConnection, where: AlarmFilter) -> list[dict[str, object]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_ALARM_SELECT, _alarm_params(where))
    return await cur.fetchall()


async def count_alarms(conn: AsyncConnection, where: AlarmFilter) -> int:
    """How many alarms match, over all pages (limit and offset aside)."""
    cur = await conn.execute(_ALARM_COUNT, _alarm_params(where))
    row = await cur.fetchone()
    return int(row[0]) if row else 0


_CHANGES = """
SELECT c.seq, c.event, c.at, a.id, c.mine_code AS mine, a.point_id, p.code AS point, a.rule,
       a.abnormal_type, a.classification, a.state, a.grade, a.started_at, a.ended_at,
       a.computed_late, a.corrected_at,  -- issue 15: computed from late readings, corrected
       (SELECT max(m.incident_id) FROM incident_members m WHERE m.alarm_id = a.id)
           AS incident_id,  -- issue 13: the incident the alarm belongs to (null: none)
       -- a change of an incident (migration 0017): the incident with its member alarms
       c.incident_id AS changed_incident, rp.code AS root_point, i.root_rule, i.category,
       i.grade AS incident_grade, i.state AS incident_state,
       i.started_at AS incident_started_at, i.ended_at AS incident_ended_at, i.peak_value,
       i.computed_late AS incident_computed_late,  -- opened by late episodes (migration 0023)
       (SELECT coalesce(array_agg(m.alarm_id ORDER BY m.alarm_id), '{}')
        FROM incident_members m WHERE m.incident_id = i.id) AS members,
       -- a pre-alarm raised or cleared (migration 0022)
       c.prealarm_id AS changed_prealarm, pa.point_id AS prealarm_point_id,
       pp.code AS prealarm_point, pa.raised_at, pa.cleared_at, pa.level, pa.forecast,
       pa.predicted_at, pa.horizon_s,
       EXTRACT(EPOCH FROM pa.predicted_at - pa.raised_at)::float8 AS lead_s,
       (%(scope)s::text IS NULL OR starts_with(c.mine_code, %(scope)s))
       AND (%(mine)s::text IS NULL OR c.mine_code = %(mine)s) AS visible
FROM alarm_changes c LEFT JOIN alarms a ON a.id = c.alarm_id
LEFT JOIN points p ON p.id = a.point_id
LEFT JOIN incidents i ON i.id = c.incident_id LEFT JOIN points rp ON rp.id = i.root_point_id
LEFT JOIN prealarms pa ON pa.id = c.prealarm_id LEFT JOIN points pp ON pp.id = pa.point_id
WHERE c.seq > %(after)s
ORDER BY c.seq LIMIT %(limit)s
"""


async def alarm_changes_after(
    conn: AsyncConnection, after: int, scope: str | None, mine: str | None, limit: int
) -> list[dict[str, object]]:
    """Numbered alarm changes (migration 0013) after ``after``, oldest first, each with
    ``visible``: whether it concerns the caller's scope (and ``mine``). All are returned, so
    that the caller can tell a gap in the numbering (a change not yet committed) from a change
    of another mine."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_CHANGES, {"after": after, "scope": scope, "mine": mine, "limit": limit})
    return await cur.fetchall()


async def last_alarm_change(conn: AsyncConnection) -> int:
    cur = await conn.execute("SELECT coalesce(max(seq), 0) FROM alarm_changes")
    row = await cur.fetchone()
    return int(row[0]) if row else 0
