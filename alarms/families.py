"""Rule families as plugins: one registry (:data:`FAMILIES`) the engine loops over.

A family declares what it raises (``rules``: latched rules, whose run state the engine keeps;
``records``: episodes opened and ended at once), what it reads (point ``columns`` of the
registry, ``status_bits``), how it runs on a batch (``evaluate``) and on the clock (``tick``,
optional), and its per-reading implementation in :mod:`alarms.reference` (``reference``: a
:class:`~alarms.reference.ReferenceEngine` method), against which it is tested.
``tests/alarms/test_families.py`` fails when a family has no reference or never fires on its
hand-made series.

The families run in the registry's order, each reading what the ones before left in the
:class:`Step` (the 馈电 check reads the power-off latch the thresholds computed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from minewatch.alarms.codes import RULES, Classification
from minewatch.alarms.episodes import EpisodeChange, changes_from_runs, closed_record
from minewatch.alarms.reference import ReferenceEngine
from minewatch.alarms.rules import (
    co,
    cross_check,
    faults,
    feed,
    interruption,
    neighbour_checks,
    states,
)
from minewatch.alarms.rules.calibration import undeclared_calibration
from minewatch.alarms.rules.context import UNRELIABLE, BatchContext
from minewatch.alarms.rules.params import RuleDefaults
from minewatch.alarms.rules.run_state import RunOutcome, RunState, RunTable, quiet
from minewatch.alarms.rules.runs import evaluate_runs, expire_pending
from minewatch.alarms.rules.thresholds import ThresholdRule
from minewatch.codes import PointStatus
from minewatch.registry import PointRegistry

if TYPE_CHECKING:
    from minewatch.alarms.engine import AlarmEngine, EngineState


@dataclass(slots=True)
class Step:
    """One batch through the families: what they read, and what they leave for the state."""

    ctx: BatchContext
    before: EngineState
    last_time_us: npt.NDArray[np.int64]  # each point's latest evaluated reading, after the batch
    runs: dict[str, RunState]
    outcomes: dict[str, RunOutcome]
    changes: list[EpisodeChange]
    repeats: npt.NDArray[np.int64]
    interruption: interruption.InterruptionState
    feed: feed.FeedState
    #: state a family keeps beyond run states (``EngineState.families``), by family name
    families: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Tick:
    """One clock tick through the families."""

    now_us: int
    bound_us: int  # the clock less the allowed lateness: readings before it are all in
    before: EngineState
    runs: dict[str, RunState]
    changes: list[EpisodeChange]
    interruption: interruption.InterruptionState
    feed: feed.FeedState
    families: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Family:
    """One rule family (see the module's docstring)."""

    name: str
    rules: tuple[str, ...]
    records: tuple[str, ...]
    columns: tuple[str, ...]
    status_bits: int
    evaluate: Callable[[AlarmEngine, Step], None]
    tick: Callable[[AlarmEngine, Tick], None] | None
    reference: Callable[..., None]
    #: per-point settings the family derives from the registry, once per registry
    #: (``AlarmEngine.prepared[name]``); None: it reads what the engine has
    prepare: Callable[[PointRegistry, RuleDefaults], Any] | None = None

    def __post_init__(self) -> None:
        unknown = [r for r in (*self.rules, *self.records) if r not in RULES]
        if unknown:
            raise ValueError(f"family {self.name}: rules without a code in alarms.codes: {unknown}")


_UPPER_GAS = ("upper_alarm", "power_off")  # their one-reading runs are interference spikes
_RECLASSIFIED = (*_UPPER_GAS, "upper_prewarn")  # may turn out an undeclared calibration
_FAULT_CLASS = {
    "disconnection": Classification.DISCONNECTION,
    "over_range": Classification.OVER_RANGE,
    "substation_fault": Classification.SUBSTATION_FAULT,
    "negative_drift": Classification.NEGATIVE_DRIFT,
    "flatline": Classification.FLATLINE,
}


# -- thresholds (alarms/rules/thresholds.py, runs.py, latch.py, off_delay.py) -------------------


def thresholds_step(engine: AlarmEngine, step: Step) -> None:
    ctx, st = step.ctx, step.before
    confirm = max(1, engine.defaults.confirm_samples)
    upper, lower = engine.reach.reached(ctx)  # no reading beyond any level: a quiet batch
    for rule in engine.rules:
        if rule.name not in st.open_rules and not (upper if rule.upper else lower):
            step.outcomes[rule.name] = quiet(st.runs[rule.name], len(ctx.rows))
            continue
        outcome = rule.evaluate(ctx, st.runs[rule.name], engine.params, confirm)
        step.outcomes[rule.name] = outcome
        step.runs[rule.name] = outcome.state
        zero = None
        if rule.name in _RECLASSIFIED and len(outcome.runs):
            zero, step.runs[rule.name] = _zero_before(
                ctx, outcome, st.runs[rule.name], st.last_zero_us
            )
        step.changes += _threshold_changes(engine, rule, outcome.runs, zero)
    levels = {rule.name: rule.set_level for rule in engine.rules}
    step.changes += _spikes([(step.outcomes[n].runs, levels[n]) for n in _UPPER_GAS])


def thresholds_tick(engine: AlarmEngine, tick: Tick) -> None:
    """Off-delay clears the clock resolves."""
    expired: dict[str, RunTable] = {}
    for rule in engine.rules:
        if rule.name not in tick.before.open_rules:  # nothing pending its clear
            expired[rule.name] = RunTable.empty()
            continue
        outcome = expire_pending(tick.runs[rule.name], engine.params.off_delay_us, tick.bound_us)
        tick.runs[rule.name], expired[rule.name] = outcome.state, outcome.runs
        zero = tick.before.runs[rule.name].zero_us[outcome.runs.point]
        tick.changes += _threshold_changes(engine, rule, outcome.runs, zero)
    levels = {rule.name: rule.set_level for rule in engine.rules}
    tick.changes += _spikes([(expired[n], levels[n]) for n in _UPPER_GAS])


def _zero_before(
    ctx: BatchContext,
    outcome: RunOutcome,
    before: RunState,
    last_zero_us: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64] | None, RunState]:
    """Per run of ``outcome``: the point's latest zero-gas reading before the run began (None
    when every run was open before the batch and none ended: nothing needs it); and the
    rule's state after the batch with it kept for the runs still open (a run carried over
    keeps its own)."""
    table = outcome.runs
    heads = np.maximum(table.head_row, 0)
    carried = (table.head_row < 0) | (table.start_us < ctx.rows.t[heads])
    if carried.all() and not table.ended.any():  # runs going on: nothing to find or keep
        return None, outcome.state
    starts = ctx.zero_at(heads, last_zero_us[table.point]) if len(ctx.rows) else heads
    zero = np.where(carried, before.zero_us[table.point], starts)
    still_open = ~table.ended
    if not still_open.any():
        return zero, outcome.state
    zero_us = outcome.state.zero_us.copy()  # the state's columns may be shared: never written
    zero_us[table.point[still_open]] = zero[still_open]
    return zero, replace(outcome.state, zero_us=zero_us)


