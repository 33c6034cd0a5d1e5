"""The alarm engine's vocabulary: rule names, their abnormal types and episode classifications.

Gas rules use the YCBJ 异常类型 (minewatch.codes.AbnormalType). Maintenance conditions that
the national code table does not name get minewatch codes starting with ``M``; an exporter
to the national platform maps or omits them.
"""

from __future__ import annotations

import enum

from minewatch.codes import AbnormalType


class MaintenanceType(enum.StrEnum):
    """Abnormal types of minewatch's own maintenance records (not in the YCBJ table)."""

    NEGATIVE_DRIFT = "M01"  # 负漂
    FLATLINE = "M02"  # 数据恒定 (stuck sensor)
    DATA_INTERRUPTION = "M03"  # 数据中断 (传感器无数据上传)
    SUBSTATION_FAULT = "M04"  # 分站故障 (status bit 16)
    INTERFERENCE = "M05"  # 干扰尖峰 (single-sample spike)
    CROSS_CHECK = "M06"  # far below its airflow neighbours (alarms/rules/cross_check.py)
    SENSOR_STUCK = "M07"  # constant while its upstream neighbours move (neighbour_checks.py)
    LOCAL_EXCURSION = "M08"  # an excursion no neighbour sees (neighbour_checks.py)


class StateType(enum.StrEnum):
    """Abnormal types of switch-state alarms (minewatch's own: YCBJ has no code for them; the
    names are the regulator platforms' 报警类型)."""

    FAN_STOP = "S01"  # 开停报警: 局部通风机 (1001) 停
    MAIN_FAN_STOP = "S02"  # 主通风机停 (1010; 主通风机全停 when every main fan is)
    DUCT_NO_WIND = "S03"  # 风筒报警: 风筒 (1003) 无风
    SMOKE = "S04"  # 烟雾报警 (1008 有烟雾)
    STATE = "S05"  # any other switch point in its configured alarm state


class FusionType(enum.StrEnum):
    """Abnormal types of fused alarms (alarms/rules/fusion.py; minewatch's own)."""

    GAS_PEOPLE = "F01"  # gas alarm with people in the point's area
    FAN_STOP_GAS_RISE = "F02"  # fan stopped, methane rising in its area
    GAS_CAMERA_OFFLINE = "F03"  # gas alarm while the area's camera is offline
    CO_FIRE_CONFIRMED = "F04"  # CO alarm with smoke or a temperature rise in its area


class FireType(enum.StrEnum):
    """Abnormal types of the CO classes (alarms/rules/co.py; minewatch's own)."""

    FIRE_CANDIDATE = "C01"  # sustained CO at the alarm level: a fire candidate


class Classification(enum.StrEnum):
    """What an excursion was (``alarms.classification``; the CHECK list of migration 0003)."""

    EXCEEDANCE = "exceedance"
    CALIBRATION_FLAGGED = "calibration_flagged"
    CALIBRATION_DECLARED = "calibration_declared"
    CALIBRATION_UNDECLARED = "calibration_undeclared"
    INTERFERENCE = "interference"
    DISCONNECTION = "disconnection"
    NEGATIVE_DRIFT = "negative_drift"
    FLATLINE = "flatline"
    OVER_RANGE = "over_range"
    SUBSTATION_FAULT = "substation_fault"
    DATA_INTERRUPTION = "data_interruption"
    DELIVERY_DELAY = "delivery_delay"
    POWER_OFF_FAILURE = "power_off_failure"
    CO_VEHICLE_SUSPECTED = "co_vehicle_suspected"  # a short CO puff where vehicles pass
    CROSS_CHECK = "cross_check"  # far below its neighbours on the airflow path
    SENSOR_STUCK = "sensor_stuck"  # constant while its upstream neighbours move
    LOCAL_EXCURSION = "local_excursion"  # an excursion no neighbour saw


class Category(enum.StrEnum):
    """Who an episode is for: dispatchers (gas), maintenance staff, or the record only."""

    GAS = "gas"
    MAINTENANCE = "maintenance"
    RECORD = "record"
    PERSONNEL = "personnel"
    PRODUCTION = "production"


#: rule name -> (abnormal type, category). Rule names are the ``alarms.rule`` values.
RULES: dict[str, tuple[str, Category]] = {
    "upper_alarm": (AbnormalType.OVER_LIMIT.value, Category.GAS),
    "lower_alarm": (AbnormalType.OVER_LIMIT.value, Category.GAS),
    "power_off": (AbnormalType.POWER_OFF.value, Category.GAS),
    "upper_prewarn": (AbnormalType.UPPER_PREWARNING.value, Category.GAS),
    "lower_prewarn": (AbnormalType.LOWER_PREWARNING.value, Category.GAS),
    "feed_abnormal": (AbnormalType.FEED_ABNORMAL.value, Category.GAS),
    "calibration": (AbnormalType.CALIBRATION.value, Category.RECORD),
    "interference": (MaintenanceType.INTERFERENCE.value, Category.RECORD),
    "disconnection": (AbnormalType.SENSOR_DISCONNECTED.value, Category.MAINTENANCE),
    "over_range": (AbnormalType.OVER_RANGE.value, Category.MAINTENANCE),
    "substation_fault": (MaintenanceType.SUBSTATION_FAULT.value, Category.MAINTENANCE),
    "negative_drift": (MaintenanceType.NEGATIVE_DRIFT.value, Category.MAINTENANCE),
    "flatline": (MaintenanceType.FLATLINE.value, Category.MAINTENANCE),
    "data_interruption": (MaintenanceType.DATA_INTERRUPTION.value, Category.MAINTENANCE),
    # switch states (alarms/rules/states.py)
    "fan_stop": (StateType.FAN_STOP.value, Category.GAS),
    "main_fan_stop": (StateType.MAIN_FAN_STOP.value, Category.GAS),
    "duct_no_wind": (StateType.DUCT_NO_WIND.value, Category.GAS),
    "smoke": (StateType.SMOKE.value, Category.GAS),
    "state_alarm": (StateType.STATE.value, Category.GAS),
    # fusion across systems (alarms/rules/fusion.py, alarms/fusion_store.py)
    "gas_people": (FusionType.GAS_PEOPLE.value, Category.GAS),
    "fan_stop_gas_rise": (FusionType.FAN_STOP_GAS_RISE.value, Category.GAS),
    "gas_camera_offline": (FusionType.GAS_CAMERA_OFFLINE.value, Category.GAS),
    "co_fire_confirmed": (FusionType.CO_FIRE_CONFIRMED.value, Category.GAS),
    # CO classes and sensor cross-checks (issue 13; alarms/rules/co.py, cross_check.py)
    "co_fire_candidate": (FireType.FIRE_CANDIDATE.value, Category.GAS),
    "cross_check": (MaintenanceType.CROSS_CHECK.value, Category.MAINTENANCE),
    "sensor_stuck": (MaintenanceType.SENSOR_STUCK.value, Category.MAINTENANCE),
    "local_excursion": (MaintenanceType.LOCAL_EXCURSION.value, Category.MAINTENANCE),
}
# The personnel and output rules (alarms/rules/personnel.py, alarms/rules/output.py) carry
# their own codes and categories; they are listed there, on subjects that are not points.


def category_of(rule: str) -> Category:
    return RULES[rule][1] if rule in RULES else Category.GAS
