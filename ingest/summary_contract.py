"""What a level receives in ``alarms`` mode (docs/federation.md "A province that stores
summaries"), sans-IO: bytes of ``minewatch/v1/<mine>/alarms`` (the alarm publisher's events),
``minewatch/v1/<mine>/statistics`` (the statistics and head-count publishers' batches) or
``minewatch/v1/<mine>/files`` (the national files, one each) in, a :class:`ChangeEvent`, a
:class:`StatisticsBatch`, a :class:`HeadcountBatch`, a :class:`NationalFile` or a
:class:`Rejection` out.

Both carry ``source`` (the installation that published them) and its numbers (``seq``: the
change's in its ``alarm_changes``; each statistic's in its ``statistics_changes``), by which
the level above applies each once and never an older one over a newer one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Annotated, Literal

from pydantic import (
    Base64Bytes,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from minewatch.feeds import alarm_topic, files_topic, statistics_topic
from minewatch.ingest.quarantine import QuarantineReason, Rejection

_SOURCE = Field(min_length=1, max_length=100)
_MINE = Field(pattern=r"^[0-9]{12}$")


class ChangeEvent(BaseModel):
    """One numbered alarm, incident or pre-alarm change with the record as its source holds
    it (alarms/change_log.py writes them); fields of the other kinds are absent."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    source: str = _SOURCE
    seq: int = Field(ge=1)
    kind: Literal["alarm", "incident", "prealarm"]
    event: str = Field(min_length=1, max_length=32)
    mine: str = _MINE
    id: int
    time: dt.datetime | None = None
    # an alarm
    point: str | None = None
    rule: str | None = None
    abnormal_type: str | None = None
    classification: str | None = None
    state: str | None = None
    grade: str | None = None
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    threshold: float | None = None
    value: float | None = None
    max_value: float | None = None
    max_at: dt.datetime | None = None
    min_value: float | None = None
    min_at: dt.datetime | None = None
    value_count: int | None = None
    acknowledged_at: dt.datetime | None = None
    acknowledged_by: str | None = None
    cause: str | None = None
    measures: str | None = None
    handled_by: str | None = None
    disposed_at: dt.datetime | None = None
    # an incident
    root_point: str | None = None
    root_rule: str | None = None
    category: str | None = None
    peak: float | None = None
    members: list[int] = Field(default_factory=list)

    @model_validator(mode="after")
    def _complete(self) -> ChangeEvent:
        if self.kind == "alarm" and None in (
            self.rule, self.abnormal_type, self.classification, self.state, self.started_at
        ):  # fmt: skip
            raise ValueError("an alarm change needs rule, abnormal_type, classification, state, "
                             "started_at")  # fmt: skip
        if self.kind == "incident" and None in (
            self.root_rule, self.category, self.grade, self.state, self.started_at
        ):  # fmt: skip
            raise ValueError("an incident change needs root_rule, category, grade, state, "
                             "started_at")  # fmt: skip
        return self


class StatisticsColumns(BaseModel):
    """Equal-length columns, one row per statistic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: list[int]
    point: list[str]
    bucket: list[dt.datetime]
    n: list[int]
    min: list[float]
    max: list[float]
    mean: list[float]
    last: list[float]
    last_time: list[dt.datetime]

    @model_validator(mode="after")
    def _equal(self) -> StatisticsColumns:
        if len({len(column) for column in self.model_dump().values()}) != 1:
            raise ValueError("the statistics columns differ in length")
        return self


class StatisticsBatch(BaseModel):
    """1- or 5-minute statistics of one mine's points (ingest/statistics_publisher.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    source: str = _SOURCE
    mine: str = _MINE
    width_s: Literal[60, 300]
    rows: StatisticsColumns


class HeadcountColumns(BaseModel):
    """Equal-length columns, one row per minute and area (``""``: the whole mine)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    minute: list[dt.datetime]
    area: list[str]
    count: list[int]

    @model_validator(mode="after")
    def _equal(self) -> HeadcountColumns:
        if not len(self.minute) == len(self.area) == len(self.count):
            raise ValueError("the head-count columns differ in length")
        if any(n < 0 for n in self.count):
            raise ValueError("a head-count is negative")
        return self


class HeadcountBatch(BaseModel):
    """Personnel head-counts of one mine per whole minute (ingest/headcount_publisher.py), on
    the statistics topic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    kind: Literal["headcount"]
    source: str = _SOURCE
    mine: str = _MINE
    rows: HeadcountColumns


class NationalFile(BaseModel):
    """One national file a gateway below accepted, byte for byte
    (ingest/national_file_publisher.py), on ``minewatch/v1/<mine>/files``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    kind: Literal["national_file"]
    source: str = _SOURCE
    seq: int = Field(ge=1)
    mine: str = _MINE
    name: str = Field(pattern=r"^[0-9]{12}_[A-Z]+_[0-9]{14}\.txt$")
    type: str = Field(pattern=r"^[A-Z]+$")
    uploaded_at: dt.datetime
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    content: Base64Bytes

    @model_validator(mode="after")
    def _whole(self) -> NationalFile:
        if not self.name.startswith(f"{self.mine}_{self.type}_"):
            raise ValueError("the file name does not name its mine and type")
        if hashlib.sha256(self.content).hexdigest() != self.sha256:
            raise ValueError("the content does not have its SHA-256")
        return self


Summary = ChangeEvent | StatisticsBatch | HeadcountBatch | NationalFile
_ON_STATISTICS: TypeAdapter[StatisticsBatch | HeadcountBatch] = TypeAdapter(
    Annotated[StatisticsBatch | HeadcountBatch, Field(union_mode="left_to_right")]
)


def parse_summary(topic: str, payload: bytes, max_bytes: int) -> Summary | Rejection:
    """An alarm change or a statistics batch, or why not (never raises)."""
    if len(payload) > max_bytes:
        return Rejection(topic, QuarantineReason.PAYLOAD_TOO_LARGE, str(len(payload)), b"")
    statistics, files = topic.endswith("/statistics"), topic.endswith("/files")
    message: Summary
    try:
        if statistics:
            message = _ON_STATISTICS.validate_json(payload)
        elif files:
            message = NationalFile.model_validate_json(payload)
        else:
            message = ChangeEvent.model_validate_json(payload)
    except ValidationError as error:
        return Rejection(topic, QuarantineReason.SCHEMA_VIOLATION, str(error)[:2000], payload)
    expected = (statistics_topic if statistics else files_topic if files else alarm_topic)(
        message.mine
    )
    if topic != expected:
        return Rejection(topic, QuarantineReason.TOPIC_MISMATCH, message.mine, payload)
    return message


__all__ = [
    "ChangeEvent", "HeadcountBatch", "HeadcountColumns", "NationalFile", "StatisticsBatch",
    "StatisticsColumns", "Summary", "parse_summary",
]  # fmt: skip
