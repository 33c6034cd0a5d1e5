"""Persistence of alarm episodes and their live notification (PostgreSQL NOTIFY).

Changes are written in the caller's transaction, together with the readings that caused them;
``pg_notify`` is transactional, so listeners hear of an alarm only once it is committed.
"""

from __future__ import annotations

import math

import orjson
import psycopg

from minewatch.alarms.codes import category_of
from minewatch.alarms.episodes import EpisodeChange
from minewatch.alarms.incidents import NEVER, Incident, IncidentChange, Member
from minewatch.registry import PointRegistry
from minewatch.timeutil import us_to_datetime

ALARM_CHANNEL = "minewatch_alarms"

_INSERT = """
INSERT INTO alarms (mine_code, point_id, rule, abnormal_type, classification, state, started_at,
                    ended_at, raised_at, threshold, start_value, max_value, max_at, min_value,
                    min_at, value_sum, value_count)
SELECT p.mine_code, p.id, %(rule)s, %(abnormal_type)s,
       coalesce(%(classification)s::text, 'exceedance'),
       CASE WHEN %(ended_at)s::timestamptz IS NULL THEN 'raised' ELSE 'cleared' END,
       %(started_at)s, %(ended_at)s, %(raised_at)s, %(threshold)s, %(start_value)s,
       %(max_value)s, %(max_at)s, %(min_value)s, %(min_at)s, %(value_sum)s, %(count)s
FROM points p WHERE p.id = %(point_id)s
"""

_UPDATE = """
UPDATE alarms SET
    value_count = value_count + %(count)s,
    value_sum = value_sum + %(value_sum)s,
    max_at = CASE WHEN %(max_value)s > max_value THEN %(max_at)s ELSE max_at END,
    max_value = greatest(max_value, %(max_value)s),
    min_at = CASE WHEN %(min_value)s < min_value THEN %(min_at)s ELSE min_at END,
    min_value = least(min_value, %(min_value)s),
    ended_at = %(ended_at)s,
    classification = coalesce(%(classification)s::text, classification),
    state = CASE WHEN %(ended_at)s::timestamptz IS NOT NULL
                  AND state IN ('raised', 'acknowledged') THEN 'cleared' ELSE state END,
    updated_at = now()
WHERE point_id = %(point_id)s AND rule = %(rule)s AND ended_at IS NULL
"""

_NOTIFY = "SELECT pg_notify(%s, %s)"


def _params(change: EpisodeChange) -> dict[str, object]:
    return {
        "point_id": change.point_id,
        "rule": change.rule,
        "abnormal_type": change.abnormal_type,
        "started_at": (
            us_to_datetime(change.started_at_us)
            if change.opened and change.started_at_us is not None
            else None
        ),
        "ended_at": us_to_datetime(change.ended_at_us) if change.ended_at_us else None,
        "threshold": change.threshold,
        "start_value": change.start_value,
        "max_value": change.max_value,
        "max_at": us_to_datetime(change.max_at_us),
        "min_value": change.min_value,
        "min_at": us_to_datetime(change.min_at_us),
        "value_sum": change.value_sum,
        "count": change.count,
        "classification": change.classification,
        "raised_at": us_to_datetime(change.raised_at_us) if change.raised_at_us else None,
    }


def alarm_events(change: EpisodeChange, registry: PointRegistry) -> list[dict[str, object]]:
    """The events of one change as the live notification carries them (raised, cleared)."""
    base: dict[str, object] = {
        "mine": registry.mine_code[change.point_id],
        "point_id": change.point_id,
        "point": registry.code[change.point_id],
        "rule": change.rule,
        "abnormal_type": change.abnormal_type,
        "category": category_of(change.rule).value,
    }
    if change.classification is not None:
        base["classification"] = change.classification
    if change.related_point_id is not None:
        base["related_point"] = registry.code[change.related_point_id]
    events: list[dict[str, object]] = []
    if change.opened:
        events.append(
            {
                **base,
                "event": "raised",
                "time": us_to_datetime(change.started_at_us or 0),
                "value": change.start_value,
                "threshold": change.threshold,
                "raised_at": us_to_datetime(change.raised_at_us or change.started_at_us or 0),
            }
        )
    if change.ended_at_us is not None:
        events.append({**base, "event": "cleared", "time": us_to_datetime(change.ended_at_us)})
    return events


