"""Scoring a replay against the trace's ground truth (used by :mod:`alarms.evaluation.run`).

Scenario classes: ground-truth kinds -> what the engine must produce
-------------------------------------------------------------------

(class: labels -> engine rule -> classification; ``CLASSES`` below is the same table.)

* gas_exceedance: every ``methane_exceedance`` label, roots and derived ones (downstream of
  an event, and those an accumulation, outburst, over-range, power-off failure or fan stop
  causes) -> ``upper_alarm`` -> ``exceedance`` on the label's point. Latency from the first
  reading >= ``alarm_high`` inside the window.
* power_off_failure: ``power_off_failure`` -> ``feed_abnormal`` -> ``power_off_failure`` on
  the methane point. Latency from the first reading >= ``poweroff_high`` (the cut command),
  so it includes the point's control time (default: one polling cycle of the definition).
* methane_accumulation, outburst: the root labels -> ``upper_alarm`` -> ``exceedance`` on
  the root point (their alarm-level parts are also gas_exceedance labels).
* over_range: ``over_range`` (roots and derived) -> ``over_range``.
* fan_stop: the label is on the fan (1001) -> ``fan_stop`` (the switch-state rule, the
  point's ``alarm_state``) on the fan.
* declared_calibration: ``calibration`` -> ``calibration`` -> ``calibration_declared``.
* undeclared_calibration: ``undeclared_calibration`` -> ``upper_alarm`` / ``power_off``,
  reclassified ``calibration_undeclared`` when the excursion ends.
* interference: each spike label -> ``interference`` record.
* disconnection (mode status) -> ``disconnection``; disconnection_silent (mode silent) ->
  ``data_interruption`` (or ``delivery_delay``).
* negative_drift -> ``negative_drift``; stuck -> ``flatline``.
* substation_fault: ``substation_comm_loss`` mode status -> ``substation_fault`` on every
  point of the substation; substation_silent: mode silent -> ``data_interruption`` on every
  point of the substation.
* vehicle_co: ``vehicle_co`` -> ``upper_alarm`` -> ``co_vehicle_suspected`` on the CO point
  (alarms/rules/co.py: a short puff where vehicles pass, its own class and a lower grade).
* co_fire: ``co_fire`` (the simulator's smouldering fire) -> ``co_fire_candidate`` on the CO
  point (level ``alarm_high``: latency from the first reading at the level, so it includes
  the point's ``co_fire_after_s``).
* co_fire_confirmed: ``co_fire`` -> the fused ``co_fire_confirmed`` (F04: the CO alarm with
  smoke or a temperature rise in its area) on the CO point, decided from the replay by
  :mod:`alarms.evaluation.fire_score` (latency from the first CO reading at the level).
* fire_smoke: ``fire_smoke`` (the smoke a simulated fire gives a smoke sensor of its
  substation) -> ``smoke`` (the switch-state rule of 1008) on the smoke sensor.
  (``fire_temperature``, the warming of the fire's temperature points, is the evidence F04
  uses: a known kind, counted, not a class of its own.)
* co_exceedance: ``co_exceedance`` (a real CO exceedance: a fire candidate, not exhaust) ->
  ``upper_alarm`` -> ``exceedance`` on the CO point, scored like gas (level ``alarm_high``).
* sensor_drift: ``sensor_drift`` (a catalytic sensor losing sensitivity) -> ``cross_check``
  (alarms/rules/cross_check.py) on the point.
* sensor_stuck: ``sensor_stuck`` (a sensor holding its reading while the gas upstream swings)
  -> ``sensor_stuck`` (alarms/rules/neighbour_checks.py) on the point.
* local_excursion: ``sensor_local_excursion`` (a local fault reading above the gas, no change
  in the air) -> ``local_excursion`` record on the point.

CO alarms (``co`` in the report): the CO ``upper_alarm`` episodes by classification, those
overlapping a vehicle puff label that were not classed a puff, the fire candidates that
only a vehicle puff explains (target 0), and the fire confirmations (F04) by what explains
them: a fire, a real CO exceedance, only a vehicle puff (target 0), nothing.

Label kinds outside these classes are listed in ``unknown_label_kinds`` with their count (and
the report warns of them): they are not scored, never silently.

A label is detected by an episode of its rule and classification on its point (or on the
points of its substation) whose span overlaps the label's window widened by ``SLACK_S`` on
both sides: labels are computed from the noise-free level, so noise and the production cycle
move the measured crossing by a few cycles. Classes with a level (gas, power-off failure,
vehicle CO) only count labels whose readings reached the level inside the window at least once
("reached"); the others are reported as ``not_reached`` (the sensor never showed the condition:
no detector could alarm on it).

Gas alarms: episodes of ``upper_alarm``, ``power_off`` or ``upper_prewarn`` on methane points.
A *real gas alarm* is one classified ``exceedance``; it is correct when it overlaps (with the
slack) a real-gas label on its point (methane_exceedance, methane_accumulation, outburst,
over_range, power_off_failure) or a ``methane_near_limit`` label: gas from a labelled event
that brings a downstream point to its limit within the sensor's accuracy (the sensor may read
the limit, and AQ 6201 then requires the alarm; these labels are not counted for recall, and
``correct_near_limit`` says how many alarms only they explain). Precision = correct / real
gas alarms; the others are false alarms, also given per methane sensor per day.

What a dispatcher sees (ISA-18.2 / EEMUA 191 measures): every episode except the record-only
rules (declared or flagged calibrations, interference spikes), counted when raised: episodes
reclassified later (undeclared calibration, delivery delay) were shown when they were raised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from minewatch.alarms.codes import Category, category_of
from minewatch.alarms.episodes import Episode
from minewatch.codes import METHANE_SENSOR_TYPES
from minewatch.registry import PointRegistry

if TYPE_CHECKING:
    from minewatch.alarms.evaluation.run import Replay
    from minewatch.trace import Trace

SLACK_S = 60.0
FLOOD = 10  # more than this many alarms in 10 minutes
WINDOW_S = 600.0
CHATTER = 3  # raises of one point and rule ...
CHATTER_S = 60.0  # ... within this many seconds
GAS_RULES = ("upper_alarm", "power_off", "upper_prewarn")
REAL_GAS_KINDS = frozenset(
    {"methane_exceedance", "methane_accumulation", "outburst", "over_range", "power_off_failure"}
)
#: Gas at the limit within the sensor's accuracy, downstream of a labelled event (the
#: simulator's ``methane_near_limit``): an alarm there is required by AQ 6201 if the readings
#: reach the level, so it is a correct alarm; the label is not required for recall.
NEAR_LIMIT_KIND = "methane_near_limit"
EXCEEDANCE = "exceedance"
AT_LIMIT = 0.015  # %CH4: one display step (0.01) above the level, with rounding


@dataclass(frozen=True, slots=True)
class ClassSpec:
    name: str
    kind: str
    rules: tuple[str, ...]
    classifications: tuple[str, ...]
    detail: str | None = None  # label detail filter (status / silent)
    level: str | None = None  # registry level the condition is measured against
    substation: bool = False  # the label stands for every point of its substation
    every_point: bool = False  # detected only when every point of it has an episode


CLASSES: tuple[ClassSpec, ...] = (
    ClassSpec(
        "gas_exceedance", "methane_exceedance", ("upper_alarm",), (EXCEEDANCE,), level="alarm_high"
    ),
    ClassSpec(
        "power_off_failure",
        "power_off_failure",
        ("feed_abnormal",),
        ("power_off_failure",),
        level="poweroff_high",
    ),
    ClassSpec(
        "methane_accumulation",
        "methane_accumulation",
        ("upper_alarm",),
        (EXCEEDANCE,),
        level="alarm_high",
    ),
    ClassSpec("outburst", "outburst", ("upper_alarm",), (EXCEEDANCE,), level="alarm_high"),
    ClassSpec("over_range", "over_range", ("over_range",), ("over_range",)),
    ClassSpec("fan_stop", "fan_stop", ("fan_stop",), (EXCEEDANCE,)),
    ClassSpec("declared_calibration", "calibration", ("calibration",), ("calibration_declared",)),
    ClassSpec(
        "undeclared_calibration",
        "undeclared_calibration",
        ("upper_alarm", "power_off"),
        ("calibration_undeclared",),
    ),
    ClassSpec("interference", "interference", ("interference",), ("interference",)),
    ClassSpec(
        "disconnection", "disconnection", ("disconnection",), ("disconnection",), detail="status"
    ),
    ClassSpec(
        "disconnection_silent",
        "disconnection",
        ("data_interruption",),
        ("data_interruption", "delivery_delay"),
        detail="silent",
    ),
    ClassSpec("negative_drift", "negative_drift", ("negative_drift",), ("negative_drift",)),
    ClassSpec("stuck", "stuck", ("flatline",), ("flatline",)),
    ClassSpec(
        "substation_fault",
        "substation_comm_loss",
        ("substation_fault",),
        ("substation_fault",),
        detail="status",
        substation=True,
        every_point=True,
    ),
    ClassSpec(
        "substation_silent",
        "substation_comm_loss",
        ("data_interruption",),
        ("data_interruption", "delivery_delay"),
        detail="silent",
        substation=True,
        every_point=True,
    ),
    ClassSpec(
        "vehicle_co", "vehicle_co", ("upper_alarm",), ("co_vehicle_suspected",), level="alarm_high"
    ),
    ClassSpec("co_fire", "co_fire", ("co_fire_candidate",), (EXCEEDANCE,), level="alarm_high"),
    ClassSpec(
        "co_fire_confirmed",
        "co_fire",
        ("co_fire_confirmed",),
        (EXCEEDANCE,),
        level="alarm_high",
    ),
    ClassSpec("fire_smoke", "fire_smoke", ("smoke",), (EXCEEDANCE,)),
    ClassSpec(
        "co_exceedance", "co_exceedance", ("upper_alarm",), (EXCEEDANCE,), level="alarm_high"
    ),
    ClassSpec("sensor_drift", "sensor_drift", ("cross_check",), ("cross_check",)),
    ClassSpec("sensor_stuck", "sensor_stuck", ("sensor_stuck",), ("sensor_stuck",)),
    ClassSpec(
        "local_excursion", "sensor_local_excursion", ("local_excursion",), ("local_excursion",)
    ),
)
#: Evidence a labelled event leaves that no alarm of its own is required for: a fire's
#: warming below the temperature alarm level (F04 uses it; ``co`` counts these labels).
EVIDENCE_KINDS = frozenset({"fire_temperature"})
#: Label kinds the scoring knows: the classes', the near-limit kind and the evidence kinds.
KNOWN_KINDS = frozenset({spec.kind for spec in CLASSES} | {NEAR_LIMIT_KIND} | EVIDENCE_KINDS)
#: Rules whose episodes are only explained by labels of these kinds (precision per rule).
RULE_KINDS: dict[str, frozenset[str]] = {
    "over_range": frozenset({"over_range", "outburst"}),
    "disconnection": frozenset({"disconnection"}),
    "data_interruption": frozenset({"disconnection", "substation_comm_loss"}),
    "negative_drift": frozenset({"negative_drift"}),
    "flatline": frozenset({"stuck", "sensor_stuck"}),
    "substation_fault": frozenset({"substation_comm_loss"}),
    "feed_abnormal": frozenset({"power_off_failure"}),
    "lower_alarm": frozenset({"fan_stop"}),
    "fan_stop": frozenset({"fan_stop"}),
    "calibration": frozenset({"calibration"}),
    "interference": frozenset({"interference"}),
    "co_fire_candidate": frozenset({"co_fire", "co_exceedance"}),
    "co_fire_confirmed": frozenset({"co_fire", "co_exceedance"}),
    "smoke": frozenset({"fire_smoke"}),
    "cross_check": frozenset({"sensor_drift", "negative_drift"}),
    "sensor_stuck": frozenset({"sensor_stuck", "stuck"}),
    # what the check is for: a fault local to the sensor (a calibration nobody declared, a
    # drifting or stuck sensor coming back) reads like an excursion no neighbour sees
    "local_excursion": frozenset(
        {
            "sensor_local_excursion",
            "undeclared_calibration",
            "negative_drift",
            "sensor_drift",
            "stuck",
            "sensor_stuck",
            "disconnection",
        }
    ),
}


@dataclass(frozen=True, slots=True)
class LabelFacts:
    """The trace's labels as arrays, with the measured condition time per label."""

    kind: list[str]
    detail: list[str]
    substation: list[str]
    point: npt.NDArray[np.int64]  # index in the trace's codes; -1: substation-wide
    level: npt.NDArray[np.float64]  # NaN: no level condition
    start_us: npt.NDArray[np.int64]
    end_us: npt.NDArray[np.int64]
    first_us: npt.NDArray[np.int64]  # first reading at/above the level in the window; -1: none
    count: npt.NDArray[np.int64]  # readings at/above the level in the window

    @classmethod
    def of(cls, trace: Trace, registry: PointRegistry) -> LabelFacts:
        index = {code: i for i, code in enumerate(trace.codes)}
        levels = {spec.kind: spec.level for spec in CLASSES if spec.level}
        labels = [*trace.ground_truth, *getattr(trace, "near_limit", [])]  # near_limit: optional
        point = np.array([index.get(g.point, -1) for g in labels], np.int64)
        level = np.full(len(labels), np.nan)
        for k, g in enumerate(labels):
            name = levels.get(g.kind)
            if name and point[k] >= 0:
                level[k] = float(getattr(registry, name)[point[k] + 1])
        start = trace.start_us
        n = len(labels)
        return cls(
            kind=[g.kind for g in labels],
            detail=[g.detail for g in labels],
            substation=[g.substation for g in labels],
            point=point,
            level=level,
            start_us=np.array([start + round(g.start_s * 1e6) for g in labels], np.int64),
            end_us=np.array([start + round(g.end_s * 1e6) for g in labels], np.int64),
            first_us=np.full(n, -1, np.int64),
            count=np.zeros(n, np.int64),
        )

    def with_conditions(
        self, first_us: npt.NDArray[np.int64], count: npt.NDArray[np.int64]
    ) -> LabelFacts:
        return replace(self, first_us=first_us, count=count)

    def __len__(self) -> int:
        return len(self.kind)


