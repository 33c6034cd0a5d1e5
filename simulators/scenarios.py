"""Injected scenarios: the schedule (explicit or drawn from the seed), their shapes, and the
ground-truth labels they produce.

A scenario acts either on the air (``ATMOSPHERE_KINDS``: its excess is carried downstream by
the airflow network) or on one sensor or substation (calibration, faults, spikes, vehicle
exhaust at each CO point passed). Labels are computed up front from the noise-free shapes:
one root label per scenario (per spike for ``interference``, per CO point for
``vehicle_co``), plus derived labels, tied to the root by ``cause``, wherever the expected
level reaches a methane point's alarm level or any point's range top, and, for a ``co_fire``,
on the temperature points its substation's air warms (``fire_temperature``) and the smoke
sensors that see its smoke (``fire_smoke``) (docs/simulator.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from minewatch.simulators.config import (
    ATMOSPHERE_KINDS,
    CO_SENSOR_TYPE,
    FAN_SENSOR_TYPES,
    SMOKE_SENSOR_TYPE,
    TEMPERATURE_SENSOR_TYPE,
    MineConfig,
    ScenarioConfig,
)
from minewatch.simulators.physics import Edges, propagate
from minewatch.trace import CalibrationDeclaration, GroundTruth

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


#: The stated error of a catalytic methane sensor (AQ 6203, domain reference §3) at ``level``.
def methane_accuracy(level: float) -> float:
    if level <= 1.0:
        return 0.10
    if level <= 3.0:
        return 0.10 * level
    return 0.30


@dataclass(slots=True)
class Injected:
    """A scenario resolved to point indices, with everything the block engine needs."""

    config: ScenarioConfig
    point: int = -1
    points: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    origins: list[tuple[int, float]] = field(default_factory=list)  # (point, amplitude)
    passages: list[tuple[int, float, float]] = field(default_factory=list)  # (point, t, amp)
    spike_s: FloatArray = field(default_factory=lambda: np.zeros(0))
    spike_level: FloatArray = field(default_factory=lambda: np.zeros(0))
    feeds: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    winds: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    warms: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))  # co_fire: 0003
    smokes: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))  # co_fire: 1008
    hold: FloatArray | None = None  # stuck / comm loss: values held, set when first active
    shearer: int = -1  # cutting_accumulation: the shearer point it stops and restarts

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def start_s(self) -> float:
        return self.config.start_s

    @property
    def end_s(self) -> float:
        """End of the effect (fan stop: the gas decays for tau after the restart)."""
        if self.kind == "fan_stop":
            return self.config.end_s + self.config.tau_s
        if self.kind == "cutting_accumulation":
            return self.config.end_s + CUT_TAIL_TAUS * self.config.tau_s
        if self.kind == "vehicle_co":
            return max(t for _, t, _ in self.passages) + self.config.duration_s
        return self.config.end_s


#: Scenario kinds whose root label has another kind: a cutting accumulation is scored as the
#: accumulation it is (``detail`` "cutting", ``related`` the shearer point, tell it apart).
LABEL_KIND = {"cutting_accumulation": "methane_accumulation"}


# ---- shapes -------------------------------------------------------------------------------

#: sensor_stuck: the period of the gas swinging upstream of the stuck sensor
STUCK_SWING_S = 1200.0
#: cutting_accumulation: the shearer stands this long before its restart at ``start_s``
CUT_PAUSE_S = 600.0
#: cutting_accumulation: after the stop, the excess decays over this many ``tau_s``
CUT_TAIL_TAUS = 3.0
#: co_fire: a smoke sensor of the fire's substation reads smoke (1) while the fire's unit
#: shape is at least this: a smouldering belt or coal gives visible smoke once well developed.
SMOKE_FROM = 0.5


def shape(kind: str, x: FloatArray, duration_s: float, tau_s: float) -> FloatArray:
    """Unit shape of an excess at relative time ``x`` = (t - start) / duration."""
    inside = (x >= 0) & (x < 1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        match kind:
            case "methane_exceedance" | "power_off_failure":
                y = np.minimum(1.0, np.minimum(x / 0.2, (1 - x) / 0.2))
            case "over_range":
                y = np.minimum(1.0, np.minimum(x / 0.1, (1 - x) / 0.1))
            case "methane_accumulation":
                y = np.where(x < 0.8, x / 0.8, (1 - x) / 0.2)
            case "outburst":
                rise = 0.05
                decay = np.exp(-np.maximum(x - rise, 0) / 0.3) * np.minimum(1.0, (1 - x) / 0.15)
                y = np.where(x < rise, x / rise, decay)
            case "fan_stop":
                t = x * duration_s
                at_end = 1 - math.exp(-duration_s / tau_s)
                after = t - duration_s
                tail = at_end * np.exp(-3 * after / tau_s) * np.maximum(0.0, 1 - after / tau_s)
                y = np.where(x < 1, 1 - np.exp(-np.maximum(t, 0) / tau_s), tail)
                return np.where((x >= 0) & (after < tau_s), y, 0.0)
            case "cutting_accumulation":  # first order in the shearer's state: 1 at the stop
                t = x * duration_s
                at_end = 1 - math.exp(-duration_s / tau_s)
                after = t - duration_s
                tail = np.exp(-after / tau_s) * np.maximum(0.0, 1 - after / (CUT_TAIL_TAUS * tau_s))
                y = np.where(x < 1, (1 - np.exp(-np.maximum(t, 0) / tau_s)) / at_end, tail)
                return np.where((x >= 0) & (after < CUT_TAIL_TAUS * tau_s), y, 0.0)
            case "co_fire":  # smouldering: a slow rise, then put out
                y = np.where(x < 0.85, x / 0.85, (1 - x) / 0.15)
            case "sensor_stuck":  # gas upstream swinging 0..1 with a 20-minute period
                phase = np.mod(x * duration_s, STUCK_SWING_S) / STUCK_SWING_S
                y = np.where(phase < 0.5, 2 * phase, 2 - 2 * phase)
            case "vehicle_co":
                t = x * duration_s
                y = np.minimum(1.0, t / 10.0) * np.exp(-t / (duration_s / 3))
                y = y * np.minimum(1.0, (1 - x) / 0.2) / math.exp(-10.0 / (duration_s / 3))
            case _:
                raise ValueError(kind)
    return np.where(inside, np.clip(y, 0.0, None), 0.0)


def excess_at(injected: Injected, t: FloatArray) -> list[tuple[int, FloatArray]]:
    """(point, excess over time ``t``) that an air or exhaust scenario adds at its origins."""
    c = injected.config
    if injected.kind == "vehicle_co":
        return [
            (p, amp * shape("vehicle_co", (t - t0) / c.duration_s, c.duration_s, c.tau_s))
            for p, t0, amp in injected.passages
        ]
    unit = shape(injected.kind, (t - c.start_s) / c.duration_s, c.duration_s, c.tau_s)
    out = [(p, amp * unit) for p, amp in injected.origins]
    if injected.kind == "co_fire":  # the fire warms its substation's air and, later, smokes
        out += [(int(q), c.temperature_rise * unit) for q in injected.warms]
        smoke = (unit >= SMOKE_FROM).astype(np.float64)
        out += [(int(q), smoke) for q in injected.smokes]
    return out


# ---- resolution ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MineLayout:
    """Static facts about points that scenarios need."""

    codes: list[str]
    refs: list[str]
    station: list[str]
    baseline: FloatArray
    range_low: FloatArray
    range_high: FloatArray
    alarm: FloatArray  # alarm_high or inf
    accuracy: FloatArray  # stated sensor error at the alarm level (NaN: none)
    poweroff: FloatArray  # poweroff_high or inf
    methane: npt.NDArray[np.bool_]
    analog: npt.NDArray[np.bool_]
    sensor_type: list[str]
    feed_of: dict[int, int]  # methane point -> feed point it cuts (D relation)
    edges: Edges
    roadways: dict[str, list[int]]  # roadway name -> its point indices along the air
    #: methane point whose local level follows the production -> the shearer point
    #: (``SensorTemplate.shearer``) of its substation
    shearer_of: dict[int, int] = field(default_factory=dict)


def resolve(config: MineConfig, layout: MineLayout, scenario: ScenarioConfig) -> Injected:
    injected = Injected(scenario)
    kind = scenario.kind
    rng = np.random.default_rng([config.simulation.seed, round(scenario.start_s * 1000)])
    if kind == "substation_comm_loss":
        injected.points = np.array(
            [i for i, s in enumerate(layout.station) if s == scenario.substation], np.int64
        )
        return injected
    if kind == "vehicle_co":
        roadway = next(r for r in config.roadways if r.name == scenario.roadway)
        positions = [(config.resolve(ref), d * roadway.air_speed_m_s)
                     for ref, d in zip(roadway.points, roadway.delays_s, strict=True)]  # fmt: skip
        entry = positions[-1][1] if scenario.against_air else 0.0
        for p, position in positions:
            if layout.sensor_type[p] == CO_SENSOR_TYPE:
                t0 = scenario.start_s + abs(position - entry) / scenario.speed_m_s
                injected.passages.append((p, t0, (scenario.peak or 0.0) - layout.baseline[p]))
        if not injected.passages:
            raise ValueError(f"roadway {scenario.roadway}: no CO point for a vehicle to pass")
        return injected
    point = config.resolve(f"{scenario.substation}/{scenario.sensor}")
    injected.point = point
    peak = scenario.peak if scenario.peak is not None else math.nan
    if kind == "fan_stop":
        origins, winds = _downstream_of_fan(config, layout, point)
        injected.origins = [(p, peak - layout.baseline[p]) for p in origins]
        injected.winds = np.array(winds, np.int64)
        injected.feeds = np.array(
            sorted({layout.feed_of[p] for p in origins if p in layout.feed_of}), np.int64
        )
    elif kind == "sensor_stuck":  # the gas swings at a methane point upstream
        upstream = upstream_methane(layout, point)
        if not upstream:
            raise ValueError(f"{layout.codes[point]}: no methane point upstream to move")
        injected.origins = [(upstream[0], peak)]
    elif kind in ATMOSPHERE_KINDS or kind == "co_fire":
        injected.origins = [(point, peak - layout.baseline[point])]
        if kind == "cutting_accumulation":
            if point not in layout.shearer_of:
                raise ValueError(f"{layout.codes[point]}: no shearer point on its substation")
            injected.shearer = layout.shearer_of[point]
        if kind == "co_fire":
            station = layout.station[point]
            here = [i for i, s in enumerate(layout.station) if s == station]
            injected.warms = np.array(
                [i for i in here if layout.sensor_type[i] == TEMPERATURE_SENSOR_TYPE], np.int64
            )
            injected.smokes = np.array(
                [i for i in here if layout.sensor_type[i] == SMOKE_SENSOR_TYPE], np.int64
            )
        if kind == "power_off_failure":
            injected.feeds = np.array([layout.feed_of[point]], np.int64)
    elif kind == "interference":
        cycle_s = config.simulation.cycle_s
        first = math.ceil(scenario.start_s / cycle_s)
        slots = max(1, math.ceil(scenario.end_s / cycle_s) - first)
        picked = np.sort(rng.choice(slots, min(scenario.count, slots), replace=False))
        injected.spike_s = (first + picked) * np.float64(cycle_s)
        low = max(layout.baseline[point], min(layout.alarm[point], peak))
        levels = rng.uniform(low, peak, len(picked))
        levels[-1] = peak  # the labelled peak is reached
        injected.spike_level = levels
    return injected


def _downstream_of_fan(
    config: MineConfig, layout: MineLayout, fan: int
) -> tuple[list[int], list[int]]:
    """The first methane point after the fan on each of its roadways, and the wind points."""
    origins: list[int] = []
    winds: list[int] = []
    for indices in layout.roadways.values():
        if fan not in indices:
            continue
        after = indices[indices.index(fan) + 1 :]
        gas = [p for p in after if layout.methane[p]]
        if gas and gas[0] not in origins:
            origins.append(gas[0])
        winds.extend(p for p in after if layout.sensor_type[p] == "0002")
    if not origins:
        raise ValueError(f"fan {layout.codes[fan]}: no methane point downstream on a roadway")
    return origins, winds


# ---- random schedule ----------------------------------------------------------------------


def draw_random(config: MineConfig, layout: MineLayout) -> list[ScenarioConfig]:
    """Scenarios at Poisson times over the horizon, kinds and points drawn from the seed.

    A point (or substation) is never given two overlapping scenarios; a draw that would
    overlap is dropped.
    """
    spec = config.random_scenarios
    candidates = _candidates(config, layout)
    if spec.per_day:
        kinds = [k for k, r in spec.per_day.items() if r > 0 and candidates.get(k)]
        rate_per_hour = sum(spec.per_day[k] for k in kinds) / 24.0
        weights = np.array([spec.per_day[k] for k in kinds]) / (rate_per_hour * 24.0)
    else:
        kinds = [k for k in spec.kinds if candidates.get(k)]
        rate_per_hour = spec.rate_per_hour
        weights = None
    if rate_per_hour <= 0 or not kinds:
        return []
    rng = np.random.default_rng([config.simulation.seed, 0x5CE7])
    busy: dict[str, list[tuple[float, float]]] = {}
    for s in config.scenarios:
        for key in _keys(config, layout, s):
            busy.setdefault(key, []).append((_span(s)[0], _span(s)[1] + 600))
    out: list[ScenarioConfig] = []
    t = spec.start_after_s
    while True:
        t += rng.exponential(3600.0 / rate_per_hour)
        if t >= spec.horizon_s:
            return out
        if weights is None:
            kind = kinds[rng.integers(len(kinds))]
            flicker = False
        else:  # one Poisson process per kind = one process at the sum, kinds by weight
            kind = kinds[int(rng.choice(len(kinds), p=weights))]
            flicker = kind == "disconnection" and bool(rng.random() < spec.flicker_share)
        target = candidates[kind][rng.integers(len(candidates[kind]))]
        scenario = _random_scenario(config, layout, kind, target, round(t, 1), rng, flicker)
        keys = _keys(config, layout, scenario)
        first, last = _span(scenario)
        window = (first - 600, last + 600)
        if any(a < window[1] and window[0] < b for k in keys for a, b in busy.get(k, [])):
            continue
        for key in keys:
            busy.setdefault(key, []).append((first, last))
        out.append(scenario)


def _span(s: ScenarioConfig) -> tuple[float, float]:
    """What a scenario occupies: its window; a cutting accumulation's from its shearer's
    pause to the end of the gas's decay."""
    if s.kind == "cutting_accumulation":
        return s.start_s - CUT_PAUSE_S, s.end_s + CUT_TAIL_TAUS * s.tau_s
    return s.start_s, s.end_s


