"""Pre-alarms (alarms/prealarms.py) on hand-made series, and one run through the engine."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from minewatch.alarms.engine import AlarmEngine
from minewatch.alarms.prealarms import PrealarmChange, PrealarmParams, Prealarms
from minewatch.alarms.rules.run_state import Rows
from minewatch.codes import PointStatus

from .helpers import MINE, T0, S, registry, series

#: Fixed here, so that tuning the defaults moves no test.
PARAMS = PrealarmParams(
    horizon_s=300.0, tau_s=120.0, slow_tau_s=0.0, z=3.0, confirm=10, min_weight=60.0,
    carry_delays=0.0,
)  # fmt: skip


def feed(
    prealarms: Prealarms, point: int, values: np.ndarray, *, status: int = 0, start_s: float = 0.0,
    batch: int = 7,
) -> list[PrealarmChange]:  # fmt: skip
    """One reading a second, in batches of ``batch`` readings; every change, committed."""
    out: list[PrealarmChange] = []
    for a in range(0, len(values), batch):
        chunk = values[a : a + batch]
        t = T0 + np.round((start_s + a + np.arange(len(chunk))) * S).astype(np.int64)
        rows = Rows.of(np.full(len(chunk), point, np.int32), t, chunk.astype(float),
                       np.full(len(chunk), status, np.int16))  # fmt: skip
        ok = (rows.s & PointStatus.CALIBRATION) == 0
        outcome = prealarms.evaluate(rows, ok)
        if outcome is not None:
            out += outcome.changes
            prealarms.commit(outcome)
    return out


def make(*points: dict[str, object], params: PrealarmParams = PARAMS) -> Prealarms:
    return Prealarms.of(registry(*points), {MINE: params})


def noise(n: int, seed: int, sd: float = 0.03) -> np.ndarray:
    """AR(1) noise like a real sensor's (persistent, not white)."""
    rng = np.random.default_rng(seed)
    e = rng.normal(0, sd * np.sqrt(1 - 0.9**2), n)
    out = np.zeros(n)
    for i in range(1, n):
        out[i] = 0.9 * out[i - 1] + e[i]
    return out


def test_a_slow_rise_is_pre_alarmed_minutes_before_it_reaches_the_level() -> None:
    pre = make({})
    values = np.concatenate([np.full(600, 0.3), 0.3 + 0.0005 * np.arange(1800)])  # +0.03/min
    values = values + noise(len(values), 1)
    changes = feed(pre, 1, values)
    reach = int(np.argmax(values >= 1.0))
    raised = [c for c in changes if c.cleared_us is None]
    assert raised, "no pre-alarm on a steady rise to the level"
    lead_s = reach - (raised[0].raised_us - T0) / S
    assert 60 <= lead_s <= 400
    assert raised[0].level == 1.0 and raised[0].forecast >= 1.0
    assert raised[0].predicted_us is not None
    predicted_s = (raised[0].predicted_us - T0) / S
    assert abs(predicted_s - reach) < 120  # the line's crossing is near the real one


def test_flat_noisy_gas_and_spikes_raise_nothing() -> None:
    pre = make({})
    values = 0.4 + noise(4 * 3600, 2, sd=0.04)
    values[1000:4000:300] = 3.5  # interference: single readings far above the level
    assert feed(pre, 1, values, batch=60) == []


def test_a_rise_that_turns_back_is_cleared_when_the_forecast_falls() -> None:
    pre = make({})
    up = 0.3 + 0.002 * np.arange(300)  # to 0.9 in five minutes
    down = 0.9 - 0.002 * np.arange(300)
    changes = feed(pre, 1, np.concatenate([np.full(300, 0.3), up, down]))
    assert [c.cleared_us is None for c in changes] == [True, False]
    raise_, clear = changes
    assert clear.raised_us == raise_.raised_us < clear.cleared_us
    assert not pre.active[1]


def test_readings_while_calibrating_are_not_forecast_from() -> None:
    pre = make({})
    feed(pre, 1, np.full(600, 0.3))
    gas = np.linspace(0.3, 2.0, 60)  # standard gas applied, flagged 标校
    assert feed(pre, 1, gas, status=int(PointStatus.CALIBRATION), start_s=600) == []


def test_only_methane_points_with_an_alarm_level_of_enabled_mines_are_forecast() -> None:
    pre = make({}, {"sensor_type": "0004", "alarm_high": 24.0}, {"alarm_high": np.nan})
    assert pre.points.target[1:].tolist() == [True, False, False]
    off = make({}, params=PrealarmParams(enabled=False))
    assert not off.points.target.any()
    with pytest.raises(ValueError, match="unknown"):
        PrealarmParams.of({"horizon": 5})
    assert PrealarmParams.of({"z": 4}).z == 4


def test_through_the_engine_the_pre_alarm_comes_before_the_alarm_and_is_no_alarm_record() -> None:
    engine = AlarmEngine(registry({}), prealarm_params={MINE: PARAMS})
    values = np.concatenate([np.full(600, 0.3), 0.3 + 0.0005 * np.arange(1800)])
    values = values + noise(len(values), 5)
    prealarms: list[PrealarmChange] = []
    alarm_at = None
    for a in range(0, len(values), 5):
        evaluation = engine.evaluate(series(1, values[a : a + 5], start_s=a))
        engine.commit(evaluation)
        if evaluation.prealarm is not None:
            prealarms += evaluation.prealarm.changes
        for change in evaluation.changes:
            assert change.rule != "prealarm"
            if change.rule == "upper_alarm" and change.opened and alarm_at is None:
                alarm_at = change.raised_at_us
    assert alarm_at is not None and prealarms
    assert prealarms[0].raised_us < alarm_at - 60 * S
    assert engine.prealarms.active[1]  # still up while the gas is above the level


