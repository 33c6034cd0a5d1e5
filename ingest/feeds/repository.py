"""The personnel/video/comms writer's SQL (ingest/feeds/writer.py): the rows it copies, the
transitions and presence it upserts, the camera and device status, the state it loads on
start, and which messages their sources' marks cannot tell about are stored already.
Named parameters only; table and column names are constants of this module, never input."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from itertools import groupby

import psycopg

from minewatch.ingest.feeds.contract import FeedBatch
from minewatch.ingest.feeds.presence import (
    PositionRow,
    Presence,
    PresenceTracker,
    StayClosed,
    StayOpened,
    StayRetargeted,
    Transition,
    TripClosed,
    TripOpened,
)
from minewatch.timeutil import datetime_to_us, us_to_datetime

_COPY_POSITIONS = (
    "COPY personnel_positions (time, mine_code, card_code, station_code, area_code, distance_m, "
    "in_mine) FROM STDIN"
)
_COPY_STATION_STATUS = (
    "COPY personnel_station_status (time, mine_code, station_code, run_state, power_state) "
    "FROM STDIN"
)
_COPY_HEARTBEATS = "COPY video_heartbeats (time, mine_code, camera_code, online) FROM STDIN"
_COPY_EVENTS = (
    "COPY video_events (time, mine_code, camera_code, area_code, event_type, confidence, "
    "snapshot_ref, event_id) FROM STDIN"
)
# received_at: the commit's transaction time (when minewatch had the report durably).
_COPY_DEVICE_STATUS = (
    "COPY comms_status_reports (time, mine_code, device_code, online, fault) FROM STDIN"
)
#: (COPY statement, batch kind, the batch's columns after time_us, in the statement's order)
_COPIES = (
    (_COPY_DEVICE_STATUS, "device_status", ("devices", "online", "faults")),
    (_COPY_STATION_STATUS, "station_status", ("stations", "run_state", "power_state")),
    (_COPY_HEARTBEATS, "heartbeats", ("cameras", "online")),
    (_COPY_EVENTS, "events", ("cameras", "areas", "types", "confidence", "snapshots", "ids")),
)
_TRANSITION_SQL: dict[type, str] = {
    TripOpened: "INSERT INTO personnel_trips (mine_code, card_code, entered_at) "
    "VALUES (%(mine)s, %(card)s, %(entered_at)s) ON CONFLICT (mine_code, card_code, entered_at) "
    "DO UPDATE SET left_at = NULL",
    TripClosed: "UPDATE personnel_trips SET left_at = %(left_at)s "
    "WHERE mine_code = %(mine)s AND card_code = %(card)s AND entered_at = %(entered_at)s",
    StayOpened: "INSERT INTO personnel_stays (mine_code, card_code, area_code, entered_at) "
    "VALUES (%(mine)s, %(card)s, %(area)s, %(entered_at)s) "
    "ON CONFLICT (mine_code, card_code, entered_at) "
    "DO UPDATE SET area_code = EXCLUDED.area_code, left_at = NULL",
    StayClosed: "UPDATE personnel_stays SET left_at = %(left_at)s "
    "WHERE mine_code = %(mine)s AND card_code = %(card)s AND entered_at = %(entered_at)s",
    StayRetargeted: "UPDATE personnel_stays SET area_code = %(area)s "
    "WHERE mine_code = %(mine)s AND card_code = %(card)s AND entered_at = %(entered_at)s",
}
_PRESENCE_COLUMNS = (
    "underground", "entered_at", "left_at", "area_code", "area_since", "station_code",
    "station_since", "distance_m", "last_seen_at", "changed_at",
)  # fmt: skip
_UPSERT_PRESENCE = (
    "INSERT INTO personnel_presence (mine_code, card_code, " + ", ".join(_PRESENCE_COLUMNS)
    + ") VALUES (%(mine)s, %(card)s, " + ", ".join(f"%({c})s" for c in _PRESENCE_COLUMNS)
    + ") ON CONFLICT (mine_code, card_code) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _PRESENCE_COLUMNS)
)  # fmt: skip
_UPSERT_SNAPSHOT_AT = (
    "INSERT INTO personnel_feed_state (mine_code, snapshot_at) VALUES (%(mine)s, %(at)s) "
    "ON CONFLICT (mine_code) DO UPDATE SET snapshot_at = EXCLUDED.snapshot_at"
)
# One heartbeat per camera and write batch (its latest): status, and a change row if it flips.
_HEARTBEAT_STATUS = """
WITH old AS (
    SELECT online FROM video_camera_status WHERE mine_code = %(mine)s AND camera_code = %(camera)s
), up AS (
    INSERT INTO video_camera_status AS s
        (mine_code, camera_code, online, since, last_heartbeat_at, reason)
    VALUES (%(mine)s, %(camera)s, %(online)s, %(since)s, %(time)s, %(reason)s)
    ON CONFLICT (mine_code, camera_code) DO UPDATE SET
        since = CASE WHEN s.online = EXCLUDED.online THEN s.since ELSE EXCLUDED.since END,
        reason = CASE WHEN s.online = EXCLUDED.online THEN s.reason ELSE EXCLUDED.reason END,
        online = EXCLUDED.online,
        last_heartbeat_at = EXCLUDED.last_heartbeat_at,
        updated_at = now()
    WHERE EXCLUDED.last_heartbeat_at > s.last_heartbeat_at
    RETURNING online, since, reason
)
INSERT INTO video_status_changes (time, mine_code, camera_code, online, reason)
SELECT up.since, %(mine)s, %(camera)s, up.online, up.reason FROM up
WHERE NOT EXISTS (SELECT 1 FROM old WHERE old.online = up.online)
"""
# The newest report per device of a write batch; an older one never replaces a newer one.
_DEVICE_STATUS = """
INSERT INTO comms_device_status AS s (mine_code, device_code, online, fault, since, last_report_at)
VALUES (%(mine)s, %(device)s, %(online)s, %(fault)s, %(time)s, %(time)s)
ON CONFLICT (mine_code, device_code) DO UPDATE SET
    since = CASE WHEN s.online = EXCLUDED.online AND s.fault IS NOT DISTINCT FROM EXCLUDED.fault
                 THEN s.since ELSE EXCLUDED.since END,
    online = EXCLUDED.online, fault = EXCLUDED.fault, last_report_at = EXCLUDED.last_report_at