def _keys(config: MineConfig, layout: MineLayout, s: ScenarioConfig) -> list[str]:
    if s.kind == "vehicle_co":
        roadway = next(r for r in config.roadways if r.name == s.roadway)
        return [layout.station[config.resolve(ref)] for ref in roadway.points]
    return [s.substation or ""]


def _candidates(config: MineConfig, layout: MineLayout) -> dict[str, list[str]]:
    methane = [r for i, r in enumerate(layout.refs) if layout.methane[i] and _alarm(layout, i)]
    low_range = [r for r in methane if layout.range_high[config.resolve(r)] <= 10]
    analog = [r for i, r in enumerate(layout.refs) if layout.analog[i]]
    drifting = [r for i, r in enumerate(layout.refs)
                if layout.methane[i] or layout.sensor_type[i] == CO_SENSOR_TYPE]  # fmt: skip
    fans = [layout.refs[i] for i, t in enumerate(layout.sensor_type)
            if t in FAN_SENSOR_TYPES and _has_downstream_gas(config, layout, i)]  # fmt: skip
    vehicle = [r.name for r in config.roadways
               if r.kind in ("transport", "belt")
               and any(layout.sensor_type[config.resolve(p)] == CO_SENSOR_TYPE
                       for p in r.points)]  # fmt: skip
    return {
        "methane_exceedance": low_range,
        "methane_accumulation": low_range,
        "outburst": low_range,
        "over_range": low_range,
        "power_off_failure": [layout.refs[i] for i in layout.feed_of],
        "fan_stop": fans,
        "calibration": low_range,
        "undeclared_calibration": low_range,
        "disconnection": analog,
        "negative_drift": drifting,
        "stuck": analog,
        "interference": low_range,
        "substation_comm_loss": sorted(set(layout.station)),
        "vehicle_co": vehicle,
        "co_fire": [
            r
            for i, r in enumerate(layout.refs)
            if layout.sensor_type[i] == CO_SENSOR_TYPE and _alarm(layout, i)
        ],
        "sensor_drift": [r for r in low_range if _on_air_path(layout, config.resolve(r))],
        "sensor_stuck": [r for r in low_range if upstream_methane(layout, config.resolve(r))],
        "sensor_local_excursion": [r for r in low_range if _on_air_path(layout, config.resolve(r))],
        "cutting_accumulation": [r for r in low_range if config.resolve(r) in layout.shearer_of],
    }


