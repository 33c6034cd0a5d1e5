"""Every scenario kind is labelled and visible in the readings as docs/simulator.md says."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from minewatch.codes import PointStatus
from minewatch.simulators.config import SCENARIO_KINDS
from minewatch.simulators.model import SimulatedMine
from minewatch.simulators.scenarios import LABEL_KIND
from minewatch.trace import GroundTruth
from tests.simulators.helpers import Run, run, showcase_mine


@pytest.fixture(scope="module")
def showcase() -> tuple[SimulatedMine, Run]:
    mine = showcase_mine()
    return mine, run(mine, 9600)


def _roots(mine: SimulatedMine, kind: str) -> list[GroundTruth]:
    return [g for g in mine.ground_truth if g.kind == kind and g.cause is None]


def _point(mine: SimulatedMine, truth: GroundTruth) -> int:
    return mine.codes.index(truth.point)


def _feed(mine: SimulatedMine, point: int) -> int:
    [relation] = mine.definition.points[point].relations
    return mine.codes.index(relation.target)


def test_every_kind_appears_in_the_ground_truth(showcase: tuple[SimulatedMine, Run]) -> None:
    mine, _ = showcase
    # a kind labelled as another (LABEL_KIND) has its own test: tests/simulators/test_cutting.py;
    # and a fire's evidence: the warming of its temperature points, the smoke on the belt
    evidence = {"fire_temperature", "fire_smoke"}
    assert {g.kind for g in mine.ground_truth} == (set(SCENARIO_KINDS) - set(LABEL_KIND)) | evidence
    assert mine.ground_truth[0].kind == "methane_exceedance"
    for g in mine.ground_truth:
        assert g.start_s < g.end_s
        if g.cause is not None:
            assert mine.ground_truth[g.cause].cause is None


def test_exceedances_reach_their_peak_and_power_off_level_ones_cut_the_feed(
    showcase: tuple[SimulatedMine, Run],
) -> None:
    mine, data = showcase
    alarm_level, poweroff_level = _roots(mine, "methane_exceedance")
    for truth in (alarm_level, poweroff_level):
        p = _point(mine, truth)
        window = data.value[data.rows(truth.start_s, truth.end_s), p]
        assert window.max() == pytest.approx(truth.peak, abs=0.2)
        assert data.value[data.rows(truth.start_s - 60, truth.start_s), p].max() < 1.0
    assert alarm_level.peak is not None and 1.0 <= alarm_level.peak < 1.5
    p = _point(mine, poweroff_level)
    rows = data.rows(poweroff_level.start_s, poweroff_level.end_s)
    cut = data.value[rows, p] >= 1.5
    assert cut.any() and not data.value[rows, _feed(mine, p)][cut].any()


def test_accumulation_is_slow_and_an_outburst_is_fast_and_over_range(
    showcase: tuple[SimulatedMine, Run],
) -> None:
    mine, data = showcase
    [slow] = _roots(mine, "methane_accumulation")
    series = data.value[data.rows(slow.start_s, slow.end_s), _point(mine, slow)]
    assert series.argmax() > 0.6 * len(series)
    [fast] = _roots(mine, "outburst")
    p = _point(mine, fast)
    series = data.value[data.rows(fast.start_s, fast.end_s), p]
    assert series.argmax() < 0.1 * len(series)
    high = mine.definition.points[p].range_high
    status = data.status[data.rows(fast.start_s, fast.end_s), p]
    assert (series > high).any()
    assert ((status & PointStatus.OVER_RANGE) != 0).tolist() == (series > high).tolist()
    derived = [g for g in mine.ground_truth if g.kind == "over_range" and g.point == fast.point]
    assert derived and derived[0].cause == mine.ground_truth.index(fast)


def test_over_range_sets_status_8_and_is_the_only_way_above_the_range(
    showcase: tuple[SimulatedMine, Run],
) -> None:
    mine, data = showcase
    [truth] = _roots(mine, "over_range")
    p = _point(mine, truth)
    rows = data.rows(truth.start_s, truth.end_s)
    assert (data.status[rows, p] & PointStatus.OVER_RANGE).any()
    points = mine.definition.points
    high = np.array([q.range_high if q.range_high is not None else np.inf for q in points])
    low = np.array([q.range_low if q.range_low is not None else -np.inf for q in points])
    allowed_high = np.zeros(data.value.shape, bool)
    allowed_low = np.zeros(data.value.shape, bool)
    for g in mine.ground_truth:
        if g.kind == "over_range":
            allowed_high[data.rows(g.start_s - 1, g.end_s + 1), mine.codes.index(g.point)] = True
        if g.kind == "negative_drift":
            allowed_low[data.rows(g.start_s, g.end_s), mine.codes.index(g.point)] = True
    assert not ((data.value > high) & ~allowed_high).any()
    assert not ((data.value < low) & ~allowed_low).any()
    assert ((data.value > high) == ((data.status & PointStatus.OVER_RANGE) != 0)).all()


def test_a_power_off_failure_keeps_the_feed_on_above_the_power_off_level(
    showcase: tuple[SimulatedMine, Run],
) -> None:
    mine, data = showcase
    [truth] = _roots(mine, "power_off_failure")
    p = _point(mine, truth)
    assert truth.related == mine.codes[_feed(mine, p)]
    rows = data.rows(truth.start_s, truth.end_s)
    assert data.value[rows, p].max() >= 1.5
    assert data.value[rows, _feed(mine, p)].tolist() == [1.0] * (rows.stop - rows.start)
    gas = [g for g in mine.ground_truth if g.cause == mine.ground_truth.index(truth)]
    assert [g.kind for g in gas] == ["methane_exceedance"] and gas[0].point == truth.point


def test_declared_and_undeclared_calibrations(showcase: tuple[SimulatedMine, Run]) -> None:
    mine, data = showcase
    [declared] = _roots(mine, "calibration")
    [undeclared] = _roots(mine, "undeclared_calibration")
    [filed] = mine.calibration_declarations
    assert (filed.point, filed.start_s, filed.end_s) == (
        declared.point, declared.start_s, declared.end_s
    )  # fmt: skip
    assert filed.declared_at_s < filed.start_s
    for truth, flagged in ((declared, True), (undeclared, False)):
        p = _point(mine, truth)
        rows = data.rows(truth.start_s, truth.end_s)
        on_gas = np.abs(data.value[rows, p] - truth.peak) <= 0.05
        assert on_gas.mean() >= 0.5  # what the alarm engine's undeclared rule looks for
        bits = (data.status[rows, p] & PointStatus.CALIBRATION) != 0
        assert bits.all() if flagged else not bits.any()
        outside = data.rows(truth.end_s, truth.end_s + 60)
        assert not (data.status[outside, p] & PointStatus.CALIBRATION).any()


def test_disconnections_in_both_representations(showcase: tuple[SimulatedMine, Run]) -> None:
    mine, data = showcase
    by_mode = {g.detail: g for g in _roots(mine, "disconnection")}
    flagged = by_mode["status"]
    p = _point(mine, flagged)
    rows = data.rows(flagged.start_s, flagged.end_s)
    assert (data.status[rows, p] == PointStatus.SENSOR_FAULT).all()
    assert (data.value[rows, p] == 0.0).all() and data.present[rows, p].all()
    silent = by_mode["silent"]
    rows = data.rows(silent.start_s, silent.end_s)
    assert not data.present[rows, _point(mine, silent)].any()
    assert data.present[rows.stop :, _point(mine, silent)][:10].all()


def test_negative_drift_stuck_sensor_and_spikes(showcase: tuple[SimulatedMine, Run]) -> None:
    mine, data = showcase
    [drift] = _roots(mine, "negative_drift")
    p = _point(mine, drift)
    rows = data.rows(drift.start_s, drift.end_s)
    late = data.value[rows, p][int(0.4 * (rows.stop - rows.start)) :]
    assert (late < 0).mean() > 0.9 and late.mean() == pytest.approx(drift.peak, abs=0.03)
    [stuck] = _roots(mine, "stuck")
    series = data.value[data.rows(stuck.start_s, stuck.end_s), _point(mine, stuck)]
    assert len(series) == 1000 and len(set(series.tolist())) == 1
    spikes = _roots(mine, "interference")
    assert len(spikes) == 3
    for spike in spikes:
        p = _point(mine, spike)
        k = int(spike.start_s)
        assert spike.end_s - spike.start_s == 1.0
        assert data.value[k, p] == pytest.approx(spike.peak, abs=0.006)
        assert data.value[k - 1, p] < 1.0 and data.value[k + 1, p] < 1.0
    assert max(s.peak or 0 for s in spikes) == 3.0


def test_substation_communication_loss(showcase: tuple[SimulatedMine, Run]) -> None:
    mine, data = showcase
    by_mode = {g.detail: g for g in _roots(mine, "substation_comm_loss")}
    for mode, truth in by_mode.items():
        assert truth.point == ""
        points = np.flatnonzero(mine.substation_of == truth.substation)
        rows = data.rows(truth.start_s, truth.end_s)
        window = data.status[rows][:, points]
        assert ((window & PointStatus.SUBSTATION_FAULT) != 0).all()
        assert data.present[rows][:, points].all() == (mode == "status")
        held = data.value[rows][:, points]
        assert (held == held[0]).all()  # the last values before the loss, frozen
    assert set(by_mode) == {"status", "silent"}


def test_vehicle_exhaust_moves_along_the_roadway(showcase: tuple[SimulatedMine, Run]) -> None:
    mine, data = showcase
    passes = _roots(mine, "vehicle_co")
    assert len(passes) == 2  # the two CO points of the transport roadway
    starts = [g.start_s for g in passes]
    assert starts == sorted(starts) and starts[0] < starts[-1]
    for g in passes:
        p = _point(mine, g)
        assert g.related == "01辅运巷"
        window = data.value[data.rows(g.start_s, g.end_s), p]
        assert window.max() >= 24  # a CO alarm, from exhaust
        assert data.value[data.rows(g.start_s - 60, g.start_s), p].max() < 15


def test_fan_stop_is_labelled_with_its_gas(showcase: tuple[SimulatedMine, Run]) -> None:
    mine, data = showcase
    [stop] = _roots(mine, "fan_stop")
    fan = _point(mine, stop)
    rows = data.rows(stop.start_s, stop.end_s)
    assert not data.value[rows, fan].any()
    caused = [g for g in mine.ground_truth if g.cause == mine.ground_truth.index(stop)]
    assert caused and all(g.kind == "methane_exceedance" for g in caused)


def test_random_scenarios_are_drawn_from_the_seed_without_overlaps() -> None:
    first = [g for g in showcase_mine(rate_per_hour=6).ground_truth if g.start_s > 9000]
    again = [g for g in showcase_mine(rate_per_hour=6).ground_truth if g.start_s > 9000]
    assert first == again
    roots = [g for g in first if g.cause is None]
    assert len(roots) > 50
    assert len({g.kind for g in roots}) >= 10
    by_station: dict[str, list[GroundTruth]] = {}
    for g in roots:
        if g.kind not in ("interference", "vehicle_co"):
            by_station.setdefault(g.substation, []).append(g)
    for labels in by_station.values():
        labels.sort(key=lambda g: g.start_s)
        assert all(a.end_s <= b.start_s for a, b in itertools.pairwise(labels))


def test_a_smouldering_fire_rises_slowly_and_a_drifting_sensor_reads_a_fraction() -> None:
    """Issue 13: ``co_fire`` (tens of minutes to its peak) and ``sensor_drift`` (a catalytic
    sensor reading a fraction of the gas, never below zero, while its neighbours read gas);
    CO points where vehicles pass carry ``co_puff_max_s`` in the definition."""
    from minewatch.simulators.config import MineConfig, example_mine_path, load_mine_config

    data = load_mine_config(example_mine_path("small")).model_dump(mode="json")
    data["scenarios"] = [
        {"kind": "co_fire", "substation": "001", "sensor": "CO", "start_s": 100,
         "duration_s": 1800, "peak": 58},
        {"kind": "sensor_drift", "substation": "005", "sensor": "CH4_MAIN", "start_s": 100,
         "duration_s": 2500, "peak": 0.02},
    ]  # fmt: skip
    mine = SimulatedMine(MineConfig.model_validate(data))
    fire, drift = [g for g in mine.ground_truth if g.cause is None]
    assert (fire.kind, fire.peak, drift.kind, drift.peak) == ("co_fire", 58, "sensor_drift", 0.02)
    values = run(mine, 2700)
    co = _point(mine, fire)
    series = values.value[:, co]
    first_alarm = int(np.argmax(series >= 24))
    assert first_alarm - 100 > 300  # a slow rise: minutes to the alarm level, not seconds
    assert series.max() == pytest.approx(58, abs=4) and series[-300:].max() < 10
    main, downstream = _point(mine, drift), mine.point_index("005", "CH4_MAIN#2")
    late = values.value[values.rows(1000, 2600)]
    assert late[:, main].mean() == pytest.approx(0.02, abs=0.015) and late[:, main].min() >= 0
    assert late[:, downstream].mean() > 0.1
    puffs = {p.code for p in mine.definition.points if p.co_puff_max_s == 180.0}
    belt = {mine.codes[mine.point_index("005", f"CO{n}")] for n in ("", "#2", "#3")}
    assert puffs == belt  # the belt roadway's CO points, not the face's


def test_a_fire_warms_its_substation_and_smokes_on_the_belt_and_exhaust_does_neither() -> None:
    """Issue 13, fourth step: a ``co_fire`` raises the temperature points of its CO point's
    substation by ``temperature_rise`` at its peak (``fire_temperature`` labels) and sets the
    smoke sensor there while the fire is past half its peak (``fire_smoke``); a vehicle's
    exhaust on the same belt moves neither. The belt's points share one personnel area (the
    fire fusion's join), apart from the faces'."""
    from minewatch.simulators.config import MineConfig, example_mine_path, load_mine_config

    data = load_mine_config(example_mine_path("small")).model_dump(mode="json")
    data["scenarios"] = [
        {"kind": "vehicle_co", "roadway": "主运输皮带巷", "start_s": 60, "duration_s": 120,
         "peak": 60},
        {"kind": "co_fire", "substation": "005", "sensor": "CO#2", "start_s": 900,
         "duration_s": 1200, "peak": 58, "temperature_rise": 5.0},
    ]  # fmt: skip
    mine = SimulatedMine(MineConfig.model_validate(data))
    roots = [g for g in mine.ground_truth if g.cause is None]
    fire = next(g for g in roots if g.kind == "co_fire")
    evidence = [g for g in mine.ground_truth if g.cause == mine.ground_truth.index(fire)]
    temps = [mine.point_index("005", "TEMP"), mine.point_index("005", "TEMP#2")]
    smoke = mine.point_index("005", "SMOKE")
    assert sorted((g.kind, g.point) for g in evidence) == sorted(
        [("fire_temperature", mine.codes[q]) for q in temps] + [("fire_smoke", mine.codes[smoke])]
    )
    [smoky] = [g for g in evidence if g.kind == "fire_smoke"]
    assert (smoky.start_s, smoky.end_s) == (900 + 0.425 * 1200, 900 + 0.925 * 1200)
    assert all(g.peak == 29.0 and g.related == fire.point for g in evidence
               if g.kind == "fire_temperature")  # fmt: skip
    values = run(mine, 2200)
    before = values.value[values.rows(0, 900)]
    assert before[:, smoke].max() == 0  # the exhaust puff: no smoke ...
    assert (before[:, temps].max(axis=0) < 25).all()  # ... and no warming
    at_peak = values.value[values.rows(900 + 0.8 * 1200, 900 + 0.85 * 1200)]
    assert (at_peak[:, temps].mean(axis=0) > 28).all()  # 24 °C + most of the 5 °C
    on = values.value[:, smoke] == 1
    assert on.any() and values.t[on].min() == smoky.start_s
    assert values.t[on].max() == smoky.end_s - 1
    assert values.value[values.rows(2150, 2200)][:, temps].max() < 25  # put out: cools back
    areas = {p.area_code for p in mine.definition.points if p.substation == "005"}
    face = {p.area_code for p in mine.definition.points if p.substation == "001"}
    assert len(areas) == 1 and None not in areas and areas.isdisjoint(face)
