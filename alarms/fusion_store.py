"""Fusion across systems against the database: read the facts, plan with
:mod:`alarms.rules.fusion`, write the fused alarms; and the gateway task that does it by the
clock.

A fused alarm is a row of ``alarms`` (subject: the gas, fan or CO point; graded by
``alarm_grade_rules`` like every alarm; in every listing and on the live stream) plus a row of
``alarm_fusions`` (migration 0010) with the alarms it fuses and the cards / cameras / methane
or confirming smoke and temperature points of the moment. One evaluation is one transaction;
it holds a transaction-level advisory lock, so two gateways on one database do not evaluate at
once (the second skips its round).
Everything is read from the database each time: re-running on the same state writes nothing,
and a restarted gateway carries on where the database stands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import orjson
import pandas as pd
import psycopg

from minewatch.alarms.codes import RULES, Classification, category_of
from minewatch.alarms.rules import fusion
from minewatch.alarms.rules.context import UNRELIABLE
from minewatch.alarms.rules.fusion import Facts, Fused, FusionChange, Stored, frame
from minewatch.alarms.rules.params import RuleDefaults
from minewatch.alarms.store import ALARM_CHANNEL
from minewatch.codes import METHANE_SENSOR_TYPES, PointStatus
from minewatch.retry import run_rounds
from minewatch.timeutil import datetime_to_us, now_us, us_to_datetime

log = logging.getLogger(__name__)

#: Any fixed number: one fusion evaluation at a time on a database.
_LOCK = 72_190_010
#: Readings that say nothing about the gas (or the air), or are test gas, are no "rise".
_NOT_GAS = int(UNRELIABLE | PointStatus.CALIBRATION)

_STORED = """
SELECT a.id, a.rule, a.mine_code, a.point_id, f.area_code, f.source_alarm_ids, a.started_at,
       a.threshold, a.max_value, f.cards, f.cameras, f.points
FROM alarms a JOIN alarm_fusions f ON f.alarm_id = a.id
WHERE a.ended_at IS NULL AND a.rule = ANY(%(rules)s)
"""

# Open alarms of the rules on points with an area (and those ended after %(recent)s), and the
# given ones (sources of stored fused alarms, open or not).
_ALARMS = """
SELECT a.id, a.mine_code, a.point_id, p.area_code, a.rule, a.started_at, a.ended_at
FROM alarms a JOIN points p ON p.id = a.point_id
WHERE a.rule = ANY(%(rules)s)
  AND (((a.ended_at IS NULL OR a.ended_at > %(recent)s) AND p.area_code IS NOT NULL)
       OR a.id = ANY(%(ids)s))
"""

# Fan stops among the given ones that already have a fan_stop_gas_rise (open or ended).
_FUSED_STOPS = """
SELECT f.source_alarm_ids[1] FROM alarm_fusions f JOIN alarms a ON a.id = f.alarm_id
WHERE a.rule = %(rule)s AND f.source_alarm_ids[1] = ANY(%(ids)s)
"""

_PRESENCE = """
SELECT mine_code, area_code, card_code, area_since FROM personnel_presence
WHERE underground AND area_code = ANY(%(areas)s)
"""

_DEPARTURES = """
SELECT mine_code, area_code, max(left_at) FROM personnel_stays
WHERE area_code = ANY(%(areas)s) AND left_at IS NOT NULL GROUP BY mine_code, area_code
"""

_CAMERAS = """
SELECT c.mine_code, c.area_code, c.camera_code, s.online, s.since
FROM video_cameras c
JOIN video_camera_status s ON s.mine_code = c.mine_code AND s.camera_code = c.camera_code
WHERE c.valid_to IS NULL AND c.area_code = ANY(%(areas)s)
"""

_RISE = "SELECT code, fan_stop_gas_rise FROM mines WHERE fan_stop_gas_rise IS NOT NULL"
_TEMPERATURE_RISE = (
    "SELECT code, co_fire_temperature_rise FROM mines WHERE co_fire_temperature_rise IS NOT NULL"
)

# CO alarms (co_fire_confirmed): open ones on CO points with an area, and the given ones.
_CO_ALARMS = """
SELECT a.id, a.mine_code, a.point_id, p.area_code, a.rule, a.started_at, a.ended_at,
       a.classification
