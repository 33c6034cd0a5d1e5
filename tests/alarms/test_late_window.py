"""The late window (alarms/late.py) on hand-made series, no database: 馈电 decided at the
window's end, and what :func:`plan` adds, corrects or leaves."""

from __future__ import annotations

from minewatch.alarms.engine import AlarmEngine
from minewatch.alarms.late import (
    REASON_FILLED,
    REASON_LATE,
    LateSpans,
    Stored,
    pair_spans,
    plan,
    window_episodes,
)
from minewatch.batch import ReadingBatch
from tests.alarms.helpers import at, registry, series

FEED = {"code": "F1", "sensor_type": "1011", "value_type": "KG", "alarm_high": None,
        "alarm_high_clear": None, "poweroff_high": None, "restore_high": None,
        "range_low": None, "range_high": None}  # fmt: skip
CUTTING = {"relations": [{"kind": "D", "target": "F1"}], "poll_cycle_s": 2.0}


def _engine() -> AlarmEngine:
    return AlarmEngine(registry(CUTTING, FEED))


def test_the_window_decides_the_feed_abnormal_alarm_held_at_its_end() -> None:
    methane = [0.3, 0.9, 1.6, 1.7, 1.7, 1.6, 0.8, 0.3]  # cut at t=4, restored at t=12
    feed = [1, 1, 1, 1]  # the feed's last reading at t=6: the live rule would hold t>6
    window = ReadingBatch.concat([series(1, methane, step_s=2), series(2, feed, step_s=2)])
    found = {e.rule: e for e in window_episodes(_engine(), window)}
    failure = found["feed_abnormal"]  # decided at the window's end, the feed still on
    assert (failure.start_us, failure.end_us) == (at(6), at(12))  # not left open to t=14


def test_a_late_feed_span_reaches_its_methane_point_and_back() -> None:
    spans = LateSpans.of({2: (at(10), at(20))})
    assert pair_spans(spans, _engine().pairs).as_dict() == {1: (at(10), at(20)),
                                                           2: (at(10), at(20))}  # fmt: skip


def _episode(rule: str, start: float, end: float, count: int = 3):  # type: ignore[no-untyped-def]
    from minewatch.alarms.episodes import Episode

    return Episode(1, rule, "exceedance", at(start), at(start), 1.2, 1.0, end_us=at(end),
                   count=count, total=3.6, vmax=1.2, vmax_at=at(start), vmin=1.2,
                   vmin_at=at(start))  # fmt: skip


def _stored(rule: str, start: float, end: float | None, late: bool = False, **kw: object) -> Stored:
    return Stored(7, 1, rule, at(start), None if end is None else at(end), late,
                  kw.get("label", "exceedance"), 3, 3.6, 1.2, at(start), 1.2, at(start))  # type: ignore[arg-type]  # fmt: skip


OWN = {1: (at(0), at(100))}


def test_an_episode_no_stored_one_overlaps_is_added() -> None:
    todo = plan([_episode("upper_alarm", 10, 20)], [], OWN, {})
    assert [e.rule for e in todo.inserts] == ["upper_alarm"] and not todo.corrections


def test_a_live_episode_whose_end_the_window_moves_is_corrected_with_its_previous_end() -> None:
    todo = plan([_episode("upper_alarm", 10, 20)], [_stored("upper_alarm", 10, 50)], OWN, {})
    [c] = todo.corrections
    assert (c.alarm_id, c.reason) == (7, REASON_LATE) and not todo.inserts
    assert c.previous == {"ended_at": at(50)} and c.corrected == {"ended_at": at(20)}


def test_a_live_episode_the_window_finds_unchanged_is_left_alone() -> None:
    todo = plan([_episode("upper_alarm", 10, 50)], [_stored("upper_alarm", 10, 50)], OWN, {})
    assert not todo.corrections and not todo.inserts and not todo.extensions


def test_an_open_live_episode_gets_only_a_higher_peak() -> None:
    higher = _episode("upper_alarm", 10, 20, count=5)
    higher.vmax, higher.vmax_at = 2.5, at(15)
    [c] = plan([higher], [_stored("upper_alarm", 10, None)], OWN, {}).corrections
    assert c.corrected == {"max_value": 2.5, "max_at": at(15)}


def test_a_live_interruption_the_window_finds_no_silence_in_is_a_delivery_delay() -> None:
    stored = _stored("data_interruption", 10, 90, label="data_interruption")
    [c] = plan([], [stored], OWN, {}).corrections
    assert c.reason == REASON_FILLED and c.corrected == {"classification": "delivery_delay"}


def test_an_interruption_outside_the_late_readings_is_left_alone() -> None:
    stored = _stored("data_interruption", 200, 290, label="data_interruption")
    assert plan([], [stored], OWN, {}).corrections == []
