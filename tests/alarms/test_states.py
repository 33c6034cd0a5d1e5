"""Switch-state alarms (alarms/rules/states.py): a switch point alarms while it reads the alarm
state configured for it, after its on-delay; the sensor type names the rule."""

from __future__ import annotations

import pandas as pd
import pytest
from pydantic import ValidationError

from minewatch.alarms.engine import AlarmEngine
from minewatch.alarms.rules.states import StatePoints
from minewatch.metadata import MineDefinition, PointDefinition
from tests.alarms.helpers import MINE, Recorder, at, recorder, registry, series

SWITCH = dict(
    value_type="KG", range_low=None, range_high=None, alarm_high=None, alarm_high_clear=None,
    poweroff_high=None, restore_high=None,
)  # fmt: skip


def switch(sensor_type: str, alarm_state: int | None, **extra: object) -> dict[str, object]:
    return {**SWITCH, "sensor_type": sensor_type, "alarm_state": alarm_state, **extra}


def test_a_local_fan_that_stops_raises_fan_stop_from_the_first_stopped_reading() -> None:
    rec = recorder(switch("1001", 0))
    rec.feed(series(1, [1, 1, 0, 0, 0, 1, 1]))
    (stop,) = rec.episodes
    assert (stop.rule, stop.abnormal_type, stop.classification) == ("fan_stop", "S01", "exceedance")
    assert (stop.started_s, stop.raised_s, stop.ended_s) == (2.0, 2.0, 5.0)
    assert stop.threshold == 0.0 and (stop.count, stop.max, stop.min) == (3, 0.0, 0.0)


def test_the_on_delay_drops_a_short_stop_and_delays_a_long_one_without_moving_its_start() -> None:
    rec = recorder(switch("1001", 0, on_delay_s=10.0))
    rec.feed(series(1, [1, 0, 0, 0, 0, 0, 1], step_s=2.0))  # stopped 10 s: 2..10 is 8 s
    assert rec.episodes == []
    rec.feed(series(1, [0] * 8 + [1], start_s=20.0, step_s=2.0))  # stopped 16 s
    (stop,) = rec.episodes
    assert (stop.started_s, stop.raised_s, stop.ended_s) == (20.0, 30.0, 36.0)
    assert stop.count == 8  # the readings before the raise are in the statistics


def test_the_sensor_type_names_the_rule_and_the_alarm_state_is_per_point() -> None:
    rec = recorder(
        switch("1010", 0),  # 主通风机 停
        switch("1003", 0),  # 风筒 无风
        switch("1008", 1),  # 烟雾 有
        switch("1002", 1),  # 风门 开: a door that must stay shut
        switch("1001", None),  # a fan without an alarm state never alarms
        {},  # a methane point at 0 is not a switch
    )
    batches = [series(p, [1, 0, 0, 1] if p in (1, 2, 5) else [0, 1, 1, 0]) for p in range(1, 6)]
    rec.feed(*batches, series(6, [0.0, 0.0, 0.0, 0.0]))
    found = {(e.point, e.rule, e.abnormal_type, e.started_s, e.ended_s) for e in rec.episodes}
    assert found == {
        (1, "main_fan_stop", "S02", 1.0, 3.0),
        (2, "duct_no_wind", "S03", 1.0, 3.0),
        (3, "smoke", "S04", 1.0, 3.0),
        (4, "state_alarm", "S05", 1.0, 3.0),
    }


def test_a_fault_reading_holds_the_state_and_a_run_spans_batches() -> None:
    rec = recorder(switch("1001", 0, on_delay_s=5.0))
    rec.feed(series(1, [1, 0, 0], step_s=2.0))  # stopped at 2 s, not yet 5 s
    assert rec.episodes == []
    rec.feed(series(1, [1, 1, 0], start_s=6.0, step_s=2.0, status=[128, 128, 0]))
    (stop,) = rec.of("fan_stop")
    assert (stop.started_s, stop.raised_s, stop.ended_s) == (2.0, 10.0, None)
    assert rec.of("disconnection")  # the fault is maintenance's, and did not clear the stop
    rec.feed(series(1, [1], start_s=12.0))
    assert stop.ended_s == 12.0 and stop.count == 3  # fault readings stay out of statistics


def test_an_open_stop_is_restored_after_a_restart_and_ended_by_the_next_running_reading() -> None:
    engine = AlarmEngine(registry(switch("1001", 0)))
    engine.restore([(1, "fan_stop", at(-60))], [(1, at(-1), 0.0)])
    (end,) = engine.evaluate(series(1, [0, 1])).changes
    assert (end.rule, end.opened, end.ended_at_us, end.count) == ("fan_stop", False, at(1), 1)


def test_a_point_whose_alarm_state_is_removed_closes_its_open_episode() -> None:
    engine = AlarmEngine(registry(switch("1001", 0)))
    rec = Recorder(engine)
    rec.feed(series(1, [0, 0]))
    engine.use_registry(registry(switch("1001", None)))
    rec.feed(series(1, [0], start_s=2.0))
    (stop,) = rec.episodes
    assert stop.ended_s == 2.0


def test_state_points_are_indexed_by_point_id() -> None:
    reg = registry(switch("1001", 0), {}, switch("1008", 1), switch("1006", 0))
    points = StatePoints.of(reg)
    assert points.rule.tolist() == [-1, 0, -1, 3, 4]


def test_definitions_carry_alarm_state_and_area_and_check_them() -> None:
    base = {"code": "F1", "substation": "001", "sensor_type": "1001"}
    fan = PointDefinition.model_validate({**base, "alarm_state": 0, "area_code": MINE + "0003"})
    assert (fan.alarm_state, fan.area_code) == (0, MINE + "0003")
    with pytest.raises(ValidationError, match="switch"):
        PointDefinition.model_validate({**base, "sensor_type": "0001", "alarm_state": 1})
    with pytest.raises(ValidationError):
        PointDefinition.model_validate({**base, "alarm_state": 2})
    with pytest.raises(ValidationError):
        PointDefinition.model_validate({**base, "area_code": "123"})
    with pytest.raises(ValidationError, match="another mine"):
        MineDefinition.model_validate({
            "mine": {"code": MINE, "name": "m"}, "substations": [{"code": "001"}],
            "points": [{**base, "area_code": "9999999999990003"}],
        })  # fmt: skip


def test_the_registry_reads_alarm_state_and_area_with_unset_as_nan_and_none() -> None:
    reg = registry(switch("1001", 0, area_code=MINE + "0003"), {})
    assert reg.alarm_state[1] == 0.0 and pd.isna(reg.alarm_state[2])
    assert reg.area_code[1] == MINE + "0003" and reg.area_code[2] is None
