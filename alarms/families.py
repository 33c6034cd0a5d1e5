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
from minewatch.alarms.small import some
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
    #: readings kept for deferred families (``EngineState.deferred``), by family name
    deferred: dict[str, Any] = field(default_factory=dict)


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
    #: per point id, the clock data interruption is checked against when it is not ``now_us``
    #: (a gateway behind its backlog: ``AlarmEngine.tick(behind=True)``)
    clock_us: npt.NDArray[np.int64] | None = None


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
    #: The quiet gate (issue 14; None: the family runs on every batch). ``idle(engine,
    #: state)``: nothing open nor pending in the family. Then a batch whose rows all measure
    #: (no status bit at all, none calibrating) and lie strictly inside the family's ``band``
    #: starts nothing in it, and ``light`` runs instead of ``evaluate``.
    idle: Callable[[AlarmEngine, EngineState], bool] | None = None
    #: per point id, (low, high): a reading strictly between them sets nothing in the family
    #: (NaN: no bound); None: any value (the status bits and calibrations alone matter)
    band: Callable[[AlarmEngine], tuple[FloatArray, FloatArray]] | None = None
    #: what the family keeps up to date on a quiet batch (None: nothing); it returns False
    #: when it found after all a row it must evaluate (``evaluate`` runs then)
    light: Callable[[AlarmEngine, Step], bool] | None = None
    #: Deferral (issue 14; None: never deferred), for a family that only gathers readings
    #: until a decision it takes at an event-time watermark, and whose result does not
    #: depend on where batches are cut: ``next_decision(engine, family state)`` is the
    #: earliest watermark (the batch's latest reading less the allowed lateness, or the
    #: clock's bound) at which ``evaluate`` or ``tick`` can change anything. Below it the
    #: engine keeps the batch's readings of the points ``reads(engine)`` (per point id) and
    #: hands them to ``evaluate`` with the first batch or tick that reaches it.
    next_decision: Callable[[AlarmEngine, Any], int] | None = None
    reads: Callable[[AlarmEngine], BoolArray] | None = None

    def __post_init__(self) -> None:
        unknown = [r for r in (*self.rules, *self.records) if r not in RULES]
        if unknown:
            raise ValueError(f"family {self.name}: rules without a code in alarms.codes: {unknown}")


FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
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
    cut = step.outcomes.get("power_off") or quiet(step.before.runs["power_off"], len(ctx.rows))
    pending = feed.pair_rows(
        ctx.rows, ctx.valid, cut, engine.pairs, step.before.feed,
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
        tick.now_us if tick.clock_us is None else tick.clock_us, st.interruption,
        engine.registry.known, st.last_time_us, st.last_value, engine.params,
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


# -- the quiet gate (Family.idle, band, light) ----------------------------------------------------


def _rules_idle(*rules: str) -> Callable[[AlarmEngine, EngineState], bool]:
    """Idle: no run of these rules open (latched or pending its clear)."""
    names = frozenset(rules)

    def idle(engine: AlarmEngine, state: EngineState) -> bool:
        return state.open_rules.isdisjoint(names)

    return idle


_NAN_BAND: dict[int, tuple[FloatArray, FloatArray]] = {}


def no_band(size: int) -> tuple[FloatArray, FloatArray]:
    """(low, high) without bounds (read only, one per size)."""
    band = _NAN_BAND.get(size)
    if band is None:
        low, high = np.full(size, np.nan), np.full(size, np.nan)
        low.flags.writeable = high.flags.writeable = False
        band = _NAN_BAND[size] = (low, high)
    return band


def _threshold_band(engine: AlarmEngine) -> tuple[FloatArray, FloatArray]:
    """Below every upper level and above every lower level of the point."""
    return engine.reach.lower, engine.reach.upper


def _fault_band(engine: AlarmEngine) -> tuple[FloatArray, FloatArray]:
    """At or above the negative-drift floor (a reading below it drifts)."""
    floor = engine.params.drift_floor
    return np.nextafter(floor, -np.inf), np.full(len(floor), np.nan)


def _state_band(engine: AlarmEngine) -> tuple[FloatArray, FloatArray]:
    """Away from the switch point's alarm state, on the side of its normal state (0 alarms:
    above it; 1 alarms: below it)."""
    alarm = engine.state_points.ruled_state
    with np.errstate(invalid="ignore"):
        low = np.where(alarm <= 0, alarm, np.nan)
        high = np.where(alarm > 0, alarm, np.nan)
    return low, high


def _co_band(engine: AlarmEngine) -> tuple[FloatArray, FloatArray]:
    """Below the CO point's alarm level."""
    points: co.COPoints = engine.prepared["co"]
    return np.full(len(points.level), np.nan), points.level


def _thresholds_light(engine: AlarmEngine, step: Step) -> bool:
    """Nothing set nor open: the outcomes read later (feed, spikes) are quiet ones."""
    n = len(step.ctx.rows)
    for name in _UPPER_GAS:
        step.outcomes[name] = quiet(step.before.runs[name], n)
    return True


def _faults_light(engine: AlarmEngine, step: Step) -> bool:
    """The flat-line counts only (no status bit, no drift, nothing open); a reading that
    makes a point stuck needs the rule."""
    repeats = faults.quiet_repeats(step.ctx, step.before.repeats, engine.params)
    if repeats is None:
        return False
    step.repeats = repeats
    return True


def _interruption_idle(engine: AlarmEngine, state: EngineState) -> bool:
    return not some(state.interruption.active)


def _interruption_light(engine: AlarmEngine, step: Step) -> bool:
    """No interruption open: only a silence the batch itself shows records one."""
    return not interruption.any_gap(step.ctx.rows, step.before.last_time_us, engine.params)


def _cross_check_next(engine: AlarmEngine, state: cross_check.CrossState | None) -> int:
    """The windows are decided once the watermark passes the end of the one after the last
    decided (``cross_check.decide``: nothing before)."""
    if state is None:
        return _NEVER_DECIDED
    points: cross_check.CrossPoints = engine.prepared["cross_check"]
    return int((state.decided + 2) * points.window_us)


def _cross_check_reads(engine: AlarmEngine) -> BoolArray:
    """The points checked and their neighbours: their windows' readings."""
    points: cross_check.CrossPoints = engine.prepared["cross_check"]
    return points.member


_NEVER_DECIDED = -(2**63)  # below every watermark: decide now


def _feed_idle(engine: AlarmEngine, state: EngineState) -> bool:
    """No cut (power-off latch) on, none at a reading kept, no failure open."""
    kept = state.feed
    return (
        state.open_rules.isdisjoint(("power_off", "feed_abnormal"))
        and not len(kept.pid)
        and not some(kept.base_cut)
    )


def _feed_band(engine: AlarmEngine) -> tuple[FloatArray, FloatArray]:
    """Below the power-off level (a reading at it cuts)."""
    level = engine.registry.poweroff_high.astype(np.float64)
    return np.full(len(level), np.nan), level


def _feed_light(engine: AlarmEngine, step: Step) -> bool:
    """No cut anywhere: the pairs' decided times and base readings move on."""
    after = feed.quiet_fold(step.ctx.rows, engine.pairs, step.before.feed, step.last_time_us,
                            engine.defaults.lateness_us)  # fmt: skip
    if after is None:
        return False
    step.feed = after
    return True


def _co_light(engine: AlarmEngine, step: Step) -> bool:
    """No fire candidate: only CO alarm records of this batch would need classifying."""
    return not any(c.rule == "upper_alarm" for c in step.changes)


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
        idle=_rules_idle("upper_alarm", "power_off", "upper_prewarn", "lower_alarm",
                         "lower_prewarn"),
        band=_threshold_band, light=_thresholds_light,
    ),
    Family(
        "calibration", ("calibration",), (), ("alarm_high", "alarm_high_clear"),
        _HOLD | int(PointStatus.CALIBRATION), calibration_step, None,
        ReferenceEngine._calibration, idle=_rules_idle("calibration"),
    ),
    Family(
        "faults", faults.FAULT_RULES, (),
        ("value_type", "range_low", "alarm_low", "flatline_samples"),
        _HOLD | int(PointStatus.OVER_RANGE), faults_step, faults_tick, ReferenceEngine._faults,
        idle=_rules_idle(*faults.FAULT_RULES), band=_fault_band, light=_faults_light,
    ),
    Family(
        "states", states.RULE_NAMES, (),
        ("value_type", "sensor_type", "alarm_state", "on_delay_s"),
        _HOLD, states_step, None, ReferenceEngine._states,
        idle=_rules_idle(*states.RULE_NAMES), band=_state_band,
    ),
    Family(
        "feed", ("feed_abnormal",), (),
        ("poweroff_high", "restore_high", "relations", "sensor_type", "control_time_s",
         "poll_cycle_s"),
        _HOLD, feed_step, feed_tick, ReferenceEngine._feed,
        idle=_feed_idle, band=_feed_band, light=_feed_light,
    ),
    Family(
        "interruption", (), (interruption.RULE,), ("poll_cycle_s", "interruption_cycles"), 0,
        interruption_step, interruption_tick, ReferenceEngine._interruption,
        idle=_interruption_idle, light=_interruption_light,
    ),
    # issue 13: after the thresholds, whose CO alarm records it classifies
    Family(
        "co", (co.RULE,), (),
        ("sensor_type", "alarm_high", "alarm_high_clear", "co_puff_max_s", "co_fire_after_s"),
        _HOLD | int(PointStatus.CALIBRATION), co_step, co_tick, ReferenceEngine._co,
        co.COPoints.of, idle=_rules_idle(co.RULE), band=_co_band, light=_co_light,
    ),
    Family(
        "cross_check", _CROSS_RULES, (neighbour_checks.EXCURSION,),
        ("sensor_type", "value_type", "downstream", "cross_check_ratio", "cross_check_min",
         "cross_check_s", "stuck_tolerance", "stuck_move", "stuck_s", "excursion_min",
         "excursion_ratio"),
        _HOLD | int(PointStatus.CALIBRATION), cross_check_step, cross_check_tick,
        ReferenceEngine._cross_check, cross_check.CrossPoints.of,
        next_decision=_cross_check_next, reads=_cross_check_reads,
    ),
)  # fmt: skip
#: Every rule with a run state (latched), in the registry's order.
RUN_RULES: tuple[str, ...] = tuple(rule for family in FAMILIES for rule in family.rules)
