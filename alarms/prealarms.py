"""Pre-alarms (issue 17): a warning that a methane sensor's forecast reaches its alarm level
within the horizon, minutes before the reading does.

A pre-alarm is its own class: never a regulatory alarm record (``alarms``), no national
abnormal-type code, no effect on the alarms or the incidents. Per methane point with an alarm
level (``alarm_high``), on every batch, the trend of :mod:`alarms.forecast` gives at each
valid reading outside calibration a forecast ``horizon_s`` ahead and its standard error. A
pre-alarm is

* **raised** when, for ``confirm`` consecutive readings, the reading (median of three) and
  its fitted level are still below the alarm level, the slope is rising and the forecast less
  ``z`` standard errors reaches the level (enough confidence), with at least ``min_weight``
  readings of history behind the fit;
* **cleared** when the forecast falls back below ``clear_fraction`` of the level while the
  fitted level is below the level (a pre-alarm stays up while the gas is above the level:
  the alarm is then shown too), and has stayed so for ``clear_hold_s`` (a shorter dip that
  comes back is the same pre-alarm).

Readings with an unreliable status or inside a calibration (flagged or declared) are not
forecast from. The parameters are data per mine (``mines.prealarm``, migration 0021: a JSON
object of :class:`PrealarmParams` fields; missing fields and mines take the defaults).

:class:`Prealarms` is the engine's part: ``evaluate`` returns a :class:`PrealarmOutcome`
without changing anything, ``commit`` adopts it, as the alarm engine does with its state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from minewatch.alarms import production
from minewatch.alarms.forecast import (
    NEVER,
    Trend,
    TrendPair,
    TrendState,
    ew_pair_cycle,
    ew_pair_single,
    ew_state_after,
    ew_sums,
    ew_trend,
    ew_trend_single,
    fit_line,
    fit_trend,
    line_reaches,
)
from minewatch.alarms.rules.latch import group_starts, latch, previous_state
from minewatch.alarms.rules.run_state import Rows
from minewatch.alarms.small import some, where_set
from minewatch.codes import METHANE_SENSOR_TYPES
from minewatch.registry import PointRegistry

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
AIR_SPEED = "0002"  # 风速: the air speed in the roadway
#: Batches with fewer rows per point than this fit the slow trend at every row (splitting
#: costs more than it saves on a live batch of one polling cycle).
SPLIT_ROWS_PER_POINT = 4
_KEY = np.int64(1) << 40  # (point, time) keys: point x 2^40 + us from the batch's start


@dataclass(frozen=True, slots=True)
class PrealarmParams:
    """A mine's pre-alarm settings (``mines.prealarm``); the defaults were tuned on the
    development set only (bench/prealarm/, docs/benchmarks.md "Pre-alarms"), for a 1 s
    polling cycle."""

    enabled: bool = True
    horizon_s: float = 1200.0  # how far ahead the forecast looks
    tau_s: float = 60.0  # time constant of the trend's weights (its window)
    #: a second, slower trend (0: none): the forecast takes the smaller of the two slopes, so
    #: a rise must last about this long to count in full (a passing plume is not a build-up)
    slow_tau_s: float = 400.0
    z: float = 3.0  # standard errors the forecast must clear the level by
    confirm: int = 30  # consecutive readings the condition must hold
    #: history behind the fit, in readings weighted by the trend's weights: it never exceeds
    #: about ``tau_s`` / polling cycle, so a mine polling slower than 1 s must lower it (keep
    #: ``tau_s`` / cycle well above it), or no pre-alarm is ever raised
    min_weight: float = 60.0
    clear_fraction: float = 0.9  # cleared below this share of the level
    #: the clear condition must hold this long, row after row, before a pre-alarm clears
    #: (0: at the first row); the clear's time is the row where the hold is complete
    clear_hold_s: float = 60.0
    #: Ventilation (issue 17): while an air-speed sensor (风速) of the point's substation
    #: has read below its low alarm level within ``tau_s`` (the air is lost: a local fan
    #: stopped), a rise need not last (the fast trend's slope alone, no slow trend), this
    #: many readings confirm it, and a pre-alarm up is not cleared (0: the input off).
    #: Adopted on the development set (docs/benchmarks.md "Pre-alarms").
    vent_confirm: int = 5
    #: An experiment, off by default (it did not improve the development figures,
    #: docs/benchmarks.md "Pre-alarms"): ``upstream_gain`` > 0 adds to a point's forecast
    #: ``gain x upstream fast slope x transport delay`` for each upstream methane point on its
    #: airflow path (``points.downstream``) while that upstream point itself meets the raise
    #: condition or reads at its level: the rise on its way that has not arrived yet.
    upstream_gain: float = 0.0
    #: Production (sessions 6-7, alarms/production.py): ``cut_tau_s`` > 0 reads a rise within
    #: ``cut_window_s`` after a cutting start on the substation's 设备开停 (1004) point as the
    #: emission's first-order response, confirmed by ``cut_confirm`` readings (0: the input
    #: off); idle where a substation has no 1004 point. Its time constant is estimated per
    #: point and cutting start from the decay of the point's own fast slope
    #: (``production.response_time``), from ``cut_tau_s`` (the prior, and the floor) up to
    #: ``cut_tau_max_s``; with ``cut_tau_max_s`` at or below ``cut_tau_s``, ``cut_tau_s``
    #: fixed (session 6's input). Adopted on the development sets (docs/benchmarks.md
    #: "Pre-alarms, session 7").
    cut_tau_s: float = 250.0
    cut_window_s: float = 1800.0
    cut_confirm: int = 60
    cut_tau_max_s: float = 2400.0
    #: A rise carried from upstream (session 8): at a point with methane points upstream on
    #: its airflow path (``points.downstream``), while some upstream point has risen at least
    #: ``carry_ratio`` times as fast as this one over the slow trend (the rise here is theirs,
    #: on its way), the forecast a raise may use is what is in transit and what upstream still
    #: adds: ``level + slope x min(horizon, carry_delays x delay) + dilution x max(0, upstream
    #: slope) x the rest of the horizon`` (the upstream point's own slope, the slower of its
    #: two trends; ``dilution``: this point's slow slope over the upstream one's, at most 1;
    #: the most of those points and the longest delay), never more than the point's own line.
    #: Not while the air is lost (the ventilation input). A pre-alarm up is cleared as
    #: before. ``carry_delays`` 0: the input off. Adopted on the development sets
    #: (docs/benchmarks.md "Pre-alarms, session 8").
    carry_delays: float = 4.0
    carry_ratio: float = 1.0

    def __post_init__(self) -> None:
        if not (self.horizon_s > 0 and self.tau_s > 0 and self.confirm >= 1):
            raise ValueError(f"pre-alarm parameters out of range: {self}")

    @classmethod
    def of(
        cls, data: Mapping[str, Any] | None, base: PrealarmParams | None = None
    ) -> PrealarmParams:
        """``base`` (the defaults) with the fields ``data`` sets; an unknown field is an error."""
        base = base or cls()
        if not data:
            return base
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown pre-alarm parameters: {unknown}")
        return dataclasses.replace(base, **dict(data))


@dataclass(frozen=True, slots=True)
class PrealarmPoints:
    """Per point id: whether it is forecast, and its settings as arrays."""

    target: BoolArray
    level: FloatArray  # alarm_high
    horizon_s: FloatArray
    tau_s: FloatArray
    slow_tau_s: FloatArray  # the slow trend's (0: none)
    z: FloatArray
    confirm: IntArray
    min_weight: FloatArray
    clear_level: FloatArray
    #: upstream methane pairs (down, up, transport delay s, gain), empty when off
    up_down: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    up_src: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    up_delay: FloatArray = field(default_factory=lambda: np.zeros(0))
    up_gain: FloatArray = field(default_factory=lambda: np.zeros(0))
    #: per point id: the air-speed point of its substation (-1: none, or the input off), and
    #: the readings confirming a rise while it reads below its low alarm level
    air: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    vent_confirm: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    air_low: FloatArray = field(default_factory=lambda: np.zeros(0))  # per point: alarm_low
    air_of: BoolArray = field(default_factory=lambda: np.zeros(0, bool))  # an air point used
    cutting: production.CuttingPoints = field(default_factory=production.CuttingPoints.none)
    clear_hold_us: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    #: the carried-rise input's pairs (down, up, transit window s = carry_delays x delay,
    #: ratio), both forecast points; ``carried`` per point id: a down point of some pair
    carry_down: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    carry_up: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    carry_s: FloatArray = field(default_factory=lambda: np.zeros(0))
    carry_ratio: FloatArray = field(default_factory=lambda: np.zeros(0))
    carried: BoolArray = field(default_factory=lambda: np.zeros(0, bool))

    @classmethod
    def of(
        cls,
        registry: PointRegistry,
        per_mine: Mapping[str, PrealarmParams] | None = None,
        default: PrealarmParams | None = None,
    ) -> PrealarmPoints:
        default = default or PrealarmParams()
        size = registry.size
        params = [default] * size
        if per_mine:
            for i in np.flatnonzero(registry.known).tolist():
                params[i] = per_mine.get(str(registry.mine_code[i]), default)

        def column(name: str, dtype: type = np.float64) -> npt.NDArray[Any]:
            return np.array([getattr(p, name) for p in params], dtype)

        methane = np.array([t in METHANE_SENSOR_TYPES for t in registry.sensor_type], bool)
        level = registry.alarm_high.astype(np.float64)
        target = registry.known & methane & np.isfinite(level) & column("enabled", np.bool_)
        gain = column("upstream_gain")
        vent = column("vent_confirm", np.int64)
        down, up, delay = _upstream_pairs(registry, target & (gain > 0))
        cut_tau = column("cut_tau_s")
        cutting = production.CuttingPoints.of(registry, target & (cut_tau > 0), cut_tau,
                                              column("cut_window_s"),
                                              column("cut_confirm", np.int64),
                                              column("cut_tau_max_s"))  # fmt: skip
        carry = column("carry_delays")
        c_down, c_up, c_delay = _upstream_pairs(registry, target & (carry > 0))
        keep = target[c_up] if len(c_up) else np.zeros(0, bool)
        c_down, c_up, c_delay = c_down[keep], c_up[keep], c_delay[keep]
        carried = np.zeros(size, bool)
        carried[c_down] = True
        return cls(
            target, level, column("horizon_s"), column("tau_s"), column("slow_tau_s"), column("z"),
            column("confirm", np.int64), column("min_weight"),
            level * column("clear_fraction"), down, up, delay, gain[down],
            _air_points(registry, target & (vent > 0)), vent,
            registry.alarm_low.astype(np.float64), cutting=cutting,
            clear_hold_us=np.round(column("clear_hold_s") * 1e6).astype(np.int64),
            carry_down=c_down, carry_up=c_up, carry_s=c_delay * carry[c_down],
            carry_ratio=column("carry_ratio")[c_down], carried=carried,
        )  # fmt: skip

    def __post_init__(self) -> None:
        if len(self.air) and not len(self.air_of):
            used = np.zeros(len(self.air), bool)
            used[self.air[self.air >= 0]] = True
            object.__setattr__(self, "air_of", used)


def _upstream_pairs(
    registry: PointRegistry, wanted: BoolArray
) -> tuple[IntArray, IntArray, FloatArray]:
    """(downstream point, upstream point, transport delay s) for every forecast point in
    ``wanted`` and each methane point whose airflow path (``points.downstream``) reaches it."""
    down: list[int] = []
    up: list[int] = []
    delay: list[float] = []
    paths = registry.downstream
    if paths is None or not wanted.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    for i in np.flatnonzero(registry.known).tolist():
        for path in paths[i] or ():
            j = registry.point_id(str(registry.mine_code[i]), str(path["target"]))
            if j >= 0 and wanted[j] and registry.sensor_type[i] in METHANE_SENSOR_TYPES:
                down.append(j)
                up.append(i)
                delay.append(float(path["delay_s"]))
    return np.array(down, np.int64), np.array(up, np.int64), np.array(delay)


def _air_points(registry: PointRegistry, wanted: BoolArray) -> IntArray:
    """Per point id in ``wanted``: an air-speed point (风速, 0002) with a low alarm level of
    the same substation (-1: none)."""
    air = np.full(registry.size, -1, np.int64)
    stations = registry.substation_code
    if stations is None or not wanted.any():
        return air
    by_station: dict[tuple[str, str], int] = {}
    for i in np.flatnonzero(registry.known).tolist():
        if registry.sensor_type[i] == AIR_SPEED and np.isfinite(registry.alarm_low[i]):
            by_station.setdefault((str(registry.mine_code[i]), str(stations[i])), i)
    for i in np.flatnonzero(wanted).tolist():
        air[i] = by_station.get((str(registry.mine_code[i]), str(stations[i])), -1)
    return air


@dataclass(frozen=True, slots=True)
class PrealarmState:
    """The trends' sums per forecast point (column ``k`` of ``trend`` and ``slow`` is point
    ``ids[k]``); per point id: the latch, the condition's current run of readings."""

    trend: TrendState
    slow: TrendState
    active: BoolArray
    run: IntArray  # consecutive readings meeting the raise condition
    raised_us: IntArray  # start of the open pre-alarm (NEVER: none)
    #: per air-speed point: its latest valid reading below its low alarm level (NEVER: none)
    low_us: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    #: the shearer points' last reading and start (alarms/production.py)
    cutting: production.CuttingState = field(
        default_factory=lambda: production.CuttingState.empty(0)
    )
    #: ``trend`` and ``slow`` packed in one :class:`TrendPair` when they are its views (the
    #: one-cycle path's state: read and written with one call each); None: not packed
    pair: TrendPair | None = None
    #: The point id of each column of the trends, ascending: the forecast points (and any
    #: point forecast before a registry change), so the trends' state is compact and a cycle
    #: that covers every forecast point reads and writes it without a gather (issue 14).
    ids: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    #: per point with a pre-alarm up: the first row of its current run of rows meeting the
    #: clear condition (``clear_hold_s``); NEVER: none, and at every point with none up
    clear_since_us: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))

    @classmethod
    def empty(cls, size: int, ids: IntArray | None = None) -> PrealarmState:
        """No history; the trends' columns for ``ids`` (default: none)."""
        ids = np.zeros(0, np.int64) if ids is None else np.asarray(ids, np.int64)
        pair = TrendPair.of(TrendState.empty(len(ids)), TrendState.empty(len(ids)))
        fast, slow = pair.trends()
        return cls(fast, slow, np.zeros(size, bool), np.zeros(size, np.int64),
                   np.full(size, NEVER, np.int64), np.full(size, NEVER, np.int64),
                   production.CuttingState.empty(size), pair=pair, ids=ids,
                   clear_since_us=np.full(size, NEVER, np.int64))  # fmt: skip

    def since(self) -> IntArray:
        """``clear_since_us``, NEVER at every point when it was not kept."""
        n = len(self.active)
        return self.clear_since_us if len(self.clear_since_us) == n else np.full(n, NEVER)

    def grown(self, size: int, target: BoolArray | None = None) -> PrealarmState:
        """The state for ``size`` point ids whose forecast points are ``target``: the trends'
        columns of the points below ``size`` kept (a point no longer forecast keeps its
        history, as it would under the point id), the new forecast points' added empty."""
        kept = self.ids[self.ids < size]
        ids = kept if target is None else np.union1d(kept, np.flatnonzero(target[:size]))
        same_ids = len(ids) == len(self.ids) and bool((ids == self.ids).all())
        if size == len(self.active) and same_ids:
            return self

        def grow(a: npt.NDArray[Any], fill: object) -> npt.NDArray[Any]:
            out = np.full(size, fill, a.dtype)
            keep = min(size, len(a))
            out[:keep] = a[:keep]
            return out

        n = len(self.active)
        low = self.low_us if len(self.low_us) == n else np.full(n, NEVER, np.int64)
        trend, slow, pair = self.trend, self.slow, self.pair
        if not same_ids:
            trend, slow = _relaid(self.trend, self.ids, ids), _relaid(self.slow, self.ids, ids)
            pair = None
        return PrealarmState(trend, slow, grow(self.active, False), grow(self.run, 0),
                             grow(self.raised_us, NEVER), grow(low, NEVER),
                             self.cutting.grown(size), pair=pair, ids=ids,
                             clear_since_us=grow(self.since(), NEVER))  # fmt: skip


