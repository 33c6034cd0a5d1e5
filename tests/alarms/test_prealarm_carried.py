"""A rise carried from upstream (``carry_delays``, issue 17, session 8): point 1 is upstream of
point 2 on the airflow path (60 s). A plume that reaches point 2 diluted below its level, after
point 1 has stopped rising, is no pre-alarm at point 2 with the input on (it was one without);
a rise of point 2's own, and a carried rise that does reach the level, are pre-alarmed as
before; the same pre-alarms in batches of 1, 7, 20 and 300 cycles."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from minewatch.alarms.prealarms import PrealarmParams, Prealarms
from minewatch.alarms.rules.run_state import Rows

from .helpers import MINE, T0, S, registry
from .test_prealarms import noise

#: Fixed here (a short fast trend, a slow one), so that tuning the defaults moves no test.
PARAMS = PrealarmParams(
    horizon_s=600.0, tau_s=30.0, slow_tau_s=400.0, z=3.0, confirm=10, min_weight=20.0
)
DELAY_S = 60.0
N = 2400
START = 600  # the upstream rise starts here


def carried(share: float, upstream: np.ndarray, spread_s: float = 150.0) -> np.ndarray:
    """Point 2's gas: point 1's excess ``DELAY_S`` later, diluted by ``share`` and spread
    (a first-order arrival, time constant ``spread_s``)."""
    late = np.concatenate([np.full(int(DELAY_S), 0.3), upstream[: -int(DELAY_S)]])
    out = np.empty(len(upstream))
    out[0] = 0.3
    for i in range(1, len(out)):
        out[i] = out[i - 1] + (0.3 + share * (late[i] - 0.3) - out[i - 1]) / spread_s
    return out


def step(peak: float) -> np.ndarray:
    """Point 1: a rise from 0.3 to ``peak`` within 30 s, then flat."""
    k = np.arange(N) - START
    return 0.3 + np.where(k > 0, (peak - 0.3) * np.minimum(k / 30.0, 1.0), 0.0)


def run(
    up: np.ndarray, down: np.ndarray, carry: float, cycles: int = 7
) -> list[tuple[int, int, int | None]]:
    """(point, raised s, cleared s or None) of every change, both points a reading a second
    in batches of ``cycles`` cycles (1: the engine's one-cycle rows)."""
    params = dataclasses.replace(PARAMS, carry_delays=carry)
    path = {"downstream": [{"target": "P2", "delay_s": DELAY_S}]}
    pre = Prealarms.of(registry(path, {}), {MINE: params})
    assert len(pre.points.carry_down) == (1 if carry else 0)
    u = up + noise(N, 11, sd=0.01)
    d = down + noise(N, 12, sd=0.01)
    out = []
    for a in range(0, N, cycles):
        m = min(cycles, N - a)
        t = T0 + (a + np.arange(m)) * S
        make = Rows.distinct if m == 1 else Rows.of
        rows = make(np.repeat(np.array([1, 2], np.int32), m), np.concatenate([t, t]),
                    np.concatenate([u[a : a + m], d[a : a + m]]),
                    np.zeros(2 * m, np.int16))  # fmt: skip
        outcome = pre.evaluate(rows, np.ones(2 * m, bool))
        if outcome is not None:
            out += [(c.point, round((c.raised_us - T0) / S),
                     None if c.cleared_us is None else round((c.cleared_us - T0) / S))
                    for c in outcome.changes]  # fmt: skip
            pre.commit(outcome)
    return out


def test_a_diluted_plume_after_the_upstream_rise_stopped_is_no_pre_alarm() -> None:
    up = step(1.3)
    down = carried(0.62, up)
    assert down.max() < 0.95  # the plume stays below point 2's level
    without = run(up, down, 0.0)
    assert [c[0] for c in without] == [2]  # a false pre-alarm at point 2 without the input
    assert run(up, down, 1.0) == []


def test_a_rise_of_its_own_is_pre_alarmed_as_before() -> None:
    up = np.full(N, 0.3)  # upstream flat: nothing explains point 2's rise
    k = np.arange(N) - START
    down = 0.3 + 0.0006 * np.maximum(k, 0)  # reaches 1.0 about 1170 s after the start
    without = run(up, down, 0.0)
    assert without and without[0][0] == 2
    assert run(up, down, 1.0) == without


def test_a_carried_rise_that_reaches_the_level_is_still_pre_alarmed() -> None:
    k = np.arange(N) - START
    up = 0.3 + 0.0008 * np.maximum(k, 0)  # upstream still rising: 1.0 about 875 s on
    down = carried(0.8, up)
    reach = int(np.argmax(down >= 1.0))
    on = [c for c in run(up, down, 1.0) if c[0] == 2 and c[2] is None]
    off = [c for c in run(up, down, 0.0) if c[0] == 2 and c[2] is None]
    assert on and off
    assert on[0][1] < reach - 60  # minutes before the level, with the input on
    assert reach - on[0][1] >= 0.8 * (reach - off[0][1])


@pytest.mark.parametrize("cycles", [1, 7, 20, 300])
def test_the_same_pre_alarms_in_any_batching(cycles: int) -> None:
    k = np.arange(N) - START
    slow = 0.3 + 0.0008 * np.maximum(k, 0)
    for up, down in ((step(1.3), carried(0.62, step(1.3))), (slow, carried(0.8, slow))):
        assert run(up, down, 1.0, cycles) == run(up, down, 1.0, 7)


def test_the_input_is_on_by_default() -> None:
    assert PrealarmParams().carry_delays == 4.0 and PrealarmParams().carry_ratio == 1.0
