"""The personnel and video MQTT JSON contract, version 1 (docs/feeds.md), as a pure parser.

Topic and bytes in, a :class:`FeedBatch`, a metadata message or a :class:`Rejection` out; no
I/O. Topics (``minewatch/v1/<mine>/...``):

- ``personnel`` — kinds ``positions``, ``snapshot`` (RYSS), ``station_status`` (JZSS);
  positions and snapshots may carry ``sos`` (求救: true while the card calls for help, false
  once it stopped, null or absent: not reported);
- ``personnel/meta`` (retained) — people, areas and stations (RYXX, RYQY, RYJZ);
- ``video`` — kinds ``heartbeats``, ``events``;
- ``video/meta`` (retained) — cameras.

Batches are columnar: every row column is a JSON list of the same length. A malformed message
is refused whole; a row whose codes are invalid is refused alone (:func:`screen`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.timeutil import datetime_to_us

#: A missing time in an int64 microsecond column.
NO_TIME = np.iinfo(np.int64).min

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


# -- columnar batches ------------------------------------------------------------------------

Kind = Literal["positions", "snapshot", "station_status", "heartbeats", "events"]


@dataclass(frozen=True, slots=True)
class FeedBatch:
    """One message's rows as equal-length numpy columns (``time_us`` always among them)."""

    kind: Kind
    source: str  # "<mine>/personnel/<system>" or "<mine>/video/<system>": the dedup unit
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


FeedMessage = FeedBatch | PersonnelMeta | VideoMeta | Rejection


