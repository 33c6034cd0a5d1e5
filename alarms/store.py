"""Persistence of alarm episodes and their live notification (PostgreSQL NOTIFY).

Changes are written in the caller's transaction, together with the readings that caused them;
``pg_notify`` is transactional, so listeners hear of an alarm only once it is committed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

import orjson
import psycopg

from minewatch.alarms.codes import category_of
from minewatch.alarms.episodes import EpisodeChange
from minewatch.alarms.incidents import NEVER, Incident, IncidentChange, Member
from minewatch.registry import PointRegistry
from minewatch.timeutil import us_to_datetime

ALARM_CHANNEL = "minewatch_alarms"
T = TypeVar("T")

# Every statement takes a whole batch of changes as arrays (``unnest``): a storm of changes
# (a city's points interrupted in one tick, issue 14) costs a few statements, not one each.
# Times travel as microseconds since the epoch (NULL: none), made timestamps by the database;
# the arrays in binary (``%b``): psycopg's text form of 20,000 notifications took 3 s to dump.
_US = "timestamptz 'epoch' + {} * interval '1 microsecond'"

_INSERT = f"""
INSERT INTO alarms (mine_code, point_id, rule, abnormal_type, classification, state, started_at,
                    ended_at, raised_at, threshold, start_value, max_value, max_at, min_value,
                    min_at, value_sum, value_count)
SELECT p.mine_code, p.id, c.rule, c.abnormal_type, coalesce(c.classification, 'exceedance'),
       CASE WHEN c.ended_us IS NULL THEN 'raised' ELSE 'cleared' END,
       {_US.format("c.started_us")}, {_US.format("c.ended_us")}, {_US.format("c.raised_us")},
       c.threshold, c.start_value, c.max_value, {_US.format("c.max_us")}, c.min_value,
       {_US.format("c.min_us")}, c.value_sum, c.count
FROM unnest(%(point_id)b::int[], %(rule)b::text[], %(abnormal_type)b::text[],
            %(classification)b::text[], %(started_us)b::int8[], %(ended_us)b::int8[],
            %(raised_us)b::int8[], %(threshold)b::float8[], %(start_value)b::float8[],
            %(max_value)b::float8[], %(max_us)b::int8[], %(min_value)b::float8[],
            %(min_us)b::int8[], %(value_sum)b::float8[], %(count)b::int8[])
     WITH ORDINALITY AS c(point_id, rule, abnormal_type, classification, started_us, ended_us,
                          raised_us, threshold, start_value, max_value, max_us, min_value,
                          min_us, value_sum, count, ord)
JOIN points p ON p.id = c.point_id
ORDER BY c.ord
"""

# One row per (point, rule) in a statement (:func:`_rounds`): an UPDATE ... FROM applies one
# of several matching rows only.
_UPDATE = f"""
UPDATE alarms a SET
    value_count = a.value_count + c.count,
    value_sum = a.value_sum + c.value_sum,
    max_at = CASE WHEN c.max_value > a.max_value THEN {_US.format("c.max_us")} ELSE a.max_at END,
    max_value = greatest(a.max_value, c.max_value),
    min_at = CASE WHEN c.min_value < a.min_value THEN {_US.format("c.min_us")} ELSE a.min_at END,
    min_value = least(a.min_value, c.min_value),
    ended_at = {_US.format("c.ended_us")},
    classification = coalesce(c.classification, a.classification),
    state = CASE WHEN c.ended_us IS NOT NULL
                  AND a.state IN ('raised', 'acknowledged') THEN 'cleared' ELSE a.state END,
    updated_at = now()
FROM unnest(%(point_id)b::int[], %(rule)b::text[], %(classification)b::text[],
            %(ended_us)b::int8[], %(max_value)b::float8[], %(max_us)b::int8[],
            %(min_value)b::float8[], %(min_us)b::int8[], %(value_sum)b::float8[],
            %(count)b::int8[])
     AS c(point_id, rule, classification, ended_us, max_value, max_us, min_value, min_us,
          value_sum, count)
