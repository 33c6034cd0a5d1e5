"""Pre-alarms in the database (migration 0021): written in the batch's transaction, the
engine's state after a restart, and the reads for the dispatcher (issue 17). Each raise and
clear is numbered on ``alarm_changes`` by a trigger (migration 0022: the SSE stream's
``prealarm`` events) and notified on the alarm channel (the stream's wake-up, MQTT screens)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row

from minewatch.alarms.prealarms import PrealarmChange, PrealarmOutcome, PrealarmParams
from minewatch.alarms.store import ALARM_CHANNEL
from minewatch.registry import PointRegistry
from minewatch.timeutil import us_to_datetime

#: A pre-alarm as an event (the SSE stream's ``prealarm`` event, api/repository.py, has the
#: same fields): ``lead_s`` is how long after the raise the forecast reaches the level.
_RETURNING = """id, mine_code, point_id, raised_at, cleared_at, level, forecast, predicted_at,
    horizon_s, EXTRACT(EPOCH FROM predicted_at - raised_at)::float8 AS lead_s"""
_EVENT_KEYS = ("id", "mine", "point_id", "raised_at", "cleared_at", "level", "forecast",
               "predicted_at", "horizon_s", "lead_s")  # fmt: skip

#: A raise closes a pre-alarm of the point left open (one the engine no longer knows of, e.g.
#: written by another gateway), so one stays open per point and a write never fails on it.
_CLOSE_STALE = f"""
UPDATE prealarms SET cleared_at = %(raised)s
WHERE point_id = %(point)s AND cleared_at IS NULL AND raised_at < %(raised)s
RETURNING {_RETURNING}
"""
_RAISE = f"""
INSERT INTO prealarms (mine_code, point_id, raised_at, level, forecast, predicted_at, horizon_s)
VALUES (%(mine)s, %(point)s, %(raised)s, %(level)s, %(forecast)s, %(predicted)s, %(horizon)s)
ON CONFLICT DO NOTHING
RETURNING {_RETURNING}
"""
_CLEAR = f"""
UPDATE prealarms SET cleared_at = %(cleared)s
WHERE point_id = %(point)s AND raised_at = %(raised)s AND cleared_at IS NULL
RETURNING {_RETURNING}
"""


def _params(c: PrealarmChange, registry: PointRegistry) -> dict[str, Any]:
    return {
        "mine": str(registry.mine_code[c.point]),
        "point": c.point,
        "raised": us_to_datetime(c.raised_us),
        "cleared": None if c.cleared_us is None else us_to_datetime(c.cleared_us),
        "level": c.level,
        "forecast": c.forecast,
        "predicted": None if c.predicted_us is None else us_to_datetime(c.predicted_us),
        "horizon": c.horizon_s,
    }


async def write_prealarms(
    cur: psycopg.AsyncCursor, outcome: PrealarmOutcome | None, registry: PointRegistry
) -> None:
    """The pre-alarms a batch raised and cleared, in order, in the cursor's transaction."""
    if outcome is None or not outcome.changes:
        return
    for c in outcome.changes:  # a point's raise and clear may be in one batch: keep the order
        params = _params(c, registry)
        code = str(registry.code[c.point])
        if c.cleared_us is None:
            await cur.execute(_CLOSE_STALE, params)
            await _notify(cur, "cleared", code)
            await cur.execute(_RAISE, params)
            await _notify(cur, "raised", code)
        else:
            await cur.execute(_CLEAR, params)
            await _notify(cur, "cleared", code)


async def _notify(cur: psycopg.AsyncCursor, kind: str, point: str) -> None:
    """A ``prealarm`` event for each row the statement just changed; ``pg_notify`` is
    transactional, so it is heard once the batch is committed."""
    for row in await cur.fetchall():
        event: dict[str, object] = dict(zip(_EVENT_KEYS, row, strict=True))
        event.update(kind="prealarm", event=kind, point=point)
        event["time"] = event["raised_at" if kind == "raised" else "cleared_at"]
        await cur.execute("SELECT pg_notify(%s, %s)", (ALARM_CHANNEL, orjson.dumps(event).decode()))


