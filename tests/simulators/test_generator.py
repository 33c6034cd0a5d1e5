"""Generated mines: distinct codes, sizes, TOML round trips, the shipped large mine."""

from __future__ import annotations

import tomllib

import pytest

from simulators.config import MineConfig, example_mine_path, load_mine_config
from simulators.generator import generate_mine, generate_mines, mine_code, to_toml
from simulators.model import SimulatedMine


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
    regenerated = generate_mine("141024900001", 2000, showcase=True, rate_per_hour=1.0)
    assert large == regenerated
