"""CO classes (alarms/rules/co.py) and sensor cross-checks (alarms/rules/cross_check.py) on
hand-made series, engine and reference alike, in any batching."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minewatch.alarms.episodes import Episode
from minewatch.alarms.rules.params import RuleDefaults
from minewatch.batch import ReadingBatch
from minewatch.registry import PointRegistry
from tests.alarms.helpers import T0, S, registry
from tests.alarms.test_reference_differential import assert_same_episodes, batch_of, run_both

CO = {"sensor_type": "0004", "range_low": 0.0, "range_high": 1000.0, "alarm_high": 24.0,
      "alarm_high_clear": 24.0, "poweroff_high": None, "restore_high": None,
      "poll_cycle_s": 1.0}  # fmt: skip
POLL10 = {"poll_cycle_s": 10.0}


def _both(reg: PointRegistry, plan: list[ReadingBatch | int]) -> list[Episode]:
    engine, reference = run_both(reg, RuleDefaults(), plan)
    assert_same_episodes(engine, reference)
    return engine


def _cuts(rows: list[tuple[int, int, float, int]], n: int) -> list[ReadingBatch | int]:
    size = -(-len(rows) // n)
    return [batch_of(rows[k : k + size]) for k in range(0, len(rows), size)]


@pytest.mark.parametrize("batches", [1, 7, 60])
def test_a_puff_where_vehicles_pass_is_suspected_exhaust_and_a_slow_rise_a_fire(
    batches: int,
) -> None:
    ramp = [3.0 + 0.04 * k for k in range(1500)]  # 3 -> 63 ppm over 25 minutes
    values = [3.0] * 10 + [40.0] * 70 + [3.0] * 20 + ramp + [3.0] * 5
    rows = [(t, 1, v, 0) for t, v in enumerate(values)]
    episodes = _both(registry({**CO, "co_puff_max_s": 180.0}), _cuts(rows, batches))
    alarms = [(e.rule, e.classification) for e in episodes if e.rule != "interference"]
    assert alarms == [("upper_alarm", "co_vehicle_suspected"), ("upper_alarm", "exceedance"),
                      ("co_fire_candidate", "exceedance")]  # fmt: skip
    fire = episodes[-1]
    assert fire.raised_us is not None and fire.raised_us - fire.start_us == 180 * S


def test_without_vehicles_a_co_alarm_stays_an_exceedance_and_a_puff_is_no_fire() -> None:
    values = [3.0] * 10 + [40.0] * 70 + [3.0] * 20
    episodes = _both(registry(CO), [batch_of([(t, 1, v, 0) for t, v in enumerate(values)])])
    assert [(e.rule, e.classification) for e in episodes] == [("upper_alarm", "exceedance")]


def _roadway(middle: list[float], upstream: float = 0.4, downstream: float = 0.35) -> tuple:
    chain = [{"downstream": [{"target": "P2", "delay_s": 60.0}], **POLL10},
             {"downstream": [{"target": "P3", "delay_s": 60.0}], **POLL10}, POLL10]  # fmt: skip
    rows = []
    for k, v in enumerate(middle):
        t = 10 * k
        rows += [(t, 1, upstream, 0), (t, 2, v, 0), (t, 3, downstream, 0)]
    return registry(*chain), rows


@pytest.mark.parametrize("batches", [1, 3, 50])
def test_a_sensor_reading_no_gas_between_neighbours_that_do_is_a_maintenance_alarm(
    batches: int,
) -> None:
    reg, rows = _roadway([0.3] * 60 + [0.02] * 300 + [0.3] * 90)  # 50 minutes low
    plan = [*_cuts(rows, batches), T0 + 4600 * S]
    episodes = [e for e in _both(reg, plan) if e.rule == "cross_check"]
    (e,) = episodes
    assert e.point == 2 and e.classification == "cross_check"
    assert e.raised_us is not None and e.raised_us - e.start_us >= 1800 * S
    assert e.end_us is not None and e.end_us > e.raised_us


def test_a_point_upstream_of_a_rise_or_beside_quiet_neighbours_is_not_flagged() -> None:
    # the neighbours read far more (a downstream rise, a test gas): the point still reads gas
    reg, rows = _roadway([0.25] * 400, upstream=1.2, downstream=2.0)
    assert not [e for e in _both(reg, [batch_of(rows), T0 + 4100 * S]) if e.rule == "cross_check"]
    # the neighbours read no gas either: nothing to compare
    reg, rows = _roadway([0.01] * 400, upstream=0.05, downstream=0.04)
    assert not [e for e in _both(reg, [batch_of(rows), T0 + 4100 * S]) if e.rule == "cross_check"]


@st.composite
def _random_roadway(draw: st.DrawFn) -> tuple[PointRegistry, RuleDefaults, list, list]:
    """Three methane points on one airflow path and a CO point, random series cut into
    batches in time order, with ticks no later than the readings less the lateness allow."""
    chain = [{"downstream": [{"target": "P2", "delay_s": 5.0}], "poll_cycle_s": 1.0},
             {"downstream": [{"target": "P3", "delay_s": 5.0}], "poll_cycle_s": 1.0,
              "cross_check_s": draw(st.sampled_from([None, 10.0, 20.0]))},
             {"poll_cycle_s": 1.0}]  # fmt: skip
    co = {**CO, "co_puff_max_s": draw(st.sampled_from([None, 4.0, 8.0])),
          "co_fire_after_s": draw(st.sampled_from([None, 3.0, 6.0])),
          "off_delay_s": draw(st.sampled_from([None, 2.0]))}  # fmt: skip
    reg = registry(*chain, co)
    defaults = RuleDefaults(
        cross_check_window_s=5.0, cross_check_s=15.0, allowed_lateness_s=3.0,
        confirm_samples=draw(st.sampled_from([1, 2])),
    )  # fmt: skip
    palettes = {1: [0.3, 0.4, 0.05], 2: [0.0, 0.02, 0.3, 0.35], 3: [0.3, 0.2, 0.08],
                4: [3.0, 20.0, 24.0, 30.0, 60.0]}  # fmt: skip
    rows = []
    for point, palette in palettes.items():
        t = 0
        for _ in range(draw(st.integers(5, 60))):
            value = draw(st.sampled_from(palette))
            status = draw(st.sampled_from([0, 0, 0, 0, 4, 128]))
            for _ in range(draw(st.integers(1, 6))):
                rows.append((t, point, value, status))
                t += draw(st.sampled_from([1, 1, 1, 2]))
    rows.sort()
    cuts = sorted(draw(st.lists(st.integers(0, len(rows)), max_size=8)))
    plan: list[ReadingBatch | int] = []
    for lo, hi in zip([0, *cuts], [*cuts, len(rows)], strict=True):
        if hi > lo:
            plan.append(batch_of(rows[lo:hi]))
            if draw(st.booleans()):
                plan.append(T0 + (rows[hi - 1][0] + draw(st.integers(0, 3))) * S)
    end = T0 + (rows[-1][0] + 60) * S
    return reg, defaults, [*plan, end], [batch_of(rows), end]


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
@given(_random_roadway())
def test_engine_and_reference_agree_in_any_batching(
    scenario: tuple[PointRegistry, RuleDefaults, list, list],
) -> None:
    reg, defaults, plan, whole = scenario
    engine, reference = run_both(reg, defaults, plan)
    assert_same_episodes(engine, reference)
    once, _ = run_both(reg, defaults, whole)
    assert_same_episodes(
        [e for e in engine if e.rule != "data_interruption"],
        [e for e in once if e.rule != "data_interruption"],
    )
