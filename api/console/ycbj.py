"""The computed alarms of one mine as a national YCBJ file (测点异常报警, 42号文附件2 TXT), written
by the same codec the national inbox reads (:mod:`minewatch.national`), so a regulator can hand
them on. Only point alarms whose 异常类型 is in the national table (001-010) are records;
minewatch's own codes (maintenance M.., states S.., fusion F..) have no YCBJ form."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from minewatch.codes import SENSOR_TYPES, AbnormalType
from minewatch.national import CHINA_TZ, FileType, Header, YcbjRecord, encode_file

_NATIONAL = frozenset(t.value for t in AbnormalType)
#: Characters a field cannot hold (the format's separators), replaced by a full-width comma.
_RESERVED = re.compile(r"[;~|；\r\n]")

_ALARMS = """
SELECT a.abnormal_type, a.started_at, a.ended_at, a.max_value, a.max_at, a.min_value, a.min_at,
       a.value_sum / nullif(a.value_count, 0) AS mean_value, a.cause, a.measures,
       a.disposed_at, a.handled_by, p.code AS point_code, p.sensor_type, p.location, p.unit
FROM alarms a JOIN points p ON p.id = a.point_id
WHERE a.mine_code = %(mine)s AND a.subject_kind = 'point' AND a.abnormal_type = ANY(%(types)s)
  AND a.started_at >= %(start)s AND a.started_at < %(end)s
ORDER BY a.started_at, a.id LIMIT %(limit)s
"""


def _time(value: object) -> dt.datetime | None:
    if not isinstance(value, dt.datetime):
        return None
    return value.astimezone(CHINA_TZ).replace(microsecond=0)


def _number(value: object) -> Decimal | None:
    return None if not isinstance(value, float | int) else Decimal(str(round(float(value), 4)))


def _text(value: object) -> str:
    return _RESERVED.sub("，", str(value or "")).strip()


async def ycbj_file(
    conn: AsyncConnection, mine: str, mine_name: str, start: dt.datetime, end: dt.datetime,
    limit: int, now: dt.datetime,
) -> tuple[str, bytes, int]:  # fmt: skip
    """(file name, bytes, records) of the mine's point alarms starting in ``[start, end)``;
    an alarm still open is a record without an end (as the mine's own file has it)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_ALARMS, {"mine": mine, "types": sorted(_NATIONAL), "start": start,
                                "end": end, "limit": limit})  # fmt: skip
    at = _time(now)
    assert at is not None
    records = [
        YcbjRecord(
            _text(a["point_code"]), SENSOR_TYPES.get(str(a["sensor_type"]), ""),
            _text(a["location"]), _text(a["unit"]), AbnormalType(a["abnormal_type"]),
            _time(a["started_at"]), _time(a["ended_at"]),  # type: ignore[arg-type]
            _number(a["max_value"]), _time(a["max_at"]), _number(a["min_value"]),
            _time(a["min_at"]), _number(a["mean_value"]), _text(a["cause"]),
            _text(a["measures"]), _time(a["disposed_at"]), _text(a["handled_by"]), at,
        )
        for a in await cur.fetchall()
    ]  # fmt: skip
    name, data = encode_file(Header(FileType.YCBJ, mine, _text(mine_name), at), records)
    return name, data, len(records)
