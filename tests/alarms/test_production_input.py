"""The production state as an input of the pre-alarm forecaster (issue 17, session 6,
alarms/production.py): hand-made series of a face's methane and its shearer's on/off point."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from minewatch.alarms.prealarms import PrealarmChange, PrealarmParams, Prealarms
from minewatch.alarms.rules.run_state import Rows

from .helpers import MINE, T0, S, registry
from .test_prealarms import noise

#: The shipped defaults' shape (slow trend, 30 readings), fixed here so tuning moves no test.
SLOW = PrealarmParams(horizon_s=1200.0, tau_s=60.0, slow_tau_s=400.0, z=3.0, confirm=30,
                      min_weight=60.0)  # fmt: skip
FACE = {"substation_code": "001"}
SHEARER = {"sensor_type": "1004", "alarm_high": None, "substation_code": "001"}
START = 600  # the shearer restarts (s)
N = 2400


def first_order(peak: float, tau: float, seed: int = 7) -> np.ndarray:
    """0.3 % until the restart, then towards ``peak`` with time constant ``tau``."""
    k = np.arange(N) - float(START)
    gas = 0.3 + np.where(k > 0, (peak - 0.3) * (1 - np.exp(-np.maximum(k, 0) / tau)), 0.0)
    return gas + noise(N, seed, sd=0.02)


def shearer(restart: bool = True) -> np.ndarray:
    """Stands 600 s before the restart (0), then cuts (1); or cuts all along."""
    k = np.arange(N)
    return np.where((k >= START) | (k < START - 600) | (not restart), 1.0, 0.0)


def run(pre: Prealarms, gas: np.ndarray, cutting: np.ndarray, cycles: int) -> list[PrealarmChange]:
    """Methane (point 1) and the shearer (point 2), a reading a second each, in batches of
    ``cycles`` cycles (1: the engine's one-cycle rows)."""
    out: list[PrealarmChange] = []
    for a in range(0, N, cycles):
        k = min(cycles, N - a)
        t = T0 + (a + np.arange(k)) * S
        make = Rows.distinct if k == 1 else Rows.of
        rows = make(np.repeat(np.array([1, 2], np.int32), k), np.concatenate([t, t]),
                    np.concatenate([gas[a : a + k], cutting[a : a + k]]),
                    np.zeros(2 * k, np.int16))  # fmt: skip
        outcome = pre.evaluate(rows, np.ones(2 * k, bool))
        if outcome is not None:
            out += [c for c in outcome.changes if c.point == 1]
            pre.commit(outcome)
    return out


def first_raise(changes: list[PrealarmChange]) -> float:
    raised = [c for c in changes if c.cleared_us is None]
    return (raised[0].raised_us - T0) / S if raised else float("inf")


def with_cut(tau: float, **more: float) -> Prealarms:
    params = dataclasses.replace(SLOW, cut_tau_s=tau, **more)  # type: ignore[arg-type]
    return Prealarms.of(registry(FACE, SHEARER), {MINE: params})


@pytest.mark.parametrize("cycles", [20, 1])
def test_a_rise_after_a_cutting_start_is_pre_alarmed_sooner(cycles: int) -> None:
    """The shearer restarts at 600 s and the face's methane tends to 1.6 % (tau 400 s: 1.0 %
    after about 270 s). With the production input (its tau 400 s) the pre-alarm comes
    earlier than without it, and minutes before the level."""
    gas = first_order(1.6, 400.0)
    reach = int(np.argmax(gas >= 1.0))
    on = with_cut(400.0)
    assert on.points.cutting.shearer[1] == 2 and on.points.target[1]
    assert not on.points.target[2]
    with_input = first_raise(run(on, gas, shearer(), cycles))
    without = first_raise(run(with_cut(0.0), gas, shearer(), cycles))
    assert with_input < reach - 120  # two minutes' warning at least
    assert with_input < without - 30


@pytest.mark.parametrize("cycles", [20, 1])
def test_a_cutting_start_that_settles_below_the_level_raises_nothing(cycles: int) -> None:
    """Towards 0.8 % after the restart: the straight line of the fast rise crosses 1.0 %
    within the horizon, the first-order response does not."""
    gas = first_order(0.8, 300.0, seed=9)
    assert gas.max() < 1.0
    assert first_raise(run(with_cut(300.0), gas, shearer(), cycles)) == float("inf")
    # without the input the rise alone is taken for a build-up (the case the input removes)
    assert first_raise(run(with_cut(0.0), gas, shearer(), cycles)) < float("inf")


@pytest.mark.parametrize("cycles", [20, 1])
def test_without_a_cutting_start_or_switched_off_nothing_changes(cycles: int) -> None:
    """A shearer cutting all along (no start seen), a start older than ``cut_window_s``, or
    the input off (``cut_tau_s`` 0): the same pre-alarms as with no shearer."""
    gas = first_order(1.6, 400.0)
    alone = Prealarms.of(registry(FACE, {"sensor_type": "0004", "alarm_high": 24.0}),
                         {MINE: SLOW})  # fmt: skip
    baseline = run(alone, gas, shearer(), cycles)
    assert first_raise(baseline) < float("inf")
    assert run(with_cut(400.0), gas, shearer(restart=False), cycles) == baseline
    assert run(with_cut(400.0, cut_window_s=100.0), gas, shearer(), cycles) == baseline
    off = with_cut(0.0)
    assert (off.points.cutting.shearer == -1).all()
    assert run(off, gas, shearer(), cycles) == baseline
