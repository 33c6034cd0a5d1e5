"""Record types of the personnel-positioning files (人员定位, domain reference §7.2).

Codes are checked for their §7.1 lengths: card 17, area 16, station 22 digits. The field lists
of RYCS, RYCY, RYXZ and RYQJ are inferred from database tables (§7.2 [I]).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar

from minewatch.national.fields import (
    FieldError,
    FieldSpec,
    Metadata,
    Record,
    code,
    digits,
    flag,
    integer,
    kind,
    number,
    text,
    time,
)
from minewatch.national.format import (
    AREA_CODE_LEN,
    CARD_CODE_LEN,
    STATION_CODE_LEN,
    FileType,
    Reason,
    check_digits,
    check_time,
    format_time,
    is_digits,
    parse_time,
)
from minewatch.national.safety import StationPowerState, StationRunState

TRACK_ITEM_SEP = ","
TRACK_PART_SEP = "&"


class ShaftFlag(enum.IntEnum):
    """出入井标志 of RYSS; 0 is seen in real files, its meaning is unclear (§12.3)."""

    UNSET = 0
    IN = 1  # 入井
    OUT = 2  # 出井


@dataclass(frozen=True, slots=True)
class TrackPoint:
    """One item of a RYSS 行进轨迹: a station and the time the card passed it."""

    station_code: str
    time: dt.datetime

    def __post_init__(self) -> None:
        check_digits(self.station_code, STATION_CODE_LEN, "track station code")
        check_time(self.time)


def _read_track(raw: str) -> tuple[TrackPoint, ...]:
    if not raw:
        return ()
    points = []
    for item in raw.split(TRACK_ITEM_SEP):
        station, sep, when = item.partition(TRACK_PART_SEP)
        stamp = parse_time(when)
        if not sep or stamp is None or not is_digits(station, STATION_CODE_LEN):
            raise FieldError(Reason.INVALID_TRACK, f"行进轨迹 item {item!r} is not station&time")
        points.append(TrackPoint(station, stamp))
    return tuple(points)


def _write_track(points: tuple[TrackPoint, ...]) -> str:
    items = (f"{p.station_code}{TRACK_PART_SEP}{format_time(p.time)}" for p in points)
    return TRACK_ITEM_SEP.join(items)


def _check_track(value: object) -> tuple[TrackPoint, ...]:
    if not isinstance(value, tuple) or not all(isinstance(p, TrackPoint) for p in value):
        raise ValueError(f"track {value!r} is not a tuple of TrackPoint")
    return value


def track(label: str) -> Metadata:
    return kind(FieldSpec(label, "track", _read_track, _write_track, _check_track))


def card(label: str = "人员卡编码") -> Metadata:
    return digits(label, CARD_CODE_LEN)


def area(label: str = "区域编码", *, required: bool = True) -> Metadata:
    return digits(label, AREA_CODE_LEN, required=required)


def station(label: str = "基站编码") -> Metadata:
    return digits(label, STATION_CODE_LEN)


@dataclass(frozen=True, slots=True)
class RyxxRecord(Record):
    """人员信息 (9 fields); "未设置" in a text field means not set."""

    FILE_TYPE: ClassVar[FileType] = FileType.RYXX
    card_code: str = field(metadata=card())
    name: str = field(metadata=text("姓名"))
    job: str = field(metadata=text("工种"))
    position: str = field(metadata=text("职务"))
    team: str = field(metadata=text("队组/部门"))
    birth_date: str = field(metadata=text("出生日期"))  # format not confirmed: kept as text
    unknown: str = field(metadata=text("<unknown, often empty>"))
    is_leader: bool = field(metadata=flag("是否矿领导"))
    is_special_worker: bool = field(metadata=flag("是否特种作业人员"))


@dataclass(frozen=True, slots=True)
class RyqyRecord(Record):
    """区域定义 (4 fields); types seen: 井口区域, 重点区域, 限制区域, 其它区域."""

    FILE_TYPE: ClassVar[FileType] = FileType.RYQY
    area_type: str = field(metadata=text("区域类型", required=True))
    area_code: str = field(metadata=area())
    rated_headcount: int | None = field(metadata=integer("核定人数"))
    area_name: str = field(metadata=text("区域名称"))


@dataclass(frozen=True, slots=True)
class RyjzRecord(Record):
    """基站定义 (6 fields)."""

    FILE_TYPE: ClassVar[FileType] = FileType.RYJZ
    station_code: str = field(metadata=station())
    name: str = field(metadata=text("基站名称/位置"))
    x: Decimal | None = field(metadata=number("X"))
    y: Decimal | None = field(metadata=number("Y"))
    z: Decimal | None = field(metadata=number("Z"))
    description: str = field(metadata=text("描述"))


@dataclass(frozen=True, slots=True)
class JzssRecord(Record):
    """基站实时状态 (4 fields; codes of 表B.8/B.9)."""

    FILE_TYPE: ClassVar[FileType] = FileType.JZSS
    station_code: str = field(metadata=station())
    run_state: StationRunState = field(metadata=code("运行状态", StationRunState))
    power_state: StationPowerState = field(metadata=code("供电状态", StationPowerState))
    data_time: dt.datetime = field(metadata=time("数据时间", required=True))


@dataclass(frozen=True, slots=True)
class RyssRecord(Record):
    """人员实时: one card in the full snapshot (15 fields)."""

    FILE_TYPE: ClassVar[FileType] = FileType.RYSS
    card_code: str = field(metadata=card())
    name: str = field(metadata=text("姓名"))
    shaft_flag: ShaftFlag = field(metadata=code("出入井标志", ShaftFlag))
    in_time: dt.datetime | None = field(metadata=time("入井时刻"))
    out_time: dt.datetime | None = field(metadata=time("出井时刻"))  # empty while underground
    area_code: str = field(metadata=area())
    area_time: dt.datetime | None = field(metadata=time("进入当前区域时刻"))
    station_code: str = field(metadata=station())
    station_time: dt.datetime | None = field(metadata=time("进入当前基站时刻"))
    work_pattern: str = field(metadata=text("劳动组织方式"))  # e.g. 三八制
    distance_m: Decimal | None = field(metadata=number("距离基站距离"))
    work_state: str = field(metadata=text("人员工作状态"))
    is_leader: bool = field(metadata=flag("是否矿领导"))
    is_special_worker: bool = field(metadata=flag("是否特种人员"))
    track: tuple[TrackPoint, ...] = field(metadata=track("行进轨迹"))


@dataclass(frozen=True, slots=True)
class RycsRecord(Record):
    """超时报警 (10 fields, inferred from table HJL_RYDW_RYCS)."""

    FILE_TYPE: ClassVar[FileType] = FileType.RYCS
    card_code: str = field(metadata=card())
    name: str = field(metadata=text("姓名"))
    in_time: dt.datetime | None = field(metadata=time("入井时刻"))
    alarm_start: dt.datetime = field(metadata=time("报警开始时间", required=True))
    alarm_end: dt.datetime | None = field(metadata=time("报警结束时间"))
    area_code: str = field(metadata=area())
    area_time: dt.datetime | None = field(metadata=time("进入当前区域时刻"))
    station_code: str = field(metadata=station())
    station_time: dt.datetime | None = field(metadata=time("进入当前基站时刻"))
    data_time: dt.datetime = field(metadata=time("数据时间", required=True))


@dataclass(frozen=True, slots=True)
class RycyRecord(Record):
    """超员报警 (9 fields, inferred); a mine-level alarm has no area code."""

    FILE_TYPE: ClassVar[FileType] = FileType.RYCY
    alarm_type: str = field(metadata=text("报警类型", required=True))  # 矿井超员 / 区域超员
    rated_headcount: int | None = field(metadata=integer("定员数"))
    headcount: int | None = field(metadata=integer("当前总人数"))
    area_code: str = field(metadata=area(required=False))
    area_name: str = field(metadata=text("区域名称"))
    alarm_start: dt.datetime = field(metadata=time("报警开始时间", required=True))
    alarm_end: dt.datetime | None = field(metadata=time("报警结束时间"))
    people: str = field(metadata=text("区域人员集合"))  # format not documented: kept as text
    data_time: dt.datetime = field(metadata=time("数据时间", required=True))


@dataclass(frozen=True, slots=True)
class RyxzRecord(Record):
    """进入限制区域报警 (10 fields, inferred)."""

    FILE_TYPE: ClassVar[FileType] = FileType.RYXZ
    card_code: str = field(metadata=card())
    name: str = field(metadata=text("姓名"))
    alarm_start: dt.datetime = field(metadata=time("报警开始时间", required=True))
    alarm_end: dt.datetime | None = field(metadata=time("报警结束时间"))
    in_time: dt.datetime | None = field(metadata=time("入井时刻"))
    area_code: str = field(metadata=area())
    area_time: dt.datetime | None = field(metadata=time("进入区域时刻"))
    station_code: str = field(metadata=station())
    station_time: dt.datetime | None = field(metadata=time("进入基站时刻"))
    data_time: dt.datetime = field(metadata=time("数据时间", required=True))


@dataclass(frozen=True, slots=True)
class RyqjRecord(Record):
    """求救 (10 fields, inferred)."""

    FILE_TYPE: ClassVar[FileType] = FileType.RYQJ
    card_code: str = field(metadata=card())
    name: str = field(metadata=text("姓名"))
    sos_start: dt.datetime = field(metadata=time("求救开始时间", required=True))
    sos_end: dt.datetime | None = field(metadata=time("求救结束时间"))
    in_time: dt.datetime | None = field(metadata=time("入井时刻"))
    area_code: str = field(metadata=area())
    area_time: dt.datetime | None = field(metadata=time("进入区域时刻"))
    station_code: str = field(metadata=station())
    station_time: dt.datetime | None = field(metadata=time("进入基站时刻"))
    data_time: dt.datetime = field(metadata=time("数据时间", required=True))
