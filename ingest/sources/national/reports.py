"""What the mine's own system reports besides readings and definitions, as rows of the report
tables (migration 0008, docs/national-files.md "What accepted files become"). Pure.

- FZSS (分站实时状态) -> ``substation_status``: one row per substation and 数据时间. A
  substation is not a measuring point (readings need a CDDY point; fan and feed states are
  switch points and arrive as CDSS readings), so its run/power state has its own table.
- YCBJ (测点异常报警) -> ``reported_point_alarms``: the mine's abnormal-alarm records with their
  disposal (异常原因, 处理措施, 录入时间, 录入人), one row per (point, 异常类型, start).
- TJSJ (测点统计) -> ``reported_statistics``: one row per (point, interval).
- RYCS, RYCY, RYXZ, RYQJ -> ``reported_personnel_alarms``: one row per (rule, subject, start),
  with minewatch's own rule names (``overtime``, ``mine_overcrowding``/``area_overcrowding``,
  ``restricted_area``, ``sos``) so they compare directly with the computed ``alarms``.

Rows are kept as reported: numbers stay :class:`~decimal.Decimal` (stored as ``numeric``), times
are aware, and every row names its file. A record that repeats a key within a file replaces
the earlier one (the last in file order wins); across files, the store keeps the version of the
latest file (:mod:`.report_repository`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from minewatch.alarms.rules.personnel import (
    AREA_OVERCROWDING,
    MINE_OVERCROWDING,
    OVERTIME,
    RESTRICTED_AREA,
    SOS,
)
from minewatch.national import (
    FileType,
    FzssRecord,
    ParsedFile,
    Record,
    RycsRecord,
    RycyRecord,
    RyqjRecord,
    RyxzRecord,
    TjsjRecord,
    YcbjRecord,
    encode_file,
)

Row = MappingProxyType[str, object]


class ReportTable(enum.StrEnum):
    SUBSTATION_STATUS = "substation_status"
    POINT_ALARMS = "reported_point_alarms"
    STATISTICS = "reported_statistics"
    PERSONNEL_ALARMS = "reported_personnel_alarms"


#: The file types stored as reports, and their table.
REPORT_TABLES: dict[FileType, ReportTable] = {
    FileType.FZSS: ReportTable.SUBSTATION_STATUS,
    FileType.YCBJ: ReportTable.POINT_ALARMS,
    FileType.TJSJ: ReportTable.STATISTICS,
    FileType.RYCS: ReportTable.PERSONNEL_ALARMS,
    FileType.RYCY: ReportTable.PERSONNEL_ALARMS,
    FileType.RYXZ: ReportTable.PERSONNEL_ALARMS,
    FileType.RYQJ: ReportTable.PERSONNEL_ALARMS,
}

#: The key of each table: a record with the key of a stored row is a new version of it.
REPORT_KEYS: dict[ReportTable, tuple[str, ...]] = {
    ReportTable.SUBSTATION_STATUS: ("mine_code", "substation_code", "time"),
    ReportTable.POINT_ALARMS: ("mine_code", "point_code", "abnormal_type", "started_at"),
    ReportTable.STATISTICS: ("mine_code", "point_code", "started_at", "ended_at"),
    ReportTable.PERSONNEL_ALARMS: ("mine_code", "rule", "subject_code", "started_at"),
}


@dataclass(frozen=True, slots=True)
class NationalReport:
    """The rows one accepted file gives its report table."""

    table: ReportTable
    mine: str
    source_file: str  # the file name, e.g. 620823009203_YCBJ_20260923101319.txt
    rows: tuple[Row, ...]
    raw: bytes  # the file's good records, re-encoded: what is quarantined if the database
    # refuses them for good

    @property
    def source(self) -> str:
        """The quarantine source, as for CDSS files: ``<mine>/files/<name without .txt>``."""
        return f"{self.mine}/files/{self.source_file.removesuffix('.txt')}"

    def __len__(self) -> int:
        return len(self.rows)


def national_report(parsed: ParsedFile) -> NationalReport:
    """The rows of an FZSS, YCBJ, TJSJ, RYCS, RYCY, RYXZ or RYQJ file (ValueError for others)."""
    table = REPORT_TABLES.get(parsed.file_type)
    if table is None:
        raise ValueError(f"{parsed.name} is not stored as a report")
    name = str(parsed.name)
    key = REPORT_KEYS[table]
    rows: dict[tuple[object, ...], Row] = {}
    for record in parsed.records:
        row = _ROW_OF[type(record)](record, parsed.mine_code)
        row.update(mine_code=parsed.mine_code, source_file=name)
        key_values = tuple(row[k] for k in key)
        rows.pop(key_values, None)  # the last record of a key wins, at its place in the file
        rows[key_values] = MappingProxyType(row)
    raw = encode_file(parsed.header, parsed.records)[1]
    return NationalReport(table, parsed.mine_code, name, tuple(rows.values()), raw)


def _fzss(r: FzssRecord, mine: str) -> dict[str, object]:
    return {
        "time": r.data_time,
        "substation_code": r.station_code,
        "run_state": int(r.run_state),
        "power_state": int(r.power_state),
    }


def _ycbj(r: YcbjRecord, mine: str) -> dict[str, object]:
    return {
        "point_code": r.point_code, "abnormal_type": r.abnormal_type.value,
        "started_at": r.start_time, "ended_at": r.end_time,
        "sensor_type_name": r.sensor_type_name, "location": r.location, "unit": r.unit,
        "max_value": r.max_value, "max_at": r.max_time, "min_value": r.min_value,
        "min_at": r.min_time, "mean_value": r.mean_value,
        "cause": r.cause, "measures": r.measures, "entered_at": r.entered_time,
        "entered_by": r.entered_by, "data_time": r.data_time,
    }  # fmt: skip


def _tjsj(r: TjsjRecord, mine: str) -> dict[str, object]:
    return {
        "point_code": r.point_code, "started_at": r.start_time, "ended_at": r.end_time,
        "sensor_type_name": r.sensor_type_name, "location": r.location, "unit": r.unit,
        "max_value": r.max_value, "max_at": r.max_time, "min_value": r.min_value,
        "min_at": r.min_time, "mean_value": r.mean_value, "data_time": r.data_time,
    }  # fmt: skip


#: Every column of ``reported_personnel_alarms`` besides the mine and the file; a field the
#: file type does not have is None.
_PERSONNEL_COLUMNS = (
    "rule", "subject_kind", "subject_code", "file_type", "started_at", "ended_at", "card_code",
    "name", "mine_entered_at", "area_code", "area_name", "area_since", "station_code",
    "station_since", "alarm_type", "rated_headcount", "headcount", "people", "data_time",
)  # fmt: skip


def _person_alarm(rule: str, r: RycsRecord | RyxzRecord | RyqjRecord) -> dict[str, object]:
    start, end = (r.sos_start, r.sos_end) if isinstance(r, RyqjRecord) else (
        r.alarm_start, r.alarm_end)  # fmt: skip
    row: dict[str, object] = dict.fromkeys(_PERSONNEL_COLUMNS)
    row.update(
        rule=rule, subject_kind="person", subject_code=r.card_code,
        file_type=r.FILE_TYPE.value, started_at=start, ended_at=end, card_code=r.card_code,
        name=r.name, mine_entered_at=r.in_time, area_code=r.area_code, area_since=r.area_time,
        station_code=r.station_code, station_since=r.station_time, data_time=r.data_time,
    )  # fmt: skip
    return row


def _rycy(r: RycyRecord, mine: str) -> dict[str, object]:
    """矿井超员 (no area code: the subject is the mine) or 区域超员 (the subject is the area)."""
    row: dict[str, object] = dict.fromkeys(_PERSONNEL_COLUMNS)
    area = r.area_code or None
    row.update(
        rule=AREA_OVERCROWDING if area else MINE_OVERCROWDING,
        subject_kind="area" if area else "mine",
        subject_code=area or mine,
        file_type=r.FILE_TYPE.value, started_at=r.alarm_start, ended_at=r.alarm_end,
        area_code=area, area_name=r.area_name, alarm_type=r.alarm_type,
        rated_headcount=r.rated_headcount, headcount=r.headcount, people=r.people,
        data_time=r.data_time,
    )  # fmt: skip
    return row


_ROW_OF: dict[type[Record], Callable[[Any, str], dict[str, object]]] = {
    FzssRecord: _fzss,
    YcbjRecord: _ycbj,
    TjsjRecord: _tjsj,
    RycsRecord: lambda r, _: _person_alarm(OVERTIME, r),
    RyxzRecord: lambda r, _: _person_alarm(RESTRICTED_AREA, r),
    RyqjRecord: lambda r, _: _person_alarm(SOS, r),
    RycyRecord: _rycy,
}