FROM alarms a JOIN points p ON p.id = a.point_id
WHERE a.rule = ANY(%(rules)s) AND p.sensor_type = %(co)s AND a.classification = ANY(%(classes)s)
  AND ((a.ended_at IS NULL AND p.area_code IS NOT NULL) OR a.id = ANY(%(ids)s))
"""

_CO_POINTS = """
WITH co (point_id, mine, area, started) AS (
    SELECT * FROM unnest(%(points)s::int[], %(mines)s::text[], %(areas)s::text[],
                         %(starts)s::timestamptz[])
)
"""

# Smoke alarms and temperature alarms of each CO point's area overlapping its CO alarms.
_CONFIRMING = (
    _CO_POINTS
    + """
SELECT co.point_id, CASE WHEN a.rule = %(smoke)s THEN 'smoke' ELSE 'temperature' END,
       a.id, a.point_id, a.started_at
FROM co JOIN points p ON p.mine_code = co.mine AND p.area_code = co.area
JOIN alarms a ON a.point_id = p.id AND (a.ended_at IS NULL OR a.ended_at > co.started)
WHERE a.classification = 'exceedance'
  AND (a.rule = %(smoke)s OR (a.rule = 'upper_alarm' AND p.sensor_type = ANY(%(temperature)s)))
"""
)

# Valid readings of the temperature points of each CO point's area: the last at or before the
# CO's start, and every one since.
_TEMPERATURES = (
    _CO_POINTS
    + """
, temp AS (
    SELECT co.point_id AS co_point_id, co.started, p.id AS point_id FROM co
    JOIN points p ON p.mine_code = co.mine AND p.area_code = co.area
                 AND p.sensor_type = ANY(%(temperature)s)
)
SELECT t.co_point_id, t.point_id, r.time, r.value FROM temp t CROSS JOIN LATERAL (
    (SELECT time, value FROM readings r WHERE r.point_id = t.point_id AND r.time <= t.started
       AND r.flags & 3 = 0 AND r.status & %(not_valid)s = 0 ORDER BY time DESC LIMIT 1)
    UNION ALL
    (SELECT time, value FROM readings r WHERE r.point_id = t.point_id AND r.time > t.started
       AND r.flags & 3 = 0 AND r.status & %(not_valid)s = 0)
) r
"""
)

_STOPS = """
WITH stop (id, mine, area, started, ended) AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(mines)s::text[], %(areas)s::text[],
                         %(starts)s::timestamptz[], %(ends)s::timestamptz[])
), methane AS (
    SELECT stop.id AS stop_id, stop.started, stop.ended, p.id AS point_id FROM stop
    JOIN points p ON p.mine_code = stop.mine AND p.area_code = stop.area
                 AND p.sensor_type = ANY(%(methane)s)
)
"""

_READINGS = (
    _STOPS
    + """
SELECT m.stop_id, m.point_id, r.time, r.value FROM methane m CROSS JOIN LATERAL (
    (SELECT time, value FROM readings r WHERE r.point_id = m.point_id AND r.time <= m.started
       AND r.flags & 3 = 0 AND r.status & %(not_gas)s = 0 ORDER BY time DESC LIMIT 1)
    UNION ALL
    (SELECT time, value FROM readings r WHERE r.point_id = m.point_id AND r.time > m.started
       AND (m.ended IS NULL OR r.time <= m.ended)
       AND r.flags & 3 = 0 AND r.status & %(not_gas)s = 0)
) r
"""
)

_LEVELS = (
    _STOPS
    + """
SELECT m.stop_id, a.id, a.point_id, a.started_at FROM methane m
JOIN alarms a ON a.point_id = m.point_id AND a.rule = ANY(%(levels)s)
             AND a.classification = 'exceedance' AND (a.ended_at IS NULL OR a.ended_at > m.started)
             AND (m.ended IS NULL OR a.started_at < m.ended)
"""
)

_RAISE = """
INSERT INTO alarms (mine_code, point_id, rule, abnormal_type, classification, state, started_at,
                    raised_at, threshold, start_value, max_value, max_at, min_value, min_at,
                    value_sum, value_count)
VALUES (%(mine)s, %(point_id)s, %(rule)s, %(abnormal_type)s, %(classification)s, 'raised',
        %(time)s, %(now)s, %(threshold)s, %(value)s, %(value)s, %(time)s, %(value)s, %(time)s,
        %(value)s, 1)
