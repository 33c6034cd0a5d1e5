"""Reported vs computed: the mine's own alarm records (national files) against minewatch's.

A regulator inspecting a mine remotely wants three lists per kind of alarm: what both found
(matched), what only the mine reported (minewatch computed no such alarm: a sensor minewatch
does not monitor, or a report without data behind it), and what only minewatch computed (the
mine did not report it: 瞒报 or a lost file). Point alarms compare YCBJ records
(``reported_point_alarms``) with the ``alarms`` of the same point code and 异常类型;
personnel alarms compare RYCS/RYCY/RYXZ/RYQJ records (``reported_personnel_alarms``) with the
``alarms`` of the same rule and subject. Two episodes match when their spans overlap once
each is widened by ``tolerance`` (the two systems see the same excursion from different
readings and clocks). Computed alarms count only for abnormal types the national table
names (001-010), not minewatch's own maintenance codes (M..), which no mine reports.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from psycopg import AsyncConnection
from psycopg.rows import dict_row


@dataclass(frozen=True, slots=True)
class Window:
    mine: str
    start: dt.datetime
    end: dt.datetime
    tolerance: dt.timedelta
    limit: int


_OVERLAP = """
    {c}.started_at <= coalesce({r}.ended_at, 'infinity') + %(tol)s
    AND {r}.started_at <= coalesce({c}.ended_at, 'infinity') + %(tol)s
"""

_POINT_COMPUTED = """
    SELECT a.id, p.code AS point_code, a.abnormal_type, a.rule, a.classification,
           a.started_at, a.ended_at, a.max_value, a.disposed_at, a.computed_late
    FROM alarms a JOIN points p ON p.id = a.point_id
    WHERE a.mine_code = %(mine)s AND a.subject_kind = 'point'
      AND a.abnormal_type ~ '^[0-9]{3}$'
      AND a.started_at >= %(start)s AND a.started_at < %(end)s
"""

_POINT_REPORTED = """
    SELECT r.point_code, r.abnormal_type, r.started_at, r.ended_at,
           r.max_value::float8 AS max_value, r.cause, r.measures, r.entered_at, r.source_file
    FROM reported_point_alarms r
    WHERE r.mine_code = %(mine)s AND r.started_at >= %(start)s AND r.started_at < %(end)s
"""

POINT_MATCHED = f"""
WITH c AS ({_POINT_COMPUTED}), r AS ({_POINT_REPORTED})
SELECT r.point_code, r.abnormal_type, r.started_at AS reported_start,
       r.ended_at AS reported_end, r.max_value AS reported_max,
       (r.cause <> '' AND r.measures <> '') AS reported_disposed, r.source_file,
       m.id AS alarm_id, m.rule, m.classification, m.started_at AS computed_start,
       m.ended_at AS computed_end, m.max_value AS computed_max,
       m.disposed_at IS NOT NULL AS computed_disposed, m.computed_late
FROM r CROSS JOIN LATERAL (
    SELECT c.* FROM c
    WHERE c.point_code = r.point_code AND c.abnormal_type = r.abnormal_type
      AND {_OVERLAP.format(c="c", r="r")}
    ORDER BY abs(EXTRACT(EPOCH FROM c.started_at - r.started_at)), c.id
    LIMIT 1
) m
ORDER BY r.started_at, r.point_code, r.abnormal_type
LIMIT %(limit)s
"""

POINT_REPORTED_ONLY = f"""
WITH c AS ({_POINT_COMPUTED}), r AS ({_POINT_REPORTED})
SELECT r.point_code, r.abnormal_type, r.started_at, r.ended_at, r.max_value,
       (r.cause <> '' AND r.measures <> '') AS disposed, r.source_file
FROM r
WHERE NOT EXISTS (
    SELECT 1 FROM c WHERE c.point_code = r.point_code AND c.abnormal_type = r.abnormal_type
      AND {_OVERLAP.format(c="c", r="r")})
ORDER BY r.started_at, r.point_code, r.abnormal_type
LIMIT %(limit)s
"""

POINT_COMPUTED_ONLY = f"""
WITH c AS ({_POINT_COMPUTED}), r AS ({_POINT_REPORTED})
SELECT c.id AS alarm_id, c.point_code, c.abnormal_type, c.rule, c.classification,
       c.started_at, c.ended_at, c.max_value, c.disposed_at IS NOT NULL AS disposed,
       c.computed_late