def _threshold_changes(
    engine: AlarmEngine, rule: ThresholdRule, table: RunTable, zero: npt.NDArray[np.int64] | None
) -> list[EpisodeChange]:
    """Records of a threshold rule's runs; ``zero`` (per run: the point's latest zero-gas
    reading before it) lets an ended excursion be reclassified an undeclared calibration."""
    final = None
    if rule.name in _RECLASSIFIED and len(table) and zero is not None and table.ended.any():
        # numpy's stubs refuse None in where(); the object column (str or None) is what we want
        final = np.where(  # type: ignore[call-overload]
            undeclared_calibration(
                table, rule.set_level, engine.params.calibration_gas, engine.defaults, zero
            ),
            Classification.CALIBRATION_UNDECLARED.value,
            None,
        )
    return changes_from_runs(
        rule.name, rule.abnormal_type, table, rule.set_level,
        Classification.EXCEEDANCE.value, final,
    )  # fmt: skip


def _spikes(tables: list[tuple[RunTable, npt.NDArray[np.float64]]]) -> list[EpisodeChange]:
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


# -- calibration (alarms/rules/calibration.py) -------------------------------------------------


def calibration_step(engine: AlarmEngine, step: Step) -> None:
    """Excursions to the alarm level while calibrating (flagged or declared)."""
    ctx, state, registry = step.ctx, step.before.runs["calibration"], engine.registry
    if not ctx.any_calibrating and "calibration" not in step.before.open_rules:
        return  # nothing open, nothing starts
    calibrating = ctx.valid & ctx.calibrating
    if not state.raw.any() and not calibrating.any():
        return
    pid, v = ctx.rows.pid, ctx.rows.v
    level = registry.alarm_high[pid]
    clear_level = np.where(
        np.isnan(registry.alarm_high_clear), registry.alarm_high, registry.alarm_high_clear
    )[pid]
    with np.errstate(invalid="ignore"):
        cand = calibrating & (v >= level)
        clear = ctx.valid & (~ctx.calibrating | (v < clear_level))
    need = np.ones(len(state.raw), np.int64)
    calibration = evaluate_runs(ctx.rows, cand, clear, state, need=need)
    step.runs["calibration"] = calibration.state
    labels = np.where(
        ctx.declared[np.maximum(calibration.runs.head_row, 0)],
        Classification.CALIBRATION_DECLARED.value,
        Classification.CALIBRATION_FLAGGED.value,
    )
    step.changes += changes_from_runs(
        "calibration", RULES["calibration"][0], calibration.runs, registry.alarm_high,
        labels.astype(object),
    )  # fmt: skip


