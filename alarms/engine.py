"""The alarm engine: evaluates a batch against every rule without mutating its state.

``evaluate`` returns an :class:`Evaluation` (flags for the batch, episode changes and the state
after it); the caller stores the batch and the changes in one transaction and only then calls
``commit``. A failed write can therefore be retried with the engine unchanged. ``tick(now)``
does the same for what the clock decides (data interruption; 馈电 decisions held for a silent
side and off-delay clears pending on a silent point, once ``now`` less the allowed lateness has
passed them). Evaluations must be committed in the order they were made, one at a time (the
gateway's writer owns the engine).

Rule families, one module each under :mod:`alarms.rules`: thresholds (gas alarms with
hysteresis, on-delay, confirmation and pre-warnings), calibration, faults (maintenance),
switch states (fan stop, smoke...), feed (馈电异常) and interruption. Every episode carries a
classification (:class:`alarms.codes.Classification`). Rows are evaluated in event time, sorted by
(point, time); a row not after its point's last evaluated reading is late: flagged, stored,
not evaluated. Every rule keeps its state across batches, so where a batch is cut changes no
episode (``tests/alarms/test_batch_invariance.py``); the rule that merges points (feed) holds
its decisions until both sides have reported or the allowed lateness has passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
from minewatch.alarms.codes import RULES, Classification
from minewatch.alarms.episodes import EpisodeChange, changes_from_runs, closed_record
from minewatch.alarms.rules import faults, feed, interruption, states
from minewatch.alarms.rules.calibration import undeclared_calibration
from minewatch.alarms.rules.context import BatchContext
from minewatch.alarms.rules.params import PointParams, RuleDefaults
from minewatch.alarms.rules.runs import (
    NEVER,
    Rows,
    RunOutcome,
    RunState,
    RunTable,
    evaluate_runs,
    expire_pending,
    quiet,
)
from minewatch.alarms.rules.thresholds import ThresholdRule, threshold_rules

from minewatch.batch import ReadingBatch
from minewatch.codes import ReadingFlag
from minewatch.registry import PointRegistry

_NEVER = NEVER
_UPPER_GAS = ("upper_alarm", "power_off")  # their one-reading runs are interference spikes
_RECLASSIFIED = (*_UPPER_GAS, "upper_prewarn")  # may turn out an undeclared calibration
_FAULT_CLASS = {
    "disconnection": Classification.DISCONNECTION,
    "over_range": Classification.OVER_RANGE,
    "substation_fault": Classification.SUBSTATION_FAULT,
    "negative_drift": Classification.NEGATIVE_DRIFT,
    "flatline": Classification.FLATLINE,
}
#: Every rule with a latch state (all but the clock-driven data interruption).
RUN_RULES = (
    "upper_alarm", "power_off", "upper_prewarn", "lower_alarm", "lower_prewarn",
    "calibration", *faults.FAULT_RULES, "feed_abnormal", *states.RULE_NAMES,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class EngineState:
    """Everything the engine knows per point id; replaced as a whole on commit."""

    last_time_us: npt.NDArray[np.int64]  # latest evaluated reading (event time)
    last_value: npt.NDArray[np.float64]  # latest valid reading (NaN: none yet)
    runs: dict[str, RunState]
    repeats: npt.NDArray[np.int64]  # identical consecutive readings (flat-line)
    interruption: interruption.InterruptionState
    last_zero_us: npt.NDArray[np.int64]  # latest zero-gas reading (undeclared calibration)
    feed: feed.FeedState  # 馈电: readings of D pairs not decided yet

    @classmethod
    def empty(cls, size: int) -> EngineState:
        return cls(
            np.full(size, _NEVER, np.int64),
            np.full(size, np.nan),
            {rule: RunState.empty(size) for rule in RUN_RULES},
            np.zeros(size, np.int64),
            interruption.InterruptionState.empty(size),
            np.full(size, _NEVER, np.int64),
            feed.FeedState.empty(size),
        )

    def grown(self, size: int) -> EngineState:
        def grow(array: np.ndarray, fill: object) -> np.ndarray:
            out = np.full(size, fill, dtype=array.dtype)
            keep = min(size, len(array))
            out[:keep] = array[:keep]
            return out

        return EngineState(
            grow(self.last_time_us, _NEVER),
            grow(self.last_value, np.nan),
            {rule: self.runs.get(rule, RunState.empty(0)).grown(size) for rule in RUN_RULES},
            grow(self.repeats, 0),
            self.interruption.grown(size),
            grow(self.last_zero_us, _NEVER),
            self.feed.grown(size),
        )


@dataclass(frozen=True, slots=True)
class Evaluation:
    flags: npt.NDArray[np.int16]  # per row of the evaluated batch, in its original order
    changes: list[EpisodeChange]
    state: EngineState

    @property
    def active(self) -> dict[str, npt.NDArray[np.bool_]]:
        """Open episodes per rule after the batch (indexed by point id)."""
        out = {rule: s.active for rule, s in self.state.runs.items()}
        out[interruption.RULE] = self.state.interruption.active
        return out

    @property
    def last_time_us(self) -> npt.NDArray[np.int64]:
        return self.state.last_time_us


@dataclass
class AlarmEngine:
    """Per-point alarm state, indexed by point id; one engine owns the points of its mines."""

    registry: PointRegistry
    defaults: RuleDefaults = field(default_factory=RuleDefaults)
    state: EngineState = field(default_factory=lambda: EngineState.empty(0))
    rules: tuple[ThresholdRule, ...] = ()

    def __post_init__(self) -> None:
        self.use_registry(self.registry)

    def use_registry(self, registry: PointRegistry) -> None:
        """Take new point metadata (thresholds may have changed); keep the state."""
        self.registry = registry
        self.rules = threshold_rules(registry)
        self.params = PointParams.of(registry, self.defaults)
        self.pairs = feed.FeedPairs.of(registry)
        self.state_points = states.StatePoints.of(registry)
        self.state = self.state.grown(registry.size)

    @property
    def active(self) -> dict[str, npt.NDArray[np.bool_]]:
        return Evaluation(np.empty(0, np.int16), [], self.state).active

    @property
    def last_time_us(self) -> npt.NDArray[np.int64]:
        return self.state.last_time_us

    def restore(
        self,
        open_episodes: list[tuple[int, str]] | list[tuple[int, str, int]],
        last_times: list[tuple[int, int]] | list[tuple[int, int, float]],
    ) -> None:
        """Rebuild state from the database: open episodes and each point's latest reading.

        Episode tuples are (point id, rule[, started_at_us]); reading tuples are
        (point id, time_us[, value]).
        """
        size = self.registry.size
        for item in open_episodes:
            point_id, rule = int(item[0]), str(item[1])
            started = int(item[2]) if len(item) > 2 else _NEVER  # type: ignore[misc]
            if not 0 <= point_id < size:
                continue
            if rule in self.state.runs:
                self.state.runs[rule].restore_open(point_id, started)
            elif rule == interruption.RULE:
                self.state.interruption.active[point_id] = True
                self.state.interruption.start_us[point_id] = started
        for item in last_times:
            point_id = int(item[0])
            if 0 <= point_id < size:
                self.state.last_time_us[point_id] = int(item[1])
                if len(item) > 2:
                    self.state.last_value[point_id] = float(item[2])  # type: ignore[misc]
        cut = self.state.runs["power_off"]
        self.state = replace(
            self.state,
            feed=self.state.feed.restored(self.state.last_value, cut.raw, cut.latch_us),
        )

    def commit(self, evaluation: Evaluation) -> None:
        """Adopt the state after a batch, once the batch and its changes are durable."""
        self.state = evaluation.state

    def tick(self, now_us: int) -> Evaluation:
        """What the clock decides at ``now_us`` (wall clock, microseconds): data interruption
        (at once), and, once ``now_us`` less the allowed lateness has passed them, 馈电
        decisions held for a silent side and off-delay clears pending on a silent point.

        Like ``evaluate``: store the changes, then ``commit`` the evaluation.
        """
        st = self.state
        bound = now_us - self.defaults.lateness_us
        changes, after = interruption.tick(
            now_us, st.interruption, self.registry.known, st.last_time_us, st.last_value,
            self.params,
        )  # fmt: skip
        runs = dict(st.runs)
        expired: dict[str, RunTable] = {}
        for rule in self.rules:  # off-delay clears the clock resolves
            outcome = expire_pending(runs[rule.name], self.params.off_delay_us, bound)
            runs[rule.name], expired[rule.name] = outcome.state, outcome.runs
            zero = st.runs[rule.name].zero_us[outcome.runs.point]
            changes += self._threshold_changes(rule, outcome.runs, zero)
        levels = {rule.name: rule.set_level for rule in self.rules}
        changes += self._spikes([(expired[n], levels[n]) for n in _UPPER_GAS])
        drift = expire_pending(runs["negative_drift"], self._drift_off_delay_us, bound)
        runs["negative_drift"] = drift.state
        changes += changes_from_runs(
            "negative_drift", RULES["negative_drift"][0], drift.runs, None,
            Classification.NEGATIVE_DRIFT.value,
        )  # fmt: skip
        feed_outcome, feed_after = feed.decide(
            st.feed, self.pairs, st.last_time_us, runs["feed_abnormal"],
            self.params.control_time_us, self.defaults.lateness_us, bound,
        )  # fmt: skip
        if feed_outcome is not None:
            runs["feed_abnormal"] = feed_outcome.state
            changes += self._feed_changes(feed_outcome.runs)
        state = replace(st, interruption=after, runs=runs, feed=feed_after)
        return Evaluation(np.empty(0, np.int16), changes, state)

    def evaluate(self, batch: ReadingBatch) -> Evaluation:
        st = self.state
        late, order = live_order(batch.point_id, batch.time_us, st.last_time_us)
        flags = batch.flags.copy()
        flags[late] |= ReadingFlag.LATE
        pid, t = batch.point_id[order], batch.time_us[order]
        value, status = batch.value[order], batch.status[order]
        rows = Rows.of(pid, t, value, status)
        if not len(rows):
            return Evaluation(flags, [], st)

        ctx = BatchContext.of(rows, self.registry, self.params, st.last_value)
        runs: dict[str, RunState] = dict(st.runs)
        changes: list[EpisodeChange] = []
        outcomes: dict[str, RunOutcome] = {}
        for rule in self.rules:
            outcome = rule.evaluate(ctx, st.runs[rule.name], self.params, self._confirm)
            outcomes[rule.name] = outcome
            runs[rule.name] = outcome.state
            zero = None
            if rule.name in _RECLASSIFIED and len(outcome.runs):
                zero = self._zero_before(ctx, outcome, st.runs[rule.name], st.last_zero_us)
            changes += self._threshold_changes(rule, outcome.runs, zero)
        levels = {rule.name: rule.set_level for rule in self.rules}
        changes += self._spikes([(outcomes[n].runs, levels[n]) for n in _UPPER_GAS])

        calibration = self._calibration(ctx, st.runs["calibration"])
        runs["calibration"] = calibration.state
        labels = np.where(
            ctx.declared[np.maximum(calibration.runs.head_row, 0)],
            Classification.CALIBRATION_DECLARED.value,
            Classification.CALIBRATION_FLAGGED.value,
        )
        changes += changes_from_runs(
            "calibration",
            RULES["calibration"][0],
            calibration.runs,
            self.registry.alarm_high,
            labels.astype(object),
        )

        fault_outcomes, repeats = faults.evaluate_faults(ctx, st.runs, st.repeats, self.params)
        for name, outcome in fault_outcomes.items():
            runs[name] = outcome.state
            changes += changes_from_runs(
                name, RULES[name][0], outcome.runs, None, _FAULT_CLASS[name].value
            )

        # Switch states (alarms/rules/states.py): the point reads its configured alarm state.
        state_outcomes = states.evaluate_states(ctx, st.runs, self.state_points, self.params)
        for name, outcome in state_outcomes.items():
            runs[name] = outcome.state
            changes += changes_from_runs(
                name, RULES[name][0], outcome.runs, self.registry.alarm_state,
                Classification.EXCEEDANCE.value,
            )  # fmt: skip

        last_time = st.last_time_us.copy()
        last_time[rows.pid[rows.last_rows]] = rows.t[rows.last_rows]

        pending_feed = feed.pair_rows(rows, ctx.valid, outcomes["power_off"], self.pairs, st.feed)
        feed_outcome, feed_after = feed.decide(
            pending_feed, self.pairs, last_time, st.runs["feed_abnormal"],
            self.params.control_time_us, self.defaults.lateness_us,
        )  # fmt: skip
        if feed_outcome is not None:
            runs["feed_abnormal"] = feed_outcome.state
            changes += self._feed_changes(feed_outcome.runs)

        gap_changes, gaps = interruption.on_readings(
            rows, st.interruption, st.last_time_us, ctx.prev_value, self.params
        )
        changes += gap_changes

        last_value = st.last_value.copy()
        has_valid = ctx.last_valid_row >= 0
        last_value[rows.pid[rows.last_rows][has_valid]] = rows.v[ctx.last_valid_row[has_valid]]
        state = EngineState(
            last_time,
            last_value,
            runs,
            repeats,
            gaps,
            _last_zero(ctx, st.last_zero_us),
            feed_after,
        )
        return Evaluation(flags, changes, state)

    # -- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _zero_before(
        ctx: BatchContext,
        outcome: RunOutcome,
        before: RunState,
        last_zero_us: npt.NDArray[np.int64],
    ) -> npt.NDArray[np.int64]:
        """Per run of ``outcome``: the point's latest zero-gas reading before the run began;
        kept in the rule's state for the runs still open (a run carried over keeps its own)."""
        table = outcome.runs
        heads = np.maximum(table.head_row, 0)
        starts = ctx.zero_at(heads, last_zero_us[table.point]) if len(ctx.rows) else heads
        carried = (table.head_row < 0) | (table.start_us < ctx.rows.t[heads])
        zero = np.where(carried, before.zero_us[table.point], starts)
        still_open = ~table.ended
        outcome.state.zero_us[table.point[still_open]] = zero[still_open]
        return zero

    @property
    def _confirm(self) -> int:
        return max(1, self.defaults.confirm_samples)

    @property
    def _drift_off_delay_us(self) -> npt.NDArray[np.int64]:
        off_delay = round(self.defaults.drift_off_delay_s * 1e6)
        return np.full(self.registry.size, off_delay, np.int64)

    def _threshold_changes(
        self, rule: ThresholdRule, table: RunTable, zero: npt.NDArray[np.int64] | None
    ) -> list[EpisodeChange]:
        """Records of a threshold rule's runs; ``zero`` (per run: the point's latest zero-gas
        reading before it) lets an ended excursion be reclassified an undeclared calibration."""
        final = None
        if rule.name in _RECLASSIFIED and len(table) and zero is not None:
            final = np.where(
                undeclared_calibration(
                    table, rule.set_level, self.params.calibration_gas, self.defaults, zero
                ),
                Classification.CALIBRATION_UNDECLARED.value,
                None,
            )
        return changes_from_runs(
            rule.name, rule.abnormal_type, table, rule.set_level,
            Classification.EXCEEDANCE.value, final,
        )  # fmt: skip

    def _calibration(self, ctx: BatchContext, state: RunState) -> RunOutcome:
        """Excursions to the alarm level while calibrating (flagged or declared)."""
        calibrating = ctx.valid & ctx.calibrating
        if not state.raw.any() and not calibrating.any():  # nothing open, nothing starts
            return quiet(state, len(ctx.rows))
        pid, v = ctx.rows.pid, ctx.rows.v
        level = self.registry.alarm_high[pid]
        clear_level = np.where(
            np.isnan(self.registry.alarm_high_clear), self.registry.alarm_high,
            self.registry.alarm_high_clear,
        )[pid]  # fmt: skip
        with np.errstate(invalid="ignore"):
            cand = calibrating & (v >= level)
            clear = ctx.valid & (~ctx.calibrating | (v < clear_level))
        need = np.ones(len(state.raw), np.int64)
        return evaluate_runs(ctx.rows, cand, clear, state, need=need)

    def _spikes(
        self, tables: list[tuple[RunTable, npt.NDArray[np.float64]]]
    ) -> list[EpisodeChange]:
        """Interference: a run of one valid reading that returned at the next one; its
        threshold is the level of the rule the reading crossed (per point id in ``tables``)."""
        seen: set[tuple[int, int]] = set()
        out: list[EpisodeChange] = []
        rule = "interference"
        for table, set_level in tables:
            if not len(table):
                continue
            spike = table.ended & ~table.opened & ~table.was_active & (table.cum_eligible == 1)
            for k in np.flatnonzero(spike).tolist():
                key = (int(table.point[k]), int(table.start_us[k]))
                if key in seen:
                    continue
                seen.add(key)
                threshold = float(set_level[key[0]])
                out.append(
                    closed_record(
                        key[0],
                        rule,
                        RULES[rule][0],
                        Classification.INTERFERENCE.value,
                        key[1],
                        int(table.end_us[k]),
                        float(table.start_value[k]),
                        threshold if np.isfinite(threshold) else None,
                    )
                )
        return out

    def _feed_changes(self, table: RunTable) -> list[EpisodeChange]:
        first_feed: dict[int, int] = {}
        for source, target in zip(
            self.pairs.source.tolist(), self.pairs.feed.tolist(), strict=True
        ):
            first_feed.setdefault(source, target)
        rule = "feed_abnormal"
        return changes_from_runs(
            rule,
            RULES[rule][0],
            table,
            self.registry.poweroff_high,
            Classification.POWER_OFF_FAILURE.value,
            related=first_feed,
        )