# -- helpers -------------------------------------------------------------------------------------


def _overlaps(e: Episode, start: int, end: int, slack: int, horizon: int) -> bool:
    end_e = e.end_us if e.end_us is not None else horizon
    return e.start_us < end + slack and end_e > start - slack


def _raised(e: Episode) -> int:
    """When a shown episode was raised (the episodes scored here all were)."""
    assert e.raised_us is not None
    return e.raised_us


def _stats(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "median": None, "max": None}
    return {"n": len(values), "median": float(np.median(values)), "max": float(max(values))}


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def alarm_measures(
    episodes: list[Episode], start_us: int, end_us: int, codes: list[str]
) -> dict[str, object]:
    """ISA-18.2 / EEMUA 191 measures of the alarms ``episodes`` (counted at their raise)."""
    raised = np.sort(np.array([e.raised_us for e in episodes], np.int64))
    window = round(WINDOW_S * 1e6)
    bins = max(1, math.ceil((end_us - start_us) / window))
    counts = np.bincount(((raised - start_us) // window).clip(0, bins - 1), minlength=bins)
    sliding = 0
    if len(raised):
        sliding = int(
            (np.searchsorted(raised, raised + window, "left") - np.arange(len(raised))).max()
        )
    by_actor: dict[tuple[int, str], list[int]] = {}
    for e in episodes:
        if e.raised_us is not None:
            by_actor.setdefault((e.point, e.rule), []).append(e.raised_us)
    chattering = []
    gap = round(CHATTER_S * 1e6)
    for key, times in by_actor.items():
        t = np.sort(np.array(times, np.int64))
        if len(t) >= CHATTER and bool((t[CHATTER - 1 :] - t[: 1 - CHATTER] <= gap).any()):
            chattering.append(key)
    top = sorted(by_actor.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:10]
    total = len(raised)
    return {
        "alarms": total,
        "per_10min_mean": total / bins,
        "per_10min_peak": int(counts.max()) if len(counts) else 0,
        "per_10min_peak_sliding": sliding,
        "floods": int((counts > FLOOD).sum()),
        "flood_share": float((counts > FLOOD).mean()),
        "windows": bins,
        "chattering": len(chattering),
        "chattering_alarms": sum(len(by_actor[k]) for k in chattering),
        "bad_actors": [
            {
                "point": codes[p],
                "rule": rule,
                "alarms": len(times),
                "share": len(times) / total if total else 0.0,
            }
            for (p, rule), times in top
        ],
    }


# -- scoring -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Ctx:
    facts: LabelFacts
    stations: dict[str, list[int]]  # substation code -> point indices
    slack: int
    horizon: int

    def points(self, k: int, *, substation: bool = False) -> list[int]:
        """The points label ``k`` stands for: its own, or every point of its substation."""
        if substation or self.facts.point[k] < 0:
            return self.stations.get(self.facts.substation[k], [])
        return [int(self.facts.point[k])]


def _by_point(episodes: list[Episode]) -> dict[int, list[Episode]]:
    out: dict[int, list[Episode]] = {}
    for e in episodes:
        out.setdefault(e.point, []).append(e)
    return out


def unknown_kinds(labels: dict[str, int]) -> dict[str, int]:
    """The label kinds (with their count) that no class scores."""
    return {kind: n for kind, n in sorted(labels.items()) if kind not in KNOWN_KINDS}


def _score_class(
    spec: ClassSpec, ctx: _Ctx, episodes: dict[int, list[Episode]], cycle_us: int
) -> dict[str, object]:
    f = ctx.facts
    ks = [
        k
        for k in range(len(f))
        if f.kind[k] == spec.kind and (spec.detail is None or f.detail[k] == spec.detail)
    ]
    counted = detected = not_reached = 0
    latencies: list[float] = []
    missed: list[dict[str, object]] = []
    for k in ks:
        if spec.level is not None and f.first_us[k] < 0:
            not_reached += 1
            continue
        counted += 1
        points = ctx.points(k, substation=spec.substation)
        hits: dict[int, list[Episode]] = {}
        for p in points:
            for e in episodes.get(p, []):
                if (
                    e.rule in spec.rules
                    and e.classification in spec.classifications
                    and _overlaps(e, int(f.start_us[k]), int(f.end_us[k]), ctx.slack, ctx.horizon)
                ):
                    hits.setdefault(p, []).append(e)
        ok = len(hits) == len(points) if spec.every_point else bool(hits)
        if not ok:
            missed.append(
                {
                    "label": k,
                    "points": len(points),
                    "with_episode": len(hits),
                    "start_us": int(f.start_us[k]),
                }
            )
            continue
        detected += 1
        if spec.level is not None:
            first = min((e for found in hits.values() for e in found), key=_raised)
            became_true = min(int(f.first_us[k]), first.start_us)
            latencies.append((_raised(first) - became_true) / 1e6)
    return {
        "labels": len(ks),
        "counted": counted,
        "not_reached": not_reached,
        "detected": detected,
        "recall": _ratio(detected, counted),
        "latency_s": _stats(latencies),
        "missed": missed[:20],
        "rule": "/".join(spec.rules),
        "classification": "/".join(spec.classifications),
    }


def _gas(
    ctx: _Ctx, episodes: list[Episode], methane: set[int], trace: Trace, days: float
) -> dict[str, object]:
    """Gas alarm figures of ``episodes`` (the engine's, or the baseline's)."""
    f = ctx.facts
    gas = [e for e in episodes if e.rule in (*GAS_RULES, "baseline") and e.point in methane]
    real_labels: dict[int, list[int]] = {}
    near_limit: dict[int, list[int]] = {}
    spikes: dict[int, list[int]] = {}
    undeclared: dict[int, list[int]] = {}
    for k in range(len(f)):
        p = int(f.point[k])
        if p < 0:
            continue
        if f.kind[k] in REAL_GAS_KINDS:
            real_labels.setdefault(p, []).append(k)
        elif f.kind[k] == NEAR_LIMIT_KIND:
            near_limit.setdefault(p, []).append(k)
        elif f.kind[k] == "interference":
            spikes.setdefault(p, []).append(k)
        elif f.kind[k] == "undeclared_calibration":
            undeclared.setdefault(p, []).append(k)
    index = {code: i for i, code in enumerate(trace.codes)}
    declared: dict[int, list[tuple[int, int]]] = {}
    for c in trace.calibrations:
        declared.setdefault(index[c.point], []).append(
            (trace.start_us + round(c.start_s * 1e6), trace.start_us + round(c.end_s * 1e6))
        )

    def hit(e: Episode, ks: list[int], slack: int) -> bool:
        return any(
            _overlaps(e, int(f.start_us[k]), int(f.end_us[k]), slack, ctx.horizon) for k in ks
        )

    real = [e for e in gas if e.classification == EXCEEDANCE]

    def justified(e: Episode) -> bool:
        return hit(e, real_labels.get(e.point, []), ctx.slack) or hit(
            e, near_limit.get(e.point, []), ctx.slack
        )

    correct = [e for e in real if justified(e)]
    at_limit = [e for e in correct if not hit(e, real_labels.get(e.point, []), ctx.slack)]
    false = [e for e in real if e not in correct]
    not_real = [e for e in gas if not justified(e)]
    from_cal = [
        e
        for e in not_real
        if any(_overlaps(e, a, b, 0, ctx.horizon) for a, b in declared.get(e.point, []))
    ]
    from_spikes = [e for e in not_real if hit(e, spikes.get(e.point, []), 0)]
    from_undeclared = [e for e in not_real if hit(e, undeclared.get(e.point, []), 0)]
    codes = trace.codes
    return {
        "methane_points": len(methane),
        "sensor_days": len(methane) * days,
        "alarms": len(gas),
        "real_alarms": len(real),
        "correct": len(correct),
        "correct_near_limit": len(at_limit),  # explained by a methane_near_limit label only
        "precision": _ratio(len(correct), len(real)),
        "false_alarms": len(false),
        "false_per_sensor_day": len(false) / (len(methane) * days) if methane and days else None,
        "from_declared_calibrations": len(from_cal),
        "from_spikes": len(from_spikes),
        "undeclared_calibration_raised": len(from_undeclared),
        "undeclared_calibration_reclassified": sum(
            e.classification == "calibration_undeclared" for e in from_undeclared
        ),
        # false alarms whose highest reading is within AT_LIMIT of the level: gas at the
        # limit where the noise-free labels stay just below it (downstream of an event)
        "false_at_limit": (
            sum(e.threshold is not None and e.vmax <= e.threshold + AT_LIMIT for e in false)
            if all(math.isfinite(e.vmax) for e in false)
            else None  # the baseline keeps no maxima
        ),
        "false_examples": [
            {
                "point": codes[e.point],
                "rule": e.rule,
                "start_us": e.start_us,
                "end_us": e.end_us,
                "max": e.vmax,
            }
            for e in false[:10]
        ],
    }


def _co(
    ctx: _Ctx, episodes: list[Episode], co_points: set[int], fused: list[Episode]
) -> dict[str, object]:
    """CO alarms told apart (alarms/rules/co.py): puffs, fire candidates and fire
    confirmations (``fused``: F04) against labels."""
    f = ctx.facts

    def labelled(e: Episode, kinds: set[str]) -> bool:
        return any(
            f.kind[k] in kinds
            and int(f.point[k]) == e.point
            and _overlaps(e, int(f.start_us[k]), int(f.end_us[k]), ctx.slack, ctx.horizon)
            for k in range(len(f))
        )

    alarms = [e for e in episodes if e.rule == "upper_alarm" and e.point in co_points]
    by_class: dict[str, int] = {}
    for e in alarms:
        by_class[str(e.classification)] = by_class.get(str(e.classification), 0) + 1
    fire_kinds = {"co_fire", "co_exceedance"}
    puffs = [e for e in alarms if labelled(e, {"vehicle_co"}) and not labelled(e, fire_kinds)]
    fires = [e for e in episodes if e.rule == "co_fire_candidate"]
    confirmed = [e for e in fused if e.rule == "co_fire_confirmed"]
    return {
        "alarms": len(alarms),
        "by_classification": dict(sorted(by_class.items())),
        "puff_alarms": len(puffs),
        "puffs_not_classed_vehicle": sum(e.classification != "co_vehicle_suspected" for e in puffs),
        "fire_candidates": len(fires),
        "fire_candidates_from_puffs": sum(
            labelled(e, {"vehicle_co"}) and not labelled(e, fire_kinds) for e in fires
        ),
        "confirmed": len(confirmed),
        "confirmed_fires": sum(labelled(e, {"co_fire"}) for e in confirmed),
        "confirmed_co_exceedances": sum(
            labelled(e, {"co_exceedance"}) and not labelled(e, {"co_fire"}) for e in confirmed
        ),
        "confirmed_from_puffs": sum(
            labelled(e, {"vehicle_co"}) and not labelled(e, fire_kinds) for e in confirmed
        ),
        "confirmed_unexplained": sum(
            not labelled(e, fire_kinds | {"vehicle_co"}) for e in confirmed
        ),
        "fire_temperature_labels": sum(k == "fire_temperature" for k in f.kind),
    }


def _rule_precision(ctx: _Ctx, episodes: list[Episode]) -> dict[str, dict[str, object]]:
    f = ctx.facts
    out: dict[str, dict[str, object]] = {}
    for rule, kinds in RULE_KINDS.items():
        mine = [e for e in episodes if e.rule == rule]
        labels = [k for k in range(len(f)) if f.kind[k] in kinds]
        ok = 0
        for e in mine:
            for k in labels:
                where = ctx.points(k, substation=f.kind[k] == "fan_stop")
                if e.point in where and _overlaps(
                    e, int(f.start_us[k]), int(f.end_us[k]), ctx.slack, ctx.horizon
                ):
                    ok += 1
                    break
        out[rule] = {"episodes": len(mine), "explained": ok, "precision": _ratio(ok, len(mine))}
    return out


def score(trace: Trace, result: Replay, *, batch_cycles: int) -> dict[str, object]:
    """Every figure of ``minewatch evaluate`` as a JSON-able dict."""
    definition = trace.definition
    codes = trace.codes
    cycle_us = int(trace.manifest["cycle_us"])
    start = trace.start_us + int(trace.manifest.get("first_cycle", 0)) * cycle_us
    end = start + result.cycles * cycle_us
    days = (end - start) / 86_400e6
    stations: dict[str, list[int]] = {}
    for i, p in enumerate(definition.points):
        stations.setdefault(p.substation, []).append(i)
    methane = {
        i
        for i, p in enumerate(definition.points)
        if p.sensor_type in METHANE_SENSOR_TYPES and p.alarm_high is not None
    }
    ctx = _Ctx(result.conditions, stations, round(SLACK_S * 1e6), end)
    fused = result.fused
    by_point = _by_point([*result.episodes, *fused])
    classes = {spec.name: _score_class(spec, ctx, by_point, cycle_us) for spec in CLASSES}
    shown = [e for e in result.episodes if category_of(e.rule) is not Category.RECORD]
    isa = alarm_measures(shown, start, end, codes)
    base_isa = alarm_measures(result.baseline, start, end, codes)
    upper = sum(e.rule == "upper_alarm" for e in shown)
    base_n = len(result.baseline)
    counts: dict[str, int] = {}
    for e in [*result.episodes, *fused]:
        key = f"{e.rule}/{e.classification}"
        counts[key] = counts.get(key, 0) + 1
    on_delay = max((p.on_delay_s or 0.0) for p in definition.points) if definition.points else 0.0
    gas = _gas(ctx, result.episodes, methane, trace, days)
    co_points = {i for i, p in enumerate(definition.points) if p.sensor_type == "0004"}
    co = _co(ctx, result.episodes, co_points, fused)
    base_gas = _gas(ctx, result.baseline, methane, trace, days)
    engine_rate = result.readings / result.engine_s if result.engine_s else None
    prefix_rate = (
        result.prefix_readings / result.engine_prefix_s if result.engine_prefix_s else None
    )
    python_rate = result.prefix_readings / result.python_s if result.python_s else None
    reduction = 1 - isa["alarms"] / base_n if base_n else None  # type: ignore[operator]
    labels: dict[str, int] = {}
    for kind in result.conditions.kind:
        labels[kind] = labels.get(kind, 0) + 1
    unknown = unknown_kinds(labels)
    gas_latency = classes["gas_exceedance"]["latency_s"]
    cycle_s = cycle_us / 1e6
    report: dict[str, object] = {
        "trace": {
            "path": str(trace.path),
            "mine": definition.mine.code,
            "points": len(codes),
            "methane_points": len(methane),
            "cycle_s": cycle_s,
            "cycles": result.cycles,
            "hours": result.cycles * cycle_s / 3600,
            "readings": result.readings,
            "labels": labels,
        },
        "unknown_label_kinds": unknown,
        "batch_cycles": batch_cycles,
        "slack_s": SLACK_S,
        "episodes": dict(sorted(counts.items())),
        "classes": classes,
        "gas": gas,
        "co": co,
        "rules": _rule_precision(ctx, [*result.episodes, *fused]),
        "dispatcher": isa,
        "baseline": {"gas": base_gas, "dispatcher": base_isa},
        "reduction": {
            "minewatch_alarms": isa["alarms"],
            "minewatch_upper_alarms": upper,
            "baseline_alarms": base_n,
            "all_shown": reduction,
            "like_for_like": 1 - upper / base_n if base_n else None,
        },
        "throughput": {
            "engine_readings_per_s": engine_rate,
            "engine_s": result.engine_s,
            "prefix_cycles": result.prefix_cycles,
            "prefix_readings": result.prefix_readings,
            "engine_prefix_readings_per_s": prefix_rate,
            "python_readings_per_s": python_rate,
            "python_s": result.python_s,
            "ratio_prefix": (prefix_rate / python_rate if prefix_rate and python_rate else None),
            "ratio_whole_trace": (
                engine_rate / python_rate if engine_rate and python_rate else None
            ),
            "python_opened": result.python_opened,
            "engine_opened_prefix": result.engine_opened_prefix,
        },
    }
    throughput = report["throughput"]
    assert isinstance(throughput, dict)
    report["targets"] = _targets(
        classes, gas, reduction, gas_latency, on_delay, cycle_s, throughput, co
    )
    return report


def _targets(
    classes: dict[str, dict[str, object]],
    gas: dict[str, object],
    reduction: float | None,
    latency: object,
    on_delay: float,
    cycle_s: float,
    throughput: dict[str, object],
    co: dict[str, object],
) -> list[dict[str, object]]:
    def row(name: str, target: str, value: object, met: bool | None) -> dict[str, object]:
        return {"name": name, "target": target, "value": value, "met": met}

    def recall(name: str) -> object:
        return classes[name]["recall"]

    def full(name: str) -> bool | None:
        """Recall 1.0 met or missed; None (n/a) when the trace has no label of the class."""
        value = recall(name)
        return None if value is None else value == 1.0

    median = latency["median"] if isinstance(latency, dict) else None
    ratio = throughput.get("ratio_prefix")
    precision = gas["precision"]
    return [
        row(
            "recall, real gas exceedances",
            "1.0",
            recall("gas_exceedance"),
            full("gas_exceedance"),
        ),
        row(
            "recall, power-off failures",
            "1.0",
            recall("power_off_failure"),
            full("power_off_failure"),
        ),
        row(
            "precision, gas alarms",
            ">= 0.99",
            precision,
            None if not isinstance(precision, float) else precision >= 0.99,
        ),
        row(
            "gas alarms from declared calibrations",
            "0",
            gas["from_declared_calibrations"],
            gas["from_declared_calibrations"] == 0,
        ),
        row(
            "gas alarms from single-sample spikes", "0", gas["from_spikes"], gas["from_spikes"] == 0
        ),
        row("recall, CO fire candidates", "1.0", recall("co_fire"), full("co_fire")),
        row(
            "CO fire candidates from vehicle puffs",
            "0",
            co["fire_candidates_from_puffs"],
            co["fire_candidates_from_puffs"] == 0,
        ),
        row(
            "recall, CO fires confirmed (F04)",
            "1.0",
            recall("co_fire_confirmed"),
            full("co_fire_confirmed"),
        ),
        row(
            "CO fires confirmed from vehicle puffs",
            "0",
            co["confirmed_from_puffs"],
            co["confirmed_from_puffs"] == 0,
        ),
        row(
            "recall, drifting sensors (cross-check)",
            "1.0",
            recall("sensor_drift"),
            full("sensor_drift"),
        ),
        row(
            "fewer alarms than the naive baseline",
            ">= 90 %",
            reduction,
            None if reduction is None else reduction >= 0.9,
        ),
        row(
            "median detection latency (s)",
            f"<= on-delay {on_delay:g} s + 1 cycle",
            median,
            None if median is None else median <= on_delay + cycle_s + 1e-9,
        ),
        row(
            "engine vs pure-Python reference",
            ">= 50x",
            ratio,
            None if ratio is None else ratio >= 50,  # type: ignore[operator]
        ),
    ]