async def write_changes(
    cur: psycopg.AsyncCursor,
    changes: list[EpisodeChange],
    registry: PointRegistry,
    incidents: list[IncidentChange] | None = None,
) -> None:
    """Store episode changes, then the incidents they changed, and queue their
    notifications, in the cursor's transaction."""
    await _write_episodes(cur, changes, registry)
    if incidents:
        await write_incidents(cur, incidents, registry)


async def _write_episodes(
    cur: psycopg.AsyncCursor, changes: list[EpisodeChange], registry: PointRegistry
) -> None:
    if not changes:
        return
    inserts = [_params(c) for c in changes if c.opened]
    updates = [_params(c) for c in changes if not c.opened]
    # Updates first: an episode that ends and a new one that opens for the same point in one
    # batch must free the one-open-episode index before the insert.
    if updates:
        await cur.executemany(_UPDATE, updates)
    if inserts:
        await cur.executemany(_INSERT, inserts)
    events = [e for c in changes for e in alarm_events(c, registry)]
    notes = [(ALARM_CHANNEL, orjson.dumps(e).decode()) for e in events]
    if notes:
        await cur.executemany(_NOTIFY, notes)


_UPSERT_INCIDENT = """
INSERT INTO incidents (mine_code, root_point_id, root_rule, category, grade, started_at,
                       raised_at, ended_at, peak_value, peak_at, peak_point_id, state,
                       computed_late)
VALUES (%(mine)s, %(point)s, %(rule)s, %(category)s, %(grade)s, %(started_at)s, %(raised_at)s,
        %(ended_at)s, %(peak)s, %(peak_at)s, %(peak_point)s,
        CASE WHEN %(ended_at)s::timestamptz IS NULL THEN 'raised' ELSE 'cleared' END,
        %(computed_late)s)
ON CONFLICT (root_point_id, root_rule, started_at) DO UPDATE SET
    -- the grade only rises: a fused alarm may have raised it (alarms/fusion_store.py)
    grade = CASE WHEN array_position(ARRAY['blue', 'yellow', 'orange', 'red'], EXCLUDED.grade)
                      > array_position(ARRAY['blue', 'yellow', 'orange', 'red'], incidents.grade)
                 THEN EXCLUDED.grade ELSE incidents.grade END,
    ended_at = EXCLUDED.ended_at, peak_value = EXCLUDED.peak_value,
    peak_at = EXCLUDED.peak_at, peak_point_id = EXCLUDED.peak_point_id,
    state = CASE WHEN EXCLUDED.ended_at IS NOT NULL AND incidents.state IN ('raised',
                 'acknowledged') THEN 'cleared' ELSE incidents.state END,
    updated_at = now()
RETURNING id
"""
# Members by their natural key; an alarm raised and ended in one batch is found all the same.
_MEMBERS = """
INSERT INTO incident_members (incident_id, alarm_id)
SELECT %(incident)s, a.id FROM alarms a
WHERE a.point_id = %(point)s AND a.rule = %(rule)s AND a.started_at = %(started_at)s
ON CONFLICT DO NOTHING
RETURNING alarm_id
"""


async def write_incidents(
    cur: psycopg.AsyncCursor,
    incidents: list[IncidentChange],
    registry: PointRegistry,
    computed_late: bool = False,
) -> None:
    """Store incident changes (after the alarm changes they group: members are found by their
    point, rule and start) and notify each as an ``incident`` event with its member ids.
    ``computed_late``: the changes come from episodes computed late (alarms/late_incidents.py):
    an incident they open is marked so, and so are the events."""
    for change in incidents:
        i = change.incident
        point, rule, started = i.key
        await cur.execute(_UPSERT_INCIDENT, {
            "mine": registry.mine_code[point], "point": point, "rule": rule,
            "category": i.category, "grade": i.grade, "started_at": us_to_datetime(started),
            "raised_at": us_to_datetime(i.raised_us),
            "ended_at": None if i.closed_at_us is None else us_to_datetime(i.closed_at_us),
            "peak": i.peak if i.peak_point is not None else None,
            "peak_at": us_to_datetime(i.peak_at_us) if i.peak_point is not None else None,
            "peak_point": i.peak_point, "computed_late": computed_late,
        })  # fmt: skip
        row = await cur.fetchone()
        assert row is not None
        incident_id = int(row[0])
        members = [
            {"incident": incident_id, "point": m.point, "rule": m.rule,
             "started_at": us_to_datetime(m.start_us)}
            for m in i.members
        ]  # fmt: skip
        await cur.executemany(_MEMBERS, members)
        ids = await cur.execute(
            "SELECT alarm_id FROM incident_members WHERE incident_id = %s ORDER BY alarm_id",
            (incident_id,),
        )
        event = {
            "kind": "incident",
            "event": change.event,
            "id": incident_id,
            "mine": registry.mine_code[point],
            "root_point": registry.code[point],
            "root_rule": rule,
            "grade": i.grade,
            "time": us_to_datetime(i.closed_at_us if i.closed_at_us is not None else started),
            "members": [int(r[0]) for r in await ids.fetchall()],
            "peak": i.peak if i.peak_point is not None else None,
        }
        if computed_late:
            event["computed_late"] = True
        await cur.execute(_NOTIFY, (ALARM_CHANNEL, orjson.dumps(event).decode()))


