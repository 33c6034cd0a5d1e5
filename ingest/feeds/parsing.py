"""The personnel, video and communications MQTT JSON contract's parser (docs/feeds.md): topic
and bytes in, a :class:`FeedBatch`, a metadata message or a :class:`Rejection` out; no I/O.
The envelope (size, JSON, version, times) is :mod:`minewatch.ingest.envelope`, shared with the
safety contract; the types are :mod:`.contract`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
from pydantic import ValidationError

from minewatch.ingest.envelope import (
    Refused,
    load_object,
    parse_envelope,
    parse_time_us,
    schema,
    unknown_topic,
)
from minewatch.ingest.feeds.contract import (
    FLAG_UNKNOWN,
    IN_MINE,
    IN_MINE_UNSPECIFIED,
    NO_TIME,
    OUT_OF_MINE,
    STATION_STATES,
    CommsMeta,
    CommsMetaDocument,
    FeedBatch,
    FeedMessage,
    PersonnelMeta,
    PersonnelMetaDocument,
    VideoMeta,
    VideoMetaDocument,
)
from minewatch.ingest.quarantine import QuarantineReason
from minewatch.timeutil import datetime_to_us

# Column kinds: each turns a JSON list into a numpy column or refuses the message.


def _strings(items: list[object], nullable: bool) -> np.ndarray:
    if not all(isinstance(i, str) or (nullable and i is None) for i in items):
        raise schema("expected strings" + (" or null" if nullable else ""))
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _ints(allowed: frozenset[int]) -> Callable[[list[object], bool], np.ndarray]:
    def parse(items: list[object], nullable: bool) -> np.ndarray:
        if not all(type(i) is int and i in allowed for i in items):
            raise schema(f"expected integers in {sorted(allowed)}")
        return np.asarray(items, dtype=np.int16).reshape(len(items))

    return parse


def _offsets(items: list[object], nullable: bool) -> np.ndarray:
    if not all(type(i) is int for i in items):
        raise schema("expected integer milliseconds")
    return np.asarray(items, dtype=np.int64).reshape(len(items)) * 1000


def _floats(low: float, high: float) -> Callable[[list[object], bool], np.ndarray]:
    def parse(items: list[object], nullable: bool) -> np.ndarray:
        out = np.full(len(items), np.nan)
        for i, item in enumerate(items):
            if item is None and nullable:
                continue
            if type(item) not in (int, float) or not low <= item <= high:  # type: ignore[operator]
                raise schema(f"expected numbers in [{low}, {high}]" + (" or null" * nullable))
            out[i] = item
        return out

    return parse


def _bools(items: list[object], nullable: bool) -> np.ndarray:
    if not all(type(i) is bool for i in items):
        raise schema("expected booleans")
    return np.asarray(items, dtype=bool).reshape(len(items))


def _flags(items: list[object], nullable: bool) -> np.ndarray:
    if not all(type(i) is bool or (nullable and i is None) for i in items):
        raise schema("expected booleans" + (" or null" * nullable))
    return np.array(
        [FLAG_UNKNOWN if i is None else (1 if i else 0) for i in items], dtype=np.int8
    ).reshape(len(items))


def _times(items: list[object], nullable: bool) -> np.ndarray:
    out = np.full(len(items), NO_TIME, np.int64)
    for i, item in enumerate(items):
        if item is None and nullable:
            continue
        if not isinstance(item, str):
            raise schema("expected ISO 8601 times" + (" or null" * nullable))
        out[i] = parse_time_us(item, "time")
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
    ("comms", "device_status"): ("devices", {
        "devices": (_strings, True, False), "online": (_bools, True, False),
        "faults": (_strings, False, True), "offsets_ms": (_offsets, False, False),
    }),
}  # fmt: skip

_ENVELOPE = frozenset({"v", "mine", "system", "boot", "seq", "kind", "ts"})


def parse_feed_message(topic: str, payload: bytes, max_bytes: int) -> FeedMessage:
    """Parse one MQTT message of the personnel/video/comms contract; never raises on bad
    input."""
    return parse_envelope(topic, payload, max_bytes, lambda parts, source: _route(
        topic, parts, source, payload))  # fmt: skip


def _route(topic: str, parts: list[str], source: str, payload: bytes) -> FeedMessage:
    match parts:
        case ["minewatch", "v1", mine, ("personnel" | "video" | "comms") as feed]:
            return _parse_batch(mine, feed, load_object(payload), payload)
        case ["minewatch", "v1", mine, "personnel", "meta"]:
            document = _meta(PersonnelMetaDocument, mine, payload)
            assert isinstance(document, PersonnelMetaDocument)
            return PersonnelMeta(source, mine, _aware_us(document.ts), document)
        case ["minewatch", "v1", mine, "video", "meta"]:
            document = _meta(VideoMetaDocument, mine, payload)
            assert isinstance(document, VideoMetaDocument)
            return VideoMeta(source, mine, _aware_us(document.ts), document)
        case ["minewatch", "v1", mine, "comms", "meta"]:
            document = _meta(CommsMetaDocument, mine, payload)
            assert isinstance(document, CommsMetaDocument)
            return CommsMeta(source, mine, _aware_us(document.ts), document)
    raise unknown_topic(topic)


_MetaDocument = PersonnelMetaDocument | VideoMetaDocument | CommsMetaDocument


def _meta(model: type[_MetaDocument], mine: str, payload: bytes) -> _MetaDocument:
    load_object(payload)  # same refusals (JSON, version) as the batches
    try:
        document = model.model_validate_json(payload)
    except ValidationError as exc:
        raise Refused(QuarantineReason.INVALID_METADATA, str(exc)[:2000]) from None
    if document.mine != mine:
        raise Refused(QuarantineReason.TOPIC_MISMATCH, f"definition of {document.mine} on {mine}")
    if document.ts.tzinfo is None:
        raise Refused(QuarantineReason.INVALID_METADATA, "ts has no UTC offset")
    return document


def _aware_us(stamp: dt.datetime) -> int:
    return datetime_to_us(stamp)


def _integer(document: dict[str, object], name: str) -> int:
    value = document.get(name)
    if type(value) is not int:
        raise schema(f"field {name!r} missing or not an integer")
    return value


def _parse_batch(mine: str, feed: str, document: dict[str, object], raw: bytes) -> FeedBatch:
    if document.get("mine") != mine:
        raise Refused(
            QuarantineReason.TOPIC_MISMATCH,
            f"payload mine {document.get('mine')!r} differs from the topic's {mine}",
        )
    kind = document.get("kind")
    spec_entry = _SPECS.get((feed, str(kind)))
    if spec_entry is None:
        raise schema(f"kind {kind!r} is not a {feed} kind")
    system = document.get("system", "default")
    if not isinstance(system, str) or not 0 < len(system) <= 64 or "/" in system:
        raise schema("system must be a non-empty string without '/' (at most 64 characters)")
    boot, seq = _integer(document, "boot"), _integer(document, "seq")
    ts = document.get("ts")
    if not isinstance(ts, str):
        raise schema("field 'ts' missing or not a string")
    time_us = parse_time_us(ts, "time")
    key, spec = spec_entry
    unknown = set(document) - _ENVELOPE - set(spec)
    if unknown:
        raise schema(f"unknown fields {sorted(unknown)}")
    first = document.get(key)
    if not isinstance(first, list):
        raise schema(f"field {key!r} missing or not a list")
    n = len(first)
    columns: dict[str, np.ndarray] = {}
    for name, (parse, required, nullable) in spec.items():
        items = document.get(name)
        if items is None:
            if required:
                raise schema(f"field {name!r} missing")
            filler = _filler(name, n)
            assert filler is not None  # every optional field has a filler
            columns[name] = filler
            continue
        if not isinstance(items, list) or len(items) != n:
            raise schema(f"field {name!r} must be a list of {n} items")
        try:
            columns[name] = parse(items, nullable)
        except Refused as refused:
            raise schema(f"field {name!r}: {refused.detail}") from None
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
