"""Threshold rules on hand-made series: levels, hysteresis, confirmation, on-delay, late rows."""

from __future__ import annotations

import numpy as np
import pytest

from minewatch.alarms.engine import AlarmEngine
from minewatch.batch import ReadingBatch
from minewatch.codes import ReadingFlag
from tests.alarms.helpers import T0, S, recorder, registry, series


def test_a_reading_exactly_at_the_alarm_level_raises_and_one_exactly_at_clear_holds() -> None:
    rec = recorder({"alarm_high": 1.0, "alarm_high_clear": 0.8, "poweroff_high": None})
    rec.feed(series(1, [0.3, 1.0, 1.0, 0.8, 0.8, 0.79, 0.3]))
    (episode,) = rec.of("upper_alarm")
    assert episode.started_s == 1.0 and episode.start_value == 1.0  # >= set
    assert episode.raised_s == 2.0  # confirmed by the second reading
    assert episode.ended_s == 5.0  # 0.8 is not below clear 0.8; 0.79 is
    assert episode.count == 4 and episode.max == 1.0 and episode.min == 0.8
    assert episode.classification == "exceedance" and episode.threshold == 1.0


def test_just_below_the_level_never_raises() -> None:
    rec = recorder({})
    rec.feed(series(1, [0.99] * 20))
    assert rec.episodes == []


def test_readings_inside_the_hysteresis_band_keep_the_alarm_and_confirm_it() -> None:
    rec = recorder({"alarm_high": 1.0, "alarm_high_clear": 0.7, "poweroff_high": None})
    # 1.1 starts the run; 0.9 (in the band) confirms it; the band holds until 0.6.
    rec.feed(series(1, [0.3, 1.1, 0.9, 0.75, 0.95, 0.7, 0.69, 0.3, 0.95, 0.9, 0.3]))
    (episode,) = rec.of("upper_alarm")
    assert (episode.started_s, episode.raised_s, episode.ended_s) == (1.0, 2.0, 6.0)
    assert episode.count == 5 and episode.max == 1.1 and episode.min == 0.7
    # band readings alone (0.95, 0.9 after a clear) never set
    assert len(rec.episodes) == 1


def test_single_sample_spike_is_interference_and_raises_no_gas_alarm() -> None:
    rec = recorder({})
    rec.feed(series(1, [0.3, 0.3, 3.9, 0.3, 0.3]))
    assert rec.rules() == ["interference"]
    (spike,) = rec.episodes
    assert spike.classification == "interference" and spike.max == 3.9
    assert (spike.started_s, spike.ended_s) == (2.0, 3.0)


def test_two_sample_step_rise_raises_both_gas_rules_one_cycle_late() -> None:
    rec = recorder({})
    rec.feed(series(1, [0.3, 1.8, 1.8, 0.3]))
    assert rec.rules() == ["power_off", "upper_alarm"]
    for episode in rec.episodes:
        assert episode.started_s == 1.0 and episode.raised_s == 2.0 and episode.ended_s == 3.0
        assert episode.count == 2 and episode.classification == "exceedance"


def test_ramp_through_the_lower_level_raises_without_waiting() -> None:
    rec = recorder({"prewarn_high": 0.8})
    rec.feed(series(1, [0.3, 0.6, 0.9, 1.2, 1.6, 1.2, 0.5]))
    by_rule = {e.rule: e for e in rec.episodes}
    # alarm: previous reading 0.9 >= pre-warning 0.8 -> raised at its first reading
    assert by_rule["upper_alarm"].started_s == by_rule["upper_alarm"].raised_s == 3.0
    # power-off: previous reading 1.2 >= alarm 1.0 -> raised at its first reading
    assert by_rule["power_off"].started_s == by_rule["power_off"].raised_s == 4.0
    # the pre-warning itself has no lower level: confirmed by its second reading
    assert (by_rule["upper_prewarn"].started_s, by_rule["upper_prewarn"].raised_s) == (2.0, 3.0)
    assert by_rule["upper_prewarn"].abnormal_type == "009"


def test_lower_alarm_and_lower_prewarning() -> None:
    oxygen = {
        "sensor_type": "0012", "range_low": 0.0, "range_high": 25.0, "alarm_high": None,
        "poweroff_high": None, "restore_high": None, "alarm_high_clear": None,
        "alarm_low": 18.0, "alarm_low_clear": 18.5, "prewarn_low": 19.0,
    }  # fmt: skip
    rec = recorder(oxygen)
    rec.feed(series(1, [20.5, 19.0, 18.9, 18.0, 17.5, 18.4, 18.6, 20.0]))
    by_rule = {e.rule: e for e in rec.episodes}
    assert set(by_rule) == {"lower_alarm", "lower_prewarn"}
    low = by_rule["lower_alarm"]
    assert low.abnormal_type == "001" and low.min == 17.5
    assert (low.started_s, low.raised_s, low.ended_s) == (3.0, 3.0, 6.0)  # ramp via 19.0
    assert by_rule["lower_prewarn"].abnormal_type == "010"


def test_on_delay_counts_event_time_not_readings() -> None:
    rec = recorder({"on_delay_s": 10.0, "poweroff_high": None})
    # 9 s above the level: not long enough
    rec.feed(series(1, [1.2] * 10 + [0.3], start_s=0))
    assert rec.episodes == []
    # above from t=100 to t=110 with readings 5 s apart: raises at 110 (>= 10 s)
    rec.feed(series(1, [1.2, 1.2, 1.2, 0.3], start_s=100, step_s=5))
    (episode,) = rec.episodes
    assert (episode.started_s, episode.raised_s, episode.ended_s) == (100.0, 110.0, 115.0)


