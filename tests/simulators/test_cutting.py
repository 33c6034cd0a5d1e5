"""The shearer's on/off point and the cutting accumulation (issue 17, session 6): methane
emission coupled to the production state, and its labels (docs/simulator.md)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from minewatch.simulators.config import MineConfig, example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from tests.simulators.helpers import run

SHEARER: dict[str, Any] = {"sensor_type": "1004", "location": "采煤机", "desc_on": "开",
                           "desc_off": "停", "baseline": 1.0, "resolution": 1.0,
                           "shearer": True}  # fmt: skip
START, DURATION, TAU = 3000.0, 1500.0, 400.0


def cutting_config(scenarios: list[dict[str, Any]] | None = None) -> MineConfig:
    """The small mine (08:00 start: no cutting before 08:30) with a shearer point on both
    longwall substations, and a cutting accumulation at each face: above and below the
    level."""
    data = load_mine_config(example_mine_path("small")).model_dump(mode="json")
    data["templates"]["SHEARER"] = SHEARER
    for s in data["substations"]:
        if s["code"] in ("001", "002"):
            s["sensors"].append("SHEARER")
    data["random_scenarios"] = {"rate_per_hour": 0.0}
    data["scenarios"] = scenarios if scenarios is not None else [
        {"kind": "cutting_accumulation", "substation": "001", "sensor": "CH4_T1",
         "start_s": START, "duration_s": DURATION, "peak": 1.4, "tau_s": TAU},
        {"kind": "cutting_accumulation", "substation": "002", "sensor": "CH4_T1",
         "start_s": START, "duration_s": DURATION, "peak": 0.8, "tau_s": TAU},
    ]  # fmt: skip
    return MineConfig.model_validate(data)


@pytest.fixture(scope="module")
def mine_run() -> tuple[SimulatedMine, Any]:
    mine = SimulatedMine(cutting_config())
    return mine, run(mine, 6600)


def test_the_shearer_shows_the_cutting_and_the_scenario_stops_and_restarts_it(
    mine_run: tuple[SimulatedMine, Any],
) -> None:
    mine, data = mine_run
    shearer = mine.point_index("001", "SHEARER")
    other = mine.point_index("002", "SHEARER")
    assert mine.definition.points[shearer].sensor_type == "1004"
    v = data.value[:, shearer]

    def at(a: float, b: float, column: np.ndarray = v) -> set[float]:
        return set(column[data.rows(a, b)].tolist())

    assert at(0, 1800) == {0.0}  # the morning shift's handover: no cutting before 08:30
    assert at(1801, START - 600) == {1.0}
    assert at(START - 600, START) == {0.0}  # stands before the restart
    assert at(START, START + DURATION) == {1.0}
    assert at(START + DURATION, START + DURATION + 3 * TAU) == {0.0}  # stopped for the gas
    assert at(START + DURATION + 3 * TAU, 6600) == {1.0}
    assert at(1801, START - 600, data.value[:, other]) == {1.0}


def test_the_face_emission_rises_within_minutes_of_the_start_and_decays_after_the_stop(
    mine_run: tuple[SimulatedMine, Any],
) -> None:
    mine, data = mine_run
    p = mine.point_index("001", "CH4_T1")

    def mean(a: float, b: float) -> float:
        return float(data.value[data.rows(a, b), p].mean())

    before = mean(START - 300, START)
    assert before < 0.5
    # first order: about 63 % of the way up one tau after the start (the shape reaches the
    # peak at the stop: (1 - e^-1) / (1 - e^-DURATION/TAU) of it)
    expected = before + (1.4 - before) * (1 - np.exp(-1)) / (1 - np.exp(-DURATION / TAU))
    assert mean(START + TAU - 30, START + TAU + 30) == pytest.approx(expected, abs=0.12)
    assert mean(START + DURATION - 60, START + DURATION) == pytest.approx(1.4, abs=0.12)
    assert mean(START + DURATION + TAU - 30, START + DURATION + TAU + 30) < 1.0
    assert mean(START + DURATION + 3 * TAU, START + DURATION + 3 * TAU + 300) < 0.5


def test_labels_an_accumulation_told_apart_as_cutting_with_its_exceedance(
    mine_run: tuple[SimulatedMine, Any],
) -> None:
    mine, _ = mine_run
    roots = [g for g in mine.ground_truth if g.cause is None]
    above, below = roots
    for root, station in ((above, "001"), (below, "002")):
        assert root.kind == "methane_accumulation" and root.detail == "cutting"
        assert root.point == mine.codes[mine.point_index(station, "CH4_T1")]
        assert root.related == mine.codes[mine.point_index(station, "SHEARER")]
        assert (root.start_s, root.end_s) == (START, START + DURATION)
    assert above.peak == pytest.approx(1.4, abs=0.01)
    assert below.peak == pytest.approx(0.8, abs=0.01)
    derived = [g for g in mine.ground_truth if g.cause is not None]
    at_above = [g for g in derived if g.point == above.point]
    assert [g.kind for g in at_above] == ["methane_exceedance"]
    assert at_above[0].start_s > START + 300  # the level is passed minutes after the start
    assert not [g for g in derived if g.point == below.point]  # stays below the level


def test_a_cutting_accumulation_needs_a_shearer_on_its_substation() -> None:
    with pytest.raises(ValueError, match="no shearer point"):
        cutting_config([{"kind": "cutting_accumulation", "substation": "003",
                         "sensor": "CH4_HT1", "start_s": 100, "duration_s": 600,
                         "peak": 1.2}])  # fmt: skip


def test_random_cutting_accumulations_are_drawn_at_points_that_follow_the_production() -> None:
    data = cutting_config([]).model_dump(mode="json")
    data["random_scenarios"] = {"per_day": {"cutting_accumulation": 200.0},
                                "cutting_tau_s": [500.0, 600.0]}  # fmt: skip
    mine = SimulatedMine(MineConfig.model_validate(data))
    cuts = [s.config for s in mine.scenarios]
    assert len(cuts) > 5 and {c.kind for c in cuts} == {"cutting_accumulation"}
    assert {c.substation for c in cuts} <= {"001", "002"}
    assert all(500.0 <= c.tau_s <= 600.0 for c in cuts)