class _Refused(Exception):
    def __init__(self, reason: QuarantineReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _schema(detail: str) -> _Refused:
    return _Refused(QuarantineReason.SCHEMA_VIOLATION, detail)


# Column kinds: each turns a JSON list into a numpy column or refuses the message.


def _strings(items: list[object], nullable: bool) -> np.ndarray:
    if not all(isinstance(i, str) or (nullable and i is None) for i in items):
        raise _schema("expected strings" + (" or null" if nullable else ""))
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _ints(allowed: frozenset[int]) -> Callable[[list[object], bool], np.ndarray]:
    def parse(items: list[object], nullable: bool) -> np.ndarray:
        if not all(type(i) is int and i in allowed for i in items):
            raise _schema(f"expected integers in {sorted(allowed)}")
        return np.asarray(items, dtype=np.int16).reshape(len(items))

    return parse


def _offsets(items: list[object], nullable: bool) -> np.ndarray:
    if not all(type(i) is int for i in items):
        raise _schema("expected integer milliseconds")
    return np.asarray(items, dtype=np.int64).reshape(len(items)) * 1000


def _floats(low: float, high: float) -> Callable[[list[object], bool], np.ndarray]:
    def parse(items: list[object], nullable: bool) -> np.ndarray:
        out = np.full(len(items), np.nan)
        for i, item in enumerate(items):
            if item is None and nullable:
                continue
            if type(item) not in (int, float) or not low <= item <= high:  # type: ignore[operator]
                raise _schema(f"expected numbers in [{low}, {high}]" + (" or null" * nullable))
            out[i] = item
        return out

    return parse


def _bools(items: list[object], nullable: bool) -> np.ndarray:
    if not all(type(i) is bool for i in items):
        raise _schema("expected booleans")
    return np.asarray(items, dtype=bool).reshape(len(items))


#: An absent flag in an int8 flag column (``sos``): the message says nothing about it.
FLAG_UNKNOWN = -1


def _flags(items: list[object], nullable: bool) -> np.ndarray:
    if not all(type(i) is bool or (nullable and i is None) for i in items):
        raise _schema("expected booleans" + (" or null" * nullable))
    return np.array([FLAG_UNKNOWN if i is None else int(i) for i in items], dtype=np.int8).reshape(
        len(items)
    )


def _times(items: list[object], nullable: bool) -> np.ndarray:
    out = np.full(len(items), NO_TIME, np.int64)
    for i, item in enumerate(items):
        if item is None and nullable:
            continue
        if not isinstance(item, str):
            raise _schema("expected ISO 8601 times" + (" or null" * nullable))
        out[i] = _time_us(item)
    return out


_ColumnParser = Callable[[list[object], bool], np.ndarray]
# name -> (parser, required, nullable, default-filler kind)
_Spec = dict[str, tuple[_ColumnParser, bool, bool]]

_IN_MINE = _ints(frozenset({IN_MINE_UNSPECIFIED, IN_MINE, OUT_OF_MINE}))
_DISTANCE = _floats(-1e6, 1e6)

_SPECS: dict[tuple[str, str], tuple[str, _Spec]] = {
    ("personnel", "positions"): ("cards", {
        "cards": (_strings, True, False), "stations": (_strings, True, False),
        "areas": (_strings, True, False), "in_mine": (_IN_MINE, True, False),
        "distance_m": (_DISTANCE, False, True), "mine_entered_at": (_times, False, True),
        "sos": (_flags, False, True), "offsets_ms": (_offsets, False, False),
    }),
    ("personnel", "snapshot"): ("cards", {
        "cards": (_strings, True, False), "stations": (_strings, True, False),
        "areas": (_strings, True, False), "in_mine": (_IN_MINE, True, False),
        "distance_m": (_DISTANCE, False, True), "mine_entered_at": (_times, False, True),
        "mine_left_at": (_times, False, True), "area_since": (_times, False, True),
        "station_since": (_times, False, True), "sos": (_flags, False, True),
    }),
    ("personnel", "station_status"): ("stations", {
        "stations": (_strings, True, False), "run_state": (_ints(STATION_STATES), True, False),
        "power_state": (_ints(STATION_STATES), True, False), "offsets_ms": (_offsets, False, False),
    }),
    ("video", "heartbeats"): ("cameras", {
        "cameras": (_strings, True, False), "online": (_bools, True, False),
        "offsets_ms": (_offsets, False, False),
    }),
    ("video", "events"): ("cameras", {
        "cameras": (_strings, True, False), "types": (_strings, True, False),
        "confidence": (_floats(0.0, 1.0), False, True), "areas": (_strings, False, True),
        "snapshots": (_strings, False, True), "ids": (_strings, False, True),
        "offsets_ms": (_offsets, False, False),
    }),
}  # fmt: skip

_ENVELOPE = frozenset({"v", "mine", "system", "boot", "seq", "kind", "ts"})


def parse_feed_message(topic: str, payload: bytes, max_bytes: int) -> FeedMessage:
    """Parse one MQTT message of the personnel/video contract; never raises on bad input."""
    parts = topic.split("/")
    source = "/".join(parts[2:]) if len(parts) > 2 else topic
    try:
        if len(payload) > max_bytes:
            raise _Refused(
                QuarantineReason.PAYLOAD_TOO_LARGE, f"{len(payload)} bytes > {max_bytes}"
            )
        match parts:
            case ["minewatch", "v1", mine, ("personnel" | "video") as feed]:
                return _parse_batch(mine, feed, _load_object(payload), payload)
            case ["minewatch", "v1", mine, "personnel", "meta"]:
                document = _meta(PersonnelMetaDocument, mine, payload)
                assert isinstance(document, PersonnelMetaDocument)
                return PersonnelMeta(source, mine, _aware_us(document.ts), document)
            case ["minewatch", "v1", mine, "video", "meta"]:
                document = _meta(VideoMetaDocument, mine, payload)
                assert isinstance(document, VideoMetaDocument)
                return VideoMeta(source, mine, _aware_us(document.ts), document)
        raise _Refused(QuarantineReason.UNKNOWN_TOPIC, f"topic {topic!r} is not in the contract")
    except _Refused as refused:
        return Rejection(source, refused.reason, refused.detail, payload[: max_bytes + 1])


def _load_object(payload: bytes) -> dict[str, object]:
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        reason = QuarantineReason.MALFORMED_JSON
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError:
            reason = QuarantineReason.INVALID_UTF8
        raise _Refused(reason, str(exc)) from None
    if not isinstance(document, dict):
        raise _schema("payload is not a JSON object")
    if document.get("v") != 1:
        raise _Refused(
            QuarantineReason.UNSUPPORTED_VERSION, f"contract version {document.get('v')!r}"
        )
    return document


def _meta(
    model: type[PersonnelMetaDocument | VideoMetaDocument], mine: str, payload: bytes
) -> PersonnelMetaDocument | VideoMetaDocument:
    _load_object(payload)  # same refusals (JSON, version) as the batches
    try:
        document = model.model_validate_json(payload)
    except ValidationError as exc:
        raise _Refused(QuarantineReason.INVALID_METADATA, str(exc)[:2000]) from None
    if document.mine != mine:
        raise _Refused(QuarantineReason.TOPIC_MISMATCH, f"definition of {document.mine} on {mine}")
    if document.ts.tzinfo is None:
        raise _Refused(QuarantineReason.INVALID_METADATA, "ts has no UTC offset")
    return document


def _aware_us(stamp: dt.datetime) -> int:
    return datetime_to_us(stamp)


def _time_us(text: str) -> int:
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        raise _schema(f"time {text!r} is not ISO 8601") from None
    if stamp.tzinfo is None:
        raise _schema(f"time {text!r} has no UTC offset")
    return datetime_to_us(stamp)


def _integer(document: dict[str, object], name: str) -> int:
    value = document.get(name)
    if type(value) is not int:
        raise _schema(f"field {name!r} missing or not an integer")
    return value


def _parse_batch(mine: str, feed: str, document: dict[str, object], raw: bytes) -> FeedBatch:
    if document.get("mine") != mine:
        raise _Refused(
            QuarantineReason.TOPIC_MISMATCH,
            f"payload mine {document.get('mine')!r} differs from the topic's {mine}",
        )
    kind = document.get("kind")
    spec_entry = _SPECS.get((feed, str(kind)))
    if spec_entry is None:
        raise _schema(f"kind {kind!r} is not a {feed} kind")
    system = document.get("system", "default")
    if not isinstance(system, str) or not 0 < len(system) <= 64 or "/" in system:
        raise _schema("system must be a non-empty string without '/' (at most 64 characters)")
    boot, seq = _integer(document, "boot"), _integer(document, "seq")
    ts = document.get("ts")
    if not isinstance(ts, str):
        raise _schema("field 'ts' missing or not a string")
    time_us = _time_us(ts)
    key, spec = spec_entry
    unknown = set(document) - _ENVELOPE - set(spec)
    if unknown:
        raise _schema(f"unknown fields {sorted(unknown)}")
    first = document.get(key)
    if not isinstance(first, list):
        raise _schema(f"field {key!r} missing or not a list")
    n = len(first)
    columns: dict[str, np.ndarray] = {}
    for name, (parse, required, nullable) in spec.items():
        items = document.get(name)
        if items is None:
            if required:
                raise _schema(f"field {name!r} missing")
            columns[name] = _filler(name, n)
            continue
        if not isinstance(items, list) or len(items) != n:
            raise _schema(f"field {name!r} must be a list of {n} items")
        try:
            columns[name] = parse(items, nullable)
        except _Refused as refused:
            raise _schema(f"field {name!r}: {refused.detail}") from None
    offsets = columns.pop("offsets_ms", None)
    columns["time_us"] = np.full(n, time_us, np.int64) + (0 if offsets is None else offsets)
    return FeedBatch(
        kind,  # type: ignore[arg-type]
        f"{mine}/{feed}/{system}", mine, boot, seq, time_us, columns, raw,
    )  # fmt: skip


def _filler(name: str, n: int) -> np.ndarray | None:
    if name == "offsets_ms":
        return np.zeros(n, np.int64)
    if name in ("distance_m", "confidence"):
        return np.full(n, np.nan)
    if name == "sos":
        return np.full(n, FLAG_UNKNOWN, np.int8)
    if name.endswith("_at") or name.endswith("_since"):
        return np.full(n, NO_TIME, np.int64)
    out = np.empty(n, dtype=object)
    out[:] = None
    return out


# -- row screening: codes and times ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimeLimits:
    """Rows stamped outside [now - max_past_age, now + max_future_skew] are refused."""

    max_future_skew_us: int
    max_past_age_us: int


def _code_ok(codes: np.ndarray, mine: str, length: int, nullable: bool = False) -> np.ndarray:
    return np.fromiter(
        (
            (c is None and nullable)
            or (isinstance(c, str) and len(c) == length and c.startswith(mine))
            for c in codes
        ),
        dtype=bool,
        count=len(codes),
    )


def screen(batch: FeedBatch, now_us: int, limits: TimeLimits) -> tuple[FeedBatch, list[Rejection]]:
    """Refuse the rows with invalid codes or times; keep the others (columns stay aligned)."""
    c = batch.columns
    code_ok = np.ones(len(batch), bool)
    if "cards" in c:
        code_ok &= _code_ok(c["cards"], batch.mine, CARD_LENGTH)
    if "stations" in c:
        code_ok &= _code_ok(c["stations"], batch.mine, STATION_LENGTH)
    if "areas" in c:
        code_ok &= _code_ok(c["areas"], batch.mine, AREA_LENGTH, nullable=batch.kind == "events")
    if "cameras" in c:
        code_ok &= np.fromiter((0 < len(x) <= 64 for x in c["cameras"]), bool, len(batch))
    times = c["time_us"]
    checks = [
        (QuarantineReason.INVALID_CODE, ~code_ok,
         f"code of wrong length or not of mine {batch.mine}"),
        (QuarantineReason.TIME_IN_FUTURE, times > now_us + limits.max_future_skew_us,
         "timestamp too far in the future"),
        (QuarantineReason.TIME_TOO_OLD, times < now_us - limits.max_past_age_us,
         "timestamp older than the accepted age"),
    ]  # fmt: skip
    refused = np.zeros(len(batch), bool)
    rejections = []
    for reason, mask, detail in checks:
        new = mask & ~refused
        for i in np.flatnonzero(new).tolist():
            row = {"mine": batch.mine, "kind": batch.kind, "boot": batch.boot, "seq": batch.seq}
            row.update(batch.row(i))
            rejections.append(Rejection(batch.source, reason, detail, orjson.dumps(row)))
        refused |= new
    return (batch.take(~refused) if refused.any() else batch), rejections
