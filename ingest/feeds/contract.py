"""The personnel and video MQTT JSON contract, version 1 (docs/feeds.md): what its messages
become. The parser is :mod:`.parsing` (topic and bytes in, one of these or a
:class:`Rejection` out), the row screening :mod:`.screening`. Topics
(``minewatch/v1/<mine>/...``):

- ``personnel`` — kinds ``positions``, ``snapshot`` (RYSS), ``station_status`` (JZSS);
  positions and snapshots may carry ``sos`` (求救: true while the card calls for help, false
  once it stopped, null or absent: not reported);
- ``personnel/meta`` (retained) — people, areas and stations (RYXX, RYQY, RYJZ);
- ``video`` — kinds ``heartbeats``, ``events``;
- ``video/meta`` (retained) — cameras;
- ``comms`` — kind ``device_status`` (通信联络: each device online or not, and its fault);
- ``comms/meta`` (retained) — the communications devices.

Batches are columnar: every row column is a JSON list of the same length. A malformed message
is refused whole; a row whose codes are invalid is refused alone
(:func:`~minewatch.ingest.feeds.screening.screen`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, field_validator

from minewatch.ingest.quarantine import Rejection

#: A missing time in an int64 microsecond column.
NO_TIME = np.iinfo(np.int64).min
#: An absent flag in an int8 flag column (``sos``): the message says nothing about it.
FLAG_UNKNOWN = -1

CARD_LENGTH, AREA_LENGTH, STATION_LENGTH = 17, 16, 22

#: 出入井标志.
IN_MINE_UNSPECIFIED, IN_MINE, OUT_OF_MINE = 0, 1, 2
#: 基站运行状态 / 供电状态 codes (表B.8/B.9).
STATION_STATES = frozenset({0, 1, 2, 9})

AREA_TYPES = {"shaft": "shaft", "key": "key", "restricted": "restricted", "other": "other",
              "井口区域": "shaft", "重点区域": "key", "限制区域": "restricted",
              "其它区域": "other", "其他区域": "other"}  # fmt: skip


# -- metadata messages (validated with pydantic: small, rare, nested) -----------------------


class _Meta(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Person(_Meta):
    card: str = Field(min_length=CARD_LENGTH, max_length=CARD_LENGTH)
    name: str
    job: str = ""  # 工种
    title: str = ""  # 职务
    team: str = ""  # 队组/部门
    leader: bool = False  # 是否矿领导
    special: bool = False  # 是否特种作业人员


class Area(_Meta):
    code: str = Field(min_length=AREA_LENGTH, max_length=AREA_LENGTH)
    name: str = ""
    type: str
    approved: int | None = Field(None, ge=0, description="核定人数")

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in AREA_TYPES:
            raise ValueError(f"area type {value!r} is not one of {sorted(AREA_TYPES)}")
        return AREA_TYPES[value]


class Station(_Meta):
    code: str = Field(min_length=STATION_LENGTH, max_length=STATION_LENGTH)
    area: str = Field(min_length=AREA_LENGTH, max_length=AREA_LENGTH)
    name: str = ""
    x: float | None = None
    y: float | None = None
    z: float | None = None


class Camera(_Meta):
    code: str = Field(min_length=1, max_length=64)
    name: str = ""
    area: str | None = None
    location: str = ""
    stream_url: str = ""
    heartbeat_timeout_s: float | None = Field(None, gt=0)


#: Kinds of communications devices: 井下基站, 调度电话, 广播.
DEVICE_KINDS = ("base_station", "phone", "broadcast")


class Device(_Meta):
    code: str = Field(min_length=1, max_length=64)
    kind: Literal["base_station", "phone", "broadcast"]
    name: str = ""
    area: str | None = None
    location: str = ""
    heartbeat_timeout_s: float | None = Field(None, gt=0)


class PersonnelLimits(_Meta):
    """The mine's limits for the personnel alarms (docs/alarms.md); a null switches a rule
    off. Sent with a definition, they replace the stored ones; absent, those stay."""

    max_underground_h: float | None = Field(None, gt=0, description="超时: hours per descent")
    max_underground_people: int | None = Field(None, ge=0, description="核定下井人数")
    shift_starts: tuple[int, ...] | None = Field(None, min_length=1, description="local hours")
    timezone: str | None = Field(None, description="IANA name; unset: unchanged")

    @field_validator("shift_starts")
    @classmethod
    def _hours(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if value is not None and not all(0 <= h <= 23 for h in value):
            raise ValueError("shift starts are local hours 0-23")
        return None if value is None else tuple(sorted(set(value)))

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}") from None
        return value


class PersonnelMetaDocument(_Meta):
    v: Literal[1]
    mine: str
    mine_name: str | None = None
    ts: dt.datetime
    limits: PersonnelLimits | None = None
    people: tuple[Person, ...] = ()
    areas: tuple[Area, ...] = ()
    stations: tuple[Station, ...] = ()
    complete_for: tuple[Literal["people", "areas", "stations"], ...] = Field(
        ("people", "areas", "stations"),
        min_length=1,
        description="The parts this document lists in full (absent entries of these parts are "
        "retired); the national files carry one part each (RYXX, RYQY, RYJZ).",
    )


class VideoMetaDocument(_Meta):
    v: Literal[1]
    mine: str
    mine_name: str | None = None
    ts: dt.datetime
    cameras: tuple[Camera, ...] = ()


class CommsMetaDocument(_Meta):
    v: Literal[1]
    mine: str
    mine_name: str | None = None
    ts: dt.datetime
    devices: tuple[Device, ...] = ()


@dataclass(frozen=True, slots=True)
class PersonnelMeta:
    """A full personnel definition: what is absent from it is retired at ``time_us``."""

    source: str
    mine: str
    time_us: int
    document: PersonnelMetaDocument


@dataclass(frozen=True, slots=True)
class VideoMeta:
    source: str
    mine: str
    time_us: int
    document: VideoMetaDocument


@dataclass(frozen=True, slots=True)
class CommsMeta:
    source: str
    mine: str
    time_us: int
    document: CommsMetaDocument


# -- columnar batches ------------------------------------------------------------------------

Kind = Literal["positions", "snapshot", "station_status", "heartbeats", "events", "device_status"]


@dataclass(frozen=True, slots=True)
class FeedBatch:
    """One message's rows as equal-length numpy columns (``time_us`` always among them)."""

    kind: Kind
    source: str  # "<mine>/<personnel|video|comms>/<system>": the dedup unit
    mine: str
    boot: int
    seq: int
    time_us: int  # the message's ts (for a snapshot: the snapshot's time)
    columns: dict[str, np.ndarray]
    raw: bytes

    def __len__(self) -> int:
        return len(self.columns["time_us"])

    def take(self, rows: npt.NDArray[np.bool_]) -> FeedBatch:
        columns = {name: column[rows] for name, column in self.columns.items()}
        return FeedBatch(
            self.kind, self.source, self.mine, self.boot, self.seq, self.time_us, columns, self.raw
        )

    def row(self, i: int) -> dict[str, object]:
        """One row as JSON-friendly values (for a quarantined row)."""
        return {name: _plain(column[i]) for name, column in self.columns.items()}


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


FeedMessage = FeedBatch | PersonnelMeta | VideoMeta | CommsMeta | Rejection


#: The system name of the feed sources numbered by their time in seconds: the national files
#: (``<mine>/personnel/national-<type>``, ingest/sources/national/personnel.py).
TIME_SEQUENCED_SYSTEM = "national"


def is_time_sequenced(source: str) -> bool:
    """Whether ``source`` numbers its messages by their time in seconds (the national files)
    rather than one by one, so that a jump in its sequence is no sign of loss.

    The format fixes no cadence (vendors send RYSS/JZSS every 1 to 5 minutes, RYQJ when a call
    happens; domain reference §7.3), so a missing file cannot be told from a slower sender.
    """
    return source.rpartition("/")[2].startswith(f"{TIME_SEQUENCED_SYSTEM}-")
