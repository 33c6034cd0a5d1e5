"""Personnel, camera and communications-device metadata with history (a repository: its SQL,
named parameters only): a full definition in, versions out.

Each definition message is complete (like an RYXX/RYQY/RYJZ file): an entry that differs from
the current version closes it at the message's ``ts`` and opens a new one; an entry that is
absent is retired at ``ts``; an equal entry changes nothing, so a retained definition received
again is a no-op. A definition not newer than the last one applied for the mine is ignored.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg

from minewatch.ingest.feeds.contract import CommsMeta, PersonnelLimits, PersonnelMeta, VideoMeta
from minewatch.timeutil import us_to_datetime

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class VersionedTable:
    """A metadata table with (mine_code, <key>, valid_from, valid_to) and attribute columns.
    Names are constants of this module, never input."""

    name: str
    key: str
    attributes: tuple[str, ...]


PEOPLE = VersionedTable(
    "personnel_people", "card_code", ("name", "job", "title", "team", "is_leader", "is_special")
)
AREAS = VersionedTable("personnel_areas", "area_code", ("name", "area_type", "approved_count"))
STATIONS = VersionedTable(
    "personnel_stations", "station_code", ("area_code", "name", "x", "y", "z")
)
CAMERAS = VersionedTable(
    "video_cameras", "camera_code",
    ("name", "area_code", "location", "stream_url", "heartbeat_timeout_s"),
)  # fmt: skip

DEVICES = VersionedTable(
    "comms_devices", "device_code",
    ("kind", "name", "area_code", "location", "heartbeat_timeout_s"),
)  # fmt: skip

Row = tuple[object, ...]


def _statements(table: VersionedTable) -> tuple[str, str, str, str]:
    """SELECT current, close, drop and insert of ``table`` (names are module constants)."""
    columns = ", ".join(table.attributes)
    select = (
        f"SELECT {table.key}, valid_from, {columns} FROM {table.name} "
        "WHERE mine_code = %(mine)s AND valid_to IS NULL"
    )
    close = (
        f"UPDATE {table.name} SET valid_to = %(at)s WHERE mine_code = %(mine)s "
        f"AND {table.key} = %(key)s AND valid_to IS NULL"
    )
    drop = (
        f"DELETE FROM {table.name} WHERE mine_code = %(mine)s AND {table.key} = %(key)s "
        "AND valid_to IS NULL"
    )
    values = ", ".join(f"%({a})s" for a in table.attributes)
    insert = (
        f"INSERT INTO {table.name} (mine_code, {table.key}, valid_from, {columns}) "
        f"VALUES (%(mine)s, %(key)s, %(at)s, {values})"
    )
    return select, close, drop, insert


def _version(
    table: VersionedTable, mine: str, key: str, at: dt.datetime, row: Row
) -> dict[str, object]:
    return {"mine": mine, "key": key, "at": at, **dict(zip(table.attributes, row, strict=True))}


async def apply_versions(
    cur: psycopg.AsyncCursor, table: VersionedTable, mine: str, rows: Mapping[str, Row],
    at: dt.datetime,
) -> int:  # fmt: skip
    """Make ``rows`` (key -> attributes) the current versions as of ``at``; returns how many
    versions were opened, replaced or retired."""
    select, close, drop, insert = _statements(table)
    await cur.execute(select, {"mine": mine})
    current = {str(r[0]): (r[1], tuple(r[2:])) for r in await cur.fetchall()}
    changes = 0
    for key, (valid_from, attributes) in current.items():
        if key in rows and rows[key] == attributes:
            continue
        changes += 1
        if valid_from >= at:  # replaced at the very time it began: no zero-length version
            await cur.execute(drop, {"mine": mine, "key": key})
        else:
            await cur.execute(close, {"at": at, "mine": mine, "key": key})
        if key in rows:
            await cur.execute(insert, _version(table, mine, key, at, rows[key]))
    new = [_version(table, mine, key, at, row) for key, row in rows.items() if key not in current]
    if new:
        await cur.executemany(insert, new)
    return changes + len(new)


async def _ensure_mine(cur: psycopg.AsyncCursor, mine: str, name: str | None) -> None:
    await cur.execute(
        "INSERT INTO mines (code, name) VALUES (%(mine)s, %(name)s) ON CONFLICT (code) DO NOTHING",
        {"mine": mine, "name": name or mine},
    )


async def _newer(cur: psycopg.AsyncCursor, state_table: str, mine: str, at: dt.datetime) -> bool:
    """Whether ``at`` is after the last definition applied for ``mine`` (and note it)."""
    await cur.execute(
        f"INSERT INTO {state_table} (mine_code, meta_at) VALUES (%(mine)s, %(at)s) "
        "ON CONFLICT (mine_code) DO UPDATE SET meta_at = EXCLUDED.meta_at "
        f"WHERE {state_table}.meta_at IS NULL OR {state_table}.meta_at < EXCLUDED.meta_at "
        "RETURNING mine_code",
        {"mine": mine, "at": at},
    )
    return await cur.fetchone() is not None


async def apply_personnel_meta(conn: psycopg.AsyncConnection, meta: PersonnelMeta) -> int:
    """Store a personnel definition (one transaction); returns the number of version changes.

    Only the parts the document is complete for are applied, each only if the document is newer
    than the last definition of that part (the retained message received again is a no-op).
    """
    doc = meta.document
    at = us_to_datetime(meta.time_us)
    entries: dict[str, tuple[VersionedTable, Mapping[str, Row]]] = {
        "people": (PEOPLE, {p.card: (p.name, p.job, p.title, p.team, p.leader, p.special)
                            for p in doc.people}),
        "areas": (AREAS, {a.code: (a.name, a.type, a.approved) for a in doc.areas}),
        "stations": (STATIONS, {s.code: (s.area, s.name, s.x, s.y, s.z) for s in doc.stations}),
    }  # fmt: skip
    changes = 0
    async with conn.transaction(), conn.cursor() as cur:
        await _ensure_mine(cur, meta.mine, doc.mine_name)
        parts = [part for part in doc.complete_for if await _newer_part(cur, meta.mine, part, at)]
        if not parts:
            log.info("personnel definition of %s at %s is not newer: ignored", meta.mine, at)
            return 0
        if doc.limits is not None:
            await _apply_limits(cur, meta.mine, doc.limits)
        for part in parts:
            table, rows = entries[part]
            changes += await apply_versions(cur, table, meta.mine, rows, at)
    return changes


async def _newer_part(cur: psycopg.AsyncCursor, mine: str, part: str, at: dt.datetime) -> bool:
    """Whether ``at`` is after the last definition of ``part`` applied for ``mine`` (noted)."""
    await cur.execute(
        "INSERT INTO personnel_meta_parts (mine_code, part, applied_at) "
        "VALUES (%(mine)s, %(part)s, %(at)s) "
        "ON CONFLICT (mine_code, part) DO UPDATE SET applied_at = EXCLUDED.applied_at "
        "WHERE personnel_meta_parts.applied_at < EXCLUDED.applied_at RETURNING part",
        {"mine": mine, "part": part, "at": at},
    )
    return await cur.fetchone() is not None


async def _apply_limits(cur: psycopg.AsyncCursor, mine: str, limits: PersonnelLimits) -> None:
    """The mine's personnel limits (current values only: the alarms record what they were)."""
    await cur.execute(
        "UPDATE mines SET max_underground_h = %(hours)s, max_underground_people = %(people)s, "
        "shift_starts = %(shifts)s, timezone = coalesce(%(tz)s, timezone), updated_at = now() "
        "WHERE code = %(mine)s",
        {
            "mine": mine, "hours": limits.max_underground_h,
            "people": limits.max_underground_people, "tz": limits.timezone,
            "shifts": None if limits.shift_starts is None else list(limits.shift_starts),
        },
    )  # fmt: skip