def _relaid(state: TrendState, before: IntArray, ids: IntArray) -> TrendState:
    """``state`` (columns of the points ``before``) with columns of the points ``ids``: a
    point's columns kept where it had them, empty for the others."""
    out = TrendState.empty(len(ids))
    common, at, was = np.intersect1d(ids, before, return_indices=True)
    if len(common):
        out.t_us[at] = state.t_us[was]
        out.sums[:, at] = state.sums[:, was]
        out.prev[:, at] = state.prev[:, was]
    return out


@dataclass(frozen=True, slots=True)
class PrealarmChange:
    """A pre-alarm raised (``cleared_us`` None) or cleared (both set), by point id.

    At a raise: the alarm level, the forecast ``horizon_s`` ahead, and the predicted moment
    the level is reached (``predicted_us``, from the fitted line)."""

    point: int
    raised_us: int
    cleared_us: int | None
    level: float
    forecast: float
    predicted_us: int | None
    horizon_s: float


@dataclass(frozen=True, slots=True)
class PrealarmOutcome:
    changes: list[PrealarmChange]
    state: PrealarmState


@dataclass(frozen=True, slots=True)
class Columns:
    """The forecast points' settings in the order of the trends' columns (``PrealarmState.
    ids``), derived once per state layout: a cycle that covers every column reads them
    without a gather."""

    ids: IntArray
    slot: npt.NDArray[np.int32]  # per point id: its column (-1: none)
    #: the fast and the slow trend's time constants (the fast one's where there is no slow
    #: trend), shape (2, columns)
    taus: FloatArray
    horizon_s: FloatArray
    level: FloatArray
    #: every column is a forecast point with a slow trend (the one-cycle pair path applies)
    all_slow: bool
    #: per point id: the low alarm level of an air-speed point the ventilation input reads
    #: (NaN: none), so that one comparison finds its readings below it
    air_floor: FloatArray
    #: the longest ``tau_s`` of a forecast point, in microseconds
    tau_max_us: float
    #: some forecast point has a shearer point (the production input can start)
    cutting: bool

    @classmethod
    def of(cls, points: PrealarmPoints, ids: IntArray) -> Columns:
        slot = np.full(len(points.target), -1, np.int32)
        slot[ids] = np.arange(len(ids), dtype=np.int32)
        slow_or_fast = np.where(points.slow_tau_s > 0, points.slow_tau_s, points.tau_s)
        taus = np.ascontiguousarray(np.stack([points.tau_s[ids], slow_or_fast[ids]]))
        all_slow = bool(points.target[ids].all()) and bool((points.slow_tau_s[ids] > 0).all())
        air_floor = np.full(len(points.target), np.nan)
        if len(points.air_of):
            air_floor[points.air_of] = points.air_low[points.air_of]
        tau_max = float(points.tau_s[points.target].max()) if points.target.any() else 0.0
        cutting = bool((points.cutting.shearer >= 0).any())
        return cls(ids, slot, taus, points.horizon_s[ids], points.level[ids], all_slow,
                   air_floor, tau_max * 1e6, cutting)  # fmt: skip


