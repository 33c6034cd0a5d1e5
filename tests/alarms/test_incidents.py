"""Incidents (issue 13, item 1): the alarms of one physical event, grouped, on hand-made alarms
and on the engine's alarms of hand-made series."""

from __future__ import annotations

import re
from pathlib import Path

from minewatch.alarms.engine import AlarmEngine
from minewatch.alarms.episodes import Episode
from minewatch.alarms.incidents import (
    DEFAULT_GRADES,
    Incident,
    IncidentTracker,
    Topology,
    group,
)
from minewatch.alarms.rules.params import RuleDefaults
from tests.alarms.helpers import Recorder, registry, series

S = 1_000_000
MIGRATIONS = Path(__file__).parents[2] / "minewatch" / "migrations"
#: P0 -> P1 (40 s of air) -> P2 (30 s more); P3 elsewhere; P4 a fan in P3's area
TOPOLOGY = Topology.of(
    area={0: "A", 1: "A", 2: "B", 3: "C", 4: "C"},
    sensor_type={0: "0001", 1: "0001", 2: "0001", 3: "0001", 4: "1001"},
    paths=[(0, 1, 40.0), (1, 2, 30.0)],
    off_delay_s=60.0,
    substation={0: "s1", 1: "s1", 2: "s2", 3: "s2", 4: "s2"},
)


def alarm(
    point: int, rule: str, start: float, end: float | None, peak: float = 1.2, **kw: object
) -> Episode:
    e = Episode(point, rule, str(kw.get("classification", "exceedance")), round(start * S),
                round(float(kw.get("raised", start + 1)) * S), peak, 1.0)  # fmt: skip
    e.end_us = None if end is None else round(end * S)
    e.count, e.total, e.vmax, e.vmax_at = 2, 2 * peak, peak, e.start_us
    return e


def members(incident: Incident) -> list[tuple[int, str]]:
    return [(m.point, m.rule) for m in incident.members]


def test_one_excursion_from_alarm_to_power_off_and_feed_failure_is_one_incident_graded_red() -> (
    None
):
    (incident,) = group(
        [
            alarm(0, "upper_alarm", 0, 100, 1.2),
            alarm(0, "power_off", 10, 90, 1.7),
            alarm(0, "feed_abnormal", 12, 90, 1.7, classification="power_off_failure"),
        ],
        TOPOLOGY,
    )
    assert members(incident) == [(0, "upper_alarm"), (0, "power_off"), (0, "feed_abnormal")]
    assert incident.key == (0, "upper_alarm", 0) and incident.grade == "red"
    assert incident.peak == 1.7 and incident.closed_at_us == 100 * S


def test_gas_hovering_at_the_level_is_one_incident_not_a_chatter() -> None:
    chatter = [alarm(0, "upper_alarm", t, t + 3) for t in range(0, 300, 5)]
    (incident,) = group(chatter, TOPOLOGY)
    assert len(incident.members) == 60 and incident.closed_at_us == 298 * S


def test_an_alarm_after_the_off_delay_is_a_new_incident() -> None:
    first, second = group(
        [alarm(0, "upper_alarm", 0, 10), alarm(0, "upper_alarm", 75, 80)], TOPOLOGY
    )
    assert first.closed_at_us == 10 * S and second.key == (0, "upper_alarm", 75 * S)
    # within the off-delay (10 + 60 s) it joins
    (one,) = group([alarm(0, "upper_alarm", 0, 10), alarm(0, "upper_alarm", 69, 80)], TOPOLOGY)
    assert len(one.members) == 2


def test_downstream_points_join_within_their_transport_delay_upstream_ones_do_not() -> None:
    (incident,) = group(
        [
            alarm(0, "upper_alarm", 0, 100),
            alarm(1, "upper_alarm", 45, 130),  # 40 s downstream
            alarm(2, "upper_alarm", 80, 150),  # 70 s downstream, through P1
        ],
        TOPOLOGY,
    )
    assert [m.point for m in incident.members] == [0, 1, 2]
    # P0 is upstream of P1: P1's gas does not explain it
    assert len(group([alarm(1, "upper_alarm", 0, 100), alarm(0, "upper_alarm", 20, 90)],
                     TOPOLOGY)) == 2  # fmt: skip
    # too late: P0 ended at 10, the air reaches P1 by 50, the off-delay ends at 110
    late = group([alarm(0, "upper_alarm", 0, 10), alarm(1, "upper_alarm", 115, 130)], TOPOLOGY)
    assert len(late) == 2
    # another roadway at the same time: another incident
    assert len(group([alarm(0, "upper_alarm", 0, 100), alarm(3, "upper_alarm", 5, 90)],
                     TOPOLOGY)) == 2  # fmt: skip


