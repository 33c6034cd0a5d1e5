"""SQL of the communications API (通信联络: base stations, dispatch phones, broadcast): the
devices with their status now."""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import dict_row

Rows = list[dict[str, object]]

#: A device without its own ``heartbeat_timeout_s`` is offline when its last report is older
#: than this (the feed pipeline's default, MINEWATCH_FEEDS__HEARTBEAT_TIMEOUT_S = 90 s).
DEFAULT_TIMEOUT_S = 90.0

#: Status of each device: ``fault`` (online but reporting a fault), ``offline`` (reported so,
#: or timed out: ``reason`` says which), ``online``, or ``unknown`` (never reported).
_DEVICES = """
SELECT coalesce(d.device_code, s.device_code) AS device_code, d.kind, d.name, d.area_code,
       d.location, d.heartbeat_timeout_s, (d.device_code IS NOT NULL) AS defined,
       CASE WHEN s.online IS NULL THEN 'unknown'
            WHEN s.last_report_at < now() - make_interval(secs => t.timeout_s) THEN 'offline'
            WHEN NOT s.online THEN 'offline'
            WHEN s.fault IS NOT NULL THEN 'fault' ELSE 'online' END AS status,
       CASE WHEN s.online IS NULL THEN NULL
            WHEN s.last_report_at < now() - make_interval(secs => t.timeout_s) THEN 'timeout'
            WHEN NOT s.online THEN 'reported' WHEN s.fault IS NOT NULL THEN 'fault'
            ELSE 'report' END AS status_reason,
       CASE WHEN s.last_report_at < now() - make_interval(secs => t.timeout_s)
            THEN s.last_report_at + make_interval(secs => t.timeout_s) ELSE s.since END
           AS status_since,
       s.fault, s.last_report_at
FROM (SELECT * FROM comms_devices WHERE mine_code = %(mine)s AND valid_to IS NULL) d
FULL JOIN (SELECT * FROM comms_device_status WHERE mine_code = %(mine)s) s
  ON s.device_code = d.device_code
CROSS JOIN LATERAL (SELECT coalesce(d.heartbeat_timeout_s, %(timeout)s) AS timeout_s) t
ORDER BY 1
"""


async def devices(conn: AsyncConnection, mine: str) -> Rows:
    """Defined devices and devices that reported, with their status now."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_DEVICES, {"mine": mine, "timeout": DEFAULT_TIMEOUT_S})
    return await cur.fetchall()
