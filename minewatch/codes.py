"""Code tables of Chinese coal-mine monitoring (domain reference §6.3, §7).

These are identifiers, not thresholds: thresholds live per point in the database.
"""

from __future__ import annotations

import enum


class PointStatus(enum.IntFlag):
    """测点状态: bit flags of a reading (CDSS field 6); combinations are summed."""

    NORMAL = 0
    ALARM = 1  # 报警
    POWER_OFF = 2  # 断电
    CALIBRATION = 4  # 标校
    OVER_RANGE = 8  # 超量程
    SUBSTATION_FAULT = 16  # 分站故障
    NOT_POLLED = 32  # 不巡检
    PAUSED = 64  # 暂停
    SENSOR_FAULT = 128  # 传感器故障


#: Every status bit that the standard defines; anything else in a status word is invalid.
STATUS_MASK = 255


class ReadingFlag(enum.IntFlag):
    """Flags minewatch itself sets on a stored reading (``readings.flags``)."""

    NONE = 0
    LATE = 1  # event time before the last evaluated reading of the point: stored, evaluated
    # apart in its own time order (alarms/late.py), not by the live engine
    REPEAT = 2  # the same event time as an earlier reading of the point (a Sparkplug birth and
    # the data of the same millisecond, a reading sent twice): stored, not evaluated, not late


class ValueType(enum.StrEnum):
    """数值类型."""

    ANALOG = "MN"  # 模拟量
    CUMULATIVE = "LJ"  # 累计量
    SWITCH = "KG"  # 开关量
    MULTISTATE = "DT"  # 多态量


class SystemCode(enum.StrEnum):
    SAFETY_MONITORING = "01"  # 安全监控系统
    GAS_DRAINAGE = "02"  # 瓦斯抽放系统


class AbnormalType(enum.StrEnum):
    """异常类型 of YCBJ records."""

    OVER_LIMIT = "001"  # 超限报警
    POWER_OFF = "002"  # 断电报警
    FEED_ABNORMAL = "003"  # 馈电异常
    SENSOR_DISCONNECTED = "004"  # 传感器断线
    STATION_POWER_LOSS = "005"  # 基站断电
    STATION_UNREACHABLE = "006"  # 基站不通
    CALIBRATION = "007"  # 标校
    OVER_RANGE = "008"  # 超量程
    UPPER_PREWARNING = "009"  # 超上限预警
    LOWER_PREWARNING = "010"  # 超下限预警


class RelationKind(enum.StrEnum):
    """测点关联关系 (表B.7), as serialised in CDDY field 23."""

    LOCK = "B"  # 闭锁关系
    DOOR = "G"  # 关联风门
    CONTROL = "K"  # 控制关系
    PROTECTION = "H"  # 保护关系
    PRIMARY_BACKUP = "Z"  # 主备关系
    POWER_OFF = "D"  # 断电关系
    REGULATION = "T"  # 调节关系


#: 传感器类型 (4 digits) -> Chinese name. Analog 00xx, switch 10xx, cumulative 30xx, state 40xx.
# fmt: off
SENSOR_TYPES: dict[str, str] = {
    "0001": "环境瓦斯", "0002": "风速", "0003": "环境温度", "0004": "一氧化碳", "0005": "风压",
    "0006": "负压", "0007": "水池水位", "0008": "煤位", "0009": "硫化氢", "0010": "水温度",
    "0011": "高低浓度瓦斯", "0012": "氧气", "0013": "二氧化碳", "0014": "粉尘", "0015": "电压",
    "0016": "频率", "0017": "电流", "0018": "湿度", "0019": "风量", "0020": "顶板离层位移",
    "0021": "坝体位移", "0022": "管道瓦斯", "0023": "管道温度", "0024": "水质", "0025": "管道压力",
    "0026": "轴承温度", "0027": "噪声", "0028": "电机温度", "0029": "水库水位", "0030": "浸润线",
    "0031": "降雨量", "0032": "液压压力", "0033": "围岩应力", "0034": "钻孔应力",
    "0035": "锚杆应力",
    "0036": "混合瓦斯流量", "0037": "纯瓦斯流量", "0038": "管道一氧化碳", "0039": "氢气",
    "0040": "管道流量", "0041": "二氧化氮", "0042": "二氧化硫", "0043": "激光甲烷", "0044": "氨气",
    "0045": "氮气", "0046": "乙烯", "0047": "乙烷", "0048": "压强", "0049": "液位", "0050": "物位",
    "0051": "开度", "0052": "高度", "0053": "流量",
    "1001": "局部通风机", "1002": "风门", "1003": "风筒状态", "1004": "设备开停", "1005": "开关",
    "1006": "风向", "1007": "煤仓空满", "1008": "烟雾", "1009": "断电器", "1010": "主通风机",
    "1011": "馈电器", "1012": "声光报警器", "1013": "计量开停控制器", "1014": "控制量",
    "1015": "馈电",
    "3001": "产量", "3002": "瓦斯抽放量", "3003": "排水量", "3004": "钩数", "3005": "水流量",
    "4001": "分站", "4002": "电源状态",
}
# fmt: on

#: Sensor types that measure methane; their excursions are "gas alarms".
METHANE_SENSOR_TYPES = frozenset({"0001", "0011", "0022", "0043"})

#: Switch sensors whose value 1 means "the load side has power" (馈电).
FEED_SENSOR_TYPES = frozenset({"1011", "1015"})
#: The abnormal value of switch sensors whose meaning the code table fixes (§6.4: 1001/1010
#: 0 停, 1003 0 无风, 1008 1 有烟雾): the regulators' 开停报警, 主通风机全停, 风筒报警, 烟雾报警.
#: A point defined from a CDDY file (which has no such field) takes it from here; a point
#: defined in minewatch's own contract says it itself (``alarm_state``).
DEFAULT_ALARM_STATE: dict[str, int] = {"1001": 0, "1010": 0, "1003": 0, "1008": 1}


def value_type_of(sensor_type: str) -> ValueType:
    """The value type a sensor type code implies (its first digit)."""
    match sensor_type[:1]:
        case "0":
            return ValueType.ANALOG
        case "1":
            return ValueType.SWITCH
        case "3":
            return ValueType.CUMULATIVE
        case "4":
            return ValueType.MULTISTATE
    raise ValueError(f"unknown sensor type code {sensor_type!r}")


def is_mine_code(code: str) -> bool:
    """A mine code is 12 digits (the first 6 are the county's administrative code)."""
    return len(code) == 12 and code.isascii() and code.isdigit()
