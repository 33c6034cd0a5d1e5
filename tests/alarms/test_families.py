"""The rule-family registry (alarms/families.py): every family has a per-reading reference and
fires on its own hand-made series, engine and reference alike. A family added to the registry
without a reference method or without a series here fails these tests."""

from __future__ import annotations

import inspect

import pytest

from minewatch.alarms.codes import RULES
from minewatch.alarms.engine import EngineState
from minewatch.alarms.families import FAMILIES, RUN_RULES, Family
from minewatch.alarms.reference import ReferenceEngine
from minewatch.alarms.rules.params import RuleDefaults
from minewatch.batch import ReadingBatch
from minewatch.registry import PointRegistry
from tests.alarms.helpers import T0, S, registry
from tests.alarms.test_reference_differential import assert_same_episodes, batch_of, run_both

POLL = {"poll_cycle_s": 1.0}
SWITCH = {"value_type": "KG", "alarm_high": None, "alarm_high_clear": None,
          "poweroff_high": None, "restore_high": None, "range_low": None, "range_high": None,
          **POLL}  # fmt: skip
Plan = list[ReadingBatch | int]


def thresholds() -> tuple[PointRegistry, Plan]:
    """An exceedance, then a one-reading spike (interference)."""
    values = [0.3, 1.2, 1.3, 0.3, 3.5, 0.3]
    return registry(POLL), [batch_of([(t, 1, v, 0) for t, v in enumerate(values)])]


def calibration() -> tuple[PointRegistry, Plan]:
    """Test gas flagged with status bit 4."""
    rows = [(t, 1, v, 4 if 1 <= t <= 3 else 0) for t, v in enumerate([0.0, 2.0, 2.0, 2.0, 0.0])]
    return registry(POLL), [batch_of(rows)]


def faults() -> tuple[PointRegistry, Plan]:
    """A disconnected sensor (status bit 128)."""
    rows = [(t, 1, 0.3, 128 if t in (2, 3) else 0) for t in range(5)]
    return registry(POLL), [batch_of(rows)]


def states() -> tuple[PointRegistry, Plan]:
    """A local fan (1001) that stops: its alarm state is 0."""
    fan = {**SWITCH, "sensor_type": "1001", "alarm_state": 0}
    rows = [(t, 1, v, 0) for t, v in enumerate([1.0, 0.0, 0.0, 0.0, 1.0])]
    return registry(fan), [batch_of(rows)]


def feed() -> tuple[PointRegistry, Plan]:
    """A cut the feed never follows."""
    cutting = {"relations": [{"kind": "D", "target": "P2"}], **POLL}
    methane = [0.3, 1.6, 1.7, 1.7, 1.7, 0.3]
    rows = [(t, 1, v, 0) for t, v in enumerate(methane)] + [(t, 2, 1.0, 0) for t in range(6)]
    return registry(cutting, {**SWITCH, "sensor_type": "1011"}), [batch_of(sorted(rows))]


def interruption() -> tuple[PointRegistry, Plan]:
    """A point that falls silent, seen by the clock."""
    return registry(POLL), [batch_of([(0, 1, 0.3, 0), (1, 1, 0.3, 0)]), T0 + 30 * S]


CO = {
    "sensor_type": "0004",
    "range_low": 0.0,
    "range_high": 1000.0,
    "alarm_high": 24.0,
    "alarm_high_clear": 24.0,
    "poweroff_high": None,
    "restore_high": None,
    **POLL,
}


def co() -> tuple[PointRegistry, Plan]:
    """A vehicle's exhaust puff (short: suspected), then CO held at the level (fire candidate)."""
    values = [3.0] * 5 + [30.0, 40.0, 30.0] + [3.0] * 5 + [25.0] * 200 + [3.0]
    rows = [(t, 1, v, 0) for t, v in enumerate(values)]
    return registry({**CO, "co_puff_max_s": 120.0}), [batch_of(rows)]


def cross_check() -> tuple[PointRegistry, Plan]:
    """The middle of three methane points on one roadway reads far below the other two."""
    poll = {"poll_cycle_s": 10.0}
    chain = [{"downstream": [{"target": "P2", "delay_s": 60.0}], **poll},
             {"downstream": [{"target": "P3", "delay_s": 60.0}], "cross_check_s": 600.0, **poll},
             poll]  # fmt: skip
    rows = []
    for t in range(0, 2400, 10):
        rows += [(t, 1, 0.4, 0), (t, 2, 0.02 if t < 1800 else 0.3, 0), (t, 3, 0.35, 0)]
    return registry(*chain), [batch_of(rows[: len(rows) // 2]), batch_of(rows[len(rows) // 2 :]),
                              T0 + 2420 * S]  # fmt: skip


SERIES = {f.__name__: f for f in (thresholds, calibration, faults, states, feed, interruption,
                                  co, cross_check)}  # fmt: skip


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_every_family_has_a_reference_method(family: Family) -> None:
    reference = family.reference
    assert inspect.isfunction(reference), f"{family.name}: no reference implementation"
    assert getattr(ReferenceEngine, reference.__name__) is reference


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_every_family_fires_on_its_hand_made_series_in_engine_and_reference(
    family: Family,
) -> None:
    assert family.name in SERIES, f"{family.name}: no hand-made series in this test"
    reg, plan = SERIES[family.name]()
    engine, reference = run_both(reg, RuleDefaults(), plan)
    assert_same_episodes(engine, reference)
    raised = {e.rule for e in engine}
    assert raised & {*family.rules, *family.records}, f"{family.name} never fired: {raised}"


def test_the_registry_names_every_rule_once_with_its_code_and_the_engine_keeps_their_state() -> (
    None
):
    names = [rule for f in FAMILIES for rule in (*f.rules, *f.records)]
    assert len(names) == len(set(names))
    assert all(rule in RULES for rule in names)
    assert set(EngineState.empty(1).runs) == set(RUN_RULES)