def _last_zero(ctx: BatchContext, before: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Each point's latest zero-gas reading after the batch."""
    if not len(ctx.zero_rows):
        return before
    last = ctx.rows.last_rows
    points = ctx.rows.pid[last]
    after = before.copy()
    after[points] = ctx.zero_at(last, before[points])
    return after


def live_order(
    point_id: npt.NDArray[np.int32],
    time_us: npt.NDArray[np.int64],
    last_time_us: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.intp]]:
    """(late mask in arrival order, the live rows' indices sorted by (point, time)).

    Live rows of a point arrive in time order (that is what "not late" means), so a stable
    sort by point keeps each point's rows in time order. The common case, a batch whose event
    times never decrease (cycles arrive in order), needs that one sort: a row is late when its
    time is not after the point's last evaluated reading or equals the previous row's time
    of its point. Otherwise :func:`late_rows` finds the late rows in the general way.
    """
    n = len(time_us)
    if n < 2 or not bool((time_us[1:] >= time_us[:-1]).all()):
        late = late_rows(point_id, time_us, last_time_us)
        live = np.flatnonzero(~late)
        return late, live[_point_order(point_id[live])]
    order = _point_order(point_id)
    pid, t = point_id[order], time_us[order]
    late_sorted = t <= last_time_us[pid]
    late_sorted[1:] |= (pid[1:] == pid[:-1]) & (t[1:] == t[:-1])
    late = np.zeros(n, bool)
    late[order] = late_sorted
    return late, order[~late_sorted]


