"""Switch-state alarms: a switch point (value type KG) alarms while it reads its alarm state.

The abnormal value is data, per point (``points.alarm_state``, 0 or 1, migration 0010): 0 for a
fan (1001 局部通风机, 1010 主通风机: 停) or a duct (1003 风筒: 无风), 1 for smoke (1008 烟雾:
有). A point without one never alarms. The sensor type names the rule, so that grades and the
dispatcher's filters follow the regulator's 报警类型 (开停报警, 主通风机全停, 风筒报警, 烟雾报警);
any other switch point with an alarm state raises ``state_alarm``.

A run starts at the first valid reading in the alarm state and ends at the first valid reading
out of it; a fault reading (status bits 16/32/64/128: the value says nothing) holds it. The
run raises once it has lasted the point's on-delay (``on_delay_s``, event time; NULL = 0: at
the first reading). No second-sample confirmation: a switch state is a contact, not a
concentration with interference spikes, and a short blip is what the on-delay is for (the
on-delay is checked at the point's readings; switch points are polled every cycle).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from minewatch.alarms.rules.context import BatchContext
from minewatch.alarms.rules.params import PointParams
from minewatch.alarms.rules.run_state import RunOutcome, RunState, quiet
from minewatch.alarms.rules.runs import evaluate_runs
from minewatch.codes import ValueType
from minewatch.registry import PointRegistry

#: rule -> the sensor types it covers; the order is the rule index of :class:`StatePoints`.
STATE_RULES: dict[str, frozenset[str]] = {
    "fan_stop": frozenset({"1001"}),  # 局部通风机 停
    "main_fan_stop": frozenset({"1010"}),  # 主通风机 停
    "duct_no_wind": frozenset({"1003"}),  # 风筒 无风
    "smoke": frozenset({"1008"}),  # 烟雾 有
}
OTHER = "state_alarm"  # every other switch point with an alarm state
RULE_NAMES: tuple[str, ...] = (*STATE_RULES, OTHER)
#: Fan rules: their episodes are the "fan stop" of the fusion (alarms/rules/fusion.py).
FAN_RULES = ("fan_stop", "main_fan_stop")


@dataclass(frozen=True, slots=True)
class StatePoints:
    """Per point id: its state rule (index into :data:`RULE_NAMES`, -1: none) and alarm value."""

    rule: npt.NDArray[np.int8]
    alarm_state: npt.NDArray[np.float64]
    any: bool = field(init=False)  # some point has a state rule
    #: ``alarm_state`` where the point has a rule, NaN elsewhere (equals no reading)
    ruled_state: npt.NDArray[np.float64] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "any", bool((self.rule >= 0).any()))
        ruled = np.where(self.rule >= 0, self.alarm_state, np.nan)
        object.__setattr__(self, "ruled_state", ruled)

    @classmethod
    def of(cls, registry: PointRegistry) -> StatePoints:
        configured = (registry.value_type == ValueType.SWITCH.value) & np.isfinite(
            registry.alarm_state
        )
        rule = np.full(registry.size, -1, np.int8)
        rule[configured] = len(STATE_RULES)
        for k, types in enumerate(STATE_RULES.values()):
            rule[configured & np.isin(registry.sensor_type, list(types))] = k
        return cls(rule, registry.alarm_state)


def evaluate_states(
    ctx: BatchContext,
    states: dict[str, RunState],
    points: StatePoints,
    params: PointParams,
    open_rules: frozenset[str] | None = None,
) -> dict[str, RunOutcome]:
    """Outcomes per state rule over the batch; ``states`` are not modified. ``open_rules``:
    the rules with a run open (None: look at ``states``)."""
    rows = ctx.rows
    n = len(rows)
    opened = {name for name in RULE_NAMES if states[name].raw.any()} if open_rules is None else (
        open_rules.intersection(RULE_NAMES)
    )  # fmt: skip
    if not points.any and not opened:
        return {name: quiet(states[name], n) for name in RULE_NAMES}  # no state points
    with np.errstate(invalid="ignore"):
        abnormal = rows.v == points.ruled_state[rows.pid]
    if not ctx.all_valid:
        abnormal &= ctx.valid
    if not abnormal.any() and not opened:
        return {name: quiet(states[name], n) for name in RULE_NAMES}  # nothing sets, none open
    rule = points.rule[rows.pid]
    setting = set(rule[abnormal].tolist()) if abnormal.any() else set()
    need = np.ones(len(points.rule), np.int64)
    out: dict[str, RunOutcome] = {}
    for k, name in enumerate(RULE_NAMES):
        state = states[name]
        if k not in setting and name not in opened:  # nothing sets, nothing open
            out[name] = quiet(state, n)
            continue
        cand = abnormal & (rule == k)
        # Any valid reading not in this rule's alarm state clears it, also on a point whose
        # configuration changed under an open episode.
        clear = ctx.valid & ~cand
        out[name] = evaluate_runs(rows, cand, clear, state, need=need, delay_us=params.on_delay_us)
    return out