_OPEN_INCIDENTS = """
SELECT i.root_point_id, i.root_rule, (EXTRACT(EPOCH FROM i.started_at) * 1000000)::bigint,
       i.category, i.grade, i.peak_value, (EXTRACT(EPOCH FROM i.peak_at) * 1000000)::bigint,
       i.peak_point_id,
       a.point_id, a.rule, a.classification,
       (EXTRACT(EPOCH FROM a.started_at) * 1000000)::bigint,
       (EXTRACT(EPOCH FROM coalesce(a.raised_at, a.started_at)) * 1000000)::bigint,
       (EXTRACT(EPOCH FROM a.ended_at) * 1000000)::bigint, a.max_value,
       (EXTRACT(EPOCH FROM a.max_at) * 1000000)::bigint
FROM incidents i JOIN incident_members m ON m.incident_id = i.id JOIN alarms a ON a.id = m.alarm_id
WHERE i.ended_at IS NULL
ORDER BY i.raised_at, i.id, a.raised_at, a.id
"""


async def load_incident_state(
    conn: psycopg.AsyncConnection,
) -> tuple[dict[str, float], list[Incident]]:
    """(each mine's incident off-delay where set, the incidents still open with their members)
    to rebuild the engine's incident tracker after a restart."""
    cur = await conn.execute(
        "SELECT code, incident_off_delay_s FROM mines WHERE incident_off_delay_s IS NOT NULL"
    )
    off_delays = {str(r[0]): float(r[1]) for r in await cur.fetchall()}
    cur = await conn.execute(_OPEN_INCIDENTS)
    incidents: dict[tuple[int, str, int], Incident] = {}
    for r in await cur.fetchall():
        key = (int(r[0]), str(r[1]), int(r[2]))
        if key not in incidents:
            incidents[key] = Incident(
                key, str(r[3]), [], str(r[4]),
                peak=-math.inf if r[5] is None else float(r[5]),
                peak_at_us=NEVER if r[6] is None else int(r[6]),
                peak_point=None if r[7] is None else int(r[7]),
            )  # fmt: skip
        incidents[key].members.append(
            Member(int(r[8]), str(r[9]), str(r[10]), int(r[11]), int(r[12]),
                   None if r[13] is None else int(r[13]),
                   -math.inf if r[14] is None else float(r[14]),
                   NEVER if r[15] is None else int(r[15]))
        )  # fmt: skip
    return off_delays, list(incidents.values())


async def load_engine_state(
    conn: psycopg.AsyncConnection,
) -> tuple[list[tuple[int, str, int]], list[tuple[int, int, float]]]:
    """(open episodes, latest reading per point) to rebuild the engine after a restart.

    Episodes are (point id, rule, started_at in us); readings (point id, time in us, value).
    """
    cur = await conn.execute(
        "SELECT point_id, rule, (EXTRACT(EPOCH FROM started_at) * 1000000)::bigint "
        "FROM alarms WHERE ended_at IS NULL AND point_id IS NOT NULL"  # people/areas: not ours
    )
    open_episodes = [(int(r[0]), str(r[1]), int(r[2])) for r in await cur.fetchall()]
    cur = await conn.execute(
        "SELECT p.id, (EXTRACT(EPOCH FROM last.time) * 1000000)::bigint, last.value "
        "FROM points p CROSS JOIN LATERAL (SELECT time, value FROM readings r "
        "WHERE r.point_id = p.id AND r.flags & 3 = 0 ORDER BY time DESC LIMIT 1) last"
    )
    last_times = [(int(r[0]), int(r[1]), float(r[2])) for r in await cur.fetchall()]
    return open_episodes, last_times
