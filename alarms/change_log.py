"""The numbered alarm changes (``alarm_changes``, migrations 0013, 0017, 0022) read back as the
events the MQTT alarm topic carries, and the publisher's durable position in them.

Each event is the change (``seq``, ``event``, ``kind``) with the record as it is now: an
alarm with its statistics and disposal record, an incident with its member alarm ids, or a
pre-alarm; a record computed from late readings is marked ``computed_late``, and a
``corrected`` event carries what the late readings changed (``previous``, ``corrected``, as
in ``alarm_corrections``). An episode stored already ended (computed late, or raised and cleared
within one batch) is one ``raised`` event whose record has its end. ``seq`` numbers the changes
of one database; with the publishing installation's name (``source``) it identifies a change
across levels (docs/federation.md).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from minewatch.alarms.codes import category_of

_CHANGES = """
SELECT c.seq, c.event, c.at, c.mine_code AS mine,
       c.alarm_id, p.code AS point, a.point_id, a.rule, a.abnormal_type, a.classification,
       a.state, a.grade, a.started_at, a.ended_at, a.raised_at, a.threshold, a.start_value,
       a.max_value, a.max_at, a.min_value, a.min_at, a.value_count, a.acknowledged_at,
       a.acknowledged_by, a.cause, a.measures, a.handled_by, a.disposed_at,
       a.computed_late, a.corrected_at, k.reason, k.previous, k.corrected,
       c.incident_id, i.computed_late AS incident_computed_late, rp.code AS root_point,
       i.root_rule, i.category AS incident_category,
       i.grade AS incident_grade, i.state AS incident_state,
       i.started_at AS incident_started_at, i.ended_at AS incident_ended_at, i.peak_value,
       (SELECT coalesce(array_agg(m.alarm_id ORDER BY m.alarm_id), '{}')
        FROM incident_members m WHERE m.incident_id = i.id) AS members,
       c.prealarm_id, pp.code AS prealarm_point, pa.point_id AS prealarm_point_id,
       pa.raised_at AS prealarm_raised_at, pa.cleared_at, pa.level, pa.forecast,
       pa.predicted_at, pa.horizon_s,
       EXTRACT(EPOCH FROM pa.predicted_at - pa.raised_at)::float8 AS lead_s
FROM alarm_changes c LEFT JOIN alarms a ON a.id = c.alarm_id
LEFT JOIN points p ON p.id = a.point_id
LEFT JOIN LATERAL (SELECT k.reason, k.previous, k.corrected FROM alarm_corrections k
                   WHERE c.event = 'corrected' AND k.alarm_id = a.id AND k.corrected_at <= c.at
                   ORDER BY k.id DESC LIMIT 1) k ON true
LEFT JOIN incidents i ON i.id = c.incident_id LEFT JOIN points rp ON rp.id = i.root_point_id
LEFT JOIN prealarms pa ON pa.id = c.prealarm_id LEFT JOIN points pp ON pp.id = pa.point_id
WHERE c.seq > %(after)s
ORDER BY c.seq LIMIT %(limit)s
"""


async def changes_after(
    conn: psycopg.AsyncConnection, after: int, limit: int
) -> list[dict[str, Any]]:
    """The numbered changes after ``after``, oldest first (at most ``limit``)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_CHANGES, {"after": after, "limit": limit})
    return await cur.fetchall()


def change_event(row: dict[str, Any], source: str) -> dict[str, Any]:
    """The MQTT event of one change row (``kind``: alarm, incident or prealarm)."""
    common = {"source": source, "seq": row["seq"], "event": row["event"], "mine": row["mine"]}
    if row["incident_id"] is not None:
        return common | {
            "kind": "incident", "id": row["incident_id"], "root_point": row["root_point"],
            "root_rule": row["root_rule"], "category": row["incident_category"],
            "grade": row["incident_grade"], "state": row["incident_state"],
            "started_at": row["incident_started_at"], "ended_at": row["incident_ended_at"],
            "peak": row["peak_value"], "members": row["members"], "time": row["at"],
        } | _late(row["incident_computed_late"])  # fmt: skip
    if row["prealarm_id"] is not None:
        cleared = row["event"] == "cleared"
        return common | {
            "kind": "prealarm", "id": row["prealarm_id"], "point": row["prealarm_point"],
            "point_id": row["prealarm_point_id"], "raised_at": row["prealarm_raised_at"],
            "cleared_at": row["cleared_at"], "level": row["level"], "forecast": row["forecast"],
            "predicted_at": row["predicted_at"], "horizon_s": row["horizon_s"],
            "lead_s": row["lead_s"],
            "time": row["cleared_at"] if cleared else row["prealarm_raised_at"],
        }  # fmt: skip
    time = {"raised": row["started_at"], "cleared": row["ended_at"]}.get(row["event"], row["at"])
    if row["event"] == "corrected":  # by late readings: what changed, as it was and as it is
        common |= {"reason": row["reason"], "previous": row["previous"],
                   "corrected": row["corrected"], "computed_late": True}  # fmt: skip
    return common | _late(row["computed_late"]) | {
        "kind": "alarm", "id": row["alarm_id"], "point": row["point"],
        "point_id": row["point_id"], "rule": row["rule"],
        "abnormal_type": row["abnormal_type"], "category": category_of(row["rule"]).value,
        "classification": row["classification"], "state": row["state"], "grade": row["grade"],
        "time": time, "started_at": row["started_at"], "ended_at": row["ended_at"],
        "raised_at": row["raised_at"], "threshold": row["threshold"],
        "value": row["start_value"], "max_value": row["max_value"], "max_at": row["max_at"],
        "min_value": row["min_value"], "min_at": row["min_at"],
        "value_count": row["value_count"], "acknowledged_at": row["acknowledged_at"],
        "acknowledged_by": row["acknowledged_by"], "cause": row["cause"],
        "measures": row["measures"], "handled_by": row["handled_by"],
        "disposed_at": row["disposed_at"],
    }  # fmt: skip


def _late(computed_late: bool | None) -> dict[str, Any]:
    """``computed_late`` on the event of a record computed from late readings (issue 15)."""
    return {"computed_late": True} if computed_late else {}


#: the newest alarm change, where a new alarm publisher starts
NEWEST_CHANGE = "(SELECT coalesce(max(seq), 0) FROM alarm_changes)"