def test_a_fan_stop_and_the_gas_of_its_area_are_one_incident() -> None:
    (incident,) = group(
        [alarm(4, "fan_stop", 0, 600, 0.0), alarm(3, "upper_alarm", 300, 500)], TOPOLOGY
    )
    assert members(incident) == [(4, "fan_stop"), (3, "upper_alarm")]
    assert incident.grade == "orange" and incident.peak == 0.0  # the root's sensor type only


def test_a_substation_fault_on_every_point_is_one_incident_and_not_the_gas_one() -> None:
    incidents = group(
        [
            alarm(0, "upper_alarm", 0, 400),
            *(alarm(p, "substation_fault", 100, 300, 0.0, classification="substation_fault")
              for p in (0, 1)),
            alarm(2, "substation_fault", 100, 300, 0.0, classification="substation_fault"),
        ],
        TOPOLOGY,
    )  # fmt: skip
    assert [members(i) for i in incidents] == [
        [(0, "upper_alarm")],
        [(0, "substation_fault"), (1, "substation_fault")],
        [(2, "substation_fault")],  # another substation
    ]
    assert incidents[1].grade == "blue"


def test_records_make_no_incident_and_over_range_joins_its_gas_excursion() -> None:
    (incident,) = group(
        [
            alarm(0, "interference", 0, 1, classification="interference"),
            alarm(0, "calibration", 5, 50, classification="calibration_declared"),
            alarm(1, "upper_alarm", 100, 200, 1.5),
            alarm(1, "over_range", 120, 150, 4.6, classification="over_range"),
        ],
        TOPOLOGY,
    )
    assert members(incident) == [(1, "upper_alarm"), (1, "over_range")]


def test_the_grade_only_rises_while_the_incident_is_open() -> None:
    (incident,) = group(
        [
            alarm(0, "upper_alarm", 0, 100),
            alarm(0, "power_off", 10, 20, 1.6),
            alarm(0, "upper_prewarn", 30, 90, 0.9),  # yellow joins a red incident
        ],
        TOPOLOGY,
    )
    assert incident.grade == "red"


def test_the_tracker_closes_only_once_the_watermark_passed_the_off_delay() -> None:
    tracker = IncidentTracker(TOPOLOGY)
    from minewatch.alarms.incidents import changes_of

    opened = tracker.apply([changes_of(alarm(0, "upper_alarm", 0, 10))], 0)
    assert [c.event for c in opened] == ["opened"]
    assert tracker.expire(70 * S) == []  # 10 + 60 s: not passed yet
    (closed,) = tracker.expire(71 * S)
    assert closed.event == "closed" and closed.incident.closed_at_us == 10 * S
    assert tracker.open == []


def test_published_incidents_never_change_afterwards() -> None:
    from minewatch.alarms.incidents import changes_of

    tracker = IncidentTracker(TOPOLOGY)
    (first,) = tracker.apply([changes_of(alarm(0, "upper_alarm", 0, None))], 0)
    copy = tracker.copy()
    copy.apply([changes_of(alarm(0, "power_off", 5, None, 1.6))], 0)
    assert members(first.incident) == [(0, "upper_alarm")]
    assert members(tracker.open[0]) == [(0, "upper_alarm")]  # the tracker it was copied from
    assert members(copy.open[0]) == [(0, "upper_alarm"), (0, "power_off")]


def test_the_engine_tracks_incidents_and_keeps_the_per_point_records_exact() -> None:
    """A gas hovering at 1.00 % with no deadband: four exact alarm records, one incident."""
    reg = registry({"code": "A", "poweroff_high": 1.5}, {"code": "B", "poweroff_high": 1.5})
    engine = AlarmEngine(reg, RuleDefaults(allowed_lateness_s=0.0))
    rec = Recorder(engine)
    hover = [0.5, 1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.0, 1.0, 0.97, 1.0, 1.01, 0.5]
    tracked: dict[tuple[int, str, int], Incident] = {}
    for t, value in enumerate(hover + [0.5] * 70):
        evaluation = engine.evaluate(series(1, [value], start_s=t))
        engine.commit(evaluation)
        rec._apply(evaluation.changes)
        tracked.update((c.key, c.incident) for c in evaluation.incidents)
    alarms = rec.of("upper_alarm")
    assert len(alarms) == 4  # the regulation's records: raised at the level, cleared below
    (incident,) = tracked.values()
    assert len(incident.members) == 4 and incident.closed_at_us is not None


def test_the_default_grades_are_those_of_the_migrations() -> None:
    rows: dict[tuple[str, str], str] = {}
    for path in sorted(MIGRATIONS.glob("*.sql")):
        text = path.read_text("utf-8")
        for block in re.findall(r"INSERT INTO alarm_grade_rules[^;]*;", text):
            for rule, cls, grade in re.findall(r"\('([^']+)',\s*'([^']+)',\s*'([^']+)'", block):
                rows[(rule, cls)] = grade
    for key, grade in DEFAULT_GRADES.items():
        if key in rows:
            assert rows[key] == grade, key
    assert set(DEFAULT_GRADES) - {("*", "*")} <= set(rows)