ON CONFLICT (subject_kind, subject_key, rule) WHERE ended_at IS NULL DO NOTHING
RETURNING id
"""

_FUSION_ROW = """
INSERT INTO alarm_fusions (alarm_id, area_code, source_alarm_ids, cards, cameras, points)
VALUES (%(id)s, %(area)s, %(sources)s, %(cards)s, %(cameras)s, %(points)s)
ON CONFLICT (alarm_id) DO UPDATE SET source_alarm_ids = EXCLUDED.source_alarm_ids,
    cards = EXCLUDED.cards, cameras = EXCLUDED.cameras, points = EXCLUDED.points,
    updated_at = now()
"""

_UPDATE = """
UPDATE alarms SET max_at = CASE WHEN %(value)s > max_value THEN %(now)s ELSE max_at END,
    max_value = greatest(max_value, %(value)s),
    min_at = CASE WHEN %(value)s < min_value THEN %(now)s ELSE min_at END,
    min_value = least(min_value, %(value)s),
    value_sum = value_sum + %(value)s, value_count = value_count + 1, updated_at = now()
WHERE id = %(id)s AND ended_at IS NULL
"""

_CLEAR = """
UPDATE alarms SET ended_at = greatest(%(time)s, started_at),
    state = CASE WHEN state IN ('raised', 'acknowledged') THEN 'cleared' ELSE state END,
    updated_at = now()
WHERE id = %(id)s AND ended_at IS NULL
RETURNING ended_at
"""

# A fused alarm joins the open incidents of the alarms it fuses (issue 13); an incident's grade
# only rises. Each incident joined is announced like the engine's incident events.
_JOIN_INCIDENTS = """
WITH joined AS (
    INSERT INTO incident_members (incident_id, alarm_id)
    SELECT DISTINCT m.incident_id, %(id)s::bigint FROM incident_members m
    JOIN incidents i ON i.id = m.incident_id
    WHERE m.alarm_id = ANY(%(sources)s) AND i.ended_at IS NULL
    ON CONFLICT DO NOTHING
    RETURNING incident_id
), fused AS (SELECT grade FROM alarms WHERE id = %(id)s)
UPDATE incidents i SET updated_at = now(),
    grade = CASE WHEN array_position(%(ranks)s, (SELECT grade FROM fused))
                      > array_position(%(ranks)s, i.grade)
                 THEN (SELECT grade FROM fused) ELSE i.grade END
