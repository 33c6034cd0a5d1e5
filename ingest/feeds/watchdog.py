"""Cameras go offline by the clock: a periodic sweep, not the next message, times them out.

A camera whose last heartbeat is older than its timeout (video/meta ``heartbeat_timeout_s``,
else the configured default) becomes offline with ``since`` = last heartbeat + timeout and
reason ``timeout``; a status change row records it. The sweep has its own connection; a
heartbeat committed concurrently wins (the update re-checks the heartbeat it read).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import psycopg

from minewatch.retry import run_rounds
from minewatch.timeutil import now_us, us_to_datetime

log = logging.getLogger(__name__)

_SWEEP = """
WITH due AS (
    SELECT s.mine_code, s.camera_code, s.last_heartbeat_at,
           s.last_heartbeat_at
             + make_interval(secs => coalesce(c.heartbeat_timeout_s, %(default_s)s)) AS deadline
    FROM video_camera_status s
    LEFT JOIN video_cameras c ON c.mine_code = s.mine_code AND c.camera_code = s.camera_code
                             AND c.valid_to IS NULL
    WHERE s.online
), gone AS (
    UPDATE video_camera_status s
    SET online = false, reason = 'timeout', since = due.deadline, updated_at = now()
    FROM due
    WHERE s.mine_code = due.mine_code AND s.camera_code = due.camera_code
      AND due.deadline < %(now)s AND s.online AND s.last_heartbeat_at = due.last_heartbeat_at
    RETURNING s.mine_code, s.camera_code, s.since
)
INSERT INTO video_status_changes (time, mine_code, camera_code, online, reason)
SELECT since, mine_code, camera_code, false, 'timeout' FROM gone
RETURNING mine_code, camera_code
"""


async def sweep_offline(
    conn: psycopg.AsyncConnection, now: int, default_timeout_s: float
) -> list[tuple[str, str]]:
    """Turn the cameras whose heartbeat deadline passed before ``now`` (µs) offline; returns
    them as (mine, camera)."""
    async with conn.transaction():
        cur = await conn.execute(
            _SWEEP, {"now": us_to_datetime(now), "default_s": default_timeout_s}
        )
        return [(str(m), str(c)) for m, c in await cur.fetchall()]


class CameraWatchdog:
    """Runs :func:`sweep_offline` every ``interval_s`` until cancelled."""

    def __init__(
        self, database_url: str, default_timeout_s: float, interval_s: float,
        clock: Callable[[], int] = now_us,
    ) -> None:  # fmt: skip
        self._url = database_url
        self._default_timeout_s = default_timeout_s
        self._interval_s = interval_s
        self._clock = clock
        self.sweeps = 0

    async def run(self) -> None:
        await run_rounds(self._url, self._interval_s, self._sweep, "camera sweep")

    async def _sweep(self, conn: psycopg.AsyncConnection) -> None:
        gone = await sweep_offline(conn, self._clock(), self._default_timeout_s)
        self.sweeps += 1
        for mine, camera in gone:
            log.warning("camera %s/%s offline: heartbeat timeout", mine, camera)