@dataclass
class Prealarms:
    """The engine's pre-alarm part: points, settings and state (replaced on commit)."""

    points: PrealarmPoints
    state: PrealarmState = field(default_factory=lambda: PrealarmState.empty(0))
    #: the settings in the trends' column order, for ``state.ids`` (derived when they change)
    _columns: Columns | None = field(default=None, repr=False)
    #: every forecast point's ``z`` >= 0 and horizon > 0 (the quiet cycle's proof needs
    #: both): derived once
    _monotone: bool | None = field(default=None, repr=False)
    #: what :func:`forecast.ew_pair_cycle` keeps from one cycle to the next (its weights)
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def of(
        cls,
        registry: PointRegistry,
        per_mine: Mapping[str, PrealarmParams] | None = None,
        state: PrealarmState | None = None,
    ) -> Prealarms:
        points = PrealarmPoints.of(registry, per_mine)
        before = state if state is not None else PrealarmState.empty(0)
        return cls(points, before.grown(registry.size, points.target))

    @property
    def columns(self) -> Columns:
        """The settings in the order of the state's trend columns."""
        ids = self.state.ids
        if self._columns is None or self._columns.ids is not ids:
            self._columns = Columns.of(self.points, ids)
        return self._columns

    @property
    def monotone(self) -> bool:
        """Every forecast point's ``z`` >= 0 and horizon > 0 (the quiet cycle's proof)."""
        if self._monotone is None:
            pts = self.points
            self._monotone = bool((pts.z[pts.target] >= 0).all()) and bool(
                (pts.horizon_s[pts.target] > 0).all()
            )
        return self._monotone

    @property
    def active(self) -> BoolArray:
        return self.state.active

    def restore(self, open_prealarms: list[tuple[int, int]]) -> None:
        """The pre-alarms still open in the database after a restart: (point id, raised_us).
        They clear once the rebuilt forecast falls back."""
        for point, raised in open_prealarms:
            if 0 <= point < len(self.state.active):
                self.state.active[point] = True
                self.state.raised_us[point] = raised

    def commit(self, outcome: PrealarmOutcome | None) -> None:
        if outcome is not None:
            self.state = outcome.state

    def evaluate(self, rows: Rows, ok: BoolArray) -> PrealarmOutcome | None:
        """The forecast at every row of a forecast point where ``ok`` (a measurement, not
        calibrating); None when no such row."""
        pts = self.points
        take = ok & pts.target[rows.pid]
        sel = where_set(take)
        if not len(sel):
            return None
        pid, t, v = rows.pid[sel], rows.t[sel], rows.v[sel]
        st = self.state
        vent_lost, low_us = self._ventilation_lost(rows, ok, pid, t)
        if self.columns.cutting or len(st.cutting.on) != len(pts.cutting.shearer):
            cut_rows, cut_start, cut_st = production.cutting_started(
                pts.cutting, st.cutting, rows, ok, pid, t
            )
            cut_rows = cut_rows & ~vent_lost
        else:  # no shearer point: what cutting_started gives, without its calls
            cut_rows, cut_start = np.zeros(len(pid), bool), np.full(len(pid), NEVER, np.int64)
            cut_st = st.cutting
        cut = production.Cut(cut_rows, cut_start, cut_st)
        if rows.single and not len(pts.up_down):  # one polling cycle: each point's one
            outcome = self._evaluate_single(pid, t, v, vent_lost, low_us, cut)
            if outcome is not None:
                return outcome
        col = self.columns  # the trends' state is by column: ``cpid``, each row's
        cpid = col.slot[pid]
        sums, filtered, trend_after = ew_sums(cpid, t, v, st.trend, col.taus[0])
        quiet = self._quiet_batch(pid, cpid, t, v, sums, filtered, trend_after, low_us, cut)
        if quiet is not None:
            return quiet
        trend = fit_trend(sums, col.horizon_s[cpid], filtered)
        fast_slope = trend.slope
        slow_after = st.slow
        slow_tau = pts.slow_tau_s[pid]
        carrying = len(pts.carry_down) > 0 and some(pts.carried[pid])
        slow_rows = fast_slope  # each row's slow trend's slope (the fast one's where none)
        if some(slow_tau > 0):
            tau = col.taus[1]
            # The slow trend only lowers the forecast, so it decides nothing at the points
            # whose fast forecast raises nothing in the batch and that have no pre-alarm up:
            # their slow sums are carried on without a fit at every row.
            points_present = int(np.count_nonzero(np.diff(pid))) + 1
            whole = len(pts.up_down) > 0 or len(pid) < SPLIT_ROWS_PER_POINT * points_present
            need = np.full(len(pts.target), whole)  # in full: the experiment, or short batches
            need[st.active] = True
            rise, _ = conditions(pid, trend, pts)
            need[pid[rise]] = True
            rows_need = need[pid]
            slope = trend.slope
            if some(rows_need):
                sel = where_set(rows_need)
                slow, slow_after = ew_trend(cpid[sel], t[sel], v[sel], st.slow, tau,
                                            col.horizon_s, trend.filtered[sel])  # fmt: skip
                gated = (slow_tau[sel] > 0) & ~vent_lost[sel]
                slope = slope.copy()
                slope[sel] = np.where(gated, np.minimum(slope[sel], slow.slope), slope[sel])
                slow_rows = np.full(len(pid), np.nan)
                slow_rows[sel] = np.where(slow_tau[sel] > 0, slow.slope, fast_slope[sel])
            else:
                slow_after = st.slow
            rest = where_set(~rows_need)
            if len(rest):
                slow_after = ew_state_after(cpid[rest], t[rest], v[rest], slow_after, tau,
                                            trend.filtered[rest])  # fmt: skip
            trend = dataclasses.replace(
                trend, slope=slope, forecast=trend.level + slope * pts.horizon_s[pid]
            )
        if len(pts.up_down):
            rise, _ = conditions(pid, trend, pts)
            with np.errstate(invalid="ignore"):
                gate = rise | (trend.filtered >= pts.level[pid])
            boost = _upstream_boost(pid, t, fast_slope, pts, gate)
            trend = dataclasses.replace(trend, forecast=trend.forecast + boost)
        confirm = (
            np.where(vent_lost, pts.vent_confirm[pid], pts.confirm[pid])
            if some(vent_lost)
            else None
        )
        hold = vent_lost if some(vent_lost) else None
        if some(cut.rows):  # production (alarms/production.py)
            held = pts.confirm[pid] if confirm is None else confirm
            trend, confirm, cut_st = production.apply(trend, fast_slope, cut, pid, t,
                                                      pts.cutting, pts.horizon_s[pid],
                                                      held)  # fmt: skip
        cap = None
        if carrying:  # only the pairs whose carried point has a row meeting the raise condition
            rise, _ = conditions(pid, trend, pts)
            pairs = np.zeros(len(pts.target), bool)
            pairs[pid[rise]] = True
            pairs = where_set(pairs[pts.carry_down])
            if len(pairs):
                # the upstream points' slow slopes where not fitted above (the same fit)
                ups = np.zeros(len(pts.target), bool)
                ups[pts.carry_up[pairs]] = True
                miss = ups[pid] & np.isnan(slow_rows)
                if some(miss):
                    slow_rows = slow_rows.copy()
                    fit_now = miss & (slow_tau > 0)
                    slow_rows[miss & ~fit_now] = fast_slope[miss & ~fit_now]
                    if some(fit_now):
                        sel = where_set(fit_now)
                        slow, _ = ew_trend(cpid[sel], t[sel], v[sel], st.slow, col.taus[1],
                                           col.horizon_s, trend.filtered[sel])  # fmt: skip
                        slow_rows[sel] = slow.slope
                cap = carried_cap(pid, t, trend, fast_slope, slow_rows, pts, st, col.slot,
                                  vent_lost, pairs)  # fmt: skip
        changes, active, run, raised, since = decide(pid, t, trend, pts, st, confirm, hold,
                                                     cap)  # fmt: skip
        state = PrealarmState(trend_after, slow_after, active, run, raised, low_us, cut_st,
                              ids=st.ids, clear_since_us=since)  # fmt: skip
        return PrealarmOutcome(changes, state)

    def _quiet_batch(
        self,
        pid: npt.NDArray[np.int32],
        cpid: npt.NDArray[np.int32],
        t: IntArray,
        v: FloatArray,
        sums: FloatArray,
        filtered: FloatArray,
        trend_after: TrendState,
        low_us: IntArray,
        cut: production.Cut,
    ) -> PrealarmOutcome | None:
        """The general path's quiet batch (issue 14; :meth:`_evaluate_pair`'s quiet cycle for
        several rows a point): no point of the rows has a pre-alarm up and no row's forecast
        with the fast trend's slope reaches its level, so no row meets the raise condition
        (the same proof) and none clears: the outcome is the slow trend's state carried over
        every row (what the general path does when no row needs its fit), the runs of the
        points ended, nothing else. None when that does not hold (or the upstream or the
        production input is on in a row: they can lift a forecast above the fast line), and
        for a short batch, whose slow trend the general path fits at every row (its state
        after is then summed another way: not the same bits)."""
        pts, st, col = self.points, self.state, self.columns
        if not self.monotone or len(pts.up_down) or some(cut.rows) or some(st.active[pid]):
            return None
        if len(pid) < SPLIT_ROWS_PER_POINT * (int(np.count_nonzero(np.diff(pid))) + 1):
            return None
        if some(line_reaches(sums, col.horizon_s[cpid], pts.level[pid])):
            return None
        slow_after = st.slow
        if some(pts.slow_tau_s[pid] > 0):
            slow_after = ew_state_after(cpid, t, v, st.slow, col.taus[1], filtered)
        run = st.run
        if some(run[pid]):
            run = run.copy()
            run[pid] = 0
        state = PrealarmState(trend_after, slow_after, st.active, run, st.raised_us, low_us,
                              cut.state, ids=st.ids, clear_since_us=st.clear_since_us)  # fmt: skip
        return PrealarmOutcome([], state)

    def _ventilation_lost(
        self, rows: Rows, ok: BoolArray, pid: npt.NDArray[np.int32], t: IntArray
    ) -> tuple[BoolArray, IntArray]:
        """Per forecast row: its substation's air-speed point read below its low alarm level
        within the trend's time constant (``tau_s``) up to the row's time (a valid reading);
        the latest such time per point after the rows."""
        pts, st = self.points, self.state
        size = len(pts.air)
        last = st.low_us if len(st.low_us) == size else np.full(size, NEVER, np.int64)
        if not size:
            return np.zeros(len(pid), bool), last
        # the usual cycle: no air reading below its level, and none within ``tau_s`` before
        # (every row's ``t - before`` exceeds the longest ``tau_s``): no row lost its air
        if not np.count_nonzero((rows.v < self.columns.air_floor[rows.pid]) & ok):
            latest = int(last[last.argmax()])
            if latest == NEVER or int(t[t.argmin()]) - latest > self.columns.tau_max_us:
                return np.zeros(len(pid), bool), last
        air = pts.air[pid]
        has = air >= 0
        if not has.any():
            return np.zeros(len(pid), bool), last
        # the air points' valid readings below their low level, keyed (point, time) in order
        with np.errstate(invalid="ignore"):
            low = ok & pts.air_of[rows.pid] & (rows.v < pts.air_low[rows.pid])
        sel = np.flatnonzero(low)
        a = np.where(has, air, 0)
        before = last[a]
        if len(sel):
            base = int(min(t.min(), rows.t.min()))
            lpid = rows.pid[sel].astype(np.int64)
            key = lpid * _KEY + (rows.t[sel] - base)
            k = np.searchsorted(key, a * _KEY + (t - base), "right") - 1
            kk = np.maximum(k, 0)
            same = has & (k >= 0) & (lpid[kk] == a)
            before = np.where(same, rows.t[sel][kk], before)
            ends = np.flatnonzero(np.append(lpid[1:] != lpid[:-1], True))
            last = last.copy()
            last[lpid[ends]] = rows.t[sel][ends]
        lost = has & (before != NEVER) & (t - before <= pts.tau_s[pid] * 1e6)
        return lost, last

    def _evaluate_single(
        self,
        pid: npt.NDArray[np.int32],
        t: IntArray,
        v: FloatArray,
        vent_lost: BoolArray,
        low_us: IntArray,
        cut: production.Cut,
    ) -> PrealarmOutcome | None:
        """``evaluate`` for rows of distinct points (both trends at once in
        :meth:`_evaluate_pair`, the fast one alone in :func:`forecast.ew_trend_single`, and
        the latch of one row per point); None when the rows need the general path.
        ``vent_lost``, ``low_us``: the ventilation input's, per row and after; ``cut``: the
        production input's."""
        pts, st = self.points, self.state
        col = self.columns
        if len(pid) == len(col.ids) and col.all_slow:  # every column, in order: pid is ids
            return self._evaluate_pair(pid, t, v, None, vent_lost, low_us, cut)
        slow_tau = pts.slow_tau_s[pid]
        if some(slow_tau > 0):
            return self._evaluate_pair(pid, t, v, slow_tau, vent_lost, low_us, cut)
        cpid = col.slot[pid]
        found = ew_trend_single(cpid, t, v, (st.trend,), col.taus[:1], col.horizon_s)
        if found is None:
            return None
        trend, trend_after = found[0]
        lost = some(vent_lost)
        confirm = np.where(vent_lost, pts.vent_confirm[pid], pts.confirm[pid]) if lost else None
        hold = vent_lost if lost else None
        cut_st = cut.state
        if some(cut.rows):  # production (alarms/production.py)
            held = pts.confirm[pid] if confirm is None else confirm
            trend, confirm, cut_st = production.apply(trend, found[0][0].slope, cut, pid, t,
                                                      pts.cutting, pts.horizon_s[pid],
                                                      held)  # fmt: skip
        if _carried_rises(pid, trend, pts):
            return None  # a carried point's row meets the raise condition: the general path
        changes, active, run, raised, since = decide_single(pid, t, trend, pts, st, confirm,
                                                            hold)  # fmt: skip
        state = PrealarmState(trend_after, st.slow, active, run, raised, low_us, cut_st,
                              ids=st.ids, clear_since_us=since)  # fmt: skip
        return PrealarmOutcome(changes, state)

    def _evaluate_pair(
        self,
        pid: npt.NDArray[np.int32],
        t: IntArray,
        v: FloatArray,
        slow_tau: FloatArray | None,
        vent_lost: BoolArray,
        low_us: IntArray,
        cut: production.Cut,
    ) -> PrealarmOutcome | None:
        """``_evaluate_single`` with the slow trend: both trends' state in one
        :class:`TrendPair` (:func:`forecast.ew_pair_single`). The quiet cycle (issue 14): when
        no point has a pre-alarm up and no row's forecast with the fast slope reaches its
        level, no row can meet the raise condition (the slope taken is at most the fast one,
        the horizon is positive and the confidence margin ``z`` x standard error is not
        negative, and rounding keeps each of these orders), so only the state is updated:
        no standard error, no slow forecast, no latch. When a few rows may, only those are
        fitted and latched; the others' runs end (each row's arithmetic is its own, so the
        same bits). An input that can lift a row's forecast above its fast line must put
        the row in ``may``: the rows of the production input (``cut.rows``) always are.

        ``slow_tau`` None: the rows are every column of the state in order (``pid`` is
        ``state.ids``), each with a slow trend; the state is then read and written whole,
        without a gather or a copy (:func:`forecast.ew_pair_cycle` where it applies)."""
        pts, st, col = self.points, self.state, self.columns
        pair = st.pair if st.pair is not None else TrendPair.of(st.trend, st.slow)
        whole = slow_tau is None
        found = ew_pair_cycle(t, v, pair, col.taus, self._memo) if whole else None
        if found is not None:  # the new columns are the whole state, at one time
            cols, filtered = found
            after = TrendPair(cols, np.array((t, t)), int(t[0]))
            horizon, level = col.horizon_s, col.level
        else:
            cpid = col.slot[pid]
            found = ew_pair_single(cpid, t, v, pair, col.taus)
            if found is None:
                return None
            cols, filtered = found
            values = pair.values.copy()
            values[:, cpid] = cols
            times = pair.times.copy()
            times[:, cpid] = t
            after = TrendPair(values, times)
            horizon, level = pts.horizon_s[pid], pts.level[pid]
        trend_after, slow_after = after.trends()
        n = len(pid)
        sums = cols[:12].reshape(6, 2, n)
        rest: npt.NDArray[np.int32] | None = None  # rows that neither raise nor clear
        if self.monotone:
            may = line_reaches(sums[:, 0], horizon, level)  # the fast trend's line
            if whole and not some(st.active):  # no pre-alarm up anywhere (run: only here)
                may |= cut.rows
                run_on = some(st.run)
            else:
                may |= st.active[pid] | cut.rows
                run_on = some(st.run[pid])
            if not some(may):  # the quiet cycle: no raise possible, nothing to clear
                run = st.run
                if run_on:
                    run = run.copy()
                    run[pid] = 0
                state = PrealarmState(trend_after, slow_after, st.active, run, st.raised_us,
                                      low_us, cut.state, pair=after, ids=st.ids,
                                      clear_since_us=st.clear_since_us)  # fmt: skip
                return PrealarmOutcome([], state)
            if slow_tau is None:
                slow_tau = pts.slow_tau_s[pid]
            if np.count_nonzero(may) * 4 < n:  # a few rows rise: the fit of those only
                sel = np.flatnonzero(may)
                rest = pid[~may]
                pid, t, slow_tau, vent_lost = pid[sel], t[sel], slow_tau[sel], vent_lost[sel]
                cut = cut.take(sel)
                sums, horizon, filtered = np.take(sums, sel, axis=2), horizon[sel], filtered[sel]
        if slow_tau is None:
            slow_tau = pts.slow_tau_s[pid]
        fit = fit_trend(sums, horizon, filtered)
        lost = some(vent_lost)
        gated = (slow_tau > 0) & ~vent_lost if lost else slow_tau > 0
        slope = np.where(gated, np.minimum(fit.slope[0], fit.slope[1]), fit.slope[0])
        trend = Trend(fit.level[0], slope, fit.weight[0], fit.level[0] + slope * horizon,
                      fit.stderr[0], filtered)  # fmt: skip
        confirm = np.where(vent_lost, pts.vent_confirm[pid], pts.confirm[pid]) if lost else None
        hold = vent_lost if lost else None
        cut_st = cut.state
        if some(cut.rows):  # production (alarms/production.py)
            held = pts.confirm[pid] if confirm is None else confirm
            trend, confirm, cut_st = production.apply(trend, fit.slope[0], cut, pid, t,
                                                      pts.cutting, horizon, held)  # fmt: skip
        if _carried_rises(pid, trend, pts):
            return None  # a carried point's row meets the raise condition: the general path
        changes, active, run, raised, since = decide_single(pid, t, trend, pts, st, confirm,
                                                            hold)  # fmt: skip
        if rest is not None and some(st.run[rest]):  # the other rows' runs end
            run = run.copy() if run is st.run else run
            run[rest] = 0
        state = PrealarmState(trend_after, slow_after, active, run, raised, low_us, cut_st,
                              pair=after, ids=st.ids, clear_since_us=since)  # fmt: skip
        return PrealarmOutcome(changes, state)