FROM joined j, points p
WHERE i.id = j.incident_id AND p.id = i.root_point_id
RETURNING i.id, i.mine_code, p.code, i.root_rule, i.grade, i.started_at, i.peak_value
"""
_MEMBERS = "SELECT alarm_id FROM incident_members WHERE incident_id = %s ORDER BY alarm_id"
GRADE_ORDER = ["blue", "yellow", "orange", "red"]

# The point's code comes from the database, like the API's listing.
_NOTIFY = """
SELECT pg_notify(%(channel)s, (%(event)s::jsonb || jsonb_build_object('point', p.code))::text)
FROM points p WHERE p.id = %(point_id)s
"""


async def evaluate_fusion(
    conn: psycopg.AsyncConnection,
    now: int,
    default_rise: float = fusion.DEFAULT_FAN_STOP_GAS_RISE,
    lateness_us: int = RuleDefaults().lateness_us,
    default_temperature_rise: float = fusion.DEFAULT_CO_FIRE_TEMPERATURE_RISE,
) -> list[FusionChange]:
    """One evaluation at ``now`` (µs) in its own transaction; returns the changes written
    (none when another evaluation holds the lock). Fan stops that ended less than
    ``lateness_us`` before ``now`` are still examined: their area's methane readings may come
    from another substation, later."""
    async with conn.transaction():
        cur = await conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (_LOCK,))
        row = await cur.fetchone()
        if row is None or not row[0]:
            return []
        stored = await _stored(conn)
        sources = sorted({i for s in stored for i in s.fused.sources})
        gas = await _alarms(conn, fusion.GAS_RULES, sources, now)
        fans = await _alarms(conn, fusion.FAN_RULES, sources, now - lateness_us)
        fused_stops = await _fused_stops(conn, fans)
        rises = {str(m): float(r) for m, r in await (await conn.execute(_RISE)).fetchall()}
        fans = fans.assign(rise=[rises.get(m, default_rise) for m in fans["mine"]])
        gas_areas = _areas(fusion.open_alarms(gas)) | {
            (s.fused.mine, s.fused.area) for s in stored if s.fused.rule != fusion.FAN_STOP_GAS_RISE
        }
        codes = sorted({a for _, a in gas_areas})
        presence = await _frame(conn, _PRESENCE, {"areas": codes}, fusion.PRESENCE_COLUMNS)
        cameras = await _frame(conn, _CAMERAS, {"areas": codes}, fusion.CAMERA_COLUMNS)
        readings, levels = await _around_stops(conn, fusion.examined_stops(fans, fused_stops))
        co = await _co_alarms(conn, sources, default_temperature_rise)
        confirming, temperatures = await _around_co(conn, fusion.co_points(co))
        wanted = [
            *fusion.gas_people(gas, presence),
            *fusion.gas_cameras(gas, cameras),
            *fusion.fan_gas_rise(fans, readings, levels, fused_stops),
            *fusion.co_fire(co, confirming, temperatures),
        ]
        people_areas = [(s.fused.mine, s.fused.area) for s in stored
                        if s.fused.rule == fusion.GAS_PEOPLE]  # fmt: skip
        departures = await _frame(
            conn, _DEPARTURES, {"areas": sorted({a for _, a in people_areas})},
            ["mine", "area", "left_us"],
        )  # fmt: skip
        both = [*gas.itertuples(index=False), *fans.itertuples(index=False)]
        co_rows = list(co.itertuples(index=False))
        facts = Facts(
            ended={int(a.alarm_id): _us_or_none(a.ended_us) for a in [*both, *co_rows]},
            primary=frozenset(int(a.alarm_id) for a in both),
            emptied=fusion.emptied_areas(people_areas, presence, departures),
            restored=fusion.restored_areas(
                [(s.fused.mine, s.fused.area) for s in stored
                 if s.fused.rule == fusion.GAS_CAMERA_OFFLINE], cameras,
            ),
            co=frozenset(int(a.alarm_id) for a in co_rows),
        )  # fmt: skip
        changes = fusion.plan(wanted, stored, facts, now)
        return await _write(conn, changes, now)


def _us_or_none(value: object) -> int | None:
    return None if value is None or value != value else int(value)  # type: ignore[call-overload]


def _areas(alarms: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(alarms["mine"], alarms["area"], strict=True))


def _to_us(value: object) -> object:
    return datetime_to_us(value) if value is not None else None  # type: ignore[arg-type]


async def _frame(
    conn: psycopg.AsyncConnection, sql: str, params: dict[str, object], columns: list[str]
) -> pd.DataFrame:
    cur = await conn.execute(sql, params)  # sql: constants of this module
    rows = [
        tuple(_to_us(v) if hasattr(v, "tzinfo") else v for v in r) for r in await cur.fetchall()
    ]
    return frame(rows, columns)


async def _alarms(
    conn: psycopg.AsyncConnection, rules: tuple[str, ...], ids: list[int], recent: int
) -> pd.DataFrame:
    """Alarms of ``rules``: open, ended after ``recent`` (µs), or among ``ids``."""
    params = {"rules": list(rules), "ids": ids, "recent": us_to_datetime(recent)}
    out = await _frame(conn, _ALARMS, params, fusion.ALARM_COLUMNS)
    return out.assign(ended_us=out["ended_us"].astype("float64"))


async def _fused_stops(conn: psycopg.AsyncConnection, fans: pd.DataFrame) -> frozenset[int]:
    """The ended fan stops of ``fans`` that already have a fused alarm."""
    ended = [int(i) for i in fans.loc[fans["ended_us"].notna(), "alarm_id"]]
    if not ended:
        return frozenset()
    cur = await conn.execute(_FUSED_STOPS, {"rule": fusion.FAN_STOP_GAS_RISE, "ids": ended})
    return frozenset(int(row[0]) for row in await cur.fetchall())


async def _around_stops(
    conn: psycopg.AsyncConnection, stops: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Methane readings (baseline and since) and level episodes around each open fan stop."""
    if stops.empty:
        return frame([], fusion.READING_COLUMNS), frame([], fusion.LEVEL_COLUMNS)
    params = {
        "ids": [int(i) for i in stops["alarm_id"]],
        "mines": list(stops["mine"]),
        "areas": list(stops["area"]),
        "starts": [us_to_datetime(int(t)) for t in stops["started_us"]],
        "ends": [None if pd.isna(t) else us_to_datetime(int(t)) for t in stops["ended_us"]],
        "methane": sorted(METHANE_SENSOR_TYPES),
    }
    readings = await _frame(
        conn, _READINGS, {**params, "not_gas": _NOT_GAS}, fusion.READING_COLUMNS
    )
    levels = await _frame(
        conn, _LEVELS, {**params, "levels": list(fusion.LEVEL_RULES)}, fusion.LEVEL_COLUMNS
    )
    return readings, levels


