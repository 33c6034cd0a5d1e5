"""Reading incidents for the dispatcher's board (issue 13); writing them is in
:mod:`alarms.store`, their lifecycle in :mod:`alarms.lifecycle`."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

from minewatch.alarms.prealarm_store import INCIDENT_PREALARMS

_OPEN = (
    """
SELECT i.id, i.mine_code, p.code AS root_point, i.root_rule, i.category, i.grade, i.state,
       i.started_at, i.raised_at, i.ended_at, i.peak_value, i.peak_at, pp.code AS peak_point,
       i.acknowledged_at, i.acknowledged_by,
       coalesce((SELECT json_agg(json_build_object(
                     'id', a.id, 'point', ap.code, 'rule', a.rule,
                     'classification', a.classification, 'state', a.state, 'grade', a.grade,
                     'started_at', a.started_at, 'ended_at', a.ended_at) ORDER BY a.id)
                 FROM incident_members m JOIN alarms a ON a.id = m.alarm_id
                 JOIN points ap ON ap.id = a.point_id
                 WHERE m.incident_id = i.id), '[]'::json) AS members,
       """
    + INCIDENT_PREALARMS
    + """ AS prealarms
FROM incidents i
JOIN points p ON p.id = i.root_point_id
LEFT JOIN points pp ON pp.id = i.peak_point_id
WHERE i.state <> 'disposed' AND (i.ended_at IS NULL OR i.acknowledged_at IS NULL)
  AND (%(scope)s::text IS NULL OR starts_with(i.mine_code, %(scope)s))
  AND (%(mine)s::text IS NULL OR i.mine_code = %(mine)s)
ORDER BY i.raised_at DESC
LIMIT %(limit)s
"""
)

_OF_ALARM = """
SELECT m.incident_id FROM incident_members m WHERE m.alarm_id = %(alarm)s
ORDER BY m.incident_id DESC LIMIT 1
"""


async def open_incidents(
    conn: psycopg.AsyncConnection, scope: str | None, mine: str | None, limit: int
) -> list[dict[str, object]]:
    """Incidents still open or not yet acknowledged, newest first, each with its members and
    the pre-alarms of their points (alarms/prealarm_store.py)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_OPEN, {"scope": scope, "mine": mine, "limit": limit})
    return list(await cur.fetchall())


async def incident_of(conn: psycopg.AsyncConnection, alarm_id: int) -> int | None:
    """The incident an alarm belongs to (None: the alarm is in none, e.g. a record)."""
    cur = await conn.execute(_OF_ALARM, {"alarm": alarm_id})
    row = await cur.fetchone()
    return None if row is None else int(row[0])
