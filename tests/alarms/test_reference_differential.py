"""The vectorised engine and the per-reading reference (alarms/reference.py) raise the same
episodes, whatever the series, the arrival order and the batching."""

from __future__ import annotations

import math
from dataclasses import astuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minewatch.alarms.engine import AlarmEngine
from minewatch.alarms.episodes import Episode, EpisodeLog
from minewatch.alarms.incidents import Incident
from minewatch.alarms.reference import ReferenceEngine
from minewatch.alarms.rules.params import RuleDefaults
from minewatch.batch import ReadingBatch
from minewatch.codes import ReadingFlag
from minewatch.registry import PointRegistry
from tests.alarms.helpers import T0, S, registry

#: Methane values around every level of the points below: pre-warning 0.8, alarm 1.0 (clear
#: 0.9), power-off 1.5 (restore 1.0), the standard gases 1.5 and 2.0, below the range bottom.
METHANE = [0.0, 0.3, 0.79, 0.8, 0.85, 0.9, 0.95, 1.0, 1.2, 1.45, 1.5, 1.52, 2.0, 2.03, 3.5, -0.02]
OXYGEN = [20.5, 19.5, 19.0, 18.7, 18.5, 18.2, 18.0, 17.5, -0.5]
SWITCH = [0.0, 1.0]
STATUS = [0, 0, 0, 0, 0, 0, 4, 4, 8, 16, 32, 64, 128, 4 | 8, 128 | 16]
FEED_POINTS = {4: "1011", 5: "1015"}
#: Methane hovering at its levels (chattering), mostly valid: dips that an off-delay bridges.
CHATTER = [0.3, 0.85, 0.95, 1.0, 1.0, 1.2, 1.45, 1.5, 1.6, 2.0]
CHATTER_STATUS = [0, 0, 0, 0, 0, 4, 128]


@st.composite
def methane_point(draw: st.DrawFn) -> dict[str, object]:
    target = draw(st.sampled_from([None, "P4", "P5", "P4+P5"]))
    relations = None
    if target is not None:
        relations = [{"kind": "D", "target": code} for code in target.split("+")]
    return {
        "alarm_high": draw(st.sampled_from([1.0, 1.0, None])),
        "alarm_high_clear": draw(st.sampled_from([None, 0.9, 1.0, 1.2])),
        "poweroff_high": draw(st.sampled_from([1.5, 1.5, None, 2.0])),
        "restore_high": draw(st.sampled_from([None, 1.0, 1.6])),
        "prewarn_high": draw(st.sampled_from([None, 0.8, 1.2])),
        "prewarn_high_clear": draw(st.sampled_from([None, 0.79])),
        "alarm_low": draw(st.sampled_from([None, -0.01])),
        "range_low": draw(st.sampled_from([0.0, None])),
        "on_delay_s": draw(st.sampled_from([None, 0.0, 2.0])),
        "off_delay_s": draw(st.sampled_from([None, None, 0.0, 2.0, 3.0, 5.0])),
        "flatline_samples": draw(st.sampled_from([None, 2, 3, 5])),
        "calibration_gas": draw(st.sampled_from([None, None, 2.0, 1.5])),
        "control_time_s": draw(st.sampled_from([None, 0.0, 3.0])),
        "poll_cycle_s": 1.0,
        "interruption_cycles": draw(st.sampled_from([None, 3])),
        "relations": relations,
    }


OXYGEN_POINT = {
    "sensor_type": "0012", "range_low": 0.0, "range_high": 25.0, "alarm_high": None,
    "alarm_high_clear": None, "poweroff_high": None, "restore_high": None, "alarm_low": 18.0,
    "alarm_low_clear": 18.5, "prewarn_low": 19.0, "prewarn_low_clear": 19.5, "poll_cycle_s": 1.0,
    "interruption_cycles": 4, "flatline_samples": 4,
}  # fmt: skip
OXYGEN_OFF_DELAY = {**OXYGEN_POINT, "off_delay_s": 3.0}


def feed_point(sensor_type: str) -> dict[str, object]:
    return {
        "sensor_type": sensor_type, "value_type": "KG", "alarm_high": None,
        "alarm_high_clear": None, "poweroff_high": None, "restore_high": None,
        "range_low": None, "range_high": None, "poll_cycle_s": 1.0,
    }  # fmt: skip


@st.composite
def series_of(
    draw: st.DrawFn, palette: list[float], steps: int, statuses: list[int] = STATUS
) -> list[tuple[int, float, int]]:
    """(time in s, value, status) of one point: runs of repeated values, gaps, status bits."""
    out: list[tuple[int, float, int]] = []
    t = draw(st.integers(0, 3))
    while len(out) < steps:
        value = draw(st.sampled_from(palette))
        status = draw(st.sampled_from(statuses))
        for _ in range(draw(st.integers(1, 4))):
            out.append((t, value, status))
            t += draw(st.sampled_from([1, 1, 1, 1, 2, 3, 7]))
    return out[:steps]