async def _co_alarms(conn: psycopg.AsyncConnection, ids: list[int], default_rise: float
                     ) -> pd.DataFrame:  # fmt: skip
    """CO alarms (CO_COLUMNS): open ones on CO points with an area, and those among ``ids``;
    ``rise``: their mine's temperature rise that confirms a fire."""
    params: dict[str, object] = {"rules": list(fusion.CO_RULES), "co": fusion.CO_SENSOR_TYPE,
              "classes": list(fusion.CO_CLASSES), "ids": ids}  # fmt: skip
    out = await _frame(conn, _CO_ALARMS, params, fusion.CO_COLUMNS[:-1])
    cur = await conn.execute(_TEMPERATURE_RISE)
    rises = {str(m): float(r) for m, r in await cur.fetchall()}
    return out.assign(ended_us=out["ended_us"].astype("float64"),
                      rise=[rises.get(m, default_rise) for m in out["mine"]])  # fmt: skip


async def _around_co(
    conn: psycopg.AsyncConnection, points: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Smoke and temperature alarms overlapping each CO point's open CO alarms, and the
    temperature readings of its area (baseline and since)."""
    if points.empty:
        return frame([], fusion.CONFIRM_COLUMNS), frame([], fusion.TEMPERATURE_COLUMNS)
    params: dict[str, object] = {
        "points": [int(i) for i in points["point_id"]],
        "mines": list(points["mine"]),
        "areas": list(points["area"]),
        "starts": [us_to_datetime(int(t)) for t in points["started_us"]],
        "temperature": list(fusion.TEMPERATURE_SENSOR_TYPES),
        "smoke": fusion.SMOKE_RULE,
    }
    confirming = await _frame(conn, _CONFIRMING, params, fusion.CONFIRM_COLUMNS)
    temperatures = await _frame(
        conn, _TEMPERATURES, {**params, "not_valid": _NOT_GAS}, fusion.TEMPERATURE_COLUMNS
    )
    return confirming, temperatures


async def _stored(conn: psycopg.AsyncConnection) -> list[Stored]:
    cur = await conn.execute(_STORED, {"rules": list(fusion.FUSION_RULES)})
    out = []
    for (
        aid,
        rule,
        mine,
        pid,
        area,
        sources,
        started,
        threshold,
        vmax,
        cards,
        cams,
        points,
    ) in await cur.fetchall():
        counts = {fusion.GAS_PEOPLE: len(cards), fusion.GAS_CAMERA_OFFLINE: len(cams),
                  fusion.CO_FIRE_CONFIRMED: len(points)}  # fmt: skip
        value = float(counts[rule]) if rule in counts else float(vmax)
        fused = Fused(
            str(rule), str(mine), int(pid), str(area), tuple(int(i) for i in sources),
            datetime_to_us(started), float(value), None if threshold is None else float(threshold),
            tuple(cards), tuple(cams), tuple(int(p) for p in points),
        )  # fmt: skip
        out.append(Stored(int(aid), fused, float(vmax)))
    return out


async def _write(
    conn: psycopg.AsyncConnection, changes: list[FusionChange], now: int
) -> list[FusionChange]:
    written = []
    for change in changes:
        f = change.fused
        params: dict[str, object] = {
            "mine": f.mine, "point_id": f.point_id, "rule": f.rule,
            "abnormal_type": RULES[f.rule][0], "classification": Classification.EXCEEDANCE.value,
            "time": us_to_datetime(change.time_us), "now": us_to_datetime(now),
            "threshold": f.threshold, "value": f.value, "id": change.alarm_id, "area": f.area,
            "sources": list(f.sources), "cards": list(f.cards), "cameras": list(f.cameras),
            "points": list(f.points),
        }  # fmt: skip
        if change.event == "raised":
            cur = await conn.execute(_RAISE, params)
            row = await cur.fetchone()
            if row is None:  # an open episode already (a concurrent writer): nothing to add
                continue
            params["id"] = row[0]
            await conn.execute(_FUSION_ROW, params)
            await _notify(conn, change, int(row[0]), change.time_us, now)
            await _join_incidents(conn, int(row[0]), list(f.sources))
            if f.ended_us is not None:  # found after its sources ended: ended at once
                ended = FusionChange("cleared", f, f.ended_us, int(row[0]))
                await conn.execute(_CLEAR, {"id": row[0], "time": us_to_datetime(f.ended_us)})
                await _notify(conn, ended, int(row[0]), f.ended_us, now)
        elif change.event == "updated":
            await conn.execute(_UPDATE, params)
            await conn.execute(_FUSION_ROW, params)
        else:
            cur = await conn.execute(_CLEAR, params)
            row = await cur.fetchone()
            if row is None:
                continue
            assert change.alarm_id is not None
            await _notify(conn, change, change.alarm_id, datetime_to_us(row[0]), now)
        written.append(change)
    return written


async def _join_incidents(conn: psycopg.AsyncConnection, alarm_id: int, sources: list[int]) -> None:
    """The fused alarm joins the open incidents of its source alarms (docs/alarms.md,
    "Incidents"): one ``joined`` incident event each, on the alarm channel."""
    cur = await conn.execute(
        _JOIN_INCIDENTS, {"id": alarm_id, "sources": sources, "ranks": GRADE_ORDER}
    )
    for incident_id, mine, root, rule, grade, started, peak in await cur.fetchall():
        members = await conn.execute(_MEMBERS, (incident_id,))
        event = {
            "kind": "incident", "event": "joined", "id": incident_id, "mine": mine,
            "root_point": root, "root_rule": rule, "grade": grade, "time": started,
            "members": [int(r[0]) for r in await members.fetchall()], "peak": peak,
        }  # fmt: skip
        await conn.execute(
            "SELECT pg_notify(%s, %s)", (ALARM_CHANNEL, orjson.dumps(event).decode())
        )


async def _notify(
    conn: psycopg.AsyncConnection, change: FusionChange, alarm_id: int, time_us: int, now: int
) -> None:
    f = change.fused
    event: dict[str, object] = {
        "id": alarm_id, "mine": f.mine, "subject_kind": "point", "point_id": f.point_id,
        "rule": f.rule, "abnormal_type": RULES[f.rule][0], "category": category_of(f.rule).value,
        "classification": Classification.EXCEEDANCE.value, "event": change.event,
        "time": us_to_datetime(time_us), "area": f.area, "fused_alarm_ids": list(f.sources),
    }  # fmt: skip
    if change.event == "raised":
        event.update(value=f.value, threshold=f.threshold, cards=list(f.cards),
                     cameras=list(f.cameras), raised_at=us_to_datetime(now))  # fmt: skip
    params = {
        "channel": ALARM_CHANNEL,
        "event": orjson.dumps(event).decode(),
        "point_id": f.point_id,
    }
    await conn.execute(_NOTIFY, params)


class FusionEvaluator:
    """Runs :func:`evaluate_fusion` every ``interval_s`` until cancelled; owns its connection.

    Transient database errors are retried with backoff; a permanent one stops the task (and so
    the gateway's TaskGroup), like the camera watchdog.
    """

    def __init__(
        self, database_url: str, interval_s: float, clock: Callable[[], int] = now_us,
        default_rise: float = fusion.DEFAULT_FAN_STOP_GAS_RISE,
        lateness_us: int = RuleDefaults().lateness_us,
    ) -> None:  # fmt: skip
        self._url = database_url
        self._interval_s = interval_s
        self._clock = clock
        self._default_rise = default_rise
        self._lateness_us = lateness_us
        self.rounds = 0  # evaluations done (tests wait on it)

    async def run(self) -> None:
        await run_rounds(self._url, self._interval_s, self._round, "alarm fusion")

    async def _round(self, conn: psycopg.AsyncConnection) -> None:
        changes = await evaluate_fusion(conn, self._clock(), self._default_rise, self._lateness_us)
        self.rounds += 1
        for change in changes:
            if change.event != "updated":
                log.info("fused alarm %s %s on point %d", change.fused.rule,
                         change.event, change.fused.point_id)  # fmt: skip
