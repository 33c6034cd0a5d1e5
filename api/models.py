"""Response models of the API (pydantic v2)."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel


class Mine(BaseModel):
    code: str
    name: str
    gas_class: str | None
    approved_capacity_t: float | None
    points: int


class Point(BaseModel):
    id: int
    mine_code: str
    code: str
    substation_code: str | None
    sensor_type: str
    sensor_name: str
    value_type: str
    unit: str
    location: str
    tag: str
    range_low: float | None
    range_high: float | None
    alarm_high: float | None
    alarm_high_clear: float | None
    poweroff_high: float | None
    restore_high: float | None
    relations: list[dict[str, str]]


class ReadingBucket(BaseModel):
    time: dt.datetime
    avg: float
    min: float
    max: float
    last: float
    count: int
    status_any: int  # bitwise OR of the status words in the bucket
    late: int = 0  # readings that arrived after newer ones of the point (flag late)


class AlarmCorrection(BaseModel):
    """A correction of an alarm episode by late readings (docs/alarms.md "Batching and late
    data"): the fields that changed, as they were and as they became."""

    corrected_at: dt.datetime
    reason: str  # late_readings / late_readings_filled_interruption
    previous: dict[str, object]
    corrected: dict[str, object]


class Alarm(BaseModel):
    """An alarm episode. Point alarms (gas, faults) have ``point_id``/``point_code``; personnel
    and output alarms (docs/alarms.md) have none and name their subject instead."""

    id: int
    mine_code: str
    point_id: int | None
    point_code: str | None
    location: str
    subject_kind: str = "point"  # point / person / area / mine
    subject_code: str | None = None  # point code, card code, area code or mine code
    subject_name: str | None = None  # person's, area's or mine's name
    rule: str
    abnormal_type: str
    classification: str
    state: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    duration_s: float | None
    threshold: float | None
    start_value: float
    max_value: float
    max_at: dt.datetime
    min_value: float
    min_at: dt.datetime
    mean_value: float
    acknowledged_at: dt.datetime | None
    cause: str | None
    measures: str | None
    handled_by: str | None
    disposed_at: dt.datetime | None
    grade: str | None = None  # red / orange / yellow / blue (alarm_grade_rules)
    acknowledged_by: str | None = None  # the signed-in identity that acknowledged
    shelved_by: str | None = None  # the latest shelving (every one is in the audit log)
    shelved_until: dt.datetime | None = None
    shelved_reason: str | None = None
    escalated_at: dt.datetime | None = None
    disposed_open_reason: str | None = None  # why it was disposed before it cleared
    #: found by evaluating late readings in their own time order, after the live engine had
    #: passed them (a mine catching up after an outage; docs/alarms.md)
    computed_late: bool = False
    #: when late readings last corrected it (None: never), and every correction, oldest first
    corrected_at: dt.datetime | None = None
    corrections: list[AlarmCorrection] = []


class ReconciledPointAlarm(BaseModel):
    """A YCBJ record of the mine and the computed alarm it matches."""

    point_code: str
    abnormal_type: str
    reported_start: dt.datetime
    reported_end: dt.datetime | None
    reported_max: float | None
    reported_disposed: bool  # 异常原因 and 处理措施 filled in
    source_file: str
    alarm_id: int
    rule: str
    classification: str
    computed_start: dt.datetime
    computed_end: dt.datetime | None
    computed_max: float
    computed_disposed: bool
    computed_late: bool = False  # from readings that arrived late (docs/alarms.md)


class ReportedPointAlarm(BaseModel):
    point_code: str
    abnormal_type: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    max_value: float | None
    disposed: bool
    source_file: str


class ComputedPointAlarm(BaseModel):
    alarm_id: int
    point_code: str
    abnormal_type: str
    rule: str
    classification: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    max_value: float
    disposed: bool
    computed_late: bool = False  # from readings that arrived late (docs/alarms.md)


class ReconciledPersonnelAlarm(BaseModel):
    rule: str
    subject_kind: str
    subject_code: str
    file_type: str
    source_file: str
    reported_start: dt.datetime
    reported_end: dt.datetime | None
    alarm_id: int
    computed_start: dt.datetime
    computed_end: dt.datetime | None


class ReportedPersonnelAlarm(BaseModel):
    rule: str
    subject_kind: str
    subject_code: str
    file_type: str
    source_file: str
    started_at: dt.datetime
    ended_at: dt.datetime | None


class ComputedPersonnelAlarm(BaseModel):
    alarm_id: int
    rule: str
    subject_kind: str
    subject_code: str
    started_at: dt.datetime
    ended_at: dt.datetime | None


class PointAlarmReconciliation(BaseModel):
    matched: list[ReconciledPointAlarm]
    reported_only: list[ReportedPointAlarm]
    computed_only: list[ComputedPointAlarm]  # the mine did not report these (瞒报?)


class PersonnelAlarmReconciliation(BaseModel):
    matched: list[ReconciledPersonnelAlarm]
    reported_only: list[ReportedPersonnelAlarm]
    computed_only: list[ComputedPersonnelAlarm]


class Reconciliation(BaseModel):
    """What the mine reported in its national files against what minewatch computed."""

    mine: str
    start: dt.datetime
    end: dt.datetime
    tolerance_s: float
    limit: int
    truncated: bool  # a list reached ``limit``: it may hold more (narrow the range or raise it)
    point_alarms: PointAlarmReconciliation
    personnel_alarms: PersonnelAlarmReconciliation
