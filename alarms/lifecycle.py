"""An alarm's life after the engine raised it: acknowledgement, shelving, disposal, escalation.

States: ``raised`` -> ``acknowledged`` (a dispatcher saw it) -> ``cleared`` (the condition
ended; the engine sets this) -> ``disposed`` (cause, measures, handler and time recorded: the
YCBJ 异常原因/处理措施/录入人/录入时间). An alarm that clears before anyone acknowledged it stays
``cleared`` with no acknowledgement until one is recorded. Every change is a ``pg_notify`` on
the alarm channel, so live screens follow.

The rules a control room needs, enforced here and in the database:

- Shelving hides an alarm from the live view until its expiry (it returns by itself). How long
  and how often an alarm of each grade may be shelved, whether it must be acknowledged first
  and whether a machine client may shelve it are data (``alarm_shelve_rules``; red: 60 minutes,
  twice, acknowledged first, people only). An alarm already shelved cannot be shelved again
  until it is unshelved or its shelving ends: a shelving never overwrites an earlier one, and
  every shelving is kept (``alarm_shelvings``).
- A shelved red alarm still escalates when nobody acknowledged it in time.
- Disposal needs an acknowledgement first, and an alarm still active is disposed only with a
  reason (``open_reason``). A disposal is amended, never overwritten silently: the alarm shows
  the amended cause and measures, and the caller's ``record`` hook keeps the earlier ones.

Every step runs in one transaction with the alarm's row locked, and calls ``record`` (the
audit log) inside it: a step whose record cannot be written does not happen.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
import psycopg
from psycopg.rows import dict_row

from minewatch.alarms.store import ALARM_CHANNEL


class LifecycleError(Exception):
    """The alarm does not exist, the caller may not take the step, or the rules forbid it."""

    def __init__(self, message: str, *, missing: bool = False, forbidden: bool = False) -> None:
        super().__init__(message)
        self.missing = missing
        self.forbidden = forbidden


class Action(enum.StrEnum):
    ACKNOWLEDGED = "acknowledged"
    SHELVED = "shelved"
    UNSHELVED = "unshelved"
    DISPOSED = "disposed"
    AMENDED = "amended"
    ESCALATED = "escalated"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who takes a step: the signed-in identity, never a free-text name."""

    name: str  # username, or key:<id> for a machine client
    is_person: bool  # signed in with a password (not an API key)


Row = dict[str, object]
#: Writes the audit record of a step, in the step's transaction: (conn, action, alarm after
#: the step, what the step was given and what it replaced).
Recorder = Callable[[psycopg.AsyncConnection, Action, Row, Row], Awaitable[None]]

_COLUMNS = (
    "id", "mine_code", "point_id", "rule", "state", "grade", "acknowledged_at",
    "acknowledged_by", "shelved_by", "shelved_until", "shelved_reason", "disposed_at", "cause",
    "measures", "handled_by", "disposed_open_reason", "escalated_at", "ended_at",
)  # fmt: skip
_RETURNING = "RETURNING " + ", ".join(_COLUMNS)

_LOCK = f"""
SELECT {", ".join(_COLUMNS)}, (shelved_until > now()) AS shelved_now,
       (SELECT count(*) FROM alarm_shelvings s WHERE s.alarm_id = alarms.id)::int AS shelvings
FROM alarms WHERE id = %(id)s FOR UPDATE"""

_ACKNOWLEDGE = f"""
UPDATE alarms SET acknowledged_at = now(), acknowledged_by = %(by)s,
    state = CASE WHEN state = 'raised' THEN 'acknowledged' ELSE state END, updated_at = now()
WHERE id = %(id)s
{_RETURNING}"""

_SHELVE = f"""
WITH kept AS (
    INSERT INTO alarm_shelvings (alarm_id, by_actor, reason, until)
    VALUES (%(id)s, %(by)s, %(reason)s, now() + %(length)s)
)
UPDATE alarms SET shelved_by = %(by)s, shelved_reason = %(reason)s,
    shelved_until = now() + %(length)s, updated_at = now()
WHERE id = %(id)s
{_RETURNING}"""

_UNSHELVE = f"""
WITH ended AS (
    UPDATE alarm_shelvings SET ended_at = now()
    WHERE alarm_id = %(id)s AND ended_at IS NULL AND until > now()
)
UPDATE alarms SET shelved_until = NULL, updated_at = now()
WHERE id = %(id)s
{_RETURNING}"""

_DISPOSE = f"""
UPDATE alarms SET state = 'disposed', cause = %(cause)s, measures = %(measures)s,
    handled_by = %(by)s, disposed_open_reason = %(open_reason)s, disposed_at = now(),
    updated_at = now()
WHERE id = %(id)s
{_RETURNING}"""