def upstream_methane(layout: MineLayout, i: int) -> list[int]:
    """The methane points whose air reaches point ``i`` directly (the airflow edges)."""
    edges = layout.edges
    return [int(s) for s, d in zip(edges.src.tolist(), edges.dst.tolist(), strict=True)
            if d == i and s != i and layout.methane[s]]  # fmt: skip


def _on_air_path(layout: MineLayout, i: int) -> bool:
    """A methane point with another methane point on its airflow path (cross-checkable)."""
    return any(i in indices and sum(layout.methane[j] for j in indices) > 1
               for indices in layout.roadways.values())  # fmt: skip


def _alarm(layout: MineLayout, i: int) -> bool:
    return bool(np.isfinite(layout.alarm[i]))


def _has_downstream_gas(config: MineConfig, layout: MineLayout, fan: int) -> bool:
    try:
        _downstream_of_fan(config, layout, fan)
    except ValueError:
        return False
    return True


def _random_scenario(
    config: MineConfig,
    layout: MineLayout,
    kind: str,
    target: str,
    start_s: float,
    rng: np.random.Generator,
    flicker: bool = False,
) -> ScenarioConfig:
    cycle_s = config.simulation.cycle_s
    fields: dict[str, object] = {"kind": kind, "start_s": start_s}
    if kind == "vehicle_co":
        fields |= {"roadway": target, "duration_s": rng.uniform(60, 180),
                   "peak": round(rng.uniform(30, 80)), "speed_m_s": rng.uniform(3, 6),
                   "against_air": bool(rng.integers(2))}  # fmt: skip
        return ScenarioConfig.model_validate(fields)
    if kind == "substation_comm_loss":
        fields |= {"substation": target, "duration_s": rng.uniform(60, 900),
                   "mode": ("status", "silent")[rng.integers(2)]}  # fmt: skip
        return ScenarioConfig.model_validate(fields)
    station, _, sensor = target.partition("/")
    fields |= {"substation": station, "sensor": sensor}
    i = config.resolve(target)
    alarm, poweroff, high = layout.alarm[i], layout.poweroff[i], layout.range_high[i]
    cut = poweroff if np.isfinite(poweroff) else alarm + 0.5
    co = layout.sensor_type[i] == CO_SENSOR_TYPE
    draws: dict[str, Callable[[], tuple[float, float | None]]] = {
        "methane_exceedance": lambda: (rng.uniform(60, 600),
                                       rng.uniform(alarm + 0.05, max(cut, alarm + 0.1))
                                       if rng.integers(2) else rng.uniform(cut + 0.1, cut + 0.8)),
        "methane_accumulation": lambda: (rng.uniform(1200, 3600),
                                         rng.uniform(alarm + 0.05, cut + 0.3)),
        "outburst": lambda: (rng.uniform(120, 600), rng.uniform(0.8, 1.5) * high),
        "over_range": lambda: (rng.uniform(60, 300), rng.uniform(1.1, 1.4) * high),
        "power_off_failure": lambda: (rng.uniform(120, 600), rng.uniform(cut + 0.1, cut + 0.5)),
        "fan_stop": lambda: (rng.uniform(300, 1800), rng.uniform(1.2, 2.5)),
        "calibration": lambda: (rng.uniform(240, 480), float(rng.choice([1.5, 2.0]))),
        "undeclared_calibration": lambda: (rng.uniform(240, 480), float(rng.choice([1.5, 2.0]))),
        "disconnection": lambda: (rng.uniform(30, 1800), None),
        "negative_drift": lambda: (rng.uniform(1800, 7200),
                                   -rng.uniform(0.03, 0.1) * (50 if co else 1)),
        "stuck": lambda: (rng.uniform(950, 2000) * cycle_s, None),
        "interference": lambda: (rng.uniform(60, 600),
                                 rng.uniform(max(alarm, 1.5), min(high, 4.0))),
        "co_fire": lambda: (rng.uniform(1200, 3600), rng.uniform(40, 80)),
        "sensor_drift": lambda: (rng.uniform(7200, 43200), rng.uniform(0.01, 0.04)),
        "sensor_stuck": lambda: (rng.uniform(2400, 5400), rng.uniform(0.2, 0.3)),
        "sensor_local_excursion": lambda: (rng.uniform(300, 900), rng.uniform(0.4, 0.6)),
        # a restart into gassier coal: the peak may stay below the level (a cutting start
        # the forecaster must not warn on) or pass it
        "cutting_accumulation": lambda: (rng.uniform(900, 2400),
                                         rng.uniform(alarm - 0.4, cut + 0.3)),
    }  # fmt: skip
    if flicker:  # 闪断: a connector that makes and breaks contact, seconds at a time
        draws["disconnection"] = lambda: (rng.uniform(5, 60), None)
    duration, peak = draws[kind]()
    fields |= {"duration_s": round(float(duration), 1)}
    if peak is not None:
        fields["peak"] = round(float(min(peak, high)) if kind not in ("over_range", "outburst")
                               else float(peak), 2)  # fmt: skip
    if kind in ("disconnection",):
        fields["mode"] = "status" if flicker else ("status", "silent")[rng.integers(2)]
    if kind == "interference":
        fields["count"] = int(rng.integers(1, 6))
    if kind == "cutting_accumulation":  # the emission's response time to the shearer
        fields["tau_s"] = round(float(rng.uniform(*spec_cut_tau(config))), 1)
    return ScenarioConfig.model_validate(fields)


