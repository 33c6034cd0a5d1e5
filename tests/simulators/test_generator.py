"""Generated mines: distinct codes, sizes, TOML round trips, the shipped large mine."""

from __future__ import annotations

import tomllib

import pytest

from minewatch.simulators.config import MineConfig, example_mine_path, load_mine_config
from minewatch.simulators.generator import generate_mine, generate_mines, mine_code, to_toml
from minewatch.simulators.model import SimulatedMine


def test_n_mines_have_distinct_codes_in_the_county() -> None:
    mines = generate_mines(5, 150, county="140105")
    codes = [m.mine.code for m in mines]
    assert len(set(codes)) == 5
    assert all(len(c) == 12 and c.isdigit() and c.startswith("140105") for c in codes)
    assert len({m.simulation.seed for m in mines}) == 5
    with pytest.raises(ValueError):
        mine_code(0, county="1410")


@pytest.mark.parametrize("points", [80, 500])
def test_a_generated_mine_has_about_the_points_asked_for(points: int) -> None:
    mine = SimulatedMine(generate_mine(mine_code(0), points))
    assert abs(len(mine.codes) - points) <= 40
    assert len(set(mine.codes)) == len(mine.codes)


def test_configs_survive_a_trip_through_toml() -> None:
    for config in (
        generate_mine(mine_code(3), 150, showcase=True),
        load_mine_config(example_mine_path("small")),
    ):
        assert MineConfig.model_validate(tomllib.loads(to_toml(config))) == config


def test_the_shipped_large_mine_is_the_generators_2000_point_mine() -> None:
    large = load_mine_config(example_mine_path("large"))
    points = sum(len(s.sensors) for s in large.substations)
    assert 1900 <= points <= 2100
    regenerated = generate_mine("141024900001", 2000, showcase=True, realistic=True)
    assert large == regenerated


def test_a_realistic_day_of_the_large_mine_has_the_documented_mix() -> None:
    """docs/simulator.md "A realistic day": ~34 calibrations (513 sensors / 15 days), most
    declared; at least 20 real exceedances at the alarm level and 20 at the power-off level."""
    mine = SimulatedMine(load_mine_config(example_mine_path("large")))
    kinds = [s.kind for s in mine.scenarios]
    calibrations = kinds.count("calibration") + kinds.count("undeclared_calibration")
    assert 25 <= calibrations <= 50 and kinds.count("calibration") > 3 * kinds.count(
        "undeclared_calibration"
    )
    layout = mine._layout
    gas = [s for s in mine.scenarios if s.kind == "methane_exceedance"]
    cut = sum(1 for s in gas if (s.config.peak or 0) >= layout.poweroff[s.point])
    assert cut >= 20 and len(gas) - cut >= 20
    assert kinds.count("interference") >= 10 and kinds.count("vehicle_co") >= 30
    assert sum(1 for s in mine.scenarios if s.kind == "disconnection"
               and s.config.duration_s <= 60) >= 10  # fmt: skip