_AMEND = f"""
UPDATE alarms SET cause = %(cause)s, measures = %(measures)s, updated_at = now()
WHERE id = %(id)s
{_RETURNING}"""

# Red alarms escalate whether shelved or not: shelving must not hide a power cut.
_ESCALATE = f"""
UPDATE alarms a SET escalated_at = now(), updated_at = now()
FROM alarm_grade_rules g
WHERE a.acknowledged_at IS NULL AND a.escalated_at IS NULL AND a.state <> 'disposed'
  AND g.grade = a.grade AND g.escalate_after_s IS NOT NULL
  AND g.rule IN (a.rule, '*') AND g.classification IN (a.classification, '*')
  AND coalesce(a.raised_at, a.started_at) + make_interval(secs => g.escalate_after_s) <= now()
  AND (a.grade = 'red' OR a.shelved_until IS NULL OR a.shelved_until <= now())
RETURNING {", ".join(f"a.{c}" for c in _COLUMNS)}"""


async def _locked(conn: psycopg.AsyncConnection, alarm_id: int) -> Row:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_LOCK, {"id": alarm_id})
    row = await cur.fetchone()
    if row is None:
        raise LifecycleError(f"alarm {alarm_id} does not exist", missing=True)
    return row


async def _step(
    conn: psycopg.AsyncConnection, sql: str, params: Row, action: Action, record: Recorder,
    detail: Row,
) -> Row:  # fmt: skip
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(sql, params)
    row = await cur.fetchone()
    assert row is not None  # the row is locked: it cannot have gone
    await record(conn, action, row, detail)
    await _notify(conn, row, action)
    return row


async def _notify(conn: psycopg.AsyncConnection, row: Row, action: Action) -> None:
    event = {
        "event": action.value,
        "id": row["id"],
        "mine": row["mine_code"],
        "point_id": row["point_id"],
        "rule": row["rule"],
        "state": row["state"],
        "grade": row["grade"],
        "time": dt.datetime.now(dt.UTC),
    }
    await conn.execute("SELECT pg_notify(%s, %s)", (ALARM_CHANNEL, orjson.dumps(event).decode()))


def _refuse(alarm: Row, message: str) -> LifecycleError:
    return LifecycleError(f"alarm {alarm['id']}: {message}")


async def acknowledge(
    conn: psycopg.AsyncConnection, alarm_id: int, actor: Actor, record: Recorder
) -> Row:
    """Once; refused when already acknowledged or disposed."""
    async with conn.transaction():
        alarm = await _locked(conn, alarm_id)
        if alarm["acknowledged_at"] is not None or alarm["state"] == "disposed":
            raise _refuse(alarm, f"cannot be acknowledged (state {alarm['state']})")
        params = {"id": alarm_id, "by": actor.name}
        return await _step(conn, _ACKNOWLEDGE, params, Action.ACKNOWLEDGED, record, {})


@dataclass(frozen=True, slots=True)
class ShelveRule:
    max_minutes: float
    max_shelvings: int | None
    needs_ack: bool
    people_only: bool


async def _shelve_rule(conn: psycopg.AsyncConnection, grade: object) -> ShelveRule | None:
    cur = await conn.execute(
        "SELECT max_minutes, max_shelvings, needs_ack, people_only FROM alarm_shelve_rules "
        "WHERE grade = %(grade)s",
        {"grade": grade},
    )
    row = await cur.fetchone()
    return None if row is None else ShelveRule(*row)


def _check_shelving(alarm: Row, rule: ShelveRule | None, actor: Actor, minutes: float) -> None:
    if alarm["state"] == "disposed":
        raise _refuse(alarm, "is disposed")
    if alarm["shelved_now"]:
        raise _refuse(alarm, f"is already shelved until {alarm['shelved_until']}; unshelve first")
    if rule is None:
        return
    grade = alarm["grade"]
    if rule.people_only and not actor.is_person:
        raise LifecycleError(f"a {grade} alarm is shelved by a person, not a machine client",
                             forbidden=True)  # fmt: skip
    if rule.needs_ack and alarm["acknowledged_at"] is None:
        raise _refuse(alarm, f"a {grade} alarm must be acknowledged before it is shelved")
    if minutes > rule.max_minutes:
        raise _refuse(alarm, f"a {grade} alarm is shelved for {rule.max_minutes:g} min at most")
    if rule.max_shelvings is not None and int(alarm["shelvings"]) >= rule.max_shelvings:  # type: ignore[call-overload]
        raise _refuse(alarm, f"a {grade} alarm is shelved {rule.max_shelvings} times at most")