# -- faults (alarms/rules/faults.py) ---------------------------------------------------------


def faults_step(engine: AlarmEngine, step: Step) -> None:
    outcomes, step.repeats = faults.evaluate_faults(
        step.ctx, step.before.runs, step.before.repeats, engine.params, step.before.open_rules
    )
    for name, outcome in outcomes.items():
        step.runs[name] = outcome.state
        step.changes += changes_from_runs(
            name, RULES[name][0], outcome.runs, None, _FAULT_CLASS[name].value
        )


def faults_tick(engine: AlarmEngine, tick: Tick) -> None:
    """Negative drift pending its off-delay on a silent point: the clock ends it."""
    if "negative_drift" not in tick.before.open_rules:
        return
    off_delay = round(engine.defaults.drift_off_delay_s * 1e6)
    drift = expire_pending(
        tick.runs["negative_drift"], np.full(engine.registry.size, off_delay, np.int64),
        tick.bound_us,
    )  # fmt: skip
    tick.runs["negative_drift"] = drift.state
    tick.changes += changes_from_runs(
        "negative_drift", RULES["negative_drift"][0], drift.runs, None,
        Classification.NEGATIVE_DRIFT.value,
    )  # fmt: skip


# -- switch states (alarms/rules/states.py) ------------------------------------------------------


def states_step(engine: AlarmEngine, step: Step) -> None:
    ctx, before = step.ctx, step.before
    outcomes = states.evaluate_states(
        ctx, before.runs, engine.state_points, engine.params, before.open_rules
    )
    for name, outcome in outcomes.items():
        step.runs[name] = outcome.state
        step.changes += changes_from_runs(
            name, RULES[name][0], outcome.runs, engine.registry.alarm_state,
            Classification.EXCEEDANCE.value,
        )  # fmt: skip


# -- feed (alarms/rules/feed.py) ---------------------------------------------------------------


