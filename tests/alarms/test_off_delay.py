"""Off-delay of the threshold rules on hand-made series: a dip shorter than the off-delay
continues the episode, a longer one ends it at its first clear reading; a clear pending across
a batch boundary is resolved in the next batch."""

from __future__ import annotations

import pytest

from tests.alarms.helpers import recorder, series

ALARM = {"alarm_high": 1.0, "alarm_high_clear": 1.0, "poweroff_high": None}


def test_a_dip_shorter_than_the_off_delay_is_one_episode_with_the_dip_in_its_statistics() -> None:
    rec = recorder({**ALARM, "off_delay_s": 5.0})
    values = [0.3, 1.2, 1.1, 0.9, 0.95, 1.05, 1.1, 0.8, 0.7, 0.6, 0.5, 0.5, 0.5]  # t = 0..12
    rec.feed(series(1, values))
    (episode,) = rec.of("upper_alarm")
    assert episode.ended_s is None  # clear since 7, but not yet for 5 s after it
    rec.feed(series(1, [0.4], start_s=13))  # later than 7 + 5: the end is known
    assert (episode.started_s, episode.raised_s, episode.ended_s) == (1.0, 2.0, 7.0)
    assert episode.count == 6 and episode.max == 1.2 and episode.min == 0.9  # dip 0.9, 0.95
    assert episode.mean == pytest.approx((1.2 + 1.1 + 0.9 + 0.95 + 1.05 + 1.1) / 6)
    assert len(rec.episodes) == 1


def test_a_dip_longer_than_the_off_delay_ends_the_episode_at_its_first_clear_reading() -> None:
    rec = recorder({**ALARM, "off_delay_s": 3.0})
    rec.feed(series(1, [0.3, 1.2, 1.2, 0.5, 0.5, 0.5, 0.5, 1.2, 1.3, 0.2, 0.2, 0.2, 0.2, 0.2]))
    first, second = rec.of("upper_alarm")
    assert (first.started_s, first.raised_s, first.ended_s) == (1.0, 2.0, 3.0)
    assert first.count == 2  # the dip is not the episode's
    assert (second.started_s, second.raised_s, second.ended_s) == (7.0, 8.0, 9.0)


def test_a_clear_pending_at_a_batch_end_is_continued_by_an_early_set_reading() -> None:
    rec = recorder({**ALARM, "off_delay_s": 3.0})
    rec.feed(series(1, [0.3, 1.2, 1.2, 0.5]))  # clear at 3, pending
    (episode,) = rec.of("upper_alarm")
    assert episode.ended_s is None and episode.count == 2
    rec.feed(series(1, [0.6, 1.3, 0.2], start_s=4))  # 1.3 at 5 <= 3 + 3: the same episode
    assert episode.ended_s is None and episode.count == 5  # 0.5 (previous batch), 0.6, 1.3
    rec.feed(series(1, [0.2, 0.2, 0.2], start_s=7))  # 9 = 6 + 3: still pending
    assert episode.ended_s is None
    changes = rec.feed(series(1, [0.2], start_s=10))
    assert episode.ended_s == 6.0 and [c.ended_at_us is not None for c in changes] == [True]
    assert episode.count == 5 and episode.min == 0.5 and episode.max == 1.3
    assert len(rec.episodes) == 1


def test_a_clear_pending_at_a_batch_end_ends_in_the_next_batch_even_at_a_set_reading() -> None:
    rec = recorder({**ALARM, "off_delay_s": 3.0})
    rec.feed(series(1, [0.3, 1.2, 1.2, 0.5]))
    changes = rec.feed(series(1, [1.4, 1.4], start_s=7))  # 7 > 3 + 3: ended at 3; a new run
    first, second = rec.of("upper_alarm")
    assert (first.started_s, first.ended_s, first.count) == (1.0, 3.0, 2)
    assert (second.started_s, second.raised_s, second.ended_s) == (7.0, 8.0, None)
    ends = sorted((c.opened, c.ended_at_us is not None) for c in changes)
    assert ends == [(False, True), (True, False)]  # the store applies updates first


def test_a_set_reading_exactly_at_the_end_of_the_off_delay_continues_the_episode() -> None:
    rec = recorder({**ALARM, "off_delay_s": 3.0})
    rec.feed(series(1, [0.3, 1.2, 1.2, 0.5]))
    rec.feed(series(1, [1.2, 0.2], start_s=6))  # 6 = 3 + 3: within the off-delay
    rec.feed(series(1, [0.2], start_s=10))  # 10 = 7 + 3: not later than the off-delay
    (episode,) = rec.of("upper_alarm")
    assert episode.ended_s is None
    rec.feed(series(1, [0.2], start_s=11))
    assert (episode.started_s, episode.ended_s, episode.count) == (1.0, 7.0, 4)


