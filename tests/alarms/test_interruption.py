"""Data interruption is driven by a clock passed to ``tick``, not by the next message."""

from __future__ import annotations

from tests.alarms.helpers import recorder, series


def test_tick_opens_an_interruption_after_n_silent_cycles_and_a_reading_ends_it() -> None:
    rec = recorder({"poll_cycle_s": 2.0, "interruption_cycles": 3}, {"poll_cycle_s": 2.0})
    rec.feed(series(1, [0.3] * 5, step_s=2), series(2, [0.3] * 5, step_s=2))  # last at t=8
    assert rec.tick(14.0) == []  # 6 s of silence = 3 cycles, not more
    rec.feed(series(2, [0.3], start_s=14))  # point 2 keeps reporting
    changes = rec.tick(14.5)
    assert [(c.point_id, c.rule, c.abnormal_type) for c in changes] == [
        (1, "data_interruption", "M03")
    ]
    (gap,) = rec.episodes
    assert (gap.started_s, gap.raised_s) == (10.0, 14.5)  # first missing reading was due at 10
    assert gap.classification == "data_interruption" and gap.start_value == 0.3
    assert [c.point_id for c in rec.tick(100.0)] == [2]  # point 2 fell silent since
    assert rec.tick(101.0) == []  # one open episode per point, not one per tick
    rec.feed(series(1, [0.31], start_s=120))
    assert gap.ended_s == 120.0 and gap.classification == "data_interruption"


def test_readings_that_were_only_delivered_late_reclassify_the_interruption() -> None:
    rec = recorder({"poll_cycle_s": 1.0})  # default interruption: 3 cycles
    rec.feed(series(1, [0.3] * 3))  # last reading t=2
    rec.tick(10.0)
    rec.feed(series(1, [0.3] * 10, start_s=3))  # the spool replays t=3..12: nothing missing
    (gap,) = rec.episodes
    assert gap.classification == "delivery_delay" and gap.ended_s == 3.0


def test_points_that_never_reported_are_not_interrupted() -> None:
    rec = recorder({}, {})
    rec.feed(series(1, [0.3]))
    assert rec.tick(10_000.0)[0].point_id == 1
    assert [e.point for e in rec.episodes] == [1]


def test_the_default_poll_cycle_is_the_regulatory_maximum() -> None:
    rec = recorder({})  # no poll_cycle_s: 30 s x 3 cycles
    rec.feed(series(1, [0.3]))
    assert rec.tick(90.0) == []
    assert len(rec.tick(90.5)) == 1


def test_restored_interruption_is_ended_by_the_next_reading() -> None:
    engine = recorder({"poll_cycle_s": 1.0}).engine
    engine.restore([(1, "data_interruption", 0)], [(1, 0, 0.3)])
    changes = engine.evaluate(series(1, [0.3], start_s=50)).changes
    assert [(c.rule, c.opened, c.ended_at_us is not None) for c in changes] == [
        ("data_interruption", False, True)
    ]


def test_a_late_reading_from_before_the_first_due_time_ends_the_episode_at_its_start() -> None:
    rec = recorder({"poll_cycle_s": 1.0})
    rec.feed(series(1, [0.3]))  # t=0; the next reading was due at t=1
    rec.tick(4.0)
    rec.feed(series(1, [0.3], start_s=0.5))  # delivered late, from before the due time
    (gap,) = rec.episodes
    assert gap.classification == "delivery_delay"
    assert (gap.started_s, gap.ended_s) == (1.0, 1.0)  # never ends before it starts


# -- a tick behind a backlog (the caller's queue or broker session holds readings) ----------


def test_a_tick_behind_a_backlog_does_not_take_queued_readings_for_silence() -> None:
    rec = recorder({"poll_cycle_s": 2.0, "interruption_cycles": 3}, {"poll_cycle_s": 2.0})
    rec.feed(series(1, [0.3] * 5, step_s=2), series(2, [0.3] * 5, step_s=2))  # last at t=8
    assert rec.tick(100.0, behind=True) == []  # the wall clock would flag both
    rec.feed(
        series(1, [0.3] * 40, start_s=10, step_s=2), series(2, [0.3] * 40, start_s=10, step_s=2)
    )
    assert rec.tick(100.0, behind=True) == []
    assert rec.episodes == []
    assert [c.point_id for c in rec.tick(100.0)] == [1, 2]  # caught up: the wall clock


def test_a_point_silent_while_its_mine_advances_is_flagged_behind_a_backlog() -> None:
    rec = recorder({"poll_cycle_s": 2.0, "interruption_cycles": 3}, {"poll_cycle_s": 2.0})
    rec.feed(series(1, [0.3] * 5, step_s=2), series(2, [0.3] * 5, step_s=2))  # last at t=8
    rec.feed(series(2, [0.3] * 6, start_s=10, step_s=2))  # point 2 goes on to t=20
    changes = rec.tick(1000.0, behind=True)
    assert [(c.point_id, c.rule) for c in changes] == [(1, "data_interruption")]
    (gap,) = rec.episodes
    assert (gap.started_s, gap.raised_s) == (10.0, 20.0)  # raised on the mine's clock


def test_behind_a_backlog_each_mine_has_its_own_clock_within_the_allowed_lateness() -> None:
    # mine B's clock is 30 s behind mine A's (less than the allowed lateness, 60 s); mine C's
    # readings stopped 100 s before A's newest: a whole mine silent while others advance
    rec = recorder(
        {"poll_cycle_s": 2.0},
        {"poll_cycle_s": 2.0, "mine_code": "141024010002"},
        {"poll_cycle_s": 2.0, "mine_code": "141024010003"},
    )
    rec.feed(series(1, [0.3] * 51, start_s=100, step_s=2))  # mine A: up to t=200
    rec.feed(series(2, [0.3] * 51, start_s=70, step_s=2))  # mine B: up to t=170
    rec.feed(series(3, [0.3] * 10, start_s=82, step_s=2))  # mine C: up to t=100
    changes = rec.tick(5000.0, behind=True)
    assert [c.point_id for c in changes] == [3]
    (gap,) = rec.episodes
    assert gap.raised_s == 140.0  # A's newest less the allowed lateness