WHERE a.point_id = c.point_id AND a.rule = c.rule AND a.ended_at IS NULL
"""

#: notifications, in their order, one statement
_NOTIFY = "SELECT pg_notify(%s, note) FROM unnest(%b::text[]) WITH ORDINALITY AS n(note, ord)"

_COLUMNS = {
    "point_id": lambda c: c.point_id,
    "rule": lambda c: c.rule,
    "abnormal_type": lambda c: c.abnormal_type,
    "classification": lambda c: c.classification,
    "started_us": lambda c: c.started_at_us if c.opened else None,
    "ended_us": lambda c: c.ended_at_us or None,
    "raised_us": lambda c: c.raised_at_us or None,
    "threshold": lambda c: _float(c.threshold),
    "start_value": lambda c: _float(c.start_value),
    "max_value": lambda c: _float(c.max_value),
    "max_us": lambda c: c.max_at_us,
    "min_value": lambda c: _float(c.min_value),
    "min_us": lambda c: c.min_at_us,
    "value_sum": lambda c: _float(c.value_sum),
    "count": lambda c: c.count,
}


def _float(value: float | None) -> float | None:
    """A float (an int would make psycopg dump the whole array as integers)."""
    return None if value is None else float(value)


_UPDATED = ("point_id", "rule", "classification", "ended_us", "max_value", "max_us",
            "min_value", "min_us", "value_sum", "count")  # fmt: skip


def _columns(changes: list[EpisodeChange], names: Iterable[str]) -> dict[str, list[object]]:
    """The changes as one array per column (the parameters of ``_INSERT``, ``_UPDATE``)."""
    return {name: [_COLUMNS[name](c) for c in changes] for name in names}


def _rounds(items: list[T], key: Callable[[T], Hashable]) -> list[list[T]]:
    """``items`` split into rounds in which each key occurs once, the items of one key in
    their order (the k-th of a key in round k); almost always one round."""
    seen: dict[Hashable, int] = {}
    rounds: list[list[T]] = []
    for item in items:
        k = seen[key(item)] = seen.get(key(item), -1) + 1
        if k == len(rounds):
            rounds.append([])
        rounds[k].append(item)
    return rounds


async def notify(cur: psycopg.AsyncCursor, events: list[dict[str, object]]) -> None:
    """Queue ``events`` on :data:`ALARM_CHANNEL` (sent at commit), in one statement."""
    if events:
        await cur.execute(_NOTIFY, (ALARM_CHANNEL, [orjson.dumps(e).decode() for e in events]))


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
    inserts = [c for c in changes if c.opened]
    updates = [c for c in changes if not c.opened]
    # Updates first: an episode that ends and a new one that opens for the same point in one
    # batch must free the one-open-episode index before the insert.
    for round_ in _rounds(updates, lambda c: (c.point_id, c.rule)):
        await cur.execute(_UPDATE, _columns(round_, _UPDATED))
    if inserts:
        await cur.execute(_INSERT, _columns(inserts, _COLUMNS))
    await notify(cur, [e for c in changes for e in alarm_events(c, registry)])


_UPSERT_INCIDENTS = f"""
INSERT INTO incidents (mine_code, root_point_id, root_rule, category, grade, started_at,
                       raised_at, ended_at, peak_value, peak_at, peak_point_id, state,
                       computed_late)
SELECT c.mine, c.point, c.rule, c.category, c.grade, {_US.format("c.started_us")},
       {_US.format("c.raised_us")}, {_US.format("c.ended_us")}, c.peak,
       {_US.format("c.peak_us")}, c.peak_point,
       CASE WHEN c.ended_us IS NULL THEN 'raised' ELSE 'cleared' END, %(computed_late)s
FROM unnest(%(mine)b::text[], %(point)b::int[], %(rule)b::text[], %(category)b::text[],
            %(grade)b::text[], %(started_us)b::int8[], %(raised_us)b::int8[],
            %(ended_us)b::int8[], %(peak)b::float8[], %(peak_us)b::int8[],
            %(peak_point)b::int[])
     WITH ORDINALITY AS c(mine, point, rule, category, grade, started_us, raised_us, ended_us,
                          peak, peak_us, peak_point, ord)
ORDER BY c.ord
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
RETURNING id, root_point_id, root_rule,
          (EXTRACT(EPOCH FROM started_at - timestamptz 'epoch') * 1000000)::bigint
