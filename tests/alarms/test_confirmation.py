"""Confirmation that does not delay a real rise (issue 13, item 2), engine and reference.

A reading at the level that continues a rise (the previous valid reading within
``RuleDefaults.trend_band`` of the level below it, the reading within it above) raises at
once and is never an ``interference`` record; a spike (a jump from the baseline, a high one
included, far past the level and back) still needs its second reading."""

from __future__ import annotations

import numpy as np
import pytest

from minewatch.alarms.reference import ReferenceEngine
from minewatch.alarms.rules.params import RuleDefaults
from tests.alarms.helpers import T0, S, recorder, registry, series

SEED = 13


def noisy_ramp(slope_per_s: float, noise: float, seed: int) -> np.ndarray:
    """0.70 %CH4 rising at ``slope`` to 1.40 % and holding, with Gaussian noise, shown to
    0.01 % as a sensor does; 1 s cycle."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.7 / slope_per_s) + 120)
    level = np.minimum(0.70 + slope_per_s * t, 1.40)
    return np.round(level + rng.normal(0.0, noise, len(t)), 2)


@pytest.mark.parametrize("noise", [0.0, 0.005, 0.01, 0.02])
@pytest.mark.parametrize("slope", [0.0005, 0.002, 0.01])  # %CH4 per second: 12 min to 70 s
def test_a_slow_noisy_rise_is_raised_by_its_second_reading_at_the_level_never_as_interference(
    slope: float, noise: float
) -> None:
    values = noisy_ramp(slope, noise, SEED + int(noise * 1000) + int(slope * 1e4))
    rec = recorder({})
    rec.feed(series(1, values))
    at_level = np.flatnonzero(values >= 1.0)
    second = at_level[1] if len(at_level) > 1 else at_level[0]
    alarms = rec.of("upper_alarm")
    assert alarms, "the rise is raised"
    assert alarms[0].raised_s is not None and alarms[0].raised_s <= second
    assert rec.of("interference") == []
    reference = ReferenceEngine(registry({}))
    reference.evaluate(series(1, values))
    mine = [(e.rule, e.started_s, e.raised_s, e.ended_s) for e in rec.episodes]
    theirs = [(e.rule, (e.start_us - T0) / S, (e.raised_us - T0) / S if e.raised_us else None,
               None if e.end_us is None else (e.end_us - T0) / S)
              for e in reference.episodes()]  # fmt: skip
    assert sorted(mine, key=repr) == sorted(theirs, key=repr)


@pytest.mark.parametrize("baseline", [0.3, 0.85, 0.9, 0.95])
@pytest.mark.parametrize("peak", [1.5, 2.5, 3.8])
def test_a_spike_from_a_high_baseline_is_still_interference(baseline: float, peak: float) -> None:
    rng = np.random.default_rng(SEED)
    values = np.round(baseline + rng.normal(0.0, 0.005, 120), 2).clip(max=baseline + 0.02)
    values[60] = peak  # one reading, then back
    rec = recorder({})
    rec.feed(series(1, values))
    assert rec.of("upper_alarm") == [] and rec.of("power_off") == []
    assert [e.started_s for e in rec.of("interference")] == [60.0]


def test_the_band_is_a_setting_and_zero_restores_confirmation_by_a_second_reading() -> None:
    values = [0.9, 0.95, 0.99, 1.0, 0.99, 0.98]
    from minewatch.alarms.engine import AlarmEngine
    from tests.alarms.helpers import Recorder

    strict = Recorder(AlarmEngine(registry({}), RuleDefaults(trend_band=0.0)))
    strict.feed(series(1, values))
    assert strict.of("upper_alarm") == [] and len(strict.of("interference")) == 1
    rec = recorder({})
    rec.feed(series(1, values))
    assert [(e.started_s, e.raised_s) for e in rec.of("upper_alarm")] == [(3.0, 3.0)]