def _upstream_boost(
    pid: npt.NDArray[np.int32],
    t: IntArray,
    slope: FloatArray,
    pts: PrealarmPoints,
    gate: BoolArray | None = None,
) -> FloatArray:
    """Per row: the share of its upstream points' rise over the transport delay not yet
    arrived (``gain x max(0, upstream fast slope at the row's time) x delay``), summed."""
    boost = np.zeros(len(pid))
    order_t = t
    for down, up, delay, gain in zip(
        pts.up_down.tolist(),
        pts.up_src.tolist(),
        pts.up_delay.tolist(),
        pts.up_gain.tolist(),
        strict=True,
    ):
        mine = np.flatnonzero(pid == down)
        theirs = np.flatnonzero(pid == up)
        if not len(mine) or not len(theirs):
            continue
        k = np.searchsorted(order_t[theirs], order_t[mine], "right") - 1
        s = np.where(k >= 0, slope[theirs][np.maximum(k, 0)], 0.0)
        if gate is not None:
            s = np.where((k >= 0) & gate[theirs][np.maximum(k, 0)], s, 0.0)
        boost[mine] += gain * np.maximum(s, 0.0) * delay
    return boost


def _carried_rises(pid: npt.NDArray[np.int32], trend: Trend, pts: PrealarmPoints) -> bool:
    """Some row of a carried point (``carry_delays``) meets the raise condition without the
    cap: the one-cycle paths then leave the rows to the general path, which caps them."""
    if not len(pts.carry_down) or not some(pts.carried[pid]):
        return False
    rise, _ = conditions(pid, trend, pts)
    return some(rise & pts.carried[pid])