async def apply_video_meta(conn: psycopg.AsyncConnection, meta: VideoMeta) -> int:
    doc = meta.document
    at = us_to_datetime(meta.time_us)
    async with conn.transaction(), conn.cursor() as cur:
        await _ensure_mine(cur, meta.mine, doc.mine_name)
        if not await _newer(cur, "video_feed_state", meta.mine, at):
            log.info("camera definition of %s at %s is not newer: ignored", meta.mine, at)
            return 0
        cameras = {
            c.code: (c.name, c.area, c.location, c.stream_url, c.heartbeat_timeout_s)
            for c in doc.cameras
        }
        return await apply_versions(cur, CAMERAS, meta.mine, cameras, at)


async def load_camera_timeouts(conn: psycopg.AsyncConnection) -> dict[tuple[str, str], float]:
    cur = await conn.execute(
        "SELECT mine_code, camera_code, heartbeat_timeout_s FROM video_cameras "
        "WHERE valid_to IS NULL AND heartbeat_timeout_s IS NOT NULL"
    )
    return {(str(m), str(c)): float(t) for m, c, t in await cur.fetchall()}


async def apply_comms_meta(conn: psycopg.AsyncConnection, meta: CommsMeta) -> int:
    doc = meta.document
    at = us_to_datetime(meta.time_us)
    async with conn.transaction(), conn.cursor() as cur:
        await _ensure_mine(cur, meta.mine, doc.mine_name)
        if not await _newer(cur, "comms_feed_state", meta.mine, at):
            log.info("device definition of %s at %s is not newer: ignored", meta.mine, at)
            return 0
        devices = {
            d.code: (d.kind, d.name, d.area, d.location, d.heartbeat_timeout_s) for d in doc.devices
        }
        return await apply_versions(cur, DEVICES, meta.mine, devices, at)
