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


CO_PT, SMOKE_PT, TEMP_PT = 40, 41, 42
NO_CONFIRM = frame([], fusion.CONFIRM_COLUMNS)
NO_TEMPERATURES = frame([], fusion.TEMPERATURE_COLUMNS)


def co_alarms(*rows: tuple[int, str, str, float, float], rise: float = 2.0) -> object:
    """(id, rule, classification, started s, ended s or OPEN) on the CO point of the face."""
    base = alarms(*((i, CO_PT, FACE, r, s, e) for i, r, _, s, e in rows))
    return base.assign(classification=[c for _, _, c, _, _ in rows], rise=rise)


def confirming(*rows: tuple[str, int, int, float]) -> object:
    """(kind, alarm id, point, started s), all for the CO point."""
    return frame([(CO_PT, k, a, p, t(s)) for k, a, p, s in rows], fusion.CONFIRM_COLUMNS)


def temperatures(*rows: tuple[float, float]) -> object:
    """(s, °C) of the face's temperature point."""
    return frame([(CO_PT, TEMP_PT, t(s), v) for s, v in rows], fusion.TEMPERATURE_COLUMNS)


def test_smoke_in_the_area_confirms_a_co_alarm_as_a_fire_from_the_later_of_the_two() -> None:
    co = co_alarms((50, "upper_alarm", "exceedance", 100, OPEN))
    (fire,) = fusion.co_fire(co, confirming(("smoke", 60, SMOKE_PT, 130)), NO_TEMPERATURES)
    assert (fire.rule, fire.point_id, fire.area, fire.sources) == (
        "co_fire_confirmed", CO_PT, FACE, (50, 60),
    )  # fmt: skip
    assert fire.started_us == t(130) and fire.points == (SMOKE_PT,) and fire.value == 1.0
    # smoke there before the CO (and ended since, but overlapping it): from the CO's start
    (early,) = fusion.co_fire(co, confirming(("smoke", 60, SMOKE_PT, 20)), NO_TEMPERATURES)
    assert early.started_us == t(100)


def test_a_temperature_rise_above_the_mines_delta_since_the_co_start_confirms() -> None:
    co = co_alarms((50, "upper_alarm", "exceedance", 100, OPEN),
                   (51, "co_fire_candidate", "exceedance", 100, OPEN), rise=1.5)  # fmt: skip
    flat = temperatures((90, 24.0), (110, 24.8), (140, 25.5))  # +1.5 is not more than 1.5
    assert fusion.co_fire(co, NO_CONFIRM, flat) == []
    warming = temperatures((90, 24.0), (110, 24.8), (140, 25.5), (170, 25.9), (200, 26.4))
    (fire,) = fusion.co_fire(co, NO_CONFIRM, warming)
    assert fire.sources == (50, 51) and fire.points == (TEMP_PT,)
    assert fire.started_us == t(170) and fire.threshold == 1.5
    # no baseline at or before the CO's start: no rise; a temperature alarm is enough
    assert fusion.co_fire(co, NO_CONFIRM, temperatures((110, 20.0), (200, 30.0))) == []
    (alarmed,) = fusion.co_fire(co, confirming(("temperature", 61, TEMP_PT, 150)), flat)
    assert alarmed.sources == (50, 51, 61) and alarmed.started_us == t(150)


def test_a_vehicle_puff_is_confirmed_by_smoke_only() -> None:
    puff = co_alarms((50, "upper_alarm", "co_vehicle_suspected", 100, OPEN))
    warm = temperatures((90, 24.0), (110, 27.0))  # the exhaust is warm
    hot = confirming(("temperature", 61, TEMP_PT, 105))
    assert fusion.co_fire(puff, hot, warm) == []
    (fire,) = fusion.co_fire(puff, confirming(("smoke", 60, SMOKE_PT, 120)), warm)
    assert fire.sources == (50, 60) and fire.points == (SMOKE_PT,)
    # once the CO has lasted (a fire candidate opened), the temperature confirms too
    longer = co_alarms((50, "upper_alarm", "co_vehicle_suspected", 100, OPEN),
                       (51, "co_fire_candidate", "exceedance", 280, OPEN))  # fmt: skip
    (fire,) = fusion.co_fire(longer, hot, warm)
    assert fire.sources == (50, 51, 61) and fire.started_us == t(105)


def test_nothing_without_an_open_co_alarm() -> None:
    smoke = confirming(("smoke", 60, SMOKE_PT, 130))
    assert fusion.co_fire(co_alarms(), smoke, NO_TEMPERATURES) == []
    ended = co_alarms((50, "upper_alarm", "exceedance", 100, 120))
    assert fusion.co_fire(ended, smoke, NO_TEMPERATURES) == []


def test_a_stored_fire_confirmation_ends_with_the_co_not_with_the_smoke() -> None:
    co = co_alarms((50, "upper_alarm", "exceedance", 100, OPEN))
    (fire,) = fusion.co_fire(co, confirming(("smoke", 60, SMOKE_PT, 130)), NO_TEMPERATURES)
    stored = [Stored(7, fire, 1.0)]
    smoke_gone = Facts({50: None, 60: t(150)}, frozenset({60}), co=frozenset({50}))
    assert plan([fire], stored, smoke_gone, t(200)) == []  # evaluated again: nothing
    co_gone = Facts({50: t(190), 60: None}, frozenset({60}), co=frozenset({50}))
    (cleared,) = plan([], stored, co_gone, t(200))
    assert (cleared.event, cleared.alarm_id, cleared.time_us) == ("cleared", 7, t(190))