def feed_step(engine: AlarmEngine, step: Step) -> None:
    ctx = step.ctx
    pending = feed.pair_rows(
        ctx.rows, ctx.valid, step.outcomes["power_off"], engine.pairs, step.before.feed,
        ctx.all_valid,
    )  # fmt: skip
    outcome, step.feed = feed.decide(
        pending, engine.pairs, step.last_time_us, step.before.runs["feed_abnormal"],
        engine.params.control_time_us, engine.defaults.lateness_us,
        run_open="feed_abnormal" in step.before.open_rules,
    )  # fmt: skip
    if outcome is not None:
        step.runs["feed_abnormal"] = outcome.state
        step.changes += _feed_changes(engine, outcome.runs)


def feed_tick(engine: AlarmEngine, tick: Tick) -> None:
    """Events held for a silent side, decided once the clock less the lateness passed them."""
    outcome, tick.feed = feed.decide(
        tick.before.feed, engine.pairs, tick.before.last_time_us, tick.runs["feed_abnormal"],
        engine.params.control_time_us, engine.defaults.lateness_us, tick.bound_us,
        run_open="feed_abnormal" in tick.before.open_rules,
    )  # fmt: skip
    if outcome is not None:
        tick.runs["feed_abnormal"] = outcome.state
        tick.changes += _feed_changes(engine, outcome.runs)


def _feed_changes(engine: AlarmEngine, table: RunTable) -> list[EpisodeChange]:
    first_feed: dict[int, int] = {}
    pairs = engine.pairs
    for source, target in zip(pairs.source.tolist(), pairs.feed.tolist(), strict=True):
        first_feed.setdefault(source, target)
    rule = "feed_abnormal"
    return changes_from_runs(
        rule, RULES[rule][0], table, engine.registry.poweroff_high,
        Classification.POWER_OFF_FAILURE.value, related=first_feed,
    )  # fmt: skip


# -- data interruption (alarms/rules/interruption.py) -------------------------------------------


def interruption_step(engine: AlarmEngine, step: Step) -> None:
    changes, step.interruption = interruption.on_readings(
        step.ctx.rows, step.before.interruption, step.before.last_time_us, step.ctx.prev_value,
        engine.params,
    )  # fmt: skip
    step.changes += changes


def interruption_tick(engine: AlarmEngine, tick: Tick) -> None:
    st = tick.before
    changes, tick.interruption = interruption.tick(
        tick.now_us, st.interruption, engine.registry.known, st.last_time_us, st.last_value,
        engine.params,
    )  # fmt: skip
    tick.changes += changes


# -- CO classes (alarms/rules/co.py) -----------------------------------------------------------


def co_step(engine: AlarmEngine, step: Step) -> None:
    if co.RULE not in step.before.open_rules and not len(step.outcomes["upper_alarm"].runs):
        return  # no reading at an alarm level (a CO point's is its upper alarm's), none open
    points: co.COPoints = engine.prepared["co"]
    outcome = co.fire_candidate(step.ctx, step.before.runs[co.RULE], points)
    step.runs[co.RULE] = outcome.state
    step.changes = co.classify_puffs(step.changes, step.before.runs["upper_alarm"], points)
    step.changes += changes_from_runs(
        co.RULE, RULES[co.RULE][0], outcome.runs, points.level, Classification.EXCEEDANCE.value
    )


def co_tick(engine: AlarmEngine, tick: Tick) -> None:
    """CO alarms that the clock ended (off-delay on a silent point) are classified too."""
    points: co.COPoints = engine.prepared["co"]
    tick.changes = co.classify_puffs(tick.changes, tick.before.runs["upper_alarm"], points)


# -- sensor cross-checks (alarms/rules/cross_check.py) -------------------------------------------


def cross_check_step(engine: AlarmEngine, step: Step) -> None:
    points: cross_check.CrossPoints = engine.prepared["cross_check"]
    before = step.before.families.get("cross_check")
    windows = cross_check.add_rows(step.ctx, points, before)
    watermark = int(step.ctx.rows.t.max()) - engine.defaults.lateness_us
    runs = {rule: step.before.runs[rule] for rule in _CROSS_RULES}
    changes, step.families["cross_check"], runs = cross_check.decide(
        windows, runs, points, watermark
    )
    step.runs.update(runs)
    step.changes += changes


