"""What every rule family needs to know about a batch's rows, computed once per evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from minewatch.alarms.rules.calibration import declared_mask
from minewatch.alarms.rules.params import PointParams
from minewatch.alarms.rules.run_state import Rows
from minewatch.alarms.small import every, some, where_set
from minewatch.codes import PointStatus
from minewatch.registry import PointRegistry

BoolArray = npt.NDArray[np.bool_]

#: Status bits after which the value says nothing about the gas: hold every value rule.
UNRELIABLE = (
    PointStatus.SENSOR_FAULT
    | PointStatus.SUBSTATION_FAULT
    | PointStatus.NOT_POLLED
    | PointStatus.PAUSED
)


@dataclass(frozen=True, slots=True)
class BatchContext:
    rows: Rows
    valid: BoolArray  # no fault/not-polled/paused bit: the value is a measurement
    flagged: BoolArray  # status bit 4 (标校)
    declared: BoolArray  # inside a declared calibration window
    gas_ok: BoolArray  # valid and not calibration: may set or clear a gas rule
    drift: BoolArray  # valid analog reading below the point's range bottom (负漂)
    prev_value: npt.NDArray[np.float64]  # previous valid reading of the point (NaN: none)
    last_valid_row: npt.NDArray[np.intp]  # per ``rows.last_rows``: the point's last valid row
    zero_rows: npt.NDArray[np.intp]  # valid readings at the zero-gas level (calibration's 调零)

    #: no row has a status bit that makes it invalid (``valid`` is all True)
    all_valid: bool = True
    #: some row is calibrating (flagged or declared)
    any_calibrating: bool = False
    #: some row has a status bit set (any bit, faults and over-range included)
    any_status: bool = True

    @property
    def calibrating(self) -> BoolArray:
        return self.flagged | self.declared

    @classmethod
    def of(
        cls,
        rows: Rows,
        registry: PointRegistry,
        params: PointParams,
        last_value: npt.NDArray[np.float64],
    ) -> BatchContext:
        pid, v, s = rows.pid, rows.v, rows.s
        n = len(rows)
        any_status = some(s)
        if any_status:
            valid = (s & UNRELIABLE) == 0
            flagged = (s & PointStatus.CALIBRATION) != 0
            all_valid, any_flagged = every(valid), some(flagged)
        else:  # no status bit at all: the common case
            flagged = np.zeros(n, bool)
            valid = ~flagged
            all_valid, any_flagged = True, False
        declared = declared_mask(rows, registry.calibrations)
        any_declared = some(declared) if len(registry.calibrations) else False
        below = v < params.drift_floor[pid]  # (numpy's comparisons warn of no NaN)
        drift = below if all_valid else valid & below
        prev, last_valid = _previous_valid(rows, valid, last_value, all_valid)
        gas_ok = valid & ~flagged & ~declared if any_flagged or any_declared else valid
        return cls(
            rows=rows,
            valid=valid,
            flagged=flagged,
            declared=declared,
            gas_ok=gas_ok,
            drift=drift,
            prev_value=prev,
            last_valid_row=last_valid,
            zero_rows=_zero_rows(rows, valid, params.defaults.calibration_zero_level, all_valid),
            all_valid=all_valid,
            any_calibrating=any_flagged or any_declared,
            any_status=any_status,
        )

    def zero_at(
        self, row: npt.NDArray[np.intp], before: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.int64]:
        """Per row index: the time of its point's latest zero-gas reading at or before it (in
        the batch, else ``before``, per row: the point's state)."""
        pos = np.searchsorted(self.zero_rows, row, "right") - 1
        found = np.maximum(pos, 0)
        zero_row = self.zero_rows[found] if len(self.zero_rows) else np.zeros(len(row), np.intp)
        in_group = (pos >= 0) & (zero_row >= self.rows.gs[row])
        return np.where(in_group, self.rows.t[zero_row], before)


def _zero_rows(rows: Rows, valid: BoolArray, level: float, all_valid: bool) -> npt.NDArray[np.intp]:
    zero = rows.v <= level
    return where_set(zero if all_valid else valid & zero)


def _previous_valid(
    rows: Rows, valid: BoolArray, last_value: npt.NDArray[np.float64], all_valid: bool
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]]:
    """Per row, the value of the point's previous valid row (before the batch: the state);
    per point present, its last valid row in the batch (-1: none)."""
    n = len(rows)
    if rows.single:  # one row per point: the previous valid reading is the state's
        last = rows.last_rows if all_valid else np.where(valid, rows.last_rows, -1)
        return last_value[rows.pid], last
    if all_valid:  # the common case: every reading is a measurement
        values = np.empty(n)
        values[1:] = rows.v[:-1]
        first = np.flatnonzero(rows.first)
        values[first] = last_value[rows.pid[first]]
        return values, rows.last_rows.copy()
    latest = np.maximum.accumulate(np.where(valid, np.arange(n), -1)) if n else np.arange(0)
    prev = np.full(n, -1)
    prev[1:] = latest[:-1]
    in_group = prev >= rows.gs
    values = np.where(in_group, rows.v[np.maximum(prev, 0)], last_value[rows.pid])
    last = latest[rows.last_rows] if n else np.arange(0)
    last_valid = np.where(last >= rows.gs[rows.last_rows], last, -1) if n else last
    return values, last_valid