WHERE EXCLUDED.last_report_at > s.last_report_at
"""
_SELECT_PRESENCE = (
    "SELECT mine_code, card_code, " + ", ".join(_PRESENCE_COLUMNS) + " FROM personnel_presence"
)
_SELECT_SNAPSHOT_AT = (
    "SELECT mine_code, snapshot_at FROM personnel_feed_state WHERE snapshot_at IS NOT NULL"
)
_SELECT_OUTPUT_DONE = (
    "SELECT a.mine_code, a.rule, max(a.started_at), m.timezone FROM alarms a "
    "JOIN mines m ON m.code = a.mine_code WHERE a.subject_kind = 'mine' "
    "AND a.rule = ANY(%(rules)s) GROUP BY 1, 2, 4"
)


# Whether a message's rows are stored, per kind: (table, the column of the row's subject, the
# batch column holding it). A message whose source's mark cannot tell (ingest/sequence.py,
# UNKNOWN) is a redelivery when one of its rows, (mine, subject, event time), is stored.
_STORED_ROWS_SQL = (
    "SELECT DISTINCT d.i FROM unnest(%(i)s::int4[], %(mine)s::text[], %(subject)s::text[], "
    "%(t)s::int8[]) AS d(i, mine, subject, t) WHERE EXISTS (SELECT 1 FROM {table} r "
    "WHERE r.mine_code = d.mine AND r.{column} = d.subject "
    "AND r.time = timestamptz 'epoch' + d.t * interval '1 microsecond')"
)
_STORED_ROWS = {
    kind: (_STORED_ROWS_SQL.format(table=table, column=column), subjects)
    for kind, table, column, subjects in (
        ("positions", "personnel_positions", "card_code", "cards"),
        ("station_status", "personnel_station_status", "station_code", "stations"),
        ("heartbeats", "video_heartbeats", "camera_code", "cameras"),
        ("events", "video_events", "camera_code", "cameras"),
        ("device_status", "comms_status_reports", "device_code", "devices"),
    )
}
# A snapshot stores no row of its own: it is applied once, and one not newer than the mine's
# last applied snapshot is stale (ingest/feeds/presence.py), so that is what "stored" means.
_STORED_SNAPSHOTS_SQL = (
    "SELECT d.i FROM unnest(%(i)s::int4[], %(mine)s::text[], %(t)s::int8[]) AS d(i, mine, t) "
    "JOIN personnel_feed_state s ON s.mine_code = d.mine "
    "AND s.snapshot_at >= timestamptz 'epoch' + d.t * interval '1 microsecond'"
)


async def stored_batches(conn: psycopg.AsyncConnection, batches: list[FeedBatch]) -> list[int]:
    """The indexes (in ``batches``) of the messages stored already: one of whose rows is
    stored (by mine, subject and event time), or, for a snapshot, whose mine has a snapshot
    applied at or after its time. One statement per kind present; a rare path (messages their
    sources' marks cannot tell about)."""
    found: set[int] = set()
    snapshots = [i for i, b in enumerate(batches) if b.kind == "snapshot"]
    if snapshots:
        cur = await conn.execute(_STORED_SNAPSHOTS_SQL, {
            "i": snapshots, "mine": [batches[i].mine for i in snapshots],
            "t": [batches[i].time_us for i in snapshots],
        })  # fmt: skip
        found.update(int(row[0]) for row in await cur.fetchall())
    for kind, (sql, subjects) in _STORED_ROWS.items():
        index: list[int] = []
        mines: list[str] = []
        keys: list[str] = []
        times: list[int] = []
        for i, b in enumerate(batches):
            if b.kind == kind and len(b):
                index += [i] * len(b)
                mines += [b.mine] * len(b)
                keys += [str(k) for k in b.columns[subjects]]
                times += b.columns["time_us"].tolist()
        if index:
            cur = await conn.execute(sql, {"i": index, "mine": mines, "subject": keys, "t": times})
            found.update(int(row[0]) for row in await cur.fetchall())
    await conn.rollback()
    return sorted(found)


async def copy_positions(cur: psycopg.AsyncCursor, positions: list[PositionRow]) -> None:
    if not positions:
        return
    async with cur.copy(_COPY_POSITIONS) as copy:
        for p in positions:
            await copy.write_row((
                us_to_datetime(p.time_us), p.key[0], p.key[1], p.station, p.area, p.distance_m,
                p.in_mine,
            ))  # fmt: skip


async def copy_batches(cur: psycopg.AsyncCursor, by_kind: Mapping[str, list[FeedBatch]]) -> None:
    """The rows of the station-status, heartbeat and event batches, one COPY per kind."""
    for sql, kind, names in _COPIES:
        batches = by_kind.get(kind, [])
        if not batches:
            continue
        async with cur.copy(sql) as copy:
            for batch in batches:
                columns = [batch.columns["time_us"], *(batch.columns[n] for n in names)]
                for row in zip(*(c.tolist() for c in columns), strict=True):
                    await copy.write_row(
                        (us_to_datetime(row[0]), batch.mine, *_nan_to_none(row[1:]))
                    )


def _nan_to_none(values: tuple[object, ...]) -> tuple[object, ...]:
    return tuple(None if isinstance(v, float) and v != v else v for v in values)


async def write_transitions(cur: psycopg.AsyncCursor, transitions: list[Transition]) -> None:
    """Executed in order, consecutive transitions of one kind as one ``executemany``."""
    for kind, group in groupby(transitions, type):
        await cur.executemany(_TRANSITION_SQL[kind], [_transition_params(t) for t in group])


def _transition_params(t: Transition) -> dict[str, object]:
    mine, card = t.key
    params: dict[str, object] = {"mine": mine, "card": card}
    match t:
        case TripOpened():
            params["entered_at"] = us_to_datetime(t.entered_at)
        case TripClosed() | StayClosed():
            params.update(
                left_at=us_to_datetime(t.left_at), entered_at=us_to_datetime(t.entered_at)
            )
        case StayOpened() | StayRetargeted():
            params.update(area=t.area, entered_at=us_to_datetime(t.entered_at))
        case _:
            raise AssertionError(t)
    return params


async def upsert_presence(
    cur: psycopg.AsyncCursor, changed: Mapping[tuple[str, str], Presence]
) -> None:
    if changed:
        await cur.executemany(_UPSERT_PRESENCE, [_presence_row(k, p) for k, p in changed.items()])


def _presence_row(key: tuple[str, str], p: Presence) -> dict[str, object]:
    return {
        "mine": key[0], "card": key[1], "underground": p.underground,
        "entered_at": _dt(p.entered_at), "left_at": _dt(p.left_at), "area_code": p.area,
        "area_since": us_to_datetime(p.area_since), "station_code": p.station,
        "station_since": us_to_datetime(p.station_since), "distance_m": p.distance_m,
        "last_seen_at": us_to_datetime(p.last_seen), "changed_at": us_to_datetime(p.changed_at),
    }  # fmt: skip


def _dt(us: int | None) -> dt.datetime | None:
    return None if us is None else us_to_datetime(us)


async def upsert_snapshot_times(cur: psycopg.AsyncCursor, snapshot_at: Mapping[str, int]) -> None:
    """Each mine's latest applied snapshot time (µs)."""
    if snapshot_at:
        await cur.executemany(
            _UPSERT_SNAPSHOT_AT,
            [{"mine": m, "at": us_to_datetime(t)} for m, t in snapshot_at.items()],
        )


async def upsert_camera_status(
    cur: psycopg.AsyncCursor, heartbeats: list[dict[str, object]]
) -> None:
    """Per camera, its latest heartbeat of the batch: ``mine``, ``camera``, ``online``,
    ``since``, ``time``, ``reason``."""
    if heartbeats:
        await cur.executemany(_HEARTBEAT_STATUS, heartbeats)


async def upsert_device_status(cur: psycopg.AsyncCursor, reports: list[dict[str, object]]) -> None:
    """Per device, its newest report of the batch: ``mine``, ``device``, ``online``,
    ``fault``, ``time``."""
    if reports:
        await cur.executemany(_DEVICE_STATUS, reports)


async def load_tracker(conn: psycopg.AsyncConnection) -> PresenceTracker:
    """The committed presence state, as stored by earlier runs."""
    cur = await conn.execute(_SELECT_PRESENCE)
    state = {}
    for row in await cur.fetchall():
        (mine, card, underground, entered, left, area, area_since, station, station_since,
         distance, last_seen, changed) = row  # fmt: skip
        state[(str(mine), str(card))] = Presence(
            bool(underground), _us(entered), _us(left), str(area), datetime_to_us(area_since),
            str(station), datetime_to_us(station_since),
            None if distance is None else float(distance), datetime_to_us(last_seen),
            datetime_to_us(changed),
        )  # fmt: skip
    cur = await conn.execute(_SELECT_SNAPSHOT_AT)
    snapshot_at = {str(m): datetime_to_us(t) for m, t in await cur.fetchall()}
    return PresenceTracker(state, snapshot_at)


def _us(value: object) -> int | None:
    return None if value is None else datetime_to_us(value)  # type: ignore[arg-type]


async def latest_output_alarms(
    conn: psycopg.AsyncConnection, rules: list[str]
) -> list[tuple[str, str, dt.datetime, str]]:
    """Per (mine, output rule): the start of its latest alarm and the mine's time zone."""
    cur = await conn.execute(_SELECT_OUTPUT_DONE, {"rules": rules})
    return [(str(m), str(r), started, str(tz)) for m, r, started, tz in await cur.fetchall()]