def spec_cut_tau(config: MineConfig) -> tuple[float, float]:
    """The range random ``cutting_accumulation`` scenarios draw ``tau_s`` from."""
    return config.random_scenarios.cutting_tau_s


# ---- labels -------------------------------------------------------------------------------


def labels(
    config: MineConfig, layout: MineLayout, injected: list[Injected]
) -> tuple[list[GroundTruth], list[CalibrationDeclaration]]:
    """Root labels in scenario order, then derived labels; and the calibration declarations."""
    roots: list[GroundTruth] = []
    derived: list[GroundTruth] = []
    near: list[GroundTruth] = []
    declarations: list[CalibrationDeclaration] = []
    for item in injected:
        c = item.config
        root_id = len(roots)
        code = layout.codes[item.point] if item.point >= 0 else ""
        station = layout.station[item.point] if item.point >= 0 else (c.substation or "")
        if item.kind == "interference":
            for t, level in zip(item.spike_s.tolist(), item.spike_level.tolist(), strict=True):
                roots.append(GroundTruth("interference", code, t, t + config.simulation.cycle_s,
                                         round(level, 4), station))  # fmt: skip
            continue
        if item.kind == "vehicle_co":
            for p, t0, amp in item.passages:
                level = round(float(layout.baseline[p] + amp), 4)
                roots.append(GroundTruth("vehicle_co", layout.codes[p], t0, t0 + c.duration_s,
                                         level, layout.station[p],
                                         related=c.roadway or ""))  # fmt: skip
            continue
        peak: float | None = c.peak
        related = ""
        detail: str = c.mode if item.kind in ("disconnection", "substation_comm_loss") else ""
        if item.kind in ("stuck", "sensor_stuck"):
            peak = None
        if item.kind == "power_off_failure":
            related = layout.codes[int(item.feeds[0])]
        kind = LABEL_KIND.get(item.kind, item.kind)
        if item.kind == "cutting_accumulation":
            related, detail = layout.codes[item.shearer], "cutting"
        if item.kind in ATMOSPHERE_KINDS:
            peak, more = _air_labels(config, layout, item, root_id)
            derived.extend(g for g in more if g.required)
            near.extend(g for g in more if not g.required)
        if item.kind == "co_fire":
            derived.extend(_fire_labels(config, layout, item, root_id))
        if item.kind == "calibration":
            declarations.append(
                CalibrationDeclaration(code, c.start_s, c.end_s, c.start_s - c.declared_lead_s)
            )
        roots.append(GroundTruth(kind, code, c.start_s, c.end_s, peak, station, related,
                                 detail))  # fmt: skip
    return roots + derived + near, declarations