def carried_cap(
    pid: npt.NDArray[np.int32],
    t: IntArray,
    trend: Trend,
    fast_slope: FloatArray,
    slow_slope: FloatArray,
    pts: PrealarmPoints,
    st: PrealarmState,
    slot: npt.NDArray[np.int32],
    vent_lost: BoolArray,
    pairs: npt.NDArray[np.intp],
) -> FloatArray:
    """Per row: the highest forecast a raise may use at a point whose rise is carried from
    upstream (``carry_delays``, :class:`PrealarmParams`); +inf elsewhere, and where the air
    is lost (``vent_lost``: a stopped fan carries nothing at the path's delay). Each upstream
    point's slopes are those of its latest row at or before the row's time (in the batch, or
    the state's before it), so any batching gives the same cap. ``slow_slope``: per row, the
    slow trend's slope (the fast one's without a slow trend; NaN: not fitted). What upstream
    still adds reaches the point diluted as the rise so far was: scaled by the ratio of the
    two slow slopes (at most 1). ``pairs``: the carried-rise pairs to look at (indices into
    ``pts.carry_down``); the other rows' cap is +inf."""
    n = len(pid)
    explained = np.zeros(n, bool)
    window = np.zeros(n)
    adds = np.zeros(n)
    before: dict[int, tuple[float, float]] = {}
    for down, up, span, ratio in zip(pts.carry_down[pairs].tolist(),
                                     pts.carry_up[pairs].tolist(), pts.carry_s[pairs].tolist(),
                                     pts.carry_ratio[pairs].tolist(), strict=True):  # fmt: skip
        mine = np.flatnonzero(pid == down)
        if not len(mine):
            continue
        theirs = np.flatnonzero(pid == up)
        k = np.searchsorted(t[theirs], t[mine], "right") - 1
        if up not in before:  # the state's slopes before the batch
            c = int(slot[up])
            with np.errstate(invalid="ignore", divide="ignore"):
                f = fit_line(st.trend.sums[:, c : c + 1])[2][0] if c >= 0 else np.nan
                s = fit_line(st.slow.sums[:, c : c + 1])[2][0] if c >= 0 else np.nan
            before[up] = (float(f), float(s) if pts.slow_tau_s[up] > 0 else float(f))
        kk = np.maximum(k, 0)
        u_fast = np.where(k >= 0, fast_slope[theirs][kk] if len(theirs) else 0.0, before[up][0])
        u_slow = np.where(k >= 0, slow_slope[theirs][kk] if len(theirs) else 0.0, before[up][1])
        d_slow = slow_slope[mine]
        with np.errstate(invalid="ignore", divide="ignore"):
            explains = (u_slow >= ratio * d_slow) & (d_slow > 0)
            u_slope = np.where(pts.slow_tau_s[up] > 0, np.minimum(u_fast, u_slow), u_fast)
            u_slope = np.where(np.isfinite(u_slope), np.maximum(u_slope, 0.0), 0.0)
            dilution = np.where(explains, np.minimum(d_slow / u_slow, 1.0), 0.0)
            u_slope = u_slope * np.where(np.isfinite(dilution), dilution, 1.0)
        explained[mine] |= explains
        window[mine] = np.maximum(window[mine], np.where(explains, span, 0.0))
        adds[mine] = np.maximum(adds[mine], u_slope)
    horizon = pts.horizon_s[pid]
    transit = np.minimum(horizon, window)
    cap = trend.level + trend.slope * transit + adds * (horizon - transit)
    return np.where(explained & ~vent_lost, cap, np.inf)


