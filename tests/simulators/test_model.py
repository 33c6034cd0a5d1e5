"""The simulated mine: the small example, determinism, production cycle, airflow."""

from __future__ import annotations

import numpy as np

from minewatch.simulators.config import ScenarioConfig, example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from tests.simulators.helpers import run


def _small(**simulation: object) -> SimulatedMine:
    config = load_mine_config(example_mine_path("small"))
    if simulation:
        config = config.model_copy(
            update={"simulation": config.simulation.model_copy(update=simulation)}
        )
    return SimulatedMine(config)


def _with_scenarios(*scenarios: ScenarioConfig, **simulation: object) -> SimulatedMine:
    config = load_mine_config(example_mine_path("small"))
    update: dict[str, object] = {"scenarios": list(scenarios)}
    if simulation:
        update["simulation"] = config.simulation.model_copy(update=simulation)
    return SimulatedMine(config.model_copy(update=update))


def test_small_mine_keeps_its_shape_and_its_single_injected_exceedance() -> None:
    mine = _small()
    assert len(mine.definition.substations) == 6
    assert len(mine.codes) == 47  # with the belt's smoke sensor (issue 13, fourth step)
    assert len(mine.substation_of) == 47
    [truth] = mine.ground_truth
    point = mine.point_index("001", "CH4_T1")
    assert (truth.kind, truth.point, truth.start_s, truth.end_s) == (
        "methane_exceedance", mine.codes[point], 20.0, 50.0
    )  # fmt: skip
    cycles = [mine.next_cycle() for _ in range(70)]
    value = np.array([c.value for c in cycles])
    assert [c.index for c in cycles] == list(range(70))
    assert [c.offset_s for c in cycles] == [float(i) for i in range(70)]
    assert all(c.status.dtype == np.int64 and not c.status.any() for c in cycles)
    alarm = np.array([p.alarm_high if p.alarm_high is not None else np.inf
                      for p in mine.definition.points])  # fmt: skip
    above = value >= alarm
    assert np.flatnonzero(above.any(axis=0)).tolist() == [point]
    assert np.flatnonzero(above[:, point]).min() >= 20
    assert np.flatnonzero(above[:, point]).max() < 50
    assert value[:, point].max() > 1.5
    feed = mine.point_index("001", "FEED")
    assert value[value[:, point] >= 1.5, feed].tolist() == [0.0] * int(
        (value[:, point] >= 1.5).sum()
    )
    assert value[:20, feed].tolist() == [1.0] * 20


def test_cycle_by_cycle_equals_block_by_block() -> None:
    a, b = _small(), _small()
    cycles = [a.next_cycle() for _ in range(700)]
    blocks = run(b, 700)
    assert np.array_equal(np.array([c.value for c in cycles]), blocks.value)
    assert np.array_equal(np.array([c.status for c in cycles]), blocks.status)


def test_another_seed_gives_other_readings() -> None:
    assert not np.array_equal(run(_small(), 50).value, run(_small(seed=8), 50).value)


def test_methane_follows_the_production_cycle_maintenance_then_cutting() -> None:
    import datetime as dt

    start = dt.datetime(2024, 3, 1, 7, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    mine = _small(start=start)
    data = run(mine, 3 * 3600)
    face = data.value[:, mine.point_index("001", "CH4_T1")]
    maintenance = face[:3600].mean()  # 07:00-08:00, 夜班 (检修)
    cutting = face[2 * 3600 :].mean()  # 09:00-10:00, 早班 cutting
    assert cutting > 1.2 * maintenance


def test_return_airway_methane_lags_and_follows_the_face() -> None:
    accumulation = ScenarioConfig(
        kind="methane_accumulation", substation="001", sensor="CH4_T1", start_s=300,
        duration_s=900, peak=1.4,
    )  # fmt: skip
    mine = _with_scenarios(accumulation)
    data = run(mine, 1800)
    face = data.value[:, mine.point_index("001", "CH4_T1")]
    ret = data.value[:, mine.point_index("001", "CH4_T2")]
    lags = np.arange(0, 300)
    corr = [np.corrcoef(face[: len(face) - k], ret[k:])[0, 1] for k in lags]
    # transport delay 120 s, then a 24 s moving average: centred about 131 s later
    assert 110 <= lags[int(np.argmax(corr))] <= 150
    assert np.corrcoef(face[:-120], ret[120:])[0, 1] > 0.9
    assert ret.max() > ret[:300].mean() + 0.2  # it really carries gas downstream
    assert ret.argmax() > face.argmax()


def test_a_fan_stop_raises_gas_downstream_drops_the_wind_and_cuts_power() -> None:
    stop = ScenarioConfig(
        kind="fan_stop", substation="003", sensor="FAN", start_s=60, duration_s=900, peak=1.8
    )
    mine = _with_scenarios(stop)
    data = run(mine, 1500)
    on = data.rows(60, 960)
    fan = mine.point_index("003", "FAN")
    assert data.value[on, fan].tolist() == [0.0] * 900
    assert data.value[:60, fan].tolist() == [1.0] * 60
    face = data.value[:, mine.point_index("003", "CH4_HT1")]
    ret = data.value[:, mine.point_index("003", "CH4_HT2")]
    assert face[on].max() > 1.5 and face[:60].max() < 0.6
    assert ret[on].max() > ret[:60].mean() + 0.5
    assert data.value[on, mine.point_index("003", "WIND")].mean() < 0.25  # below alarm_low
    assert not data.value[on, mine.point_index("003", "FEED")].any()  # 风电闭锁
    [truth, *derived] = mine.ground_truth
    assert (truth.kind, truth.point) == ("fan_stop", mine.codes[fan])
    assert {d.point for d in derived} >= {mine.codes[mine.point_index("003", "CH4_HT1")]}
    assert all(d.cause == 0 for d in derived)


def test_readings_respect_the_resolution_and_the_range() -> None:
    mine = _small()
    data = run(mine, 600)
    points = mine.definition.points
    low = np.array([p.range_low if p.range_low is not None else -np.inf for p in points])
    high = np.array([p.range_high if p.range_high is not None else np.inf for p in points])
    assert ((data.value >= low) & (data.value <= high)).all()
    ch4 = mine.point_index("001", "CH4_T0")
    steps = data.value[:, ch4] / 0.01
    assert np.allclose(steps, np.round(steps), atol=1e-6)
