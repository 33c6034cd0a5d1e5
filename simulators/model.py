"""A simulated mine: point definitions from the config, readings per polling cycle, ground truth.

Readings are computed in blocks of ``BLOCK_CYCLES`` cycles x all points with numpy, in two
layers (docs/simulator.md):

1. **Air**: each point's local level (baseline x production cycle x slow variability), the
   excess of air scenarios (exceedance, accumulation, outburst, over-range, fan stop) and the
   airflow network that carries methane downstream with a transport delay.
2. **Sensor**: AR(1) measurement noise, sensor scenarios (calibration gas, drift, spikes,
   disconnection, stuck), the resolution, the range, feed sensors cut by the power-off latch
   of their methane points (and by a stopped fan), substation communication loss, status bits.

Blocks have a fixed size and every random stream is consumed block by block, so the same
config and seed give the same readings however the caller reads them (``next_cycle`` or
``next_block``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from minewatch.codes import FEED_SENSOR_TYPES, PointStatus, ValueType, value_type_of
from minewatch.metadata import (
    AirPath,
    MineDefinition,
    PointDefinition,
    Relation,
    SubstationDefinition,
)
from minewatch.simulators import physics
from minewatch.simulators.config import (
    ATMOSPHERE_KINDS,
    CO_SENSOR_TYPE,
    MineConfig,
    SensorTemplate,
)
from minewatch.simulators.scenarios import (
    CUT_PAUSE_S,
    Injected,
    MineLayout,
    draw_random,
    excess_at,
    labels,
    methane_accuracy,
    resolve,
)
from minewatch.trace import CalibrationDeclaration, GroundTruth

__all__ = ["BLOCK_CYCLES", "Block", "CalibrationDeclaration", "Cycle", "GroundTruth",
           "SimulatedMine"]  # fmt: skip

BLOCK_CYCLES = 600
FAN_STOP_WIND = 0.05  # share of the airflow left in a heading whose local fan stopped

_KIND_LETTER = {ValueType.ANALOG: "A", ValueType.SWITCH: "D", ValueType.CUMULATIVE: "L",
                ValueType.MULTISTATE: "S"}  # fmt: skip
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Cycle:
    """The readings of one polling cycle, all points, in point order.

    ``present`` is False for readings that were never sent (a silent disconnection or
    substation): their ``value``/``status`` hold the last value with status 16 or 128 so that
    consumers that must send every point still can.
    """

    index: int
    offset_s: float
    value: npt.NDArray[np.float64]
    status: npt.NDArray[np.int64]
    present: BoolArray | None = None


@dataclass(frozen=True, slots=True)
class Block:
    """Consecutive cycles: ``value``/``status``/``present`` are (cycles x points)."""

    first: int
    offset_s: FloatArray
    value: FloatArray
    status: npt.NDArray[np.int16]
    present: BoolArray

    def __len__(self) -> int:
        return len(self.offset_s)

    def cycle(self, row: int) -> Cycle:
        return Cycle(self.first + row, float(self.offset_s[row]), self.value[row].copy(),
                     self.status[row].astype(np.int64), self.present[row].copy())  # fmt: skip


class SimulatedMine:
    def __init__(self, config: MineConfig) -> None:
        self.config = config
        self.definition = _definition(config)
        points = self.definition.points
        n = len(points)
        self.codes = [p.code for p in points]
        self.substation_of = np.array([p.substation for p in points], dtype=object)
        templates = [config.templates[name] for name in _template_names(config)]
        self._layout = _layout(config, self.codes, templates)
        layout = self._layout
        self._edges = layout.edges
        self._resolution = np.array([t.resolution for t in templates], np.float64)
        self._noise = np.array([t.noise for t in templates], np.float64)
        self._local = physics.local_baseline(layout.baseline, self._edges)
        self._prod_share = np.array([t.production_share for t in templates], np.float64)
        self._variability = np.array([t.variability for t in templates], np.float64)
        self._switch = np.array([not t.is_analog for t in templates], bool)
        self._feed_points = np.array(sorted(set(layout.feed_of.values())), np.int64)
        self._cut_points = np.array(sorted(layout.feed_of), np.int64)
        feed_col = {int(f): j for j, f in enumerate(self._feed_points.tolist())}
        self._cut_matrix = np.zeros((len(self._cut_points), len(self._feed_points)))
        for i, p in enumerate(self._cut_points.tolist()):
            self._cut_matrix[i, feed_col[layout.feed_of[p]]] = 1.0
        self._restore = np.array(
            [p.restore_high if p.restore_high is not None else -np.inf for p in points]
        )
        self._alarm_high = np.where(np.isfinite(layout.alarm), layout.alarm, np.inf)
        self._unit, self._heading, self._phase = _workings(config, n)
        self._shearers = np.array([i for i, t in enumerate(templates) if t.shearer], np.int64)

        seeds = np.random.SeedSequence(config.simulation.seed).spawn(2)
        self._noise_rng = np.random.default_rng(seeds[0])
        self._var_rng = np.random.default_rng(seeds[1])
        self._noisy = np.flatnonzero(self._noise > 0)
        self._varying = np.flatnonzero(self._variability > 0)
        self._noise_state = np.zeros(len(self._noisy))
        self._var_state = np.zeros(len(self._varying))
        self._var_phi = math.exp(-config.simulation.cycle_s / config.simulation.variability_tau_s)

        scenarios = [*config.scenarios, *draw_random(config, layout)]
        self.scenarios = [resolve(config, layout, s) for s in scenarios]
        _check_overlaps(self.scenarios, self.codes)
        truth, declarations = labels(config, layout, self.scenarios)
        self._ground_truth = [g for g in truth if g.required]
        #: ``methane_near_limit`` labels (``required`` False): kept apart from the labels a
        #: detector must find; their ``cause`` indexes ``ground_truth`` like derived labels.
        self.near_limit = [g for g in truth if not g.required]
        self.calibration_declarations = declarations
        cycle_s = config.simulation.cycle_s
        self._over_windows = [
            (self.codes.index(g.point), g.start_s - cycle_s, g.end_s + cycle_s)
            for g in truth
            if g.kind == "over_range"
        ]

        self._history = self._warm_up()
        self._latch = np.zeros(len(self._cut_points), bool)
        self._last = layout.baseline.copy()
        self._cycle = 0
        self._block: Block | None = None
        self._row = 0

    # ---- public API -------------------------------------------------------------------

    def point_index(self, substation: str, template: str) -> int:
        """Index of the first point made from ``template`` on ``substation``."""
        try:
            return self.config.resolve(f"{substation}/{template}")
        except ValueError:
            raise KeyError(f"{substation}/{template}") from None

    @property
    def ground_truth(self) -> list[GroundTruth]:
        """Labels: one per injected scenario (in schedule order), then derived ones."""
        return list(self._ground_truth)

    @property
    def start_us(self) -> int:
        """Epoch microseconds of offset 0 (``simulation.start``)."""
        return round(self.config.simulation.start.timestamp() * 1_000_000)

    def next_cycle(self) -> Cycle:
        block = self.next_block(1)
        return block.cycle(0)

    def next_block(self, max_cycles: int = BLOCK_CYCLES) -> Block:
        """The next cycles (at most ``max_cycles``, at most up to the end of a block)."""
        if self._block is None or self._row >= len(self._block):
            self._block = self._generate(self._cycle, BLOCK_CYCLES)
            self._row = 0
        block, a = self._block, self._row
        b = min(len(block), a + max(1, max_cycles))
        self._row = b
        self._cycle += b - a
        return Block(block.first + a, block.offset_s[a:b], block.value[a:b],
                     block.status[a:b], block.present[a:b])  # fmt: skip

    # ---- the engine -------------------------------------------------------------------

    def _local_levels(self, t: FloatArray, variability: bool) -> FloatArray:
        """Air level emitted at each point (cycles x points), before the network."""
        start = self.config.simulation.start
        day_s = start.hour * 3600 + start.minute * 60 + start.second
        g = np.ones((len(t), len(self._unit)))
        has = self._unit >= 0
        if has.any():
            factor = physics.production_factor(
                self.config.production, day_s + t, self._heading, self._phase
            )
            g[:, has] = factor[:, self._unit[has]]
        share = self._prod_share
        level = self._local * (1.0 - share + share * g)
        if variability and len(self._varying):
            shocks = self._var_rng.standard_normal((len(t), len(self._varying)))
            slow = physics.ar1(shocks, self._var_state, self._var_phi)
            level[:, self._varying] *= 1.0 + self._variability[self._varying] * slow
        return level

    def _warm_up(self) -> FloatArray:
        """Noise-free levels before offset 0, so that downstream points start settled."""
        edges = self._edges
        depth = _depth(edges)
        history = edges.history
        count = history * (depth + 1)
        t = (np.arange(count) - count) * np.float64(self.config.simulation.cycle_s)
        full = self._local_levels(t, variability=False)
        physics.propagate(full, 0, edges)
        return full[-history:].copy()

    def _generate(self, first: int, count: int) -> Block:
        cycle_s = self.config.simulation.cycle_s
        layout = self._layout
        t = (first + np.arange(count)) * np.float64(cycle_s)
        t_end = t[-1] + cycle_s
        active = [s for s in self.scenarios if s.start_s < t_end and s.end_s > t[0]]

        # 1. the air
        level = self._local_levels(t, variability=True)
        for item in active:
            if item.kind in ATMOSPHERE_KINDS or item.kind in ("vehicle_co", "co_fire",
                                                              "sensor_stuck"):  # fmt: skip
                for p, series in excess_at(item, t):
                    level[:, p] += series
            if item.kind == "fan_stop":
                rows = _rows(t, item.start_s, item.config.end_s)
                level[rows, item.winds] *= FAN_STOP_WIND
        full = np.vstack([self._history, level])
        physics.propagate(full, len(self._history), self._edges)
        self._history = full[-len(self._history) :].copy()
        air = np.maximum(full[len(self._history) :], 0.0)

        # 2. the sensors
        value = air.copy()
        if len(self._noisy):
            shocks = self._noise_rng.standard_normal((count, len(self._noisy)))
            noise = physics.ar1(shocks, self._noise_state, self.config.simulation.ar_coefficient)
            value[:, self._noisy] += self._noise[self._noisy] * noise
        status = np.zeros(value.shape, np.int16)
        present = np.ones(value.shape, bool)
        free_low = np.zeros(value.shape, bool)
        free_high = np.zeros(value.shape, bool)
        for p, a, b in self._over_windows:
            free_high[_rows(t, a, b), p] = True
        for item in active:
            self._sensor_effect(item, t, value, air, status, present, free_low)
        res = self._resolution
        value = np.round(np.round(value / res) * res, 6)
        low = np.where(free_low, -np.inf, layout.range_low)
        high = np.where(free_high, np.inf, layout.range_high)
        value = np.clip(value, low, high)
        for item in active:
            if item.kind in ("stuck", "sensor_stuck"):
                rows = _rows(t, item.start_s, item.end_s)
                if rows.start >= rows.stop:
                    continue
                if item.hold is None:
                    item.hold = value[rows.start, [item.point]].copy()
                value[rows, item.point] = item.hold[0]

        # 3. switches: fans, and feeds cut by methane (D relations) or a stopped fan
        self._switches(active, t, value, status)

        # 4. the substations' link to the centre, and the status word
        for item in active:
            if item.kind != "substation_comm_loss":
                continue
            rows = _rows(t, item.start_s, item.end_s)
            if rows.start >= rows.stop:
                continue
            if item.hold is None:
                before = value[rows.start - 1] if rows.start > 0 else self._last
                item.hold = before[item.points].copy()
            value[rows, item.points] = item.hold[None, :]
            status[rows, item.points] |= PointStatus.SUBSTATION_FAULT
            if item.config.mode == "silent":
                present[rows, item.points] = False
        with np.errstate(invalid="ignore"):
            status[value > layout.range_high] |= PointStatus.OVER_RANGE
            if self.config.simulation.report_alarm_bits:
                status[(value >= self._alarm_high) & ~self._switch] |= PointStatus.ALARM
        self._last = value[-1].copy()
        return Block(first, t, value, status, present)

    def _sensor_effect(
        self,
        item: Injected,
        t: FloatArray,
        value: FloatArray,
        air: FloatArray,
        status: npt.NDArray[np.int16],
        present: BoolArray,
        free_low: BoolArray,
    ) -> None:
        c, p = item.config, item.point
        rows = _rows(t, c.start_s, c.end_s)
        x = (t[rows] - c.start_s) / c.duration_s
        match item.kind:
            case "calibration" | "undeclared_calibration":
                weight = np.where(x < 0.05, x / 0.05, np.where(x < 0.85, 1.0, (1 - x) / 0.15))
                gas = c.peak or 0.0
                target = np.where(x < 0.2, 0.0, np.minimum(1.0, (x - 0.2) / 0.1) * gas)
                jitter = value[rows, p] - air[rows, p]
                value[rows, p] = (1 - weight) * value[rows, p] + weight * (target + 0.25 * jitter)
                if item.kind == "calibration":
                    status[rows, p] |= PointStatus.CALIBRATION
            case "sensor_local_excursion":  # a local fault: ``peak`` more than the gas, ramped
                # below the alarm level (a real sensor above it raises the gas alarm anyway)
                room = self._layout.alarm[p] - self._layout.baseline[p] - 0.15
                excess = min(c.peak or 0.0, max(room, 0.0))
                value[rows, p] += excess * np.minimum(1.0, np.minimum(x, 1 - x) / 0.1)
            case "sensor_drift":  # sensitivity lost: the gas reads as ``peak`` at the baseline
                gain = (c.peak or 0.0) / max(self._layout.baseline[p], 1e-9)
                value[rows, p] *= 1.0 - (1.0 - gain) * np.minimum(1.0, x / 0.3)
            case "negative_drift":
                offset = ((c.peak or 0.0) - self._layout.baseline[p]) * np.minimum(1.0, x / 0.3)
                value[rows, p] += offset
                free_low[rows, p] = True
            case "interference":
                k = np.round(item.spike_s / self.config.simulation.cycle_s).astype(np.int64)
                k -= round(t[0] / self.config.simulation.cycle_s)
                inside = (k >= 0) & (k < len(t))
                value[k[inside], p] = item.spike_level[inside]
            case "disconnection":
                bottom = self._layout.range_low[p]
                value[rows, p] = bottom if np.isfinite(bottom) else 0.0
                status[rows, p] |= PointStatus.SENSOR_FAULT
                if c.mode == "silent":
                    present[rows, p] = False

    def _switches(
        self,
        active: list[Injected],
        t: FloatArray,
        value: FloatArray,
        status: npt.NDArray[np.int16],
    ) -> None:
        layout = self._layout
        for item in active:
            if item.kind == "fan_stop":
                value[_rows(t, item.start_s, item.config.end_s), item.point] = 0.0
        if len(self._shearers):
            self._shearer_states(t, value)
        if not len(self._feed_points):
            return
        cuts = self._cut_points
        latch = physics.hysteresis(
            value[:, cuts], layout.poweroff[cuts], self._restore[cuts], self._latch
        )
        self._latch = latch[-1].copy()
        effective = latch.copy()
        for item in active:
            if item.kind == "power_off_failure":
                column = int(np.searchsorted(cuts, item.point))
                effective[_rows(t, item.start_s, item.end_s), column] = False
        cut = (effective.astype(np.float64) @ self._cut_matrix) > 0
        feed_col = {int(f): j for j, f in enumerate(self._feed_points.tolist())}
        for item in active:
            if item.kind == "fan_stop" and len(item.feeds):
                rows = _rows(t, item.start_s, item.config.end_s)
                cut[rows, [feed_col[int(f)] for f in item.feeds]] = True
        feeds = self._feed_points
        value[:, feeds] = np.where(cut, 0.0, layout.baseline[feeds])
        if self.config.simulation.report_alarm_bits:
            status[:, cuts] |= np.where(latch, int(PointStatus.POWER_OFF), 0).astype(np.int16)

    def _shearer_states(self, t: FloatArray, value: FloatArray) -> None:
        """Shearer points: the production cycle's cutting state; a cutting_accumulation
        stands its shearer for ``CUT_PAUSE_S`` before its start, runs it to its end, and
        stands it while the gas decays (the scenario's whole window)."""
        start = self.config.simulation.start
        day_s = start.hour * 3600 + start.minute * 60 + start.second
        on = physics.cutting(self.config.production, day_s + t).astype(np.float64)
        value[:, self._shearers] = on[:, None]
        t_end = t[-1] + self.config.simulation.cycle_s
        for item in self.scenarios:
            if item.kind != "cutting_accumulation":
                continue
            if item.start_s - CUT_PAUSE_S >= t_end or item.end_s <= t[0]:
                continue
            value[_rows(t, item.start_s - CUT_PAUSE_S, item.end_s), item.shearer] = 0.0
            value[_rows(t, item.start_s, item.config.end_s), item.shearer] = 1.0


def _rows(t: FloatArray, start_s: float, end_s: float) -> slice:
    """Rows of the block whose time lies in [start, end)."""
    return slice(int(np.searchsorted(t, start_s)), int(np.searchsorted(t, end_s)))


def _depth(edges: physics.Edges) -> int:
    depth: dict[int, int] = {}
    for s, d in zip(edges.src.tolist(), edges.dst.tolist(), strict=True):
        depth[d] = max(depth.get(d, 0), depth.get(s, 0) + 1)
    return max(depth.values(), default=0)


def _check_overlaps(scenarios: list[Injected], codes: list[str]) -> None:
    seen: dict[int, list[tuple[float, float]]] = {}
    for item in scenarios:
        if item.point < 0:
            continue
        for a, b in seen.get(item.point, []):
            if a < item.end_s and item.start_s < b:
                raise ValueError(f"two scenarios overlap on point {codes[item.point]}")
        seen.setdefault(item.point, []).append((item.start_s, item.end_s))


def _workings(config: MineConfig, n: int) -> tuple[npt.NDArray[np.int64], BoolArray, FloatArray]:
    """Per point: its working (-1: none); per working: heading or not, and its phase (s)."""
    unit_of_station = {
        code: i for i, working in enumerate(config.workings) for code in working.substations
    }
    unit = np.array(
        [unit_of_station.get(s, -1) for s, _ in _substation_templates(config)], np.int64
    )
    heading = np.array([w.kind == "heading" for w in config.workings], bool)
    rng = np.random.default_rng([config.simulation.seed, 0xFACE])
    period = np.where(heading, config.production.heading_cycle_s, config.production.shearer_pass_s)
    phase = rng.uniform(0.0, 1.0, len(config.workings)) * period
    assert len(unit) == n
    return unit, heading, phase


def _layout(config: MineConfig, codes: list[str], templates: list[SensorTemplate]) -> MineLayout:
    pairs = _substation_templates(config)
    refs = []
    counts: dict[tuple[str, str], int] = {}
    for station, name in pairs:
        counts[(station, name)] = counts.get((station, name), 0) + 1
        nth = counts[(station, name)]
        refs.append(f"{station}/{name}" + (f"#{nth}" if nth > 1 else ""))
    methane = np.array([t.is_methane for t in templates], bool)

    def arr(values: list[float | None], default: float) -> FloatArray:
        return np.array([default if v is None else v for v in values], np.float64)

    return MineLayout(
        codes=codes,
        refs=refs,
        station=[s for s, _ in pairs],
        baseline=np.array([t.baseline for t in templates], np.float64),
        range_low=arr([t.range[0] if t.range else None for t in templates], -np.inf),
        range_high=arr([t.range[1] if t.range else None for t in templates], np.inf),
        alarm=arr([t.alarm_high for t in templates], np.inf),
        accuracy=np.array([_accuracy(t) for t in templates], np.float64),
        poweroff=arr([t.poweroff_high for t in templates], np.inf),
        methane=methane,
        analog=np.array([t.is_analog for t in templates], bool),
        sensor_type=[t.sensor_type for t in templates],
        feed_of=dict(_cut_pairs(config)),
        edges=physics.build_edges(config, methane),
        roadways={r.name: [config.resolve(ref) for ref in r.points] for r in config.roadways},
        shearer_of=_shearer_pairs(config, templates, methane),
    )


def _shearer_pairs(
    config: MineConfig, templates: list[SensorTemplate], methane: BoolArray
) -> dict[int, int]:
    """Methane point whose local level follows the production -> the first shearer point
    (``SensorTemplate.shearer``) of its substation."""
    pairs = _substation_templates(config)
    first: dict[str, int] = {}
    for j, (station, _) in enumerate(pairs):
        if templates[j].shearer:
            first.setdefault(station, j)
    return {
        i: first[station]
        for i, (station, _) in enumerate(pairs)
        if methane[i] and templates[i].production_share > 0 and station in first
    }


def _accuracy(template: SensorTemplate) -> float:
    if template.accuracy is not None:
        return template.accuracy
    if template.is_methane and template.alarm_high is not None:
        return methane_accuracy(template.alarm_high)
    return math.nan


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


def _air_paths(
    config: MineConfig, templates: list[SensorTemplate]
) -> dict[int, list[tuple[int, float]]]:
    """Per methane point, the next methane points downstream on each roadway it is on, with
    the transport delay: the definition's ``downstream`` (what incidents group along)."""
    out: dict[int, list[tuple[int, float]]] = {}
    for roadway in config.roadways:
        gas = [
            (config.resolve(ref), delay)
            for ref, delay in zip(roadway.points, roadway.delays_s, strict=True)
            if templates[config.resolve(ref)].is_methane
        ]
        for (a, ta), (b, tb) in itertools.pairwise(gas):
            if a != b and all(j != b for j, _ in out.get(a, ())):
                out.setdefault(a, []).append((b, float(tb - ta)))
    return out


def _excursion_ratios(config: MineConfig, templates: list[SensorTemplate]) -> dict[int, float]:
    """Per methane point with a methane point downstream: half the smallest share of its
    gas that reaches the next one (the roadway's ``share``), written as the point's
    ``excursion_ratio``: a neighbour downstream that moves by less than that has not seen an
    excursion of the point (alarms/rules/neighbour_checks.py). What a mine sets from its
    ventilation survey."""
    out: dict[int, float] = {}
    for roadway in config.roadways:
        gas = [config.resolve(ref) for ref in roadway.points
               if templates[config.resolve(ref)].is_methane]  # fmt: skip
        for a, b in itertools.pairwise(gas):
            ratio = round(min(0.9, roadway.share / 2), 3)
            if a != b and ratio > 0:
                out[a] = min(out.get(a, ratio), ratio)
    return out


def _cut_pairs(config: MineConfig) -> list[tuple[int, int]]:
    """(methane point, feed point) pairs: the D relations of ``cuts_power_of``."""
    pairs = []
    by_station = _substation_templates(config)
    first: dict[tuple[str, str], int] = {}
    for j, key in enumerate(by_station):
        first.setdefault(key, j)
    for i, (station, name) in enumerate(by_station):
        target = config.templates[name].cuts_power_of
        if target is None:
            continue
        feed = first.get((station, target))
        if feed is not None and config.templates[target].sensor_type in FEED_SENSOR_TYPES:
            pairs.append((i, feed))
    return pairs


def _definition(config: MineConfig) -> MineDefinition:
    codes = _point_codes(config)
    by_station = _substation_templates(config)
    cut = dict(_cut_pairs(config))
    locations = {s.code: s.location for s in config.substations}
    sim = config.simulation
    # The personnel area of a working (simulators/feeds.py numbers them FIRST_WORKING + i):
    # its sensors sit in it, so gas, fans, people and cameras of a working share one area.
    # A belt or transport roadway outside the workings is an area of its own (FIRST_HAULAGE +
    # j): its CO, smoke and temperature points share it (the fire fusion F04 joins on it).
    area_of = {
        station: f"{config.mine.code}{suffix:04d}"
        for station, suffix in config.area_suffixes().items()
    }
    paths = _air_paths(config, [config.templates[name] for _, name in by_station])
    ratios = _excursion_ratios(config, [config.templates[name] for _, name in by_station])
    # CO points where vehicles pass (belt and transport roadways): short CO puffs are exhaust
    vehicles = {config.resolve(ref) for r in config.roadways if r.kind in ("belt", "transport")
                for ref in r.points}  # fmt: skip
    points = []
    for i, (station, name) in enumerate(by_station):
        t = config.templates[name]
        relations = (Relation(kind="D", target=codes[cut[i]]),) if i in cut else ()
        downstream = tuple(AirPath(target=codes[j], delay_s=d) for j, d in paths.get(i, ()))
        points.append(
            PointDefinition(
                code=codes[i],
                substation=station,
                sensor_type=t.sensor_type,
                unit=t.unit,
                location=f"{locations[station]}{t.location}",
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
                downstream=downstream,
                poll_cycle_s=sim.cycle_s,
                alarm_state=t.alarm_state,
                off_delay_s=t.off_delay_s,
                area_code=area_of.get(station),
                interruption_cycles=math.ceil(sim.interruption_after_s / sim.cycle_s),
                control_time_s=sim.control_time_s,
                co_puff_max_s=sim.co_puff_max_s
                if i in vehicles and t.sensor_type == CO_SENSOR_TYPE
                else None,
                cross_check_s=sim.cross_check_s if t.is_methane else None,
                excursion_ratio=ratios.get(i),
            )
        )
    return MineDefinition(
        mine=config.mine,
        substations=tuple(
            SubstationDefinition(code=s.code, location=s.location) for s in config.substations
        ),
        points=tuple(points),
    )