FROM c
WHERE NOT EXISTS (
    SELECT 1 FROM r WHERE r.point_code = c.point_code AND r.abnormal_type = c.abnormal_type
      AND {_OVERLAP.format(c="c", r="r")})
ORDER BY c.started_at, c.point_code, c.abnormal_type
LIMIT %(limit)s
"""

_PERSON_COMPUTED = """
    SELECT a.id, a.rule, a.subject_kind, a.subject_code, a.started_at, a.ended_at
    FROM alarms a
    WHERE a.mine_code = %(mine)s
      AND a.rule IN ('overtime', 'mine_overcrowding', 'area_overcrowding',
                     'restricted_area', 'sos')
      AND a.started_at >= %(start)s AND a.started_at < %(end)s
"""

_PERSON_REPORTED = """
    SELECT r.rule, r.subject_kind, r.subject_code, r.started_at, r.ended_at, r.file_type,
           r.source_file
    FROM reported_personnel_alarms r
    WHERE r.mine_code = %(mine)s AND r.started_at >= %(start)s AND r.started_at < %(end)s
"""

PERSON_MATCHED = f"""
WITH c AS ({_PERSON_COMPUTED}), r AS ({_PERSON_REPORTED})
SELECT r.rule, r.subject_kind, r.subject_code, r.file_type, r.source_file,
       r.started_at AS reported_start, r.ended_at AS reported_end,
       m.id AS alarm_id, m.started_at AS computed_start, m.ended_at AS computed_end
FROM r CROSS JOIN LATERAL (
    SELECT c.* FROM c
    WHERE c.rule = r.rule AND c.subject_code = r.subject_code
      AND {_OVERLAP.format(c="c", r="r")}
    ORDER BY abs(EXTRACT(EPOCH FROM c.started_at - r.started_at)), c.id
    LIMIT 1
) m
ORDER BY r.started_at, r.rule, r.subject_code
LIMIT %(limit)s
"""

PERSON_REPORTED_ONLY = f"""
WITH c AS ({_PERSON_COMPUTED}), r AS ({_PERSON_REPORTED})
SELECT r.rule, r.subject_kind, r.subject_code, r.file_type, r.source_file, r.started_at,
       r.ended_at
FROM r
WHERE NOT EXISTS (
    SELECT 1 FROM c WHERE c.rule = r.rule AND c.subject_code = r.subject_code
      AND {_OVERLAP.format(c="c", r="r")})
ORDER BY r.started_at, r.rule, r.subject_code
LIMIT %(limit)s
"""

PERSON_COMPUTED_ONLY = f"""
WITH c AS ({_PERSON_COMPUTED}), r AS ({_PERSON_REPORTED})
SELECT c.id AS alarm_id, c.rule, c.subject_kind, c.subject_code, c.started_at, c.ended_at
FROM c
WHERE NOT EXISTS (
    SELECT 1 FROM r WHERE r.rule = c.rule AND r.subject_code = c.subject_code
      AND {_OVERLAP.format(c="c", r="r")})
ORDER BY c.started_at, c.rule, c.subject_code
LIMIT %(limit)s
"""


async def _rows(conn: AsyncConnection, sql: str, w: Window) -> list[dict[str, object]]:
    cur = conn.cursor(row_factory=dict_row)
    params = {"mine": w.mine, "start": w.start, "end": w.end, "tol": w.tolerance, "limit": w.limit}
    await cur.execute(sql, params)
    return await cur.fetchall()


async def reconcile(conn: AsyncConnection, w: Window) -> dict[str, dict[str, object]]:
    """Matched / reported-only / computed-only lists for point and personnel alarms."""
    out: dict[str, dict[str, object]] = {}
    for kind, (matched, reported, computed) in {
        "point_alarms": (POINT_MATCHED, POINT_REPORTED_ONLY, POINT_COMPUTED_ONLY),
        "personnel_alarms": (PERSON_MATCHED, PERSON_REPORTED_ONLY, PERSON_COMPUTED_ONLY),
    }.items():
        out[kind] = {
            "matched": await _rows(conn, matched, w),
            "reported_only": await _rows(conn, reported, w),
            "computed_only": await _rows(conn, computed, w),
        }
    return out
