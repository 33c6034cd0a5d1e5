"""Threshold rules from each point's metadata: upper/lower alarm, power-off, pre-warnings.

Levels come from the point (CDDY 上限报警/解报, 上限断电/复电, 下限报警/解报, and the
pre-warning levels of migration 0003), never from code. An upper rule sets at
``value >= set`` and clears at ``value < clear``; a lower rule sets at ``value <= set`` and
clears at ``value > clear``; a point without a level never sets (NaN compares false). Only
readings that measure gas (``BatchContext.gas_ok``: no fault bit, not calibrating) set or
clear; the others hold the latch. Lower rules also ignore 负漂 readings (below the range
bottom): those are a maintenance condition (:mod:`alarms.rules.faults`), not low gas.

Spikes and confirmation (the decision of issue 5):

* A run raises at its *second* valid reading that has not cleared (a reading in the
  hysteresis band confirms), so a single-sample jump that returns at the next reading never
  raises; it is recorded as an ``interference`` episode instead.
* Exception, no latency: on a point with on-delay 0, a run whose previous reading was already
  at the ramp level (the next lower level of the point: pre-warning for the alarm, alarm for
  power-off) raises at its first reading. A real gas rise ramps through the lower level; an
  interference spike jumps from the baseline.
* The same for a reading that continues a rise (issue 13): the previous valid reading was
  within ``RuleDefaults.trend_band`` of the level below it and the reading is within it above
  the level. A slow noisy rise touching 1.00 % from 0.97-0.99 % is raised at that reading,
  never recorded as interference; a spike (from any baseline, a high one included) jumps
  past the level by more than the band, or from further below, and still needs its second
  reading.
* Cost: a step rise from baseline straight past the level raises one polling cycle late (1 s
  in the simulator, at most 30 s per AQ 6201). The episode still starts at the first reading
  (``started_at``: event time); ``raised_at`` tells when it was raised. Every excursion that
  lasts two readings raises: recall on real exceedances stays 1.0. Physical power cut is the
  substation's job (甲烷断电仪, <= 2 s) and is not delayed by this.
* On-delay > 0: the excursion must last ``on_delay_s`` (event time) and have two readings.

Off-delay (``off_delay_s``, ISA-18.2; :mod:`alarms.rules.off_delay`): a clear ends the episode
only if no set reading follows within the off-delay; one that does continues the same episode.
The episode ends at the first reading of the final clear stretch, announced once the
off-delay has passed (at the point's next reading after it, possibly in a later batch, or by
the clock: ``AlarmEngine.tick``). 0 or NULL: the first clear reading ends it, as without the
setting.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from minewatch.alarms.codes import RULES
from minewatch.alarms.rules.calibration import near_standard_gas
from minewatch.alarms.rules.context import BatchContext
from minewatch.alarms.rules.params import PointParams
from minewatch.alarms.rules.run_loop import SMALL
from minewatch.alarms.rules.run_state import RunOutcome, RunState, expand, quiet
from minewatch.alarms.rules.runs import evaluate_runs, hot_rows
from minewatch.registry import PointRegistry

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    name: str
    upper: bool
    set_level: FloatArray  # indexed by point id
    clear_level: FloatArray
    ramp_level: FloatArray  # previous reading at or beyond it: no confirmation needed
    enabled: bool = field(init=False)  # some point has the level

    def __post_init__(self) -> None:
        object.__setattr__(self, "enabled", bool(np.isfinite(self.set_level).any()))

    @property
    def abnormal_type(self) -> str:
        return RULES[self.name][0]

    def evaluate(
        self, ctx: BatchContext, state: RunState, params: PointParams, confirm: int
    ) -> RunOutcome:
        rows = ctx.rows
        if not self.enabled:
            return quiet(state, len(rows))
        ok = ctx.gas_ok if self.upper else ctx.gas_ok & ~ctx.drift
        with np.errstate(invalid="ignore"):
            level = self.set_level[rows.pid]
            cand = ok & ((rows.v >= level) if self.upper else (rows.v <= level))
        hot = hot_rows(rows, cand, state)
        if hot is None:
            return quiet(state, len(rows))
        k = np.count_nonzero(hot)
        if k >= len(rows) // 2 or k <= SMALL:  # a subset would cost more than it saves
            return self._evaluate_rows(ctx, None, cand, ok, state, params, confirm, hot)
        part = self._evaluate_rows(ctx, hot, cand, ok, state, params, confirm, None)
        return expand(part, hot)

    def _evaluate_rows(
        self,
        ctx: BatchContext,
        sel: npt.NDArray[np.bool_] | None,
        cand: npt.NDArray[np.bool_],
        ok: npt.NDArray[np.bool_],
        state: RunState,
        params: PointParams,
        confirm: int,
        hot: npt.NDArray[np.bool_] | None,
    ) -> RunOutcome:
        """The rule on the rows ``sel`` (all rows when None): the points with something to do
        (``hot``: those rows, when known)."""
        rows = ctx.rows if sel is None else ctx.rows.take(sel)
        prev = ctx.prev_value if sel is None else ctx.prev_value[sel]
        if sel is not None:
            cand, ok = cand[sel], ok[sel]
        pid, v = rows.pid, rows.v
        level = self.set_level[pid]
        band = np.abs(level) * params.defaults.trend_band
        with np.errstate(invalid="ignore"):
            if self.upper:
                clear = ok & (v < self.clear_level[pid])
                ramp = prev >= self.ramp_level[pid]
                ramp |= (prev >= level - band) & (v <= level + band)  # continues a rise
            else:
                clear = ok & (v > self.clear_level[pid])
                ramp = prev <= self.ramp_level[pid]
                ramp |= (prev <= level + band) & (v >= level - band)
        immediate = ramp & (params.on_delay_us[pid] == 0)
        near = None
        if self.upper:  # only readings inside runs count: those not below the clear level
            inside = np.flatnonzero(ok & ~clear)
            near = np.zeros(len(rows), bool)
            near[inside] = near_standard_gas(
                v[inside], params.calibration_gas[pid[inside]], params.defaults
            )
        return evaluate_runs(
            rows,
            cand,
            clear,
            state,
            need=np.full(len(state.raw), confirm, np.int64),
            delay_us=params.on_delay_us,
            eligible=ok,
            immediate=immediate,
            near=near,
            off_delay_us=params.off_delay_us,
            hot=hot,
        )


@dataclass(frozen=True, slots=True)
class Reach:
    """Per point id, the lowest level at which an upper rule sets and the highest at which a
    lower rule sets (NaN: none): a batch with no reading beyond them sets no threshold rule."""

    upper: FloatArray
    lower: FloatArray

    @classmethod
    def of(cls, rules: tuple[ThresholdRule, ...], size: int) -> Reach:
        nan = np.full(size, np.nan)
        upper = [r.set_level for r in rules if r.upper]
        lower = [r.set_level for r in rules if not r.upper]
        return cls(np.fmin.reduce(upper) if upper else nan, np.fmax.reduce(lower) if lower else nan)

    def reached(self, ctx: BatchContext) -> tuple[bool, bool]:
        """(some reading reaches an upper rule's level, some reading a lower rule's)."""
        pid, v = ctx.rows.pid, ctx.rows.v
        with np.errstate(invalid="ignore"):
            return bool((v >= self.upper[pid]).any()), bool((v <= self.lower[pid]).any())


def _clear_or_set(clear: FloatArray, set_level: FloatArray) -> FloatArray:
    return np.where(np.isnan(clear), set_level, clear)


def _below(level: FloatArray, than: FloatArray) -> FloatArray:
    """``level`` where it is a lower level than ``than`` (a ramp towards it), else NaN."""
    with np.errstate(invalid="ignore"):
        return np.where(level < than, level, np.nan)


def threshold_rules(registry: PointRegistry) -> tuple[ThresholdRule, ...]:
    """The threshold rules for every point of the registry."""
    r = registry
    with np.errstate(invalid="ignore"):
        lower_ramp = np.where(r.prewarn_low > r.alarm_low, r.prewarn_low, np.nan)
    nan = np.full(r.size, np.nan)
    return (
        ThresholdRule(
            "upper_alarm",
            True,
            r.alarm_high,
            _clear_or_set(r.alarm_high_clear, r.alarm_high),
            _below(r.prewarn_high, r.alarm_high),
        ),
        ThresholdRule(
            "power_off",
            True,
            r.poweroff_high,
            _clear_or_set(r.restore_high, r.poweroff_high),
            np.fmax(_below(r.alarm_high, r.poweroff_high), _below(r.prewarn_high, r.poweroff_high)),
        ),
        ThresholdRule(
            "upper_prewarn",
            True,
            r.prewarn_high,
            _clear_or_set(r.prewarn_high_clear, r.prewarn_high),
            nan,
        ),
        ThresholdRule(
            "lower_alarm",
            False,
            r.alarm_low,
            _clear_or_set(r.alarm_low_clear, r.alarm_low),
            lower_ramp,
        ),
        ThresholdRule(
            "lower_prewarn",
            False,
            r.prewarn_low,
            _clear_or_set(r.prewarn_low_clear, r.prewarn_low),
            nan,
        ),
    )