def _point_order(point_id: npt.NDArray[np.int32]) -> npt.NDArray[np.intp]:
    """A stable sort by point id; numpy radix-sorts 16-bit keys in O(n)."""
    if len(point_id) and int(point_id.min()) >= 0 and int(point_id.max()) < 2**15:
        return np.argsort(point_id.astype(np.int16), kind="stable")
    return np.argsort(point_id, kind="stable")


def late_rows(
    point_id: npt.NDArray[np.int32],
    time_us: npt.NDArray[np.int64],
    last_time_us: npt.NDArray[np.int64],
) -> npt.NDArray[np.bool_]:
    """Rows (in arrival order) not later than an earlier reading of their point: one already
    evaluated (``last_time_us``) or one that arrived before them in this batch.

    Event time decides the alarm state, so a backfilled reading must not replay history as if
    it were live, whether it arrives in a later batch or in the same one. Per point, a running
    maximum of the times seen so far in arrival order: points are grouped by a stable sort, and
    each group's dense time ranks are shifted by the group number times n, so one
    ``np.maximum.accumulate`` never carries across groups.
    """
    n = len(time_us)
    late = np.zeros(n, bool)
    if n == 0:
        return late
    order = np.argsort(point_id, kind="stable")
    pid = point_id[order]
    t = time_us[order]
    is_start = np.ones(n, bool)
    is_start[1:] = pid[1:] != pid[:-1]
    group = np.cumsum(is_start) - 1
    _, rank = np.unique(t, return_inverse=True)
    key = rank.astype(np.int64) + group.astype(np.int64) * n
    running = np.maximum.accumulate(key)
    before = np.empty(n, np.int64)
    before[0] = -1
    before[1:] = running[:-1]
    before[is_start] = -1
    late[order] = (key <= before) | (t <= last_time_us[pid])
    return late