async def shelve(
    conn: psycopg.AsyncConnection, alarm_id: int, actor: Actor, reason: str, minutes: float,
    record: Recorder,
) -> Row:  # fmt: skip
    """Hide from the live view for ``minutes``, within the rules of the alarm's grade."""
    async with conn.transaction():
        alarm = await _locked(conn, alarm_id)
        _check_shelving(alarm, await _shelve_rule(conn, alarm["grade"]), actor, minutes)
        params = {"id": alarm_id, "by": actor.name, "reason": reason,
                  "length": dt.timedelta(minutes=minutes)}  # fmt: skip
        detail = {"reason": reason, "minutes": minutes}
        return await _step(conn, _SHELVE, params, Action.SHELVED, record, detail)


async def unshelve(
    conn: psycopg.AsyncConnection, alarm_id: int, actor: Actor, record: Recorder
) -> Row:
    """Back in the live view now; refused when the alarm is not shelved."""
    async with conn.transaction():
        alarm = await _locked(conn, alarm_id)
        if not alarm["shelved_now"]:
            raise _refuse(alarm, "is not shelved")
        return await _step(conn, _UNSHELVE, {"id": alarm_id}, Action.UNSHELVED, record, {})


async def dispose(
    conn: psycopg.AsyncConnection, alarm_id: int, actor: Actor, cause: str, measures: str,
    open_reason: str | None, record: Recorder,
) -> Row:  # fmt: skip
    """The disposal record; once, after an acknowledgement, and while the alarm is still
    active only with ``open_reason``."""
    async with conn.transaction():
        alarm = await _locked(conn, alarm_id)
        if alarm["state"] == "disposed":
            raise _refuse(alarm, "is already disposed; amend the disposal instead")
        if alarm["acknowledged_at"] is None:
            raise _refuse(alarm, "must be acknowledged before it is disposed")
        if alarm["ended_at"] is None and not open_reason:
            raise _refuse(alarm, "is still active: dispose it after it clears, or give "
                                 "open_reason")  # fmt: skip
        params = {"id": alarm_id, "by": actor.name, "cause": cause, "measures": measures,
                  "open_reason": open_reason if alarm["ended_at"] is None else None}  # fmt: skip
        detail: Row = {"cause": cause, "measures": measures, "open_reason": open_reason}
        return await _step(conn, _DISPOSE, params, Action.DISPOSED, record, detail)


async def amend(
    conn: psycopg.AsyncConnection, alarm_id: int, actor: Actor, cause: str, measures: str,
    reason: str, record: Recorder,
) -> Row:  # fmt: skip
    """Correct a disposal's cause and measures; the record keeps what they were and why."""
    async with conn.transaction():
        alarm = await _locked(conn, alarm_id)
        if alarm["state"] != "disposed":
            raise _refuse(alarm, "is not disposed: nothing to amend")
        detail = {
            "reason": reason, "cause": cause, "measures": measures,
            "previous_cause": alarm["cause"], "previous_measures": alarm["measures"],
        }  # fmt: skip
        params = {"id": alarm_id, "cause": cause, "measures": measures}
        return await _step(conn, _AMEND, params, Action.AMENDED, record, detail)


async def escalate_due(conn: psycopg.AsyncConnection) -> list[Row]:
    """Escalate every alarm whose grade's acknowledgement deadline passed; notify each."""
    async with conn.transaction():
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(_ESCALATE)
        rows = await cur.fetchall()
        for row in rows:
            await _notify(conn, row, Action.ESCALATED)
    return rows


# -- incidents (issue 13): one step on the incident does its members --------------------------

_INCIDENT_COLUMNS = (
    "id", "mine_code", "root_point_id", "root_rule", "state", "grade", "started_at",
    "ended_at", "acknowledged_at", "acknowledged_by",
)  # fmt: skip
_LOCK_INCIDENT = (
    "SELECT " + ", ".join(_INCIDENT_COLUMNS) + " FROM incidents WHERE id = %(id)s FOR UPDATE"
)
_MEMBER_IDS = "SELECT alarm_id FROM incident_members WHERE incident_id = %(id)s ORDER BY alarm_id"
_ACKNOWLEDGE_INCIDENT = (
    "UPDATE incidents SET acknowledged_at = now(), acknowledged_by = %(by)s, "
    "state = CASE WHEN state = 'raised' THEN 'acknowledged' ELSE state END, updated_at = now() "
    "WHERE id = %(id)s RETURNING " + ", ".join(_INCIDENT_COLUMNS)
)
_ACKNOWLEDGE_MEMBERS = """
UPDATE alarms SET acknowledged_at = now(), acknowledged_by = %(by)s,
    state = CASE WHEN state = 'raised' THEN 'acknowledged' ELSE state END, updated_at = now()
WHERE id = ANY(%(ids)s) AND acknowledged_at IS NULL AND state <> 'disposed'
RETURNING id"""
_DISPOSE_INCIDENT = (
    "UPDATE incidents SET state = 'disposed', updated_at = now() WHERE id = %(id)s "
    "RETURNING " + ", ".join(_INCIDENT_COLUMNS)
)
_DISPOSE_MEMBERS = """
UPDATE alarms SET state = 'disposed', cause = %(cause)s, measures = %(measures)s,
    handled_by = %(by)s, disposed_at = now(), updated_at = now(),
    disposed_open_reason = CASE WHEN ended_at IS NULL THEN %(open_reason)s END,
    acknowledged_at = coalesce(acknowledged_at, now()),
    acknowledged_by = coalesce(acknowledged_by, %(by)s)
WHERE id = ANY(%(ids)s) AND state <> 'disposed'
RETURNING id"""