def conditions(
    pid: npt.NDArray[np.int32],
    trend: Trend,
    pts: PrealarmPoints,
    cap: FloatArray | None = None,
) -> tuple[BoolArray, BoolArray]:
    """Per row: (the raise condition, the clear condition). ``cap``: per row, the highest
    forecast a raise may use (:func:`carried_cap`); None: the trend's."""
    level = pts.level[pid]
    enough = trend.weight >= pts.min_weight[pid]
    forecast = trend.forecast if cap is None else np.minimum(trend.forecast, cap)
    with np.errstate(invalid="ignore"):
        confident = forecast - pts.z[pid] * trend.stderr >= level
        below = (trend.level < level) & (trend.filtered < level)
        rise = enough & below & (trend.slope > 0) & confident
        clear = enough & (trend.forecast < pts.clear_level[pid]) & (trend.level < level)
    return rise, clear


def decide(
    pid: npt.NDArray[np.int32],
    t: IntArray,
    trend: Trend,
    pts: PrealarmPoints,
    st: PrealarmState,
    confirm: IntArray | None = None,
    hold: BoolArray | None = None,
    cap: FloatArray | None = None,
) -> tuple[list[PrealarmChange], BoolArray, IntArray, IntArray, IntArray]:
    """Raises and clears over the rows; the latch, run, raise time and start of the clear
    run (:attr:`PrealarmState.clear_since_us`) per point after them. ``confirm``: the
    readings confirming a raise per row (default: the points' setting); ``hold``: rows where a
    pre-alarm up is not cleared (the air is lost); ``cap``: see :func:`conditions`."""
    n = len(pid)
    gs = group_starts(pid)
    idx = np.arange(n)
    rise, clear = conditions(pid, trend, pts, cap)
    if hold is not None:
        clear &= ~hold
    start = None
    if _holds(pid, pts):  # the clear run's first row: in the batch, or carried over
        last_kept = np.maximum.accumulate(np.where(~clear, idx, -1))
        carried = st.since()[pid]
        carried = np.where(carried != NEVER, carried, t[gs])
        first = t[np.minimum(last_kept + 1, max(n - 1, 0))]
        start = np.where(clear, np.where(last_kept >= gs, first, carried), NEVER)
        clear = _held(clear, t, start, pts.clear_hold_us[pid])
    # consecutive rows meeting the raise condition, carried over from the state
    last_miss = np.maximum.accumulate(np.where(~rise, idx, -1))
    in_group = last_miss >= gs
    run = np.where(in_group, idx - last_miss, idx - gs + 1 + st.run[pid])
    run = np.where(rise, run, 0)
    set_rows = rise & (run >= (pts.confirm[pid] if confirm is None else confirm))
    initial = st.active[pid]
    state = latch(gs, set_rows, clear & ~set_rows, initial)
    before = previous_state(gs, state, initial)
    up = state & ~before
    down = ~state & before

    last = where_set(np.append(pid[1:] != pid[:-1], True)) if n else idx
    points = pid[last]
    active = st.active.copy()
    active[points] = state[last]
    runs = st.run.copy()
    runs[points] = run[last]
    raised = st.raised_us.copy()
    changes = _changes(pid, t, up, down, trend, pts, raised)
    since = _since_after(st, points, state[last], None if start is None else start[last])
    return changes, active, runs, raised, since