def _fan_stop(
    prealarms: Prealarms, wind: np.ndarray, gas: np.ndarray, cycles: int = 20
) -> list[PrealarmChange]:
    """Methane (point 1) and the air speed of its substation (point 2), a reading a second
    each, in batches of ``cycles`` cycles (1: the engine's one-cycle rows)."""
    out: list[PrealarmChange] = []
    for a in range(0, len(gas), cycles):
        k = min(cycles, len(gas) - a)
        t = T0 + (a + np.arange(k)) * S
        make = Rows.distinct if k == 1 else Rows.of
        status = np.zeros(2 * k, np.int16)
        values = np.concatenate([gas[a : a + k], wind[a : a + k]])
        rows = make(
            np.repeat(np.array([1, 2], np.int32), k), np.concatenate([t, t]), values, status
        )
        outcome = prealarms.evaluate(rows, np.ones(2 * k, bool))
        if outcome is not None:
            out += outcome.changes
            prealarms.commit(outcome)
    return out


@pytest.mark.parametrize("cycles", [20, 1])
def test_lost_air_makes_a_fan_stop_rise_count_at_once(cycles: int) -> None:
    """A heading's fan stops at 600 s: the air speed falls under its low alarm level and the
    methane builds up towards 1.5 % (1.0 % after about 190 s). With the ventilation input the
    rise is pre-alarmed well before the level; without it (the slow trend must agree, 30
    readings confirm) the warning comes later."""
    heading = {"substation_code": "001"}
    air = {"sensor_type": "0002", "alarm_high": 4.0, "alarm_low": 0.25, "substation_code": "001"}
    n = 1200
    k = np.arange(n) - 600.0
    gas = 0.3 + np.where(k > 0, 1.2 * (1 - np.exp(-np.maximum(k, 0) / 300)), 0.0)
    gas = gas + noise(n, 7, sd=0.02)
    reach = int(np.argmax(gas >= 1.0))
    slow = PrealarmParams(slow_tau_s=400.0, confirm=30, min_weight=60.0, tau_s=60.0,
                          horizon_s=1200.0)  # fmt: skip
    times = {}
    # what is left of the air reads around 0.1 m/s, now and then above the low level 0.25
    lost = np.where(k > 0, 0.1 + 0.12 * np.abs(noise(n, 8, sd=1.0)), 2.1)
    assert ((lost > 0.25) & (k > 0)).sum() > 10
    for name, wind in (("lost", lost), ("normal", np.full(n, 2.1))):
        pre = Prealarms.of(registry(heading, air), {MINE: slow})
        assert pre.points.air[1] == 2 and pre.points.target[1] and not pre.points.target[2]
        changes = [c for c in _fan_stop(pre, wind, gas, cycles) if c.point == 1]
        raised = [c for c in changes if c.cleared_us is None]
        times[name] = (raised[0].raised_us - T0) / S if raised else float("inf")
        if name == "lost":  # one pre-alarm, held while the air is lost: no raise-clear flicker
            assert len(changes) == 1
    assert times["lost"] < reach - 60  # a minute's warning at least
    assert times["lost"] < times["normal"]
    off = Prealarms.of(registry(heading, air), {MINE: dataclasses.replace(slow, vent_confirm=0)})
    assert (off.points.air == -1).all()
    raised = [
        c for c in _fan_stop(off, np.where(k > 0, 0.1, 2.1), gas, cycles) if c.cleared_us is None
    ]
    assert (
        (raised[0].raised_us - T0) / S == times["normal"]
        if raised
        else times["normal"] == float("inf")
    )


def test_the_upstream_experiment_adds_the_rise_on_its_way_only_when_switched_on() -> None:
    """Point 1 is upstream of point 2 (150 s on the airflow path). With ``upstream_gain``
    the downstream forecast takes the upstream's rise while the upstream itself meets its
    raise condition: the downstream point is pre-alarmed earlier. Off by default."""
    up = {"downstream": [{"target": "P2", "delay_s": 150.0}]}
    n = 1500
    k = np.arange(n) - 300.0
    rise = 0.3 + np.where(k > 0, 0.0012 * np.maximum(k, 0), 0.0)  # 1.0 % after ~580 s
    upstream = rise + noise(n, 11, sd=0.02)
    downstream = 0.3 + 0.8 * (np.concatenate([np.full(150, 0.3), rise[:-150]]) - 0.3)
    downstream = downstream + noise(n, 12, sd=0.02)
    first = {}
    for gain in (0.0, 0.8):
        params = dataclasses.replace(PARAMS, upstream_gain=gain)
        pre = Prealarms.of(registry(up, {}), {MINE: params})
        assert len(pre.points.up_down) == (1 if gain else 0)
        out: list[PrealarmChange] = []
        for a in range(0, n, 10):
            t = T0 + (a + np.arange(min(10, n - a))) * S
            m = len(t)
            values = np.concatenate([upstream[a : a + m], downstream[a : a + m]])
            rows = Rows.of(np.repeat(np.array([1, 2], np.int32), m), np.concatenate([t, t]), values)
            outcome = pre.evaluate(rows, np.ones(2 * m, bool))
            if outcome is not None:
                out += outcome.changes
                pre.commit(outcome)
        raised = [c.raised_us for c in out if c.point == 2 and c.cleared_us is None]
        first[gain] = (raised[0] - T0) / S if raised else float("inf")
    assert PrealarmParams().upstream_gain == 0.0
    assert first[0.8] < first[0.0]