def test_a_spike_within_the_off_delay_is_confirmed_by_the_next_set_reading_not_by_the_dip() -> None:
    rec = recorder({**ALARM, "off_delay_s": 3.0})
    rec.feed(series(1, [0.3, 1.2, 0.5, 1.1, 0.2, 0.2, 0.2, 0.2, 0.2]))
    (episode,) = rec.episodes
    assert episode.rule == "upper_alarm"  # one run: 1.2, (0.5), 1.1; not an interference
    assert (episode.started_s, episode.raised_s, episode.ended_s) == (1.0, 3.0, 4.0)
    assert episode.count == 3


def test_a_spike_whose_off_delay_passes_is_interference_ending_at_its_clear() -> None:
    rec = recorder({**ALARM, "off_delay_s": 3.0})
    rec.feed(series(1, [0.3, 1.2, 0.5, 0.5, 0.5, 0.5]))
    assert rec.episodes == []  # 5 = 2 + 3: not known yet
    rec.feed(series(1, [0.5], start_s=6))
    (spike,) = rec.episodes
    assert spike.rule == "interference" and (spike.started_s, spike.ended_s) == (1.0, 2.0)


@pytest.mark.parametrize("off_delay", [None, 0.0])
def test_off_delay_zero_or_unset_clears_at_the_first_clear_reading(off_delay: float | None) -> None:
    rec = recorder({**ALARM, "off_delay_s": off_delay, "poweroff_high": 1.5})
    values = [0.3, 1.2, 1.2, 0.5, 1.2, 1.6, 1.7, 0.9, 1.1, 1.2, 0.5, 3.0, 0.3]
    rec.feed(series(1, values[:4]), series(1, values[4:], start_s=4))
    got = sorted((e.started_s, e.rule, e.ended_s, e.count) for e in rec.episodes)
    assert got == [
        (1.0, "upper_alarm", 3.0, 2),
        (4.0, "upper_alarm", 7.0, 3),
        (5.0, "power_off", 7.0, 2),
        (8.0, "upper_alarm", 10.0, 2),
        (11.0, "interference", 12.0, 1),
    ]


def test_the_feed_check_follows_the_raw_cut_not_the_off_delayed_episode() -> None:
    cutting = {**ALARM, "poweroff_high": 1.5, "restore_high": 1.0, "off_delay_s": 10.0,
               "relations": [{"kind": "D", "target": "P2"}], "control_time_s": 2.0}  # fmt: skip
    feed = {"sensor_type": "1011", "value_type": "KG", "alarm_high": None,
            "alarm_high_clear": None, "poweroff_high": None, "restore_high": None,
            "range_low": None, "range_high": None}  # fmt: skip
    rec = recorder(cutting, feed)
    ch4 = series(1, [0.3, 1.6, 1.6, 1.6, 1.6, 0.5, 0.5, 0.5, 0.5, 0.5])
    rec.feed(ch4, series(2, [1.0] * 10))  # the feed stays on: 馈电异常 from 3 (1 + 2 s)
    (abnormal,) = rec.of("feed_abnormal")
    assert (abnormal.started_s, abnormal.ended_s) == (3.0, 5.0)  # the cut restored at 5
    (cut,) = rec.of("power_off")
    assert cut.ended_s is None  # the alarm itself waits for its off-delay


def test_the_feed_control_time_counts_from_the_raw_cut_across_batches() -> None:
    cutting = {**ALARM, "poweroff_high": 1.5, "restore_high": 1.0, "off_delay_s": 10.0,
               "relations": [{"kind": "D", "target": "P2"}], "control_time_s": 2.0}  # fmt: skip
    feed = {"sensor_type": "1011", "value_type": "KG", "alarm_high": None,
            "alarm_high_clear": None, "poweroff_high": None, "restore_high": None,
            "range_low": None, "range_high": None}  # fmt: skip
    rec = recorder(cutting, feed)
    # The cut at 1, restored at 2, cut again at 3: one power-off episode, a new cut from 3.
    rec.feed(series(1, [0.3, 1.6, 0.5, 1.6]), series(2, [0.0] * 4))
    (cut,) = rec.of("power_off")
    rec.feed(series(2, [1.0, 1.0], start_s=4), series(1, [1.6], start_s=6))
    (abnormal,) = rec.of("feed_abnormal")
    assert abnormal.started_s == 5.0  # 3 + 2 s, not 1 + 2 s
    assert cut.started_s == 1.0 and cut.ended_s is None