def _holds(pid: npt.NDArray[np.int32], pts: PrealarmPoints) -> bool:
    """Whether a row's point has a clear hold (``clear_hold_s`` > 0)."""
    return len(pts.clear_hold_us) > 0 and bool(pts.clear_hold_us[pid].any())


def _held(clear: BoolArray, t: IntArray, start: IntArray, hold_us: IntArray) -> BoolArray:
    """The rows that clear: the clear condition has held from ``start`` for the hold."""
    return clear & (t - np.where(clear, start, t) >= hold_us)


def _since_after(
    st: PrealarmState, points: npt.NDArray[np.int32], up: BoolArray, start: IntArray | None
) -> IntArray:
    """``clear_since_us`` after the rows: at ``points`` (their last rows' values), the start
    of the clear run where a pre-alarm is still up, NEVER elsewhere."""
    since = st.since()
    if start is None and not (since[points] != NEVER).any():
        return since
    since = since.copy()
    since[points] = NEVER if start is None else np.where(up, start, NEVER)
    return since


def _changes(
    pid: npt.NDArray[np.int32],
    t: IntArray,
    up: BoolArray,
    down: BoolArray,
    trend: Trend,
    pts: PrealarmPoints,
    raised: IntArray,
) -> list[PrealarmChange]:
    """The pre-alarms raised (``up``) and cleared (``down``) by the rows, in row order;
    ``raised`` (each point's raise time) is updated in place."""
    changes: list[PrealarmChange] = []
    if not (some(up) or some(down)):
        return changes
    level = pts.level[pid]
    for i in np.flatnonzero(up | down).tolist():
        p = int(pid[i])
        if up[i]:
            b = float(trend.slope[i])
            gap = (float(level[i]) - float(trend.level[i])) / b if b > 0 else None
            raised[p] = int(t[i])
            changes.append(PrealarmChange(
                p, int(t[i]), None, float(level[i]), float(trend.forecast[i]),
                None if gap is None else int(t[i]) + round(gap * 1e6),
                float(pts.horizon_s[p]),
            ))  # fmt: skip
        else:
            changes.append(PrealarmChange(
                p, int(raised[p]), int(t[i]), float(level[i]), float(trend.forecast[i]),
                None, float(pts.horizon_s[p]),
            ))  # fmt: skip
            raised[p] = NEVER
    return changes