async def load_prealarm_state(
    conn: psycopg.AsyncConnection,
) -> tuple[dict[str, PrealarmParams], list[tuple[int, int]]]:
    """(each mine's pre-alarm settings where set, the pre-alarms still open as (point id,
    raised_at in us)) to rebuild the engine's pre-alarms after a restart."""
    cur = await conn.execute("SELECT code, prealarm FROM mines WHERE prealarm IS NOT NULL")
    params = {str(r[0]): PrealarmParams.of(r[1]) for r in await cur.fetchall()}
    cur = await conn.execute(
        "SELECT point_id, (EXTRACT(EPOCH FROM raised_at) * 1000000)::bigint "
        "FROM prealarms WHERE cleared_at IS NULL"
    )
    return params, [(int(r[0]), int(r[1])) for r in await cur.fetchall()]


_ACTIVE = """
SELECT pa.id, pa.mine_code, pa.point_id, p.code AS point, p.location, pa.raised_at, pa.level,
       pa.forecast, pa.predicted_at, pa.horizon_s,
       EXTRACT(EPOCH FROM pa.predicted_at - pa.raised_at)::float8 AS lead_s
FROM prealarms pa JOIN points p ON p.id = pa.point_id
WHERE pa.cleared_at IS NULL
  AND (%(scope)s::text IS NULL OR starts_with(pa.mine_code, %(scope)s))
  AND (%(mine)s::text IS NULL OR pa.mine_code = %(mine)s)
ORDER BY pa.raised_at DESC
LIMIT %(limit)s
"""


async def active_prealarms(
    conn: psycopg.AsyncConnection, scope: str | None, mine: str | None, limit: int
) -> list[dict[str, object]]:
    """Pre-alarms up now, newest first; ``lead_s``: how long after the raise the forecast
    reaches the level (the warning it gave)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_ACTIVE, {"scope": scope, "mine": mine, "limit": limit})
    return list(await cur.fetchall())


_OF_POINT = """
SELECT id, raised_at, cleared_at, level, forecast, predicted_at, horizon_s
FROM prealarms
WHERE point_id = %(point)s AND raised_at < %(end)s
  AND (cleared_at IS NULL OR cleared_at > %(start)s)
ORDER BY raised_at
LIMIT %(limit)s
"""


async def point_prealarms(
    conn: psycopg.AsyncConnection,
    point_id: int,
    start: dt.datetime,
    end: dt.datetime,
    limit: int,
) -> list[dict[str, object]]:
    """A point's pre-alarms that overlap ``[start, end)`` (an open one: ``cleared_at`` None),
    oldest first: the point curve's pre-alarm bands and forecast."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_OF_POINT, {"point": point_id, "start": start, "end": end, "limit": limit})
    return list(await cur.fetchall())


def forecast_line(prealarm: Mapping[str, object]) -> tuple[tuple[float, float], ...]:
    """The forecast a pre-alarm was raised on, as points (epoch seconds, value) of its fitted
    line: from the raise to the end of the horizon (the stored forecast), through the level at
    the predicted moment. One point only when the line cannot be recovered (no predicted
    moment, or the forecast equal to the level)."""
    raised, predicted = prealarm["raised_at"], prealarm["predicted_at"]
    level, forecast = float(prealarm["level"]), float(prealarm["forecast"])  # type: ignore[arg-type]
    assert isinstance(raised, dt.datetime)
    t0 = raised.timestamp()
    t1 = t0 + float(prealarm["horizon_s"])  # type: ignore[arg-type]
    if not isinstance(predicted, dt.datetime) or abs(t1 - predicted.timestamp()) < 1e-6:
        return ((t1, forecast),)
    slope = (forecast - level) / (t1 - predicted.timestamp())
    return ((t0, level - slope * (predicted.timestamp() - t0)), (t1, forecast))


#: The pre-alarms shown on an incident: those of its member alarms' points raised from two
#: horizons before the incident started until it ended (a json array, for incident_store).
INCIDENT_PREALARMS = """
coalesce((SELECT json_agg(json_build_object(
              'id', pa.id, 'point', pp.code, 'raised_at', pa.raised_at,
              'cleared_at', pa.cleared_at, 'level', pa.level, 'forecast', pa.forecast,
              'predicted_at', pa.predicted_at, 'horizon_s', pa.horizon_s,
              'lead_s', EXTRACT(EPOCH FROM i.started_at - pa.raised_at)) ORDER BY pa.raised_at)
          FROM prealarms pa JOIN points pp ON pp.id = pa.point_id
          WHERE pa.point_id IN (SELECT a.point_id FROM incident_members m
                                JOIN alarms a ON a.id = m.alarm_id WHERE m.incident_id = i.id)
            AND pa.raised_at >= i.started_at - make_interval(secs => 2 * pa.horizon_s)
            AND pa.raised_at <= coalesce(i.ended_at, 'infinity')), '[]'::json)
"""
