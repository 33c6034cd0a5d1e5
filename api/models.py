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
