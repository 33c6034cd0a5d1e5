"""A simulated mine: point definitions from the config, readings per polling cycle, ground truth.

Values for all points of a cycle are computed at once with numpy: a baseline, AR(1) noise
rounded to the sensor's resolution, injected scenarios on top, and the power-off logic that
drops a feed sensor when its methane point crosses the power-off level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from minewatch.codes import ValueType, value_type_of
from minewatch.metadata import (
    MineDefinition,
    PointDefinition,
    Relation,
    SubstationDefinition,
)
from simulators.config import MineConfig, ScenarioConfig

_KIND_LETTER = {ValueType.ANALOG: "A", ValueType.SWITCH: "D", ValueType.CUMULATIVE: "L",
                ValueType.MULTISTATE: "S"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """One labelled event: what happened where, from when to when (simulated seconds)."""

    kind: str
    point: str
    start_s: float
    end_s: float
    peak: float


@dataclass(frozen=True, slots=True)
class Cycle:
    """The readings of one polling cycle, all points, in point order."""

    index: int
    offset_s: float
    value: npt.NDArray[np.float64]
    status: npt.NDArray[np.int64]


class SimulatedMine:
    def __init__(self, config: MineConfig) -> None:
        self.config = config
        self.definition = _definition(config)
        points = self.definition.points
        self.codes = [p.code for p in points]
        self.substation_of = np.array([p.substation for p in points], dtype=object)
        templates = [config.templates[name] for name in _template_names(config)]
        self._baseline = np.array([t.baseline for t in templates], np.float64)
        self._noise = np.array([t.noise for t in templates], np.float64)
        self._resolution = np.array([t.resolution for t in templates], np.float64)
        self._low = np.array([t.range[0] if t.range else -np.inf for t in templates])
        self._high = np.array([t.range[1] if t.range else np.inf for t in templates])
        self._rng = np.random.default_rng(config.simulation.seed)
        self._ar = np.zeros(len(points))
        self._cut_pairs = _cut_pairs(config, self.codes)
        self._poweroff = np.array(
            [p.poweroff_high if p.poweroff_high is not None else np.inf for p in points]
        )
        self._restore = np.array(
            [p.restore_high if p.restore_high is not None else np.inf for p in points]
        )
        self._cut = np.zeros(len(points), bool)  # power currently cut by this methane point
        self.scenarios = [(s, self.point_index(s.substation, s.sensor)) for s in config.scenarios]
        self._cycle = 0

    def point_index(self, substation: str, template: str) -> int:
        """Index of the first point made from ``template`` on ``substation``."""
        for i, (station, name) in enumerate(_substation_templates(self.config)):
            if station == substation and name == template:
                return i
        raise KeyError(f"{substation}/{template}")

    @property
    def ground_truth(self) -> list[GroundTruth]:
        return [
            GroundTruth(s.kind, self.codes[i], s.start_s, s.start_s + s.duration_s, s.peak)
            for s, i in self.scenarios
        ]

    def next_cycle(self) -> Cycle:
        cycle_s = self.config.simulation.cycle_s
        offset = self._cycle * cycle_s
        phi = self.config.simulation.ar_coefficient
        shock = self._rng.standard_normal(len(self._ar))
        self._ar = phi * self._ar + np.sqrt(1 - phi * phi) * shock
        value = self._baseline + self._noise * self._ar
        for scenario, i in self.scenarios:
            value[i] += _scenario_excess(scenario, offset, self._baseline[i])
        value = np.round(value / self._resolution) * self._resolution
        value = np.clip(value, np.maximum(self._low, 0.0), self._high)
        self._apply_power_cuts(value)
        status = np.zeros(len(value), np.int64)
        self._cycle += 1
        return Cycle(self._cycle - 1, offset, np.round(value, 6), status)

    def _apply_power_cuts(self, value: npt.NDArray[np.float64]) -> None:
        """Methane at the power-off level cuts the related feed; below restore, power returns."""
        self._cut = np.where(
            value >= self._poweroff, True, np.where(value < self._restore, False, self._cut)
        )
        for methane, feed in self._cut_pairs:
            if self._cut[methane]:
                value[feed] = 0.0


def _scenario_excess(scenario: ScenarioConfig, offset: float, baseline: float) -> float:
    """Trapezoid: 20% ramp up, 60% hold at the peak, 20% ramp down."""
    x = (offset - scenario.start_s) / scenario.duration_s
    if x < 0 or x >= 1:
        return 0.0
    shape = min(1.0, x / 0.2, (1 - x) / 0.2)
    return (scenario.peak - baseline) * shape


def _substation_templates(config: MineConfig) -> list[tuple[str, str]]:
    return [(s.code, name) for s in config.substations for name in s.sensors]


def _template_names(config: MineConfig) -> list[str]:
    return [name for _, name in _substation_templates(config)]


def _point_codes(config: MineConfig) -> list[str]:
    codes = []
    for station in config.substations:
        counters: dict[str, int] = {}
        for name in station.sensors:
            letter = _KIND_LETTER[value_type_of(config.templates[name].sensor_type)]
            counters[letter] = counters.get(letter, 0) + 1
            codes.append(f"{config.mine.code}01{station.code}{letter}{counters[letter]:02d}")
    return codes


def _cut_pairs(config: MineConfig, codes: list[str]) -> list[tuple[int, int]]:
    pairs = []
    pairs_by_station = _substation_templates(config)
    for i, (station, name) in enumerate(pairs_by_station):
        target = config.templates[name].cuts_power_of
        if target is None:
            continue
        for j, (other_station, other_name) in enumerate(pairs_by_station):
            if other_station == station and other_name == target:
                pairs.append((i, j))
                break
    return pairs


def _definition(config: MineConfig) -> MineDefinition:
    codes = _point_codes(config)
    by_station = _substation_templates(config)
    cut = dict(_cut_pairs(config, codes))
    points = []
    for i, (station, name) in enumerate(by_station):
        t = config.templates[name]
        relations = (Relation(kind="D", target=codes[cut[i]]),) if i in cut else ()
        location = next(s.location for s in config.substations if s.code == station)
        points.append(
            PointDefinition(
                code=codes[i],
                substation=station,
                sensor_type=t.sensor_type,
                unit=t.unit,
                location=f"{location}{t.location}",
                tag=t.tag,
                range_low=t.range[0] if t.range else None,
                range_high=t.range[1] if t.range else None,
                alarm_high=t.alarm_high,
                alarm_high_clear=t.alarm_high_clear,
                alarm_low=t.alarm_low,
                alarm_low_clear=t.alarm_low_clear,
                poweroff_high=t.poweroff_high,
                restore_high=t.restore_high,
                desc_on=t.desc_on,
                desc_off=t.desc_off,
                relations=relations,
            )
        )
    return MineDefinition(
        mine=config.mine,
        substations=tuple(
            SubstationDefinition(code=s.code, location=s.location) for s in config.substations
        ),
        points=tuple(points),
    )