def decide_single(
    pid: npt.NDArray[np.int32],
    t: IntArray,
    trend: Trend,
    pts: PrealarmPoints,
    st: PrealarmState,
    confirm: IntArray | None = None,
    hold: BoolArray | None = None,
) -> tuple[list[PrealarmChange], BoolArray, IntArray, IntArray, IntArray]:
    """:func:`decide` for rows of distinct points: each row continues (or resets) its point's
    run and latch from the state; nothing is copied when nothing changes. ``confirm`` and
    ``hold`` as for :func:`decide`."""
    level = pts.level[pid]
    with np.errstate(invalid="ignore"):  # conditions()'s raise condition, the same terms
        confident = trend.forecast - pts.z[pid] * trend.stderr >= level
        below = (trend.level < level) & (trend.filtered < level)
        rise = (trend.weight >= pts.min_weight[pid]) & below & (trend.slope > 0) & confident
    initial = st.active[pid]
    carried = st.run[pid]
    if not some(rise) and not some(initial):  # the quiet case: no run goes on, none is open
        if not some(carried):
            return [], st.active, st.run, st.raised_us, st.clear_since_us
        runs = st.run.copy()
        runs[pid] = 0
        return [], st.active, runs, st.raised_us, st.clear_since_us
    _, clear = conditions(pid, trend, pts)
    if hold is not None:
        clear &= ~hold
    start = None
    if _holds(pid, pts):  # the clear run's first row: carried over, or this one
        carried_since = st.since()[pid]
        start = np.where(clear, np.where(carried_since != NEVER, carried_since, t), NEVER)
        clear = _held(clear, t, start, pts.clear_hold_us[pid])
    run = np.where(rise, carried + 1, 0)
    set_rows = rise & (run >= (pts.confirm[pid] if confirm is None else confirm))
    state = np.where(set_rows, True, np.where(clear, False, initial))
    runs = st.run.copy()
    runs[pid] = run
    active = st.active.copy()
    active[pid] = state
    up = state & ~initial
    down = ~state & initial
    raised = st.raised_us.copy()
    changes = _changes(pid, t, up, down, trend, pts, raised)
    return changes, active, runs, raised, _since_after(st, pid, state, start)
