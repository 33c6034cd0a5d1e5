"""Fusion across systems, the pure logic (alarms/rules/fusion.py) on hand-made frames: what a
fused alarm should say from the facts, and the plan that brings the stored ones there."""

from __future__ import annotations

import numpy as np

from minewatch.alarms.rules import fusion
from minewatch.alarms.rules.fusion import Facts, Fused, Stored, frame, plan

MINE = "141024010001"
FACE, HEADING = f"{MINE}0003", f"{MINE}0004"
S = 1_000_000
T0 = 1_780_000_000 * S
OPEN = np.nan


def t(seconds: float) -> int:
    return T0 + round(seconds * S)


def alarms(*rows: tuple[int, int, str | None, str, float, float]) -> object:
    """(id, point, area, rule, started s, ended s or OPEN)."""
    return frame(
        [(i, MINE, p, a, r, t(s), OPEN if e != e else t(e)) for i, p, a, r, s, e in rows],
        fusion.ALARM_COLUMNS,
    ).assign(ended_us=lambda f: f["ended_us"].astype(float))


def presence(*rows: tuple[str, str, float]) -> object:
    return frame([(MINE, a, c, t(s)) for c, a, s in rows], fusion.PRESENCE_COLUMNS)


def test_a_gas_alarm_in_an_occupied_area_fuses_with_its_head_count_and_cards() -> None:
    gas = alarms((10, 1, FACE, "upper_alarm", 100, OPEN), (11, 1, FACE, "power_off", 130, OPEN),
                 (12, 2, HEADING, "upper_alarm", 100, OPEN))  # fmt: skip
    people = presence(("C3", FACE, 50), ("C1", FACE, 120), ("C2", FACE, 10))
    (fused,) = fusion.gas_people(gas, people)  # the heading is empty
    assert (fused.rule, fused.point_id, fused.area, fused.sources) == (
        "gas_people", 1, FACE, (10, 11),
    )  # fmt: skip
    assert fused.value == 3 and fused.cards == ("C1", "C2", "C3")
    assert fused.started_us == t(100)  # people were there before the gas


def test_people_arriving_after_the_gas_start_the_fused_alarm_at_their_arrival() -> None:
    gas = alarms((10, 1, FACE, "feed_abnormal", 100, OPEN), (9, 1, FACE, "upper_alarm", 10, 50))
    (fused,) = fusion.gas_people(gas, presence(("C1", FACE, 150)))
    assert fused.sources == (10,) and fused.started_us == t(150)  # the ended alarm is not fused


def test_no_fusion_without_people_or_without_an_area() -> None:
    assert fusion.gas_people(alarms((10, 1, FACE, "upper_alarm", 0, OPEN)), presence()) == []
    assert fusion.gas_people(alarms((10, 1, None, "upper_alarm", 0, OPEN)),
                             presence(("C1", FACE, 0))) == []  # fmt: skip


def test_an_offline_camera_of_the_area_fuses_with_the_gas_alarm() -> None:
    gas = alarms((10, 1, FACE, "upper_alarm", 100, OPEN))
    cams = frame([(MINE, FACE, "V1", True, t(0)), (MINE, FACE, "V2", False, t(150)),
                  (MINE, HEADING, "V3", False, t(0))], fusion.CAMERA_COLUMNS)  # fmt: skip
    (fused,) = fusion.gas_cameras(gas, cams)
    assert (fused.rule, fused.cameras, fused.value, fused.started_us) == (
        "gas_camera_offline", ("V2",), 1.0, t(150),
    )  # fmt: skip
    online = cams.assign(online=True)
    assert fusion.gas_cameras(gas, online) == []


def fans(*rows: tuple[int, int, float, float], rise: float = 0.2) -> object:
    return alarms(*((i, p, HEADING, "fan_stop", s, e) for i, p, s, e in rows)).assign(rise=rise)


def readings(*rows: tuple[int, int, float, float]) -> object:
    return frame([(f, p, t(s), v) for f, p, s, v in rows], fusion.READING_COLUMNS)


NO_LEVELS = frame([], fusion.LEVEL_COLUMNS)


def test_a_fan_stop_with_methane_rising_by_more_than_the_delta_fuses_at_the_crossing() -> None:
    stop = fans((20, 5, 100, OPEN))
    series = readings((20, 7, 90, 0.30), (20, 7, 110, 0.45), (20, 7, 130, 0.50),
                      (20, 7, 140, 0.62), (20, 8, 95, 0.1), (20, 8, 140, 0.2))  # fmt: skip
    (fused,) = fusion.fan_gas_rise(stop, series, NO_LEVELS)
    assert (fused.rule, fused.point_id, fused.sources, fused.points) == (
        "fan_stop_gas_rise", 5, (20,), (7,),
    )  # fmt: skip
    assert fused.started_us == t(140)  # 0.20 at 130 s is not more than 0.2
    assert np.isclose(fused.value, 0.32) and fused.threshold == 0.2


