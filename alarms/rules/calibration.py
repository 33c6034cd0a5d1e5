"""Calibration (标校): flagged, declared and undeclared test-gas excursions.

* **Flagged**: the reading carries status bit 4. **Declared**: the reading lies inside a
  window of the ``calibrations`` table (报备). Either way the reading cannot raise a gas alarm;
  an excursion to the alarm level while calibrating is recorded as a ``calibration`` episode
  (YCBJ 007), classified ``calibration_declared`` (计划性) or ``calibration_flagged``.
* **Undeclared** ([I]): an excursion with neither that *looks* like a calibration: it returns
  within ``calibration_max_s``, its maximum is at a standard-gas level (标准气样, per point or
  the default levels) clearly above the rule's level and without overshoot, at least half
  its readings sit at a standard-gas level, it has ``calibration_min_samples`` readings, and
  the point read zero gas (``calibration_zero_level``: fresh air, the 调零 step a test begins
  with) within ``calibration_max_s`` before it began. Real gas ramps up from the point's own
  level; it can plateau near 1.5 % as a test does, but it does not start from zero.
  It cannot be recognised before it ends, so it raises like any exceedance (recall first) and
  the episode is reclassified ``calibration_undeclared`` when it clears.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from minewatch.alarms.rules.params import RuleDefaults
from minewatch.alarms.rules.run_state import NEVER, UNKNOWN_HISTORY, Rows, RunTable
from minewatch.registry import CalibrationWindows

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


def declared_mask(rows: Rows, windows: CalibrationWindows) -> BoolArray:
    """Rows inside a declared window of their point.

    Rows are sorted by (point, time): each window is two binary searches over its point's
    rows. The loop is over windows that touch the batch's time span (a handful), not rows.
    """
    out = np.zeros(len(rows), bool)
    if not len(windows) or not len(rows):
        return out
    relevant = (windows.end_us > rows.t.min()) & (windows.start_us <= rows.t.max())
    for p, start, end in zip(
        windows.point_id[relevant].tolist(),
        windows.start_us[relevant].tolist(),
        windows.end_us[relevant].tolist(),
        strict=True,
    ):
        # keys of the column's own dtype: a Python int would make numpy cast the whole column
        key = np.array([p, p + 1], rows.pid.dtype)
        lo, hi = np.searchsorted(rows.pid, key, "left").tolist()
        if lo == hi:
            continue
        t = rows.t[lo:hi]
        begin, stop = np.searchsorted(t, [start, end], "left").tolist()
        out[lo + begin : lo + stop] = True
    return out


def near_standard_gas(value: FloatArray, gas: FloatArray, defaults: RuleDefaults) -> BoolArray:
    """Readings within tolerance of the point's standard gas (or of a default level)."""
    tol = defaults.standard_gas_tolerance
    with np.errstate(invalid="ignore"):
        out = np.abs(value - gas) <= tol
        default = np.isnan(gas)
        if defaults.standard_gas and default.any():
            at_default = np.zeros(len(value), bool)
            for level in defaults.standard_gas:
                at_default |= np.abs(value - level) <= tol
            out |= default & at_default
    return out


def undeclared_calibration(
    runs: RunTable,
    set_level: FloatArray,
    gas: FloatArray,
    defaults: RuleDefaults,
    zero_us: npt.NDArray[np.int64],
) -> BoolArray:
    """Per run: an ended excursion with the shape of a calibration (see the module doc);
    ``zero_us`` per run: the point's latest zero-gas reading before the run began."""
    if not len(runs):
        return np.zeros(0, bool)
    max_us = round(defaults.calibration_max_s * 1e6)
    duration_ok = (runs.end_us - runs.start_us) <= max_us
    with np.errstate(over="ignore"):
        zeroed = (zero_us != NEVER) & (runs.start_us - zero_us <= max_us)
    peak_at_level = near_standard_gas(runs.cum_max, gas[runs.point], defaults)
    with np.errstate(invalid="ignore"):
        # gas hovering at the limit is not a test: the level must be clearly above it
        above_limit = runs.cum_max >= set_level[runs.point] + defaults.standard_gas_tolerance
    plateau = (runs.cum_near >= 0) & (2 * runs.cum_near >= runs.cum_count)
    known = runs.cum_near > UNKNOWN_HISTORY // 2
    enough = runs.cum_count >= defaults.calibration_min_samples
    shape = peak_at_level & above_limit & plateau & known
    undeclared: BoolArray = runs.ended & enough & duration_ok & shape & zeroed
    return undeclared