def _air_labels(
    config: MineConfig, layout: MineLayout, item: Injected, root_id: int
) -> tuple[float, list[GroundTruth]]:
    """The expected peak at the scenario's point, and labels where air levels cross limits."""
    cycle_s = config.simulation.cycle_s
    edges = layout.edges
    reach: list[int] = []
    for origin, _ in item.origins:
        for p in [origin, *edges.downstream_of(origin)]:
            if p not in reach:
                reach.append(p)
    local = {p: i for i, p in enumerate(reach)}
    keep = np.array(
        [s in local and d in local for s, d in zip(edges.src, edges.dst, strict=True)], bool
    )
    sub = Edges(
        src=np.array([local[s] for s in edges.src[keep].tolist()], np.int64),
        dst=np.array([local[d] for d in edges.dst[keep].tolist()], np.int64),
        share=edges.share[keep], delay=edges.delay[keep], window=edges.window[keep],
    )  # fmt: skip
    first = math.ceil(item.start_s / cycle_s)
    last = math.ceil(item.end_s / cycle_s) + sub.history + 1
    t = np.arange(first, last) * np.float64(cycle_s)
    full = np.zeros((len(t), len(reach)))
    for p, series in excess_at(item, t):
        full[:, local[p]] += series
    propagate(full, 0, sub)
    level = layout.baseline[reach][None, :] + full
    point = item.point if item.kind != "fan_stop" else item.origins[0][0]
    peak = round(float(level[:, local[point]].max()), 4)
    out: list[GroundTruth] = []
    for j, p in enumerate(reach):
        column = level[:, j]
        limits = []
        own = item.kind == "methane_exceedance" and p == item.point
        if layout.methane[p] and np.isfinite(layout.alarm[p]) and not own:
            limits.append(("methane_exceedance", layout.alarm[p]))
        if np.isfinite(layout.range_high[p]) and not (
            item.kind == "over_range" and p == item.point
        ):
            limits.append(("over_range", layout.range_high[p]))
        for kind, limit in limits:
            for a, b in _runs(column >= limit):
                out.append(GroundTruth(kind, layout.codes[p], float(t[a]), float(t[b - 1]) +
                                       cycle_s, round(float(column[a:b].max()), 4),
                                       layout.station[p], cause=root_id))  # fmt: skip
        if p != point and layout.methane[p] and np.isfinite(layout.accuracy[p]):
            out.extend(_near_limit(layout, p, t, column, cycle_s, root_id))
    return peak, out