def cross_check_tick(engine: AlarmEngine, tick: Tick) -> None:
    """Windows whose end the clock less the allowed lateness has passed."""
    before = tick.before.families.get("cross_check") or cross_check.CrossState()
    runs = {rule: tick.runs[rule] for rule in _CROSS_RULES}
    changes, tick.families["cross_check"], runs = cross_check.decide(
        before, runs, engine.prepared["cross_check"], tick.bound_us
    )
    tick.runs.update(runs)
    tick.changes += changes


#: the latched rules of the cross-check family (its record: ``neighbour_checks.EXCURSION``)
_CROSS_RULES = (cross_check.RULE, neighbour_checks.STUCK)


# -- the registry --------------------------------------------------------------------------------

_THRESHOLD_LEVELS = (
    "alarm_high", "alarm_high_clear", "poweroff_high", "restore_high", "prewarn_high",
    "prewarn_high_clear", "alarm_low", "alarm_low_clear", "prewarn_low", "prewarn_low_clear",
)  # fmt: skip
_HOLD = int(UNRELIABLE)  # status bits after which a value says nothing: every value rule holds

#: Every rule family, in evaluation order.
FAMILIES: tuple[Family, ...] = (
    Family(
        "thresholds", ("upper_alarm", "power_off", "upper_prewarn", "lower_alarm",
                       "lower_prewarn"), ("interference",),
        (*_THRESHOLD_LEVELS, "on_delay_s", "off_delay_s", "calibration_gas", "range_low"),
        _HOLD | int(PointStatus.CALIBRATION), thresholds_step, thresholds_tick,
        ReferenceEngine._thresholds,
    ),
    Family(
        "calibration", ("calibration",), (), ("alarm_high", "alarm_high_clear"),
        _HOLD | int(PointStatus.CALIBRATION), calibration_step, None,
        ReferenceEngine._calibration,
    ),
    Family(
        "faults", faults.FAULT_RULES, (),
        ("value_type", "range_low", "alarm_low", "flatline_samples"),
        _HOLD | int(PointStatus.OVER_RANGE), faults_step, faults_tick, ReferenceEngine._faults,
    ),
    Family(
        "states", states.RULE_NAMES, (),
        ("value_type", "sensor_type", "alarm_state", "on_delay_s"),
        _HOLD, states_step, None, ReferenceEngine._states,
    ),
    Family(
        "feed", ("feed_abnormal",), (),
        ("poweroff_high", "restore_high", "relations", "sensor_type", "control_time_s",
         "poll_cycle_s"),
        _HOLD, feed_step, feed_tick, ReferenceEngine._feed,
    ),
    Family(
        "interruption", (), (interruption.RULE,), ("poll_cycle_s", "interruption_cycles"), 0,
        interruption_step, interruption_tick, ReferenceEngine._interruption,
    ),
    # issue 13: after the thresholds, whose CO alarm records it classifies
    Family(
        "co", (co.RULE,), (),
        ("sensor_type", "alarm_high", "alarm_high_clear", "co_puff_max_s", "co_fire_after_s"),
        _HOLD | int(PointStatus.CALIBRATION), co_step, co_tick, ReferenceEngine._co,
        co.COPoints.of,
    ),
    Family(
        "cross_check", _CROSS_RULES, (neighbour_checks.EXCURSION,),
        ("sensor_type", "value_type", "downstream", "cross_check_ratio", "cross_check_min",
         "cross_check_s", "stuck_tolerance", "stuck_move", "stuck_s", "excursion_min",
         "excursion_ratio"),
        _HOLD | int(PointStatus.CALIBRATION), cross_check_step, cross_check_tick,
        ReferenceEngine._cross_check, cross_check.CrossPoints.of,
    ),
)  # fmt: skip
#: Every rule with a run state (latched), in the registry's order.
RUN_RULES: tuple[str, ...] = tuple(rule for family in FAMILIES for rule in family.rules)
