"""Record types of the safety-monitoring files (安全监控, domain reference §6.2).

Field order is the file order. Numbers are :class:`~decimal.Decimal` or None (empty field);
times are aware datetimes in China time, None where the field may be empty.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar

from minewatch.codes import AbnormalType, SystemCode, ValueType
from minewatch.national.fields import Record, code, digits, integer, number, text, time
from minewatch.national.format import FileType
from minewatch.national.relations import RelationGroup, relations


class StationRunState(enum.IntEnum):
    """分站/基站运行状态 (表B.8)."""

    OK = 0  # 通信正常
    INTERRUPTED = 1  # 通信中断
    FAULT = 2  # 故障
    UNKNOWN = 9  # 未知


class StationPowerState(enum.IntEnum):
    """分站/基站供电状态 (表B.9)."""

    DC = 0  # 直流供电
    AC = 1  # 交流供电
    FAULT = 2  # 电源故障
    UNKNOWN = 9  # 未知


@dataclass(frozen=True, slots=True)
class CddyRecord(Record):
    """测点定义: one point with its range, thresholds and relations (24 fields)."""

    FILE_TYPE: ClassVar[FileType] = FileType.CDDY
    point_code: str = field(metadata=text("测点编码", required=True))
    system_code: SystemCode = field(metadata=code("系统编码", SystemCode))
    station_code: str = field(metadata=text("分站编码", required=True))
    sensor_type: str = field(metadata=digits("传感器类型", 4))
    value_type: ValueType = field(metadata=code("数值类型", ValueType))
    unit: str = field(metadata=text("数值单位"))
    range_high: Decimal | None = field(metadata=number("高量程"))
    range_low: Decimal | None = field(metadata=number("低量程"))
    alarm_high: Decimal | None = field(metadata=number("上限报警门限"))
    alarm_high_clear: Decimal | None = field(metadata=number("上限解报门限"))
    alarm_low: Decimal | None = field(metadata=number("下限报警门限"))
    alarm_low_clear: Decimal | None = field(metadata=number("下限解报门限"))
    poweroff_high: Decimal | None = field(metadata=number("上限断电门限"))
    restore_high: Decimal | None = field(metadata=number("上限复电门限"))
    poweroff_low: Decimal | None = field(metadata=number("下限断电门限"))
    restore_low: Decimal | None = field(metadata=number("下限复电门限"))
    desc_on: str = field(metadata=text("开描述"))
    desc_off: str = field(metadata=text("停描述"))
    location: str = field(metadata=text("测点安装位置"))
    x: Decimal | None = field(metadata=number("X坐标"))
    y: Decimal | None = field(metadata=number("Y坐标"))
    z: Decimal | None = field(metadata=number("Z坐标"))
    relations: tuple[RelationGroup, ...] = field(metadata=relations("传感器关联关系"))
    data_time: dt.datetime = field(metadata=time("数据时间", required=True))


@dataclass(frozen=True, slots=True)
class CdssRecord(Record):
    """测点实时数据: one reading (7 fields); switch points carry 0/1 and no unit."""

    FILE_TYPE: ClassVar[FileType] = FileType.CDSS
    point_code: str = field(metadata=text("测点编码", required=True))
    sensor_type_name: str = field(metadata=text("传感器类型名称"))
    location: str = field(metadata=text("测点安装位置"))
    value: Decimal | None = field(metadata=number("测点值"))
    unit: str = field(metadata=text("数值单位"))
    status: int = field(
        metadata=integer("测点状态", required=True)
    )  # PointStatus bits; range checked at ingest
    data_time: dt.datetime = field(metadata=time("数据时间", required=True))


@dataclass(frozen=True, slots=True)
class YcbjRecord(Record):
    """测点异常报警: one abnormal episode, open while ``end_time`` is None (17 fields)."""

    FILE_TYPE: ClassVar[FileType] = FileType.YCBJ
    point_code: str = field(metadata=text("测点编码", required=True))
    sensor_type_name: str = field(metadata=text("传感器类型名称"))
    location: str = field(metadata=text("测点安装位置"))
    unit: str = field(metadata=text("数值单位"))
    abnormal_type: AbnormalType = field(metadata=code("异常类型", AbnormalType))
    start_time: dt.datetime = field(metadata=time("异常开始时间", required=True))
    end_time: dt.datetime | None = field(metadata=time("异常结束时间"))
    max_value: Decimal | None = field(metadata=number("异常期间最大值"))
    max_time: dt.datetime | None = field(metadata=time("最大值时刻"))
    min_value: Decimal | None = field(metadata=number("最小值"))
    min_time: dt.datetime | None = field(metadata=time("最小值时刻"))
    mean_value: Decimal | None = field(metadata=number("平均值"))
    cause: str = field(metadata=text("异常原因"))
    measures: str = field(metadata=text("处理措施"))
    entered_time: dt.datetime | None = field(metadata=time("录入时间"))
    entered_by: str = field(metadata=text("录入人"))
    data_time: dt.datetime = field(metadata=time("数据时间", required=True))


@dataclass(frozen=True, slots=True)
class TjsjRecord(Record):
    """测点统计: statistics of one point over one interval (12 fields; file name inferred)."""

    FILE_TYPE: ClassVar[FileType] = FileType.TJSJ
    point_code: str = field(metadata=text("测点编码", required=True))
    sensor_type_name: str = field(metadata=text("传感器类型名称"))
    location: str = field(metadata=text("测点安装位置"))
    unit: str = field(metadata=text("数值单位"))
    start_time: dt.datetime = field(metadata=time("开始时间", required=True))
    end_time: dt.datetime = field(metadata=time("结束时间", required=True))
    max_value: Decimal | None = field(metadata=number("最大值"))
    max_time: dt.datetime | None = field(metadata=time("最大值时刻"))
    min_value: Decimal | None = field(metadata=number("最小值"))
    min_time: dt.datetime | None = field(metadata=time("最小值时刻"))
    mean_value: Decimal | None = field(metadata=number("平均值"))
    data_time: dt.datetime = field(metadata=time("数据时间", required=True))


@dataclass(frozen=True, slots=True)
class FzdyRecord(Record):
    """分站定义 (6 fields; only the table is documented, the file is inferred)."""

    FILE_TYPE: ClassVar[FileType] = FileType.FZDY
    station_code: str = field(metadata=text("分站编码", required=True))
    location: str = field(metadata=text("分站安装位置"))
    x: Decimal | None = field(metadata=number("X"))
    y: Decimal | None = field(metadata=number("Y"))
    z: Decimal | None = field(metadata=number("Z"))
    data_time: dt.datetime = field(metadata=time("数据时间", required=True))


@dataclass(frozen=True, slots=True)
class FzssRecord(Record):
    """分站实时状态 (4 fields, same shape as JZSS)."""

    FILE_TYPE: ClassVar[FileType] = FileType.FZSS
    station_code: str = field(metadata=text("分站编码", required=True))
    run_state: StationRunState = field(metadata=code("运行状态", StationRunState))
    power_state: StationPowerState = field(metadata=code("供电状态", StationPowerState))
    data_time: dt.datetime = field(metadata=time("数据时间", required=True))