"""
# Members by their natural key; an alarm raised and ended in one batch is found all the same.
_MEMBERS = f"""
INSERT INTO incident_members (incident_id, alarm_id)
SELECT m.incident, a.id
FROM unnest(%(incident)b::int8[], %(point)b::int[], %(rule)b::text[], %(started_us)b::int8[])
     AS m(incident, point, rule, started_us)
JOIN alarms a ON a.point_id = m.point AND a.rule = m.rule
             AND a.started_at = {_US.format("m.started_us")}
ON CONFLICT DO NOTHING
"""
_MEMBER_IDS = """
SELECT incident_id, array_agg(alarm_id ORDER BY alarm_id) FROM incident_members
WHERE incident_id = ANY(%b) GROUP BY incident_id
"""


async def write_incidents(
    cur: psycopg.AsyncCursor,
    incidents: list[IncidentChange],
    registry: PointRegistry,
    computed_late: bool = False,
) -> None:
    """Store incident changes and the members each added (``IncidentChange.added``; after the
    alarm changes they group: members are found by their point, rule and start), and notify
    each as an ``incident`` event with all its member ids.
    ``computed_late``: the changes come from episodes computed late (alarms/late_incidents.py):
    an incident they open is marked so, and so are the events. A few statements whatever
    the number of incidents and members (one round per change of the same incident)."""
    for round_ in _rounds(incidents, lambda change: change.incident.key):
        await _write_incident_round(cur, round_, registry, computed_late)


async def _write_incident_round(
    cur: psycopg.AsyncCursor,
    changes: list[IncidentChange],
    registry: PointRegistry,
    computed_late: bool,
) -> None:
    """Incident changes with distinct keys: upserted, their members, their events."""
    shown = [c.incident for c in changes]
    peaked = [i.peak_point is not None for i in shown]
    await cur.execute(_UPSERT_INCIDENTS, {
        "mine": [registry.mine_code[i.key[0]] for i in shown],
        "point": [i.key[0] for i in shown], "rule": [i.key[1] for i in shown],
        "category": [i.category for i in shown], "grade": [i.grade for i in shown],
        "started_us": [i.key[2] for i in shown], "raised_us": [i.raised_us for i in shown],
        "ended_us": [i.closed_at_us for i in shown],
        "peak": [float(i.peak) if p else None for i, p in zip(shown, peaked, strict=True)],
        "peak_us": [i.peak_at_us if p else None for i, p in zip(shown, peaked, strict=True)],
        "peak_point": [i.peak_point for i in shown], "computed_late": computed_late,
    })  # fmt: skip
    ids = {(int(r[1]), str(r[2]), int(r[3])): int(r[0]) for r in await cur.fetchall()}
    # Only the members these changes added: the others were stored with the change that
    # added them (issue 14: an incident of hundreds of members is touched by one more).
    members = [(ids[c.incident.key], m) for c in changes for m in c.added]
    if members:
        await cur.execute(_MEMBERS, {
            "incident": [k for k, _ in members], "point": [m.point for _, m in members],
            "rule": [m.rule for _, m in members], "started_us": [m.start_us for _, m in members],
        })  # fmt: skip
    await cur.execute(_MEMBER_IDS, (list(ids.values()),))
    member_ids = {int(r[0]): [int(a) for a in r[1]] for r in await cur.fetchall()}
    await notify(cur, [
        _incident_event(c, ids[c.incident.key], member_ids.get(ids[c.incident.key], []),
                        registry, computed_late)
        for c in changes
    ])  # fmt: skip


def _incident_event(
    change: IncidentChange, incident_id: int, members: list[int], registry: PointRegistry,
    computed_late: bool,
) -> dict[str, object]:  # fmt: skip
    i = change.incident
    point, rule, started = i.key
    event: dict[str, object] = {
        "kind": "incident",
        "event": change.event,
        "id": incident_id,
        "mine": registry.mine_code[point],
        "root_point": registry.code[point],
        "root_rule": rule,
        "grade": i.grade,
        "time": us_to_datetime(i.closed_at_us if i.closed_at_us is not None else started),
        "members": members,
        "peak": i.peak if i.peak_point is not None else None,
    }
    if computed_late:
        event["computed_late"] = True
    return event


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