def test_a_fan_stop_without_rise_is_not_fused_and_a_level_episode_is_enough() -> None:
    stop = fans((20, 5, 100, OPEN), rise=0.5)
    flat = readings((20, 7, 90, 0.30), (20, 7, 130, 0.40))
    assert fusion.fan_gas_rise(stop, flat, NO_LEVELS) == []
    prewarn = frame([(20, 31, 7, t(60))], fusion.LEVEL_COLUMNS)  # open since before the stop
    (fused,) = fusion.fan_gas_rise(stop, flat, prewarn)
    assert fused.sources == (20, 31) and fused.started_us == t(100) and fused.points == (7,)


def test_a_rise_without_a_baseline_before_the_stop_is_not_a_rise() -> None:
    stop = fans((20, 5, 100, OPEN))
    assert fusion.fan_gas_rise(stop, readings((20, 7, 110, 0.1), (20, 7, 120, 0.9)),
                               NO_LEVELS) == []  # fmt: skip


def test_a_rise_that_arrives_after_the_fan_restarted_is_raised_ended_at_the_restart() -> None:
    """The methane's substation reports late (issue 18): the fan stop has ended, unfused."""
    stop = fans((20, 5, 100, 150))
    series = readings((20, 7, 90, 0.30), (20, 7, 140, 0.62))
    (late,) = fusion.fan_gas_rise(stop, series, NO_LEVELS)
    assert (late.started_us, late.ended_us, late.sources) == (t(140), t(150), (20,))
    changes = plan([late], [], Facts({20: t(150)}, frozenset({20})), t(160))
    assert [(c.event, c.time_us) for c in changes] == [("raised", t(140))]
    # once it has a fused alarm, the ended stop is not examined again
    assert fusion.fan_gas_rise(stop, series, NO_LEVELS, frozenset({20})) == []


PEOPLE = Fused("gas_people", MINE, 1, FACE, (10,), t(100), 2.0, cards=("C1", "C2"))


def facts(**ended: float | None) -> Facts:
    return Facts(
        ended={int(k[1:]): None if v is None else t(v) for k, v in ended.items()},
        primary=frozenset(int(k[1:]) for k in ended),
    )


def test_plan_raises_what_is_wanted_and_nothing_when_it_is_stored_as_wanted() -> None:
    (raised,) = plan([PEOPLE], [], facts(a10=None), t(200))
    assert (raised.event, raised.time_us, raised.fused) == ("raised", t(100), PEOPLE)
    assert plan([PEOPLE], [Stored(1, PEOPLE, 2.0)], facts(a10=None), t(200)) == []


def test_plan_updates_cards_and_adds_sources_but_keeps_the_start() -> None:
    now = Fused("gas_people", MINE, 1, FACE, (10, 11), t(150), 3.0, cards=("C1", "C2", "C4"))
    (update,) = plan([now], [Stored(1, PEOPLE, 2.0)], facts(a10=None, a11=None), t(200))
    assert (update.event, update.alarm_id, update.time_us) == ("updated", 1, t(200))
    assert update.fused.sources == (10, 11) and update.fused.started_us == t(100)
    assert update.fused.cards == ("C1", "C2", "C4")


def test_plan_clears_at_the_gas_end_or_at_the_last_departure() -> None:
    (gone,) = plan([], [Stored(1, PEOPLE, 2.0)], facts(a10=180), t(200))
    assert (gone.event, gone.alarm_id, gone.time_us) == ("cleared", 1, t(180))
    empty = Facts({10: None}, frozenset({10}), emptied={(MINE, FACE): t(170)})
    (left,) = plan([], [Stored(1, PEOPLE, 2.0)], empty, t(200))
    assert left.time_us == t(170)
    (unknown,) = plan([], [Stored(1, PEOPLE, 2.0)], facts(a10=None), t(200))
    assert unknown.time_us == t(200)  # no known reason: the evaluation's time


def test_a_new_gas_alarm_between_two_evaluations_is_a_new_fused_episode() -> None:
    later = Fused("gas_people", MINE, 1, FACE, (12,), t(190), 2.0, cards=("C1", "C2"))
    changes = plan([later], [Stored(1, PEOPLE, 2.0)], facts(a10=180, a12=None), t(200))
    assert [(c.event, c.time_us) for c in changes] == [("cleared", t(180)), ("raised", t(190))]


def test_a_stored_camera_fusion_ends_when_the_cameras_are_back() -> None:
    cams = Fused("gas_camera_offline", MINE, 1, FACE, (10,), t(100), 1.0, cameras=("V2",))
    back = frame([(MINE, FACE, "V1", True, t(0)), (MINE, FACE, "V2", True, t(160))],
                 fusion.CAMERA_COLUMNS)  # fmt: skip
    restored = fusion.restored_areas([(MINE, FACE)], back)
    assert restored == {(MINE, FACE): t(160)}
    found = Facts({10: None}, frozenset({10}), restored=restored)
    (gone,) = plan([], [Stored(3, cams, 1.0)], found, t(200))
    assert (gone.event, gone.time_us) == ("cleared", t(160))


def test_emptied_areas_are_the_unoccupied_ones_with_their_last_departure() -> None:
    departures = frame([(MINE, FACE, t(170)), (MINE, HEADING, t(90))], ["mine", "area", "left_us"])
    found = fusion.emptied_areas([(MINE, FACE), (MINE, HEADING)],
                                 presence(("C1", HEADING, 95)), departures)  # fmt: skip
    assert found == {(MINE, FACE): t(170)}