@st.composite
def scenarios(draw: st.DrawFn, max_steps: int = 30) -> tuple[PointRegistry, RuleDefaults, list]:
    """A registry, defaults, and a list of batches (ReadingBatch) and ticks (int)."""
    oxygen = draw(st.sampled_from([OXYGEN_POINT, OXYGEN_OFF_DELAY]))
    points = [draw(methane_point()), draw(methane_point()), oxygen]
    points += [feed_point(FEED_POINTS[4]), feed_point(FEED_POINTS[5])]
    windows = []
    if draw(st.booleans()):
        a = draw(st.integers(0, 30))
        windows.append(
            (draw(st.sampled_from([1, 2])), T0 + a * S, T0 + (a + draw(st.integers(1, 15))) * S)
        )
    reg = registry(*points, calibrations=windows)
    defaults = RuleDefaults(
        confirm_samples=draw(st.sampled_from([1, 2, 2, 3])),
        drift_samples=draw(st.sampled_from([2, 3])),
        drift_off_delay_s=draw(st.sampled_from([0.0, 3.0, 60.0])),
        calibration_min_samples=draw(st.sampled_from([2, 3])),
        calibration_max_s=draw(st.sampled_from([600.0, 8.0])),
    )
    steps = draw(st.integers(1, max_steps))
    palettes = [METHANE, METHANE, OXYGEN, SWITCH, SWITCH]
    rows: list[tuple[int, int, float, int]] = []  # (time s, point, value, status)
    for point, palette in enumerate(palettes, start=1):
        if draw(st.integers(0, 5)) == 0:
            continue  # a point that never reports
        for t, v, s in draw(series_of(palette, steps)):
            rows.append((t, point, v, s))
    rows.sort()
    # arrival order: neighbours swapped, older readings repeated (late or duplicate rows)
    for _ in range(draw(st.integers(0, 8))):
        if len(rows) > 1:
            k = draw(st.integers(0, len(rows) - 2))
            rows[k], rows[k + 1] = rows[k + 1], rows[k]
    for _ in range(draw(st.integers(0, 3))):
        if rows:
            k = draw(st.integers(0, len(rows) - 1))
            t, p, _, s = rows[k]
            rows.insert(draw(st.integers(k, len(rows))), (t, p, draw(st.sampled_from(METHANE)), s))
    cuts = sorted(draw(st.lists(st.integers(0, len(rows)), max_size=6)))
    plan: list[ReadingBatch | int] = []
    latest = 0
    for lo, hi in zip([0, *cuts], [*cuts, len(rows)], strict=True):
        part = rows[lo:hi]
        if part:
            plan.append(batch_of(part))
            latest = max(latest, *(r[0] for r in part))
        if draw(st.integers(0, 2)) == 0:
            plan.append(T0 + (latest + draw(st.integers(0, 8))) * S)
    return reg, defaults, plan


@st.composite
def chattering(draw: st.DrawFn) -> tuple[PointRegistry, RuleDefaults, list]:
    """Methane hovering at its levels on points with an off-delay (one cuts a feed point),
    cut into many batches: dips bridged, expired and pending across batch boundaries."""
    points = []
    for relations in ([{"kind": "D", "target": "P3"}], None):
        point = draw(methane_point())
        point.update(
            relations=relations,
            off_delay_s=draw(st.sampled_from([1.0, 2.0, 3.0, 5.0])),
            poweroff_high=draw(st.sampled_from([1.5, None])),
        )
        points.append(point)
    reg = registry(*points, feed_point("1011"))
    defaults = RuleDefaults(confirm_samples=draw(st.sampled_from([1, 2, 3])))
    rows: list[tuple[int, int, float, int]] = []
    for point in (1, 2):
        t = draw(st.integers(0, 2))
        for _ in range(draw(st.integers(1, 40))):
            rows.append((t, point, draw(st.sampled_from(CHATTER)), draw(st.sampled_from(
                CHATTER_STATUS))))  # fmt: skip
            t += draw(st.sampled_from([1, 1, 2, 3, 5]))
    rows += [(t, 3, draw(st.sampled_from(SWITCH)), 0) for t in range(0, 60, 4)]
    rows.sort()
    cuts = sorted(draw(st.lists(st.integers(0, len(rows)), max_size=12)))
    plan: list[ReadingBatch | int] = [
        batch_of(rows[lo:hi])
        for lo, hi in zip([0, *cuts], [*cuts, len(rows)], strict=True)
        if hi > lo
    ]
    return reg, defaults, plan


def batch_of(rows: list[tuple[int, int, float, int]]) -> ReadingBatch:
    t, p, v, s = zip(*rows, strict=True)
    n = len(rows)
    return ReadingBatch(
        T0 + np.asarray(t, np.int64) * S,
        np.asarray(p, np.int32),
        np.asarray(v, np.float64),
        np.asarray(s, np.int16),
        np.zeros(n, np.int16),
    )


