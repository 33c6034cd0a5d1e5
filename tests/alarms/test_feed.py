"""馈电异常: methane at the power-off level, the related feed still on after the control time."""

from __future__ import annotations

from tests.alarms.helpers import recorder, series

FEED = {"code": "F1", "sensor_type": "1011", "value_type": "KG", "alarm_high": None,
        "alarm_high_clear": None, "poweroff_high": None, "restore_high": None,
        "range_low": None, "range_high": None}  # fmt: skip
CUTTING = {"relations": [{"kind": "D", "target": "F1"}], "poll_cycle_s": 2.0}


def test_feed_still_on_after_the_control_time_is_a_power_off_failure() -> None:
    rec = recorder(CUTTING, FEED)
    methane = [0.3, 0.9, 1.6, 1.7, 1.7, 1.6, 0.8, 0.3]
    feed = [1, 1, 1, 1, 1, 1, 1, 1]  # never drops
    rec.feed(series(1, methane, step_s=2), series(2, feed, step_s=2))
    (failure,) = rec.of("feed_abnormal")
    assert failure.point == 1 and failure.related == 2 and failure.abnormal_type == "003"
    assert failure.classification == "power_off_failure" and failure.threshold == 1.5
    # cut commanded at t=4 (1.6); control time = one polling cycle (2 s): abnormal from t=6
    assert (failure.started_s, failure.ended_s) == (6.0, 12.0)  # until methane < restore 1.0
    assert failure.max == 1.7


def test_feed_that_drops_within_the_control_time_raises_nothing() -> None:
    rec = recorder(CUTTING, FEED)
    methane = [0.3, 0.9, 1.6, 1.7, 1.7, 1.6, 0.8, 0.3]
    feed = [1, 1, 1, 0, 0, 0, 0, 1]  # off one cycle after the cut, on again after restore
    rec.feed(series(1, methane, step_s=2), series(2, feed, step_s=2))
    assert rec.of("feed_abnormal") == []
    assert {"upper_alarm", "power_off"} <= set(rec.rules())


def test_feed_readings_in_other_batches_and_a_configured_control_time() -> None:
    rec = recorder({**CUTTING, "control_time_s": 5.0}, FEED)
    rec.feed(series(2, [1, 1], step_s=2))  # feed alone, t=0, 2
    rec.feed(series(1, [0.3, 1.6, 1.6], step_s=2))  # methane alone: cut from t=2
    assert rec.of("feed_abnormal") == []  # t=4: only 2 s after the cut
    rec.feed(series(2, [1, 1], start_s=6, step_s=2))  # feed still on at t=6 (4 s), t=8 (6 s)
    assert rec.of("feed_abnormal") == []  # the methane of t=5..8 may still end the cut
    rec.feed(series(1, [1.6, 1.6], start_s=6, step_s=2))  # it did not
    (failure,) = rec.of("feed_abnormal")
    assert failure.started_s == 8.0 and failure.ended_s is None
    rec.feed(series(2, [0], start_s=10), series(1, [1.6], start_s=10))  # finally off
    assert failure.ended_s == 10.0


def test_a_spike_that_cuts_for_less_than_the_control_time_is_not_a_failure() -> None:
    rec = recorder(CUTTING, FEED)
    rec.feed(series(1, [0.3, 3.0, 0.3, 0.3], step_s=2), series(2, [1, 1, 1, 1], step_s=2))
    assert rec.rules() == ["interference"]


def test_relations_to_unknown_or_non_feed_points_are_ignored() -> None:
    rec = recorder(
        {**CUTTING, "relations": [{"kind": "D", "target": "nope"}, {"kind": "K", "target": "F1"}]},
        FEED,
    )
    rec.feed(series(1, [1.6] * 5, step_s=2), series(2, [1] * 5, step_s=2))
    assert rec.of("feed_abnormal") == []


def test_power_restored_while_methane_is_still_above_the_restore_level_is_a_failure() -> None:
    """The symmetric case of the domain reference (§5, [I]): 复电 while CH4 >= 复电门限."""
    rec = recorder(CUTTING, FEED)
    methane = [0.3, 1.6, 1.7, 1.4, 1.2, 1.1, 0.8, 0.3]  # cut at t=2; restore level 1.0 at t=12
    feed = [1, 1, 0, 0, 1, 1, 1, 1]  # cut in time (t=4), power back at t=8: too early
    rec.feed(series(1, methane, step_s=2), series(2, feed, step_s=2))
    (failure,) = rec.of("feed_abnormal")
    assert (failure.started_s, failure.ended_s) == (8.0, 12.0)
    assert failure.classification == "power_off_failure"


def test_a_feed_left_off_after_the_restore_raises_nothing() -> None:
    """Restore commanded, the feed stays off: equipment restarted by hand later (闭锁), not gas."""
    rec = recorder(CUTTING, FEED)
    methane = [0.3, 1.6, 1.7, 0.8, 0.3, 0.3, 0.3, 0.3]
    feed = [1, 1, 0, 0, 0, 0, 0, 0]
    rec.feed(series(1, methane, step_s=2), series(2, feed, step_s=2))
    assert rec.of("feed_abnormal") == []