def _fire_labels(
    config: MineConfig, layout: MineLayout, item: Injected, root_id: int
) -> list[GroundTruth]:
    """A ``co_fire``'s evidence: ``fire_temperature`` on each temperature point of its
    substation (the fire's window, peak: baseline + the rise) and ``fire_smoke`` on each smoke
    sensor (the cycles the sensor reads smoke). ``related``: the fire's CO point."""
    c = item.config
    cycle_s = config.simulation.cycle_s
    co = layout.codes[item.point]
    out = []
    for q in item.warms.tolist():
        peak = round(float(layout.baseline[q]) + c.temperature_rise, 4)
        out.append(GroundTruth("fire_temperature", layout.codes[q], c.start_s, c.end_s, peak,
                               layout.station[q], related=co, cause=root_id))  # fmt: skip
    if len(item.smokes):
        first, last = math.ceil(c.start_s / cycle_s), math.ceil(c.end_s / cycle_s) + 1
        t: FloatArray = np.arange(first, last, dtype=np.float64) * cycle_s
        unit = shape("co_fire", (t - c.start_s) / c.duration_s, c.duration_s, c.tau_s)
        for a, b in _runs(unit >= SMOKE_FROM):
            for q in item.smokes.tolist():
                out.append(GroundTruth("fire_smoke", layout.codes[q], float(t[a]),
                                       float(t[b - 1]) + cycle_s, 1.0, layout.station[q],
                                       related=co, cause=root_id))  # fmt: skip
    return out


def _near_limit(
    layout: MineLayout, p: int, t: FloatArray, column: FloatArray, cycle_s: float, root_id: int
) -> list[GroundTruth]:
    """``methane_near_limit`` labels: runs where the expected level is within the sensor's
    stated accuracy of the alarm level without reaching it (a real sensor may read the limit
    there). ``related`` holds the alarm level, ``detail`` the accuracy used."""
    limit, accuracy = float(layout.alarm[p]), float(layout.accuracy[p])
    out = []
    for a, b in _runs(column >= limit - accuracy):
        top = float(column[a:b].max())
        if top >= limit:
            continue
        out.append(GroundTruth("methane_near_limit", layout.codes[p], float(t[a]),
                               float(t[b - 1]) + cycle_s, round(top, 4), layout.station[p],
                               related=f"{limit:g}", detail=f"accuracy={accuracy:g}",
                               cause=root_id, required=False))  # fmt: skip
    return out


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """[start, end) index pairs of the True runs of ``mask``."""
    padded = np.concatenate([[False], mask, [False]])
    change = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(change[::2].tolist(), change[1::2].tolist(), strict=True))