def run_both(
    reg: PointRegistry,
    defaults: RuleDefaults,
    plan: list[ReadingBatch | int],
    incidents: dict[tuple[int, str, int], Incident] | None = None,
) -> tuple[list[Episode], list[Episode]]:
    """(engine episodes, reference episodes) of the plan; ``incidents`` collects the latest
    state of each incident the engine tracked."""
    engine, log = AlarmEngine(reg, defaults), EpisodeLog()
    reference = ReferenceEngine(reg, defaults)
    for step in plan:
        if isinstance(step, ReadingBatch):
            evaluation = engine.evaluate(step)
            late = reference.evaluate(step)
            skipped = evaluation.flags & (ReadingFlag.LATE | ReadingFlag.REPEAT)
            assert (skipped != 0).tolist() == late
        else:
            evaluation = engine.tick(step)
            reference.tick(step)
        engine.commit(evaluation)
        log.apply(evaluation.changes)
        if incidents is not None:
            incidents.update((c.key, c.incident) for c in evaluation.incidents)
    return log.episodes, reference.episodes()


def key(e: Episode) -> tuple[object, ...]:
    return (e.point, e.rule, e.start_us, e.raised_us or 0)


def assert_same_episodes(engine: list[Episode], reference: list[Episode]) -> None:
    """Same episodes, field by field; sums (and so means) within float tolerance."""
    mine, theirs = sorted(engine, key=key), sorted(reference, key=key)
    assert [key(e) for e in mine] == [key(e) for e in theirs]
    for a, b in zip(mine, theirs, strict=True):
        fa, fb = astuple(a), astuple(b)
        exact = [x for i, x in enumerate(fa) if i != 10]  # 10: total
        other = [x for i, x in enumerate(fb) if i != 10]
        assert _nan_safe(exact) == _nan_safe(other), f"\nengine:    {a}\nreference: {b}"
        assert a.total == pytest.approx(b.total, rel=1e-9, abs=1e-9), f"{a}\n{b}"


def _nan_safe(values: list[object]) -> list[object]:
    return ["nan" if isinstance(v, float) and math.isnan(v) else v for v in values]


@settings(
    max_examples=150, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip
@given(scenarios())
def test_engine_and_reference_raise_the_same_episodes(
    scenario: tuple[PointRegistry, RuleDefaults, list[ReadingBatch | int]],
) -> None:
    assert_same_episodes(*run_both(*scenario))


@settings(
    max_examples=100, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip
@given(chattering())
def test_engine_and_reference_agree_on_chattering_points_with_an_off_delay(
    scenario: tuple[PointRegistry, RuleDefaults, list[ReadingBatch | int]],
) -> None:
    assert_same_episodes(*run_both(*scenario))


@pytest.mark.slow
@settings(
    max_examples=300, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip
@given(scenarios(max_steps=80))
def test_engine_and_reference_agree_on_long_random_series(
    scenario: tuple[PointRegistry, RuleDefaults, list[ReadingBatch | int]],
) -> None:
    assert_same_episodes(*run_both(*scenario))


def test_every_family_is_exercised_by_a_hand_made_series() -> None:
    """A fixed scenario in which every rule family raises, so the comparison is not vacuous."""
    cutting = {"relations": [{"kind": "D", "target": "P4"}], "poll_cycle_s": 1.0,
               "prewarn_high": 0.8, "flatline_samples": 3, "alarm_low": -0.01}  # fmt: skip
    reg = registry(
        cutting,
        {"poll_cycle_s": 1.0},
        OXYGEN_POINT,
        feed_point("1011"),
        calibrations=[(2, T0 + 40 * S, T0 + 50 * S)],
    )
    p1 = [0.3, 0.9, 1.2, 1.6, 1.7, 1.6, 0.5, 3.5, 0.3, 0.3, 0.3, 0.3, -0.02, -0.03, -0.02, 0.1]
    p2 = [0.0, 2.0, 2.0, 2.0, 0.3, 0.3, 2.0, 2.0, 0.3]  # from zero gas: a test
    s2 = [0, 0, 0, 0, 0, 0, 4, 4, 0]
    o2 = [20.5, 19.0, 18.9, 18.0, 17.5, 18.4, 18.6, 20.0]
    rows = [(t, 1, v, 128 if t == 9 else 0) for t, v in enumerate(p1)]
    rows += [(20 + t, 2, v, s) for t, (v, s) in enumerate(zip(p2, s2, strict=True))]
    rows += [(41 + t, 2, 2.0, 0) for t in range(3)] + [(44, 2, 0.3, 0)]
    rows += [(t, 3, v, 0) for t, v in enumerate(o2)]
    rows += [(t, 4, 1.0, 0) for t in range(12)]
    rows.sort()
    plan: list[ReadingBatch | int] = [batch_of(rows[:30]), batch_of(rows[30:]), T0 + 60 * S]
    plan.append(batch_of([(61, 3, 20.0, 0)]))
    engine, reference = run_both(reg, RuleDefaults(), plan)
    assert_same_episodes(engine, reference)
    rules = {e.rule for e in engine}
    assert rules >= {
        "upper_alarm", "power_off", "upper_prewarn", "lower_alarm", "lower_prewarn",
        "interference", "calibration", "disconnection", "negative_drift", "flatline",
        "feed_abnormal", "data_interruption",
    }  # fmt: skip
    classes = {e.classification for e in engine}
    assert {"calibration_undeclared", "calibration_declared", "calibration_flagged"} <= classes
