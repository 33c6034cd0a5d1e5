"""Per-point rule settings: the point's own value (registry, migration 0003) or a default.

Defaults are engine-wide and explicit (``RuleDefaults``); per-point values always win. Arrays
are indexed by point id, like the registry's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from minewatch.codes import ValueType
from minewatch.registry import PointRegistry

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_US = 1_000_000


@dataclass(frozen=True, slots=True)
class RuleDefaults:
    """Engine-wide defaults for settings a point leaves NULL."""

    poll_cycle_s: float = 30.0  # AQ 6201-2019 4.7.4: maximum polling cycle
    interruption_cycles: int = 3  # silent cycles before 数据中断
    flatline_samples: int = 900  # identical analog samples before "stuck" ([I], long window)
    drift_samples: int = 3  # consecutive readings below the range bottom = persistent 负漂
    #: A drifting sensor hovers at its range bottom: a reading back at it ends 负漂 only when no
    #: drifting reading follows within this time (an off-delay), not at every noisy recovery.
    drift_off_delay_s: float = 60.0
    confirm_samples: int = 2  # a step excursion needs this many readings before it raises
    #: A reading at the level continues a rise (no confirmation, never interference) when the
    #: previous valid reading was within this share of the level below it and the reading is
    #: within it above: a slow noisy rise reaches the level from just below, a spike jumps
    #: from the baseline or far past the level (issue 13; 0.1: 0.10 %CH4 at 1.00 %).
    trend_band: float = 0.1
    #: 标准气样 levels tried when a point has no calibration_gas ([M]: 1-2 %CH4 is common;
    #: a test must reach the alarm and power-off levels, so 1.5 and 2.0 by default).
    standard_gas: tuple[float, ...] = (1.5, 2.0)
    standard_gas_tolerance: float = 0.05  # absolute, in the point's unit
    calibration_max_s: float = 600.0  # an undeclared calibration returns within minutes
    calibration_min_samples: int = 3  # a plateau, not a blip
    #: A test starts with zero gas (fresh air, 调零) before the standard gas ([I], the usual
    #: calibration procedure): a reading at or below this level within ``calibration_max_s``
    #: before an excursion is that zero step. Without it an excursion is never reclassified.
    calibration_zero_level: float = 0.03
    #: How far (event time) one point's readings may lag another's and still be evaluated
    #: together: the rules that span points (馈电异常) hold a decision open until the other
    #: side has reported up to the event or lags it by more than this, and the clock
    #: (``AlarmEngine.tick``) resolves held decisions and pending off-delay clears only this
    #: long after their time. Two polling cycles at the regulatory maximum (30 s): a
    #: substation's message may arrive after the next cycle of another's. Larger tolerates
    #: more skew and delays a decision whose other side fell silent by as much.
    allowed_lateness_s: float = 60.0
    #: CO at the alarm level this long is a fire candidate (alarms/rules/co.py), where a point
    #: has no ``co_fire_after_s``: a vehicle's exhaust puff is over within a minute or two.
    co_fire_after_s: float = 180.0
    #: Sensor cross-check (alarms/rules/cross_check.py), where a point leaves it NULL: a point
    #: whose window mean is at most ``cross_check_ratio`` x its neighbours' lowest mean, while
    #: they read at least ``cross_check_min`` (gas present; 0.1 %CH4), for ``cross_check_s``.
    cross_check_ratio: float = 0.3
    cross_check_min: float = 0.1
    cross_check_s: float = 1800.0
    #: The cross-check compares means over windows of this length (event time, aligned).
    cross_check_window_s: float = 300.0
    #: A stuck sensor (alarms/rules/neighbour_checks.py), where a point leaves it NULL: its
    #: window's range at most ``stuck_tolerance`` (a constant, in the point's unit) while an
    #: upstream neighbour's window mean moved by ``stuck_move`` (%CH4), for ``stuck_s``.
    stuck_tolerance: float = 0.005
    stuck_move: float = 0.05
    stuck_s: float = 900.0
    #: An excursion no neighbour sees: a window mean ``excursion_min`` (%CH4) above the lower
    #: of the two windows before, no neighbour downstream's means moving by ``excursion_ratio``
    #: x that rise (per point: the share of the point's gas that reaches it; 0.15 where a point
    #: sets none: below the 0.2-0.3 an upper corner or a face passes downstream).
    excursion_min: float = 0.3
    excursion_ratio: float = 0.15
    #: ... and no neighbour upstream moving by this share of the rise (gas from upstream is
    #: at least as high there as here).
    excursion_upstream_ratio: float = 0.5

    def __post_init__(self) -> None:
        if not self.allowed_lateness_s >= 0:
            raise ValueError(f"allowed_lateness_s must be >= 0, not {self.allowed_lateness_s}")

    @property
    def lateness_us(self) -> int:
        return round(self.allowed_lateness_s * _US)


@dataclass(frozen=True, slots=True)
class PointParams:
    """Effective settings per point id (NaN levels = rule off for that point)."""

    on_delay_us: IntArray
    poll_cycle_us: IntArray
    interruption_us: IntArray  # silence that opens a data interruption
    control_time_us: IntArray
    flatline_samples: IntArray  # 0 = off
    analog: npt.NDArray[np.bool_]
    drift_floor: FloatArray  # readings below it are negative drift; NaN = no check
    calibration_gas: FloatArray  # NaN = try the default standard levels
    defaults: RuleDefaults
    off_delay_us: IntArray  # threshold rules: a clear ends a run only after this; 0 = at once

    @classmethod
    def of(cls, registry: PointRegistry, defaults: RuleDefaults) -> PointParams:
        def seconds(values: FloatArray, default: float) -> IntArray:
            return np.round(np.where(np.isnan(values), default, values) * _US).astype(np.int64)

        poll = seconds(registry.poll_cycle_s, defaults.poll_cycle_s)
        cycles = np.where(
            np.isnan(registry.interruption_cycles),
            defaults.interruption_cycles,
            registry.interruption_cycles,
        )
        control = np.where(
            np.isnan(registry.control_time_s),
            poll,
            np.round(np.nan_to_num(registry.control_time_s) * _US).astype(np.int64),
        ).astype(np.int64)
        flat = np.where(
            np.isnan(registry.flatline_samples),
            defaults.flatline_samples,
            registry.flatline_samples,
        ).astype(np.int64)
        analog = registry.value_type == ValueType.ANALOG.value
        # 负漂: below the range bottom; a negative lower alarm (the platforms' -0.01 trick)
        # marks a drift detector on a point whose range bottom is not recorded.
        low = registry.range_low
        drift_trick = np.nan_to_num(registry.alarm_low, nan=0.0) < 0
        floor = np.where(np.isfinite(low), low, np.where(drift_trick, 0.0, np.nan))
        return cls(
            on_delay_us=seconds(registry.on_delay_s, 0.0),
            poll_cycle_us=poll,
            interruption_us=np.round(poll * cycles).astype(np.int64),
            control_time_us=control,
            flatline_samples=np.where(analog, flat, 0).astype(np.int64),
            analog=analog.astype(bool),
            drift_floor=np.where(analog, floor, np.nan),
            calibration_gas=registry.calibration_gas,
            defaults=defaults,
            off_delay_us=seconds(registry.off_delay_s, 0.0),
        )
