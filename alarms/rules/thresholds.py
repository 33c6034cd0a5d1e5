"""Threshold rules from each point's metadata: upper alarm and power-off, with restore hysteresis.

Levels come from the point (CDDY 上限报警/解报, 上限断电/复电), never from code. A rule sets at
``value >= set_level`` and clears at ``value < clear_level``; a point without a level never
sets (NaN compares false). Readings flagged as calibration (status bit 4) cannot raise a gas
alarm: they are declared test gas, not gas in the roadway.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from minewatch.codes import AbnormalType, PointStatus
from minewatch.registry import PointRegistry

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    name: str
    abnormal_type: AbnormalType
    set_level: FloatArray  # indexed by point id
    clear_level: FloatArray

    def masks(
        self, point_id: npt.NDArray[np.int32], value: FloatArray, status: npt.NDArray[np.int16]
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """(set rows, clear rows) for readings of the given points."""
        calibrating = (status & PointStatus.CALIBRATION) != 0
        with np.errstate(invalid="ignore"):
            set_rows = (value >= self.set_level[point_id]) & ~calibrating
            clear_rows = value < self.clear_level[point_id]
        return set_rows, clear_rows


def _clear_or_set(clear: FloatArray, set_level: FloatArray) -> FloatArray:
    return np.where(np.isnan(clear), set_level, clear)


def threshold_rules(registry: PointRegistry) -> tuple[ThresholdRule, ...]:
    """The threshold rules for every point of the registry."""
    return (
        ThresholdRule(
            "upper_alarm",
            AbnormalType.OVER_LIMIT,
            registry.alarm_high,
            _clear_or_set(registry.alarm_high_clear, registry.alarm_high),
        ),
        ThresholdRule(
            "power_off",
            AbnormalType.POWER_OFF,
            registry.poweroff_high,
            _clear_or_set(registry.restore_high, registry.poweroff_high),
        ),
    )
