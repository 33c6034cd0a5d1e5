"""The measures of ``minewatch evaluate`` on hand-made episodes and series."""

from __future__ import annotations

import json
import math

import numpy as np

from minewatch.alarms.episodes import Episode, EpisodeLog
from minewatch.alarms.evaluation.run import Baseline, compare_episodes, finite
from minewatch.alarms.evaluation.score import alarm_measures, unknown_kinds
from tests.alarms.helpers import T0, S, recorder, series

CODES = ["A", "B", "C"]


def _alarm(point: int, raised_s: float, rule: str = "upper_alarm") -> Episode:
    t = T0 + round(raised_s * S)
    return Episode(point, rule, "exceedance", t, t, None, 1.0, end_us=t + S, vmax=1.0)


def test_eleven_alarms_in_ten_minutes_are_a_flood_and_ten_are_not() -> None:
    eleven = [_alarm(k % 3, 10.0 + 50 * k) for k in range(11)]
    measures = alarm_measures(eleven, T0, T0 + 1200 * S, CODES)
    assert measures["floods"] == 1 and measures["per_10min_peak"] == 11
    assert measures["per_10min_mean"] == 5.5  # 11 alarms over two 10-minute windows
    ten = eleven[:10]
    assert alarm_measures(ten, T0, T0 + 1200 * S, CODES)["floods"] == 0


def test_three_raises_of_one_point_and_rule_within_a_minute_chatter() -> None:
    chatter = [_alarm(0, t) for t in (0.0, 20.0, 59.0)]
    slow = [_alarm(1, t) for t in (0.0, 40.0, 80.0)]  # three raises, but over 80 s
    other_rule = [_alarm(0, 30.0, "power_off")]
    measures = alarm_measures(chatter + slow + other_rule, T0, T0 + 600 * S, CODES)
    assert measures["chattering"] == 1 and measures["chattering_alarms"] == 3
    top = measures["bad_actors"][0]
    assert (top["point"], top["rule"], top["alarms"]) == ("A", "upper_alarm", 3)


def test_naive_baseline_raises_at_every_crossing_and_carries_over_batches() -> None:
    baseline = Baseline(np.array([1.0, np.nan]))
    # point 0: 0.5, 1.2 (raise), 1.0 (holds: >= level), 0.9 (clear), 3.0 (a spike: raise),
    # then the next batch: 0.2 (clear); point 1 has no level and never alarms
    values = [0.5, 1.2, 1.0, 0.9, 3.0]
    p = np.array([0] * 5 + [1], np.int32)
    t = np.array([T0 + k * S for k in range(5)] + [T0], np.int64)
    v = np.array([*values, 9.0])
    first = np.array([True, False, False, False, False, True])
    baseline.feed(p, t, v, first, np.array([4, 5]))
    baseline.feed(np.array([0], np.int32), np.array([T0 + 5 * S]), np.array([0.2]),
                  np.array([True]), np.array([0]))  # fmt: skip
    episodes = baseline.episodes()
    assert [((e.start_us - T0) // S, (e.end_us - T0) // S) for e in episodes] == [(1, 3), (4, 5)]


def test_episode_log_assembles_the_engine_changes_as_the_store_would() -> None:
    rec = recorder({})
    log = EpisodeLog(point_offset=-1)
    for k, value in enumerate([0.3, 1.2, 1.3, 1.6, 0.9, 0.3, 3.9, 0.3]):
        log.apply(rec.feed(series(1, [value], start_s=k)))
    by_rule = {(e.rule, e.classification): e for e in log.episodes}
    alarm = by_rule["upper_alarm", "exceedance"]
    assert alarm.point == 0  # the trace index: point id - 1
    assert (alarm.start_us - T0, alarm.raised_us - T0, alarm.end_us - T0) == (S, 2 * S, 4 * S)
    assert alarm.vmax == 1.6
    assert ("interference", "interference") in by_rule


def test_unknown_label_kinds_are_listed_with_their_count() -> None:
    labels = {"methane_exceedance": 4, "co_exceedance": 1, "vehicel_co": 2, "smoke_puff": 1}
    assert unknown_kinds(labels) == {"smoke_puff": 1, "vehicel_co": 2}


def test_the_json_has_no_bare_nan_and_the_comparison_names_differences() -> None:
    assert json.dumps(finite({"a": [math.nan, 1.0, math.inf], "b": np.float64("nan")}),
                      allow_nan=False) == '{"a": [null, 1.0, null], "b": null}'  # fmt: skip
    same = [_alarm(1, 0.0), _alarm(2, 10.0, "power_off")]
    assert compare_episodes(same, list(same)) == {}
    other = [_alarm(1, 0.0), _alarm(2, 11.0, "power_off")]
    diff = compare_episodes(same, other)
    assert list(diff) == ["power_off"]
    assert diff["power_off"]["only_engine_count"] == diff["power_off"]["only_reference_count"] == 1
