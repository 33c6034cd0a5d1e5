"""SQL of the video dispatch API (视频调度): cameras with their status, analytic events."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from psycopg import AsyncConnection
from psycopg.rows import dict_row

Rows = list[dict[str, object]]


async def cameras(conn: AsyncConnection, mine: str) -> Rows:
    """Defined cameras and cameras that sent heartbeats, with their current status."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT coalesce(c.camera_code, s.camera_code) AS camera_code, c.name, c.area_code, "
        "c.location, c.stream_url, c.heartbeat_timeout_s, (c.camera_code IS NOT NULL) AS defined, "
        "CASE WHEN s.online IS NULL THEN 'unknown' WHEN s.online THEN 'online' ELSE 'offline' "
        "END AS status, s.since AS status_since, s.reason AS status_reason, s.last_heartbeat_at "
        "FROM (SELECT * FROM video_cameras WHERE mine_code = %(mine)s AND valid_to IS NULL) c "
        "FULL JOIN (SELECT * FROM video_camera_status WHERE mine_code = %(mine)s) s "
        "ON s.camera_code = c.camera_code ORDER BY 1",
        {"mine": mine},
    )
    return await cur.fetchall()


async def status_changes(
    conn: AsyncConnection, mine: str, camera: str, start: dt.datetime, end: dt.datetime
) -> Rows:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT time, online, reason FROM video_status_changes WHERE mine_code = %(mine)s "
        "AND camera_code = %(camera)s AND time >= %(start)s AND time < %(end)s ORDER BY time",
        {"mine": mine, "camera": camera, "start": start, "end": end},
    )
    return await cur.fetchall()


@dataclass(frozen=True, slots=True)
class EventFilter:
    start: dt.datetime
    end: dt.datetime
    event_type: str | None = None
    camera: str | None = None
    area: str | None = None
    min_confidence: float | None = None
    limit: int = 1000


async def events(conn: AsyncConnection, mine: str, where: EventFilter) -> Rows:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT time, camera_code, area_code, event_type, confidence, "
        "snapshot_ref, event_id FROM video_events WHERE mine_code = %(mine)s "
        "AND time >= %(start)s AND time < %(end)s "
        "AND (%(type)s::text IS NULL OR event_type = %(type)s) "
        "AND (%(camera)s::text IS NULL OR camera_code = %(camera)s) "
        "AND (%(area)s::text IS NULL OR area_code = %(area)s) "
        "AND (%(min_confidence)s::float8 IS NULL OR confidence >= %(min_confidence)s) "
        "ORDER BY time DESC LIMIT %(limit)s",
        {
            "mine": mine, "start": where.start, "end": where.end, "type": where.event_type,
            "camera": where.camera, "area": where.area, "min_confidence": where.min_confidence,
            "limit": where.limit,
        },
    )  # fmt: skip
    return await cur.fetchall()