def test_a_gap_in_the_data_neither_clears_nor_confirms_by_itself() -> None:
    rec = recorder({"poweroff_high": None})
    rec.feed(series(1, [0.3, 1.2], start_s=0))
    assert rec.episodes == []  # one reading: pending
    rec.feed(series(1, [1.3, 0.2], start_s=600))  # ten minutes later, still above: confirmed
    (episode,) = rec.of("upper_alarm")
    assert (episode.started_s, episode.raised_s, episode.ended_s) == (1.0, 600.0, 601.0)
    assert episode.count == 2 and episode.max == 1.3
    (gap,) = rec.of("data_interruption")  # the silence itself, as the clock would have seen it
    assert (gap.started_s, gap.ended_s, gap.classification) == (31.0, 600.0, "data_interruption")


def test_episode_statistics_continue_across_batches() -> None:
    rec = recorder({"poweroff_high": None})
    rec.feed(series(1, [0.3, 1.1], start_s=0))
    rec.feed(series(1, [1.4, 1.2], start_s=2))
    (episode,) = rec.episodes
    assert episode.ended_s is None and episode.count == 3
    rec.feed(series(1, [1.0, 0.9], start_s=4))
    assert episode.ended_s == 5.0 and episode.count == 4
    assert episode.max == 1.4 and episode.min == 1.0
    assert episode.mean == pytest.approx((1.1 + 1.4 + 1.2 + 1.0) / 4)
    assert len(episode.changes) == 2  # insert when confirmed (batch 2), update with the end


def test_late_and_duplicate_rows_are_flagged_and_not_evaluated() -> None:
    engine = AlarmEngine(registry({"poweroff_high": None}))
    first = engine.evaluate(series(1, [0.3, 0.4, 0.5], start_s=10))
    engine.commit(first)
    late = series(1, [3.0, 3.0], times_s=[5.0, 12.0])  # both not after t=12
    dup = series(1, [3.0, 3.0], times_s=[20.0, 20.0])  # second row repeats the time
    evaluation = engine.evaluate(ReadingBatch.concat([late, dup]))
    # older: late; the same time as an evaluated reading, or as an earlier row: a repeat
    assert evaluation.flags.tolist() == [
        ReadingFlag.LATE,
        ReadingFlag.REPEAT,
        0,
        ReadingFlag.REPEAT,
    ]
    assert evaluation.changes == []  # a single live 3.0 reading is only pending
    engine.commit(evaluation)
    assert engine.last_time_us[1] == T0 + 20 * S


def test_rows_arrive_interleaved_across_points() -> None:
    rec = recorder({"poweroff_high": None}, {"poweroff_high": None})
    a = series(1, [0.3, 1.2, 1.3, 0.3])
    b = series(2, [0.3, 0.3, 1.5, 1.5])
    mixed = ReadingBatch.concat([a, b]).take(np.array([4, 0, 5, 1, 2, 6, 3, 7]))
    rec.feed(mixed)
    assert [(e.point, e.started_s, e.ended_s) for e in rec.episodes] == [
        (1, 1.0, 3.0),
        (2, 2.0, None),
    ]
    assert not rec.flags[0].any()


def test_a_reading_older_than_one_that_arrived_before_it_in_the_same_batch_is_late() -> None:
    """Lateness follows arrival order, so it does not depend on where batches are cut."""
    rec = recorder({"poweroff_high": None})
    live_then_backfill = series(1, [0.3, 0.3, 1.5, 1.5]).take(np.array([2, 3, 0, 1]))
    rec.feed(live_then_backfill)
    assert (rec.flags[0] != 0).tolist() == [False, False, True, True]


def test_evaluate_does_not_change_the_engine_until_commit() -> None:
    engine = AlarmEngine(registry({}))
    batch = series(1, [0.3, 1.2, 1.3])
    first = engine.evaluate(batch)
    again = engine.evaluate(batch)  # a retried write evaluates the same batch again
    assert first.changes == again.changes and len(first.changes) == 1
    assert not engine.active["upper_alarm"].any()
    engine.commit(first)
    assert engine.active["upper_alarm"][1]


def test_restore_continues_an_open_episode_after_a_restart() -> None:
    engine = AlarmEngine(registry({"poweroff_high": None}))
    engine.restore([(1, "upper_alarm", T0)], [(1, T0 + 5 * S, 1.3)])
    evaluation = engine.evaluate(series(1, [1.2, 0.4], start_s=6))
    (change,) = evaluation.changes
    assert not change.opened and change.ended_at_us == T0 + 7 * S and change.count == 1
    assert change.classification is None  # history unknown: not reclassified


def test_new_points_from_a_registry_refresh_keep_the_existing_state() -> None:
    engine = AlarmEngine(registry({"poweroff_high": None}))
    engine.commit(engine.evaluate(series(1, [1.2, 1.3])))
    engine.use_registry(registry({"poweroff_high": None}, {"poweroff_high": None}))
    assert engine.active["upper_alarm"].tolist() == [False, True, False]


def test_a_one_reading_power_off_jump_during_an_alarm_is_interference_at_the_power_off_level(
) -> None:  # fmt: skip
    rec = recorder({"alarm_high_clear": 0.9})
    rec.feed(series(1, [0.3, 1.2, 1.3, 0.95, 3.0, 0.95, 0.3]))
    (alarm,) = rec.of("upper_alarm")
    assert (alarm.started_s, alarm.ended_s) == (1.0, 6.0)
    assert rec.of("power_off") == []
    (spike,) = rec.of("interference")
    assert (spike.started_s, spike.ended_s, spike.threshold) == (4.0, 5.0, 1.5)
