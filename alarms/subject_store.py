"""Persistence of alarms whose subject is a person, an area or the mine (personnel and output
rules), with the same live notification as the point alarms (alarms/store.py).

Changes are written in the caller's transaction, with the data they derive from. The database
has the last word on "one open episode per subject and rule" (``alarms_one_open_idx``): a raise
that finds an open episode inserts nothing and notifies nothing, a clear that finds none
likewise, so a notification always means a committed change.
"""

from __future__ import annotations

import orjson
import psycopg

from minewatch.alarms.rules import output, personnel
from minewatch.alarms.rules.personnel import (
    AreaInfo,
    MineLimits,
    OpenEpisode,
    PersonnelAlarms,
    RuleInfo,
    SubjectChange,
)
from minewatch.alarms.store import ALARM_CHANNEL
from minewatch.timeutil import datetime_to_us, us_to_datetime

#: Every subject rule (personnel and output) -> what its episodes are.
SUBJECT_RULES: dict[str, RuleInfo] = {**personnel.RULES, **output.RULES}

_RAISE = """
INSERT INTO alarms (mine_code, subject_kind, subject_code, rule, abnormal_type, classification,
                    state, started_at, raised_at, threshold, start_value, max_value, max_at,
                    min_value, min_at, value_sum, value_count)
VALUES (%(mine)s, %(kind)s, %(code)s, %(rule)s, %(abnormal_type)s, %(classification)s,
        'raised', %(time)s, %(raised_at)s, %(threshold)s, %(value)s, %(value)s, %(time)s,
        %(value)s, %(time)s, %(value)s, 1)
ON CONFLICT (subject_kind, subject_key, rule) WHERE ended_at IS NULL DO NOTHING
RETURNING id
"""

_UPDATE = """
UPDATE alarms SET max_at = CASE WHEN %(value)s > max_value THEN %(time)s ELSE max_at END,
    max_value = greatest(max_value, %(value)s), value_sum = value_sum + %(value)s,
    value_count = value_count + 1, updated_at = now()
WHERE subject_kind = %(kind)s AND subject_code = %(code)s AND rule = %(rule)s
  AND ended_at IS NULL
"""

_CLEAR = """
UPDATE alarms SET ended_at = greatest(%(time)s, started_at),
    state = CASE WHEN state IN ('raised', 'acknowledged') THEN 'cleared' ELSE state END,
    updated_at = now()
WHERE subject_kind = %(kind)s AND subject_code = %(code)s AND rule = %(rule)s
  AND ended_at IS NULL
RETURNING id, ended_at
"""


def _params(change: SubjectChange) -> dict[str, object]:
    info = SUBJECT_RULES[change.rule]
    return {
        "mine": change.mine, "kind": change.kind, "code": change.code, "rule": change.rule,
        "abnormal_type": info.abnormal_type, "classification": info.classification,
        "time": us_to_datetime(change.time_us), "value": change.value,
        "threshold": change.threshold,
        "raised_at": us_to_datetime(change.raised_at_us or change.time_us),
    }  # fmt: skip


def _event(change: SubjectChange, alarm_id: int, time: object) -> str:
    info = SUBJECT_RULES[change.rule]
    event: dict[str, object] = {
        "id": alarm_id, "mine": change.mine, "subject_kind": change.kind,
        "subject_code": change.code, "point_id": None, "point": None, "rule": change.rule,
        "abnormal_type": info.abnormal_type, "category": info.category,
        "classification": info.classification, "event": change.event, "time": time,
    }  # fmt: skip
    if change.event == "raised":
        event.update(value=change.value, threshold=change.threshold,
                     raised_at=us_to_datetime(change.raised_at_us or change.time_us))  # fmt: skip
    return orjson.dumps(event).decode()


async def write_subject_changes(cur: psycopg.AsyncCursor, changes: list[SubjectChange]) -> int:
    """Store the changes in order and queue their notifications, in the cursor's transaction;
    returns how many raised or cleared an episode."""
    notes = []
    for change in changes:
        params = _params(change)
        if change.event == "updated":
            await cur.execute(_UPDATE, params)
            continue
        await cur.execute(_RAISE if change.event == "raised" else _CLEAR, params)
        row = await cur.fetchone()
        if row is not None:
            time = params["time"] if change.event == "raised" else row[1]
            notes.append((ALARM_CHANNEL, _event(change, int(row[0]), time)))
    if notes:
        await cur.executemany("SELECT pg_notify(%s, %s)", notes)
    return len(notes)


async def load_subject_alarms(conn: psycopg.AsyncConnection) -> PersonnelAlarms:
    """The open subject episodes, as stored: the rules' per-subject state after a restart."""
    cur = await conn.execute(
        "SELECT subject_kind, subject_code, rule, mine_code, started_at, max_value, "
        "coalesce(raised_at, started_at) FROM alarms "
        "WHERE ended_at IS NULL AND subject_kind <> 'point' AND rule = ANY(%s)",
        (list(SUBJECT_RULES),),
    )
    state = PersonnelAlarms()
    for kind, code, rule, mine, started, max_value, raised in await cur.fetchall():
        state.open[(str(kind), str(code), str(rule))] = OpenEpisode(
            str(mine), datetime_to_us(started), float(max_value), datetime_to_us(raised)
        )
    return state


async def load_mine_limits(conn: psycopg.AsyncConnection) -> dict[str, MineLimits]:
    """Every known mine's personnel limits (a mine absent from ``mines`` gets no alarms: its
    alarms could not reference it)."""
    cur = await conn.execute(
        "SELECT code, max_underground_h, max_underground_people, shift_starts, timezone FROM mines"
    )
    return {
        str(code): MineLimits(
            None if hours is None else round(float(hours) * 3600 * personnel.US),
            None if people is None else int(people),
            None if shifts is None else tuple(sorted({int(h) for h in shifts})),
            str(tz),
        )
        for code, hours, people, shifts, tz in await cur.fetchall()
    }


async def load_personnel_definitions(
    conn: psycopg.AsyncConnection,
) -> tuple[dict[str, dict[str, AreaInfo]], set[tuple[str, str]]]:
    """(current areas per mine, current leaders as (mine, card))."""
    cur = await conn.execute(
        "SELECT mine_code, area_code, area_type, approved_count FROM personnel_areas "
        "WHERE valid_to IS NULL"
    )
    areas: dict[str, dict[str, AreaInfo]] = {}
    for mine, code, kind, approved in await cur.fetchall():
        areas.setdefault(str(mine), {})[str(code)] = AreaInfo(
            str(kind), None if approved is None else int(approved)
        )
    cur = await conn.execute(
        "SELECT mine_code, card_code FROM personnel_people WHERE valid_to IS NULL AND is_leader"
    )
    leaders = {(str(m), str(c)) for m, c in await cur.fetchall()}
    return areas, leaders
