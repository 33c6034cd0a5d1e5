"""The fused fire confirmation (F04) as ``minewatch evaluate`` decides it from a replay's episodes
and the area's temperature readings (alarms/evaluation/fire_score.py), on hand-made series; the
simulated days are in test_evaluate_golden.py."""

from __future__ import annotations

import numpy as np
import pandas as pd

from minewatch.alarms.episodes import Episode
from minewatch.alarms.evaluation.fire_score import TemperatureTap, confirmed_fires
from minewatch.metadata import MineDefinition

MINE = "141024019957"
BELT, FACE = f"{MINE}0901", f"{MINE}0101"
S = 1_000_000
CO = {
    "sensor_type": "0004", "unit": "ppm", "range_low": 0.0, "range_high": 1000.0,
    "alarm_high": 24.0, "alarm_high_clear": 24.0,
}  # fmt: skip
TEMP = {"sensor_type": "0003", "unit": "°C", "range_low": 0.0, "range_high": 40.0,
        "alarm_high": 30.0}  # fmt: skip
DEFINITION = MineDefinition.model_validate({
    "mine": {"code": MINE, "name": "火灾确认评估测试矿"},
    "substations": [{"code": "001"}, {"code": "002"}],
    "points": [
        {"code": "CO-BELT", "substation": "001", "area_code": BELT, "co_puff_max_s": 180.0, **CO},
        {"code": "SMOKE-BELT", "substation": "001", "sensor_type": "1008", "area_code": BELT,
         "alarm_state": 1},
        {"code": "TEMP-BELT", "substation": "001", "area_code": BELT, **TEMP},
        {"code": "CO-FACE", "substation": "002", "area_code": FACE, **CO},
        {"code": "TEMP-FACE", "substation": "002", "area_code": FACE, **TEMP},
        {"code": "TEMP-ELSEWHERE", "substation": "002", **TEMP},
    ],
})  # fmt: skip
CO_BELT, SMOKE, TEMP_BELT, CO_FACE, TEMP_FACE, ELSEWHERE = range(6)


def episode(point: int, rule: str, cls: str, start_s: float, end_s: float | None,
            raised_s: float | None = None) -> Episode:  # fmt: skip
    e = Episode(point, rule, cls, round(start_s * S), round((raised_s or start_s) * S), 0.0, 24.0)
    e.end_us = None if end_s is None else round(end_s * S)
    return e


def ramp(point: int, start_s: int, end_s: int, base: float, rise_per_s: float) -> pd.DataFrame:
    t = np.arange(start_s, end_s)
    value = base + rise_per_s * np.clip(t - 100, 0, None)  # flat until 100 s, then warming
    return pd.DataFrame({"point_id": point, "time_us": t * S, "value": value})


def test_the_tap_keeps_only_valid_temperatures_of_areas_with_a_co_point() -> None:
    tap = TemperatureTap.of(DEFINITION)
    assert tap.keep.tolist() == [False, False, True, False, True, False]
    p = np.array([TEMP_BELT, TEMP_BELT, SMOKE, ELSEWHERE, TEMP_FACE], np.int32)
    t = np.array([1, 2, 1, 1, 1], np.int64) * S
    tap.feed(p, t, np.array([24.0, 99.0, 1.0, 25.0, 23.0]), np.array([1, 0, 1, 1, 1], bool))
    frame = tap.frame()
    assert frame[["point_id", "value"]].values.tolist() == [[TEMP_BELT, 24.0], [TEMP_FACE, 23.0]]


def test_a_fire_candidate_is_confirmed_by_the_warming_of_its_area_from_the_co_start() -> None:
    # CO on the face from 150 s (no vehicles there: an exceedance), a fire candidate raised at
    # 330 s; the face's air warms 0.012 °C/s from 100 s: 0.6 °C at the CO start, and more than
    # 2 °C above that reading from 317 s on (before the candidate: the exceedance counts)
    episodes = [
        episode(CO_FACE, "upper_alarm", "exceedance", 150, 900),
        episode(CO_FACE, "co_fire_candidate", "exceedance", 150, 900, raised_s=330),
    ]
    temps = pd.concat([ramp(TEMP_FACE, 0, 1000, 24.0, 0.012), ramp(ELSEWHERE, 0, 1000, 24, 1)])
    [fused] = confirmed_fires(DEFINITION, episodes, temps)
    assert (fused.point, fused.rule, fused.classification) == (
        CO_FACE,
        "co_fire_confirmed",
        "exceedance",
    )
    assert (fused.start_us, fused.raised_us, fused.end_us) == (317 * S, 317 * S, 900 * S)
    assert fused.start_value == 1.0 and fused.threshold == 2.0  # one confirming point
    # the same CO without the warming (or warming by less than the rise) is not confirmed
    assert confirmed_fires(DEFINITION, episodes, ramp(TEMP_FACE, 0, 1000, 24.0, 0.001)) == []
    # a rise after the CO ended does not confirm it afterwards
    short = [episode(CO_FACE, "upper_alarm", "exceedance", 150, 300)]
    assert confirmed_fires(DEFINITION, short, temps) == []


def test_an_exhaust_puff_is_confirmed_by_smoke_only_and_a_fire_on_the_belt_by_either() -> None:
    warm = ramp(TEMP_BELT, 0, 3000, 24.0, 0.03)  # the air warms fast all along
    puff = [episode(CO_BELT, "upper_alarm", "co_vehicle_suspected", 150, 240)]
    assert confirmed_fires(DEFINITION, puff, warm) == []  # a vehicle warms the air too
    smoke = episode(SMOKE, "smoke", "exceedance", 200, 260)
    [fused] = confirmed_fires(DEFINITION, [*puff, smoke], warm)
    assert (fused.start_us, fused.end_us) == (200 * S, 240 * S)
    # a fire on the belt: its upper_alarm opened as a suspected puff; the fire candidate
    # (raised 180 s after the start) lets the heat count, from the CO start's reading on
    fire = [
        episode(CO_BELT, "upper_alarm", "exceedance", 1000, 1800),
        episode(CO_BELT, "co_fire_candidate", "exceedance", 1000, 1800, raised_s=1180),
    ]
    [fused] = confirmed_fires(DEFINITION, fire, warm)
    assert (fused.start_us, fused.raised_us) == (1067 * S, 1180 * S)
    # smoke that started before the CO and is still on confirms at the CO's start
    early = episode(SMOKE, "smoke", "exceedance", 900, None)
    [fused] = confirmed_fires(DEFINITION, [*fire, early], warm.iloc[0:0])
    assert (fused.start_us, fused.raised_us, fused.start_value) == (1000 * S, 1000 * S, 1.0)
    # smoke of another area confirms nothing
    other = episode(TEMP_FACE, "smoke", "exceedance", 1100, 1200)
    assert confirmed_fires(DEFINITION, [*puff, other], warm) == []
