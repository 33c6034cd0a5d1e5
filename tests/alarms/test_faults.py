"""Fault states become maintenance episodes, never gas alarms."""

from __future__ import annotations

from tests.alarms.helpers import recorder, series

DISCONNECTED = 128
OVER_RANGE = 8
SUBSTATION_FAULT = 16


def test_disconnection_at_the_range_bottom_is_a_maintenance_alarm_and_holds_the_gas_alarm() -> None:
    rec = recorder({"poweroff_high": None})
    # an alarm is open when the sensor disconnects (value at the range bottom, bit 128)
    values = [1.2, 1.3, 0.0, 0.0, 0.0, 1.25, 0.3]
    status = [0, 0, DISCONNECTED, DISCONNECTED, DISCONNECTED, 0, 0]
    rec.feed(series(1, values, status=status))
    by_rule = {e.rule: e for e in rec.episodes}
    assert set(by_rule) == {"upper_alarm", "disconnection"}
    cut = by_rule["disconnection"]
    assert cut.abnormal_type == "004" and cut.classification == "disconnection"
    assert (cut.started_s, cut.ended_s) == (2.0, 5.0)
    gas = by_rule["upper_alarm"]
    # the 0.0 readings neither cleared the gas alarm nor entered its statistics
    assert (gas.started_s, gas.ended_s, gas.count, gas.min) == (0.0, 6.0, 3, 1.2)


def test_a_disconnected_sensor_never_raises_a_gas_alarm() -> None:
    rec = recorder({})
    rec.feed(series(1, [0.3, 4.0, 4.0, 4.0, 0.3], status=[0, 128, 128, 128, 0]))
    assert rec.rules() == ["disconnection"]


def test_over_range_and_substation_fault_have_their_own_rules() -> None:
    rec = recorder({"sensor_type": "0004", "range_high": 1000.0, "alarm_high": 24.0,
                    "alarm_high_clear": 24.0, "poweroff_high": None})  # fmt: skip
    rec.feed(series(1, [3, 3, 3, 3, 3, 3], status=[0, 16, 16, 0, 0, 0]))
    rec.feed(series(1, [1000, 1000, 5], status=[8, 8, 0], start_s=10))
    by_rule = {e.rule: e for e in rec.episodes}
    assert by_rule["substation_fault"].abnormal_type == "M04"
    assert (by_rule["substation_fault"].started_s, by_rule["substation_fault"].ended_s) == (1, 3)
    assert by_rule["over_range"].abnormal_type == "008"
    assert (by_rule["over_range"].started_s, by_rule["over_range"].ended_s) == (10, 12)
    # an over-range methane/CO sensor is above every gas level: the gas alarm still raises
    assert by_rule["upper_alarm"].max == 1000


def test_persistent_negative_drift_is_maintenance_and_not_a_low_gas_alarm() -> None:
    # the platforms' trick: lower alarm -0.01 on a methane point
    rec = recorder({"alarm_low": -0.01, "alarm_low_clear": -0.01, "range_low": None})
    rec.feed(series(1, [0.02, -0.01, 0.0, -0.02, -0.03, -0.02, -0.04, 0.01, 0.02]))
    (drift,) = rec.episodes
    assert drift.rule == "negative_drift" and drift.classification == "negative_drift"
    assert drift.ended_s is None  # back at t=7, but a drift may come back within the off-delay
    rec.feed(series(1, [0.02], start_s=70))  # 60 s (drift_off_delay_s) later: it is over
    # one negative reading (t=1) is not persistent, but the drift back at t=3 is within the
    # off-delay of its return at t=2: one episode from t=1, raised at the third drifting reading
    # (t=4), ended when the sensor came back for good (t=7)
    assert (drift.started_s, drift.raised_s, drift.ended_s) == (1.0, 4.0, 7.0)
    assert drift.min == -0.04


def test_a_sensor_hovering_at_its_range_bottom_is_one_drift_not_a_chatter() -> None:
    rec = recorder({"range_low": 0.0})
    hovering = [-0.01, -0.02, -0.01, 0.0, -0.01, -0.01, -0.02, 0.0, 0.0, -0.01, -0.02, -0.01]
    rec.feed(series(1, hovering * 5, step_s=2))  # recoveries of 2-4 s for two minutes
    rec.feed(series(1, [0.0] * 40, start_s=120, step_s=2))  # then back for good
    (drift,) = rec.episodes
    assert (drift.started_s, drift.ended_s) == (0.0, 120.0)


def test_stuck_sensor_after_n_identical_samples() -> None:
    rec = recorder({"flatline_samples": 5, "poweroff_high": None})
    rec.feed(series(1, [0.31, 0.30, 0.30, 0.30]))
    rec.feed(series(1, [0.30, 0.30, 0.30, 0.32, 0.30, 0.30], start_s=4))
    (stuck,) = rec.episodes
    assert stuck.rule == "flatline" and stuck.abnormal_type == "M02"
    # 0.30 from t=1: the fifth identical reading is t=5; the change at t=7 ends it
    assert (stuck.started_s, stuck.ended_s) == (5.0, 7.0)


def test_flatline_ignores_switch_points_and_can_be_switched_off() -> None:
    feed = {"sensor_type": "1011", "value_type": "KG", "alarm_high": None,
            "alarm_high_clear": None, "poweroff_high": None, "flatline_samples": 3}  # fmt: skip
    rec = recorder(feed, {"flatline_samples": 0, "poweroff_high": None})
    rec.feed(series(1, [1.0] * 20), series(2, [0.3] * 20))
    assert rec.episodes == []


def test_flatline_default_window_is_long() -> None:
    rec = recorder({"poweroff_high": None})
    rec.feed(series(1, [0.0] * 899))
    assert rec.episodes == []
    rec.feed(series(1, [0.0], start_s=899))
    assert rec.rules() == ["flatline"]
