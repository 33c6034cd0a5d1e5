"""CO alarms told apart: a vehicle's exhaust puff or a fire candidate (issue 13, item 4).

A CO point (sensor type 0004) keeps its ``upper_alarm`` exactly as the regulation defines it
(raised at the level, cleared below it). On top of it:

* **co_vehicle_suspected** (a classification of that ``upper_alarm``): on a point where
  vehicles pass (``points.co_puff_max_s`` set: a belt or transport roadway), an exhaust puff
  rises and falls within a minute or two. The alarm is raised with this classification (a
  lower grade than ``exceedance``: ``alarm_grade_rules``), and keeps it when it ends within
  ``co_puff_max_s`` of its start; one that lasts longer is reclassified ``exceedance`` when it
  ends (by then the fire candidate below has been raised). A point without the setting has
  no vehicles: its CO alarms stay ``exceedance``.
* **co_fire_candidate** (a latched rule of its own, red by default): CO at or above the
  point's alarm level for ``co_fire_after_s`` (per point; NULL: ``RuleDefaults.co_fire_after_s``,
  180 s) with two readings, as a smouldering fire's slow rise or any sustained CO does. It
  starts at the first reading at the level (event time), is raised once the CO has stayed
  there that long, and ends at the first reading below the clear level. A puff is over before
  it (keep ``co_fire_after_s >= co_puff_max_s``).

Only readings that measure the gas (no fault bit, not calibrating) set or clear, as for the
threshold rules. Decisions are per point in event time: batch cuts change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from minewatch.alarms.codes import Classification
from minewatch.alarms.episodes import EpisodeChange
from minewatch.alarms.rules.context import BatchContext
from minewatch.alarms.rules.params import RuleDefaults
from minewatch.alarms.rules.run_state import NEVER, RunOutcome, RunState, quiet
from minewatch.alarms.rules.runs import evaluate_runs
from minewatch.alarms.small import some
from minewatch.registry import PointRegistry

CO_SENSOR_TYPE = "0004"
RULE = "co_fire_candidate"
PUFF = Classification.CO_VEHICLE_SUSPECTED.value
_EXCEEDANCE = Classification.EXCEEDANCE.value
_US = 1_000_000


@dataclass(frozen=True, slots=True)
class COPoints:
    """Per point id: a CO point with an alarm level, its levels, puff and fire settings."""

    co: npt.NDArray[np.bool_]
    level: npt.NDArray[np.float64]
    clear: npt.NDArray[np.float64]
    puff_max_us: npt.NDArray[np.int64]  # -1: no vehicles at the point (never a puff)
    fire_after_us: npt.NDArray[np.int64]
    need: npt.NDArray[np.int64]  # readings a fire candidate needs (the confirmation)

    @classmethod
    def of(cls, registry: PointRegistry, defaults: RuleDefaults) -> COPoints:
        co = (registry.sensor_type == CO_SENSOR_TYPE) & np.isfinite(registry.alarm_high)
        clear = np.where(
            np.isnan(registry.alarm_high_clear), registry.alarm_high, registry.alarm_high_clear
        )
        puff = registry.co_puff_max_s
        fire = np.where(np.isnan(registry.co_fire_after_s), defaults.co_fire_after_s,
                        registry.co_fire_after_s)  # fmt: skip
        return cls(
            co=co.astype(bool),
            level=np.where(co, registry.alarm_high, np.nan),
            clear=clear,
            puff_max_us=np.where(co & np.isfinite(puff), np.round(np.nan_to_num(puff) * _US), -1)
            .astype(np.int64),
            fire_after_us=np.round(fire * _US).astype(np.int64),
            need=np.full(registry.size, max(1, defaults.confirm_samples), np.int64),
        )  # fmt: skip

    @property
    def any(self) -> bool:
        return bool(self.co.any())


def fire_candidate(ctx: BatchContext, state: RunState, points: COPoints) -> RunOutcome:
    """The ``co_fire_candidate`` runs of the batch; ``state`` is not modified."""
    rows = ctx.rows
    if not points.any:
        return quiet(state, len(rows))
    pid, v = rows.pid, rows.v
    with np.errstate(invalid="ignore"):
        cand = v >= points.level[pid]  # NaN levels (no CO point) compare False
        if not cand.any() and not state.open.any():  # nothing open, nothing starts
            return quiet(state, len(rows))
        on = ctx.gas_ok & points.co[pid]
        cand &= on
        clear = on & (v < points.clear[pid])
    return evaluate_runs(rows, cand, clear, state, need=points.need, delay_us=points.fire_after_us)


def classify_puffs(
    changes: list[EpisodeChange], before: RunState, points: COPoints
) -> list[EpisodeChange]:
    """``changes`` with the CO ``upper_alarm`` records of vehicle points classified: opened as
    a suspected puff; at their end, a puff if they lasted at most ``co_puff_max_s``, else an
    exceedance. ``before``: the ``upper_alarm`` state before the changes (a carried run's start).
    """
    if not changes or not some(points.puff_max_us >= 0):
        return changes
    out = []
    for c in changes:
        limit = int(points.puff_max_us[c.point_id]) if c.rule == "upper_alarm" else -1
        if limit < 0 or c.classification not in (None, _EXCEEDANCE, PUFF):
            out.append(c)
            continue
        label = c.classification
        if c.opened:
            label = PUFF
        if c.ended_at_us is not None:
            start = c.started_at_us if c.opened else int(before.start_us[c.point_id])
            if start is not None and start != NEVER:
                label = PUFF if c.ended_at_us - start <= limit else _EXCEEDANCE
        out.append(c if label == c.classification else replace(c, classification=label))
    return out