async def _locked_incident(
    conn: psycopg.AsyncConnection, incident_id: int
) -> tuple[Row, list[int]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_LOCK_INCIDENT, {"id": incident_id})
    row = await cur.fetchone()
    if row is None:
        raise LifecycleError(f"incident {incident_id} does not exist", missing=True)
    ids = await conn.execute(_MEMBER_IDS, {"id": incident_id})
    members = [int(r[0]) for r in await ids.fetchall()]
    # the members too, in id order: a step on one of them waits (no half-done incident)
    await conn.execute("SELECT id FROM alarms WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
                       (members,))  # fmt: skip
    return row, members


async def _incident_step(
    conn: psycopg.AsyncConnection, sql: str, members_sql: str, params: Row, action: Action,
    record: Recorder, detail: Row,
) -> Row:  # fmt: skip
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(members_sql, params)
    done = [int(r["id"]) for r in await cur.fetchall()]
    await cur.execute(sql, params)
    row = await cur.fetchone()
    assert row is not None  # locked
    members = list(params["ids"])  # type: ignore[call-overload]
    # One record for the whole step, filed under the incident's first alarm (its root, or the
    # earliest stored), saying which incident and which of its alarms the step changed.
    filed = {"id": members[0] if members else None, "mine_code": row["mine_code"]}
    about = {**detail, "incident_id": row["id"], "members": members, "changed": done}
    await record(conn, action, filed, about)
    event = {
        "kind": "incident", "event": action.value, "id": row["id"], "mine": row["mine_code"],
        "state": row["state"], "grade": row["grade"], "members": members,
        "time": dt.datetime.now(dt.UTC),
    }  # fmt: skip
    await conn.execute("SELECT pg_notify(%s, %s)", (ALARM_CHANNEL, orjson.dumps(event).decode()))
    return row


async def acknowledge_incident(
    conn: psycopg.AsyncConnection, incident_id: int, actor: Actor, record: Recorder
) -> Row:
    """Acknowledge the incident and every member not acknowledged yet; one audit record."""
    async with conn.transaction():
        incident, members = await _locked_incident(conn, incident_id)
        if incident["acknowledged_at"] is not None or incident["state"] == "disposed":
            raise LifecycleError(
                f"incident {incident_id} cannot be acknowledged (state {incident['state']})"
            )
        params = {"id": incident_id, "by": actor.name, "ids": members}
        return await _incident_step(conn, _ACKNOWLEDGE_INCIDENT, _ACKNOWLEDGE_MEMBERS, params,
                                    Action.ACKNOWLEDGED, record, {})  # fmt: skip


async def dispose_incident(
    conn: psycopg.AsyncConnection, incident_id: int, actor: Actor, cause: str, measures: str,
    open_reason: str | None, record: Recorder,
) -> Row:  # fmt: skip
    """One disposal for the incident: every member not disposed yet takes its cause and
    measures (and an acknowledgement if it had none); one audit record. As for an alarm: after
    the incident was acknowledged, and while it is open only with ``open_reason``."""
    async with conn.transaction():
        incident, members = await _locked_incident(conn, incident_id)
        if incident["state"] == "disposed":
            raise LifecycleError(f"incident {incident_id} is already disposed")
        if incident["acknowledged_at"] is None:
            raise LifecycleError(f"incident {incident_id} must be acknowledged first")
        if incident["ended_at"] is None and not open_reason:
            raise LifecycleError(f"incident {incident_id} is still open: dispose it after it "
                                 "closes, or give open_reason")  # fmt: skip
        params = {"id": incident_id, "by": actor.name, "cause": cause, "measures": measures,
                  "open_reason": open_reason, "ids": members}  # fmt: skip
        detail: Row = {"cause": cause, "measures": measures, "open_reason": open_reason}
        return await _incident_step(conn, _DISPOSE_INCIDENT, _DISPOSE_MEMBERS, params,
                                    Action.DISPOSED, record, detail)  # fmt: skip
