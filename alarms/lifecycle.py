"""An alarm's life after the engine raised it: acknowledgement, shelving, disposal, escalation.

States: ``raised`` -> ``acknowledged`` (a dispatcher saw it) -> ``cleared`` (the condition
ended; the engine sets this) -> ``disposed`` (cause, measures, handler and time recorded: the
YCBJ 异常原因/处理措施/录入人/录入时间). An alarm that clears before anyone acknowledged it stays
``cleared`` with no acknowledgement until one is recorded. Shelving hides an alarm from the
live view until its expiry; it returns by itself when the time is up (a timed unshelve cannot
flood: the query simply shows it again). Every change is a ``pg_notify`` on the alarm channel,
so live screens follow.

Each operation is one guarded UPDATE: the WHERE clause is the transition rule, so two
dispatchers acting at once cannot both succeed, and the database, not the application, decides.
"""

from __future__ import annotations

import datetime as dt
import enum

import orjson
import psycopg
from psycopg.rows import dict_row

from minewatch.alarms.store import ALARM_CHANNEL


class LifecycleError(Exception):
    """The alarm does not exist, or the transition is not allowed from its state."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


class Action(enum.StrEnum):
    ACKNOWLEDGED = "acknowledged"
    SHELVED = "shelved"
    UNSHELVED = "unshelved"
    DISPOSED = "disposed"
    ESCALATED = "escalated"


_COLUMNS = (
    "id", "mine_code", "point_id", "rule", "state", "grade", "acknowledged_at",
    "acknowledged_by", "shelved_until", "shelved_reason", "disposed_at", "cause", "measures",
    "handled_by", "ended_at",
)  # fmt: skip
_RETURNING = "RETURNING " + ", ".join(_COLUMNS)

_ACKNOWLEDGE = f"""
UPDATE alarms SET acknowledged_at = now(), acknowledged_by = %(by)s,
    state = CASE WHEN state = 'raised' THEN 'acknowledged' ELSE state END, updated_at = now()
WHERE id = %(id)s AND acknowledged_at IS NULL AND state <> 'disposed'
{_RETURNING}"""

_SHELVE = f"""
UPDATE alarms SET shelved_by = %(by)s, shelved_reason = %(reason)s, shelved_until = %(until)s,
    updated_at = now()
WHERE id = %(id)s AND state <> 'disposed'
{_RETURNING}"""

_UNSHELVE = f"""
UPDATE alarms SET shelved_until = NULL, updated_at = now()
WHERE id = %(id)s AND shelved_until > now()
{_RETURNING}"""

_DISPOSE = f"""
UPDATE alarms SET state = 'disposed', cause = %(cause)s, measures = %(measures)s,
    handled_by = %(by)s, disposed_at = now(), updated_at = now()
WHERE id = %(id)s AND state <> 'disposed'
{_RETURNING}"""

_ESCALATE = f"""
UPDATE alarms a SET escalated_at = now(), updated_at = now()
FROM alarm_grade_rules g
WHERE a.acknowledged_at IS NULL AND a.escalated_at IS NULL AND a.state <> 'disposed'
  AND g.grade = a.grade AND g.escalate_after_s IS NOT NULL
  AND g.rule IN (a.rule, '*') AND g.classification IN (a.classification, '*')
  AND coalesce(a.raised_at, a.started_at) + make_interval(secs => g.escalate_after_s) <= now()
  AND (a.shelved_until IS NULL OR a.shelved_until <= now())
RETURNING {", ".join(f"a.{c}" for c in _COLUMNS)}"""


async def _apply(
    conn: psycopg.AsyncConnection, sql: str, params: dict[str, object], action: Action
) -> dict[str, object]:
    async with conn.transaction():
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(sql, params)  # type: ignore[arg-type]
        row = await cur.fetchone()
        if row is None:
            exists = await conn.execute(
                "SELECT state FROM alarms WHERE id = %(id)s", {"id": params["id"]}
            )
            found = await exists.fetchone()
            if found is None:
                raise LifecycleError(f"alarm {params['id']} does not exist", missing=True)
            raise LifecycleError(f"alarm {params['id']} cannot be {action} (state {found[0]})")
        await _notify(conn, row, action)
        return row


async def _notify(conn: psycopg.AsyncConnection, row: dict[str, object], action: Action) -> None:
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


async def acknowledge(conn: psycopg.AsyncConnection, alarm_id: int, by: str) -> dict[str, object]:
    return await _apply(conn, _ACKNOWLEDGE, {"id": alarm_id, "by": by}, Action.ACKNOWLEDGED)


async def shelve(
    conn: psycopg.AsyncConnection, alarm_id: int, by: str, reason: str, until: dt.datetime
) -> dict[str, object]:
    params = {"id": alarm_id, "by": by, "reason": reason, "until": until}
    return await _apply(conn, _SHELVE, params, Action.SHELVED)


async def unshelve(conn: psycopg.AsyncConnection, alarm_id: int) -> dict[str, object]:
    return await _apply(conn, _UNSHELVE, {"id": alarm_id}, Action.UNSHELVED)


async def dispose(
    conn: psycopg.AsyncConnection, alarm_id: int, cause: str, measures: str, by: str
) -> dict[str, object]:
    params = {"id": alarm_id, "cause": cause, "measures": measures, "by": by}
    return await _apply(conn, _DISPOSE, params, Action.DISPOSED)


async def escalate_due(conn: psycopg.AsyncConnection) -> list[dict[str, object]]:
    """Escalate every alarm whose grade's acknowledgement deadline passed; notify each."""
    async with conn.transaction():
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(_ESCALATE)
        rows = await cur.fetchall()
        for row in rows:
            await _notify(conn, row, Action.ESCALATED)
    return rows
