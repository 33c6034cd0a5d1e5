"""The minewatch MQTT JSON contract, version 1 (docs/feeds.md), as a pure parser.

Bytes and a topic in, a parsed message or a :class:`Rejection` out; no I/O, so it is tested
without a broker (tests/ingest/test_contract.py: hand-made cases and hypothesis-generated
payloads). Readings are columnar in the payload and stay columnar here. The envelope (size,
JSON, version, times) is :mod:`.envelope`, shared with the personnel/video contract.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import orjson
from pydantic import ValidationError

from minewatch.feeds import OTHER_FEEDS
from minewatch.ingest import envelope
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.metadata import MineDefinition


@dataclass(frozen=True, slots=True)
class SafetyMessage:
    """One substation's readings of one or more polling cycles, point codes not yet resolved."""

    source: str  # "<mine>/<substation>": the unit of sequence numbering
    mine: str
    substation: str
    boot: int  # publisher start (epoch ms): a restarted publisher starts a new sequence
    seq: int
    time_us: npt.NDArray[np.int64]
    codes: list[str]
    value: npt.NDArray[np.float64]
    value_ok: npt.NDArray[np.bool_]  # False where the JSON value was not a number
    status: npt.NDArray[np.int64]
    raw_values: list[object]  # kept to quarantine single readings verbatim

    def __len__(self) -> int:
        return len(self.codes)


@dataclass(frozen=True, slots=True)
class MetaMessage:
    source: str
    definition: MineDefinition


@dataclass(frozen=True, slots=True)
class OtherFeed:
    """A message of another feed under the same tree (personnel, video, alarm events): read
    by its own client, acknowledged here and not stored."""

    source: str


ParsedMessage = SafetyMessage | MetaMessage | Rejection | OtherFeed

_MINE_CODE = re.compile(r"[0-9]{12}")
_SUBSTATION_CODE = re.compile(r"[^/+#]{1,32}")


def parse_message(topic: str, payload: bytes, max_bytes: int) -> ParsedMessage:
    """Parse one MQTT message of the contract; never raises on bad input.

    A refused message on a safety topic that still carries an integer ``boot`` and ``seq``
    says so (:attr:`Rejection.numbered`): it arrived, so it is no sequence gap.
    """
    parts = topic.split("/")
    if len(parts) > 3 and "/".join(parts[3:]) in OTHER_FEEDS:
        return OtherFeed("/".join(parts[2:]))
    parsed = envelope.parse_envelope(topic, payload, max_bytes, lambda parts, source: _route(
        topic, parts, source, payload))  # fmt: skip
    if isinstance(parsed, Rejection) and len(parts) == 5 and parts[3] == "safety":
        mark = _received_mark(parts[2], parts[4], payload, max_bytes)
        if mark is not None:
            return replace(parsed, numbered=(f"{parts[2]}/{parts[4]}", *mark))
    return parsed


def _received_mark(
    mine: str, substation: str, payload: bytes, max_bytes: int
) -> tuple[int, int] | None:
    """``(boot, seq)`` of a refused safety message whose payload names the topic's source (an
    oversized one is not read; one naming another source numbers another sequence)."""
    if len(payload) > max_bytes:
        return None
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict):
        return None
    if document.get("mine") != mine or document.get("substation") != substation:
        return None
    boot, seq = document.get("boot"), document.get("seq")
    if type(boot) is int and type(seq) is int:
        return boot, seq
    return None


def _route(topic: str, parts: list[str], source: str, payload: bytes) -> ParsedMessage:
    match parts:
        case ["minewatch", "v1", mine, "safety", substation]:
            _check_codes(topic, mine, substation)
            may_hold_bools = b"true" in payload or b"false" in payload
            return _parse_safety(mine, substation, envelope.load_object(payload), may_hold_bools)
        case ["minewatch", "v1", mine, "meta"]:
            _check_codes(topic, mine)
            return _parse_meta(mine, source, envelope.load_object(payload))
    raise envelope.unknown_topic(topic)


def _check_codes(topic: str, mine: str, substation: str | None = None) -> None:
    if not _MINE_CODE.fullmatch(mine):
        raise envelope.Refused(
            QuarantineReason.UNKNOWN_TOPIC,
            f"topic {topic!r}: the mine code must be 12 digits, not {mine!r}",
        )
    if substation is not None and not _SUBSTATION_CODE.fullmatch(substation):
        raise envelope.Refused(
            QuarantineReason.UNKNOWN_TOPIC,
            f"topic {topic!r}: the substation code must be 1 to 32 characters",
        )


#: how a reason names the JSON type a field must have
_KINDS = {int: "an integer", str: "a string", list: "a list"}


def _field(document: dict[str, object], name: str, kind: type) -> object:
    value = document.get(name)
    if value is None:
        raise envelope.schema(f"{name} is missing")
    if not isinstance(value, kind) or isinstance(value, bool):
        raise envelope.schema(f"{name} must be {_KINDS.get(kind, kind.__name__)}")
    return value


def _column(items: list[object]) -> np.ndarray:
    """A JSON list as a numpy array; ragged or nested input becomes a 1-D object array, which
    no caller accepts (they check the dtype kind), instead of an exception."""
    try:
        array = np.asarray(items)
    except (ValueError, TypeError, OverflowError):
        array = np.empty(len(items), dtype=object)
        for i, item in enumerate(items):
            array[i] = item
    if array.ndim != 1:
        array = np.empty(len(items), dtype=object)
    return array


def _numbers(
    values: list[object], may_hold_bools: bool
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Values as float64 plus a mask of which were JSON numbers (not strings, null, bools).

    The fast path lets numpy type the whole list at once; numpy would turn ``true`` into 1, so
    a payload that contains a JSON boolean anywhere takes the per-element path instead.
    """
    array = _column(values) if values else np.empty(0, np.float64)
    if array.dtype.kind in "if" and not may_hold_bools:
        return array.astype(np.float64, copy=False), np.ones(len(values), bool)
    ok = np.fromiter(
        (type(v) is int or type(v) is float for v in values), dtype=bool, count=len(values)
    )
    out = np.zeros(len(values), np.float64)
    if ok.any():
        out[ok] = np.asarray([v for v, good in zip(values, ok, strict=True) if good], np.float64)
    return out, ok


def _parse_safety(
    mine: str, substation: str, document: dict[str, object], may_hold_bools: bool
) -> SafetyMessage:
    if document.get("mine") != mine or document.get("substation") != substation:
        raise envelope.Refused(
            QuarantineReason.TOPIC_MISMATCH,
            f"payload mine/substation {document.get('mine')!r}/{document.get('substation')!r} "
            f"differ from the topic's {mine}/{substation}",
        )
    boot = _field(document, "boot", int)
    seq = _field(document, "seq", int)
    time_us = envelope.parse_time_us(str(_field(document, "ts", str)), "ts")
    codes = _field(document, "points", list)
    raw_values = _field(document, "values", list)
    status_list = _field(document, "status", list)
    assert isinstance(codes, list) and isinstance(raw_values, list)
    assert isinstance(status_list, list)
    n = len(codes)
    if len(raw_values) != n or len(status_list) != n:
        raise envelope.Refused(
            QuarantineReason.SCHEMA_VIOLATION,
            f"points/values/status lengths differ: {n}/{len(raw_values)}/{len(status_list)}",
        )
    if n and set(map(type, codes)) != {str}:
        raise envelope.schema("points must all be strings")
    status = _column(status_list) if n else np.empty(0, np.int64)
    if status.dtype.kind != "i":
        raise envelope.schema("status must all be integers")
    times = np.full(n, time_us, np.int64)
    offsets = document.get("offsets_ms")
    if offsets is not None:
        offset_array = _column(offsets) if isinstance(offsets, list) else None
        if offset_array is None or len(offset_array) != n or (n and offset_array.dtype.kind != "i"):
            raise envelope.schema("offsets_ms must be n integers")
        times = times + offset_array.astype(np.int64) * 1000
    value, value_ok = _numbers(raw_values, may_hold_bools)
    return SafetyMessage(
        source=f"{mine}/{substation}",
        mine=mine,
        substation=substation,
        boot=int(boot),  # type: ignore[call-overload]
        seq=int(seq),  # type: ignore[call-overload]
        time_us=times,
        codes=codes,
        value=value,
        value_ok=value_ok,
        status=status.astype(np.int64, copy=False),
        raw_values=raw_values,
    )


def _parse_meta(mine: str, source: str, document: dict[str, object]) -> MetaMessage:
    try:
        definition = MineDefinition.model_validate(document)
    except ValidationError as exc:
        raise envelope.Refused(QuarantineReason.INVALID_METADATA, str(exc)[:2000]) from None
    if definition.mine.code != mine:
        raise envelope.Refused(
            QuarantineReason.TOPIC_MISMATCH, f"definition of {definition.mine.code} on {mine}"
        )
    return MetaMessage(source, definition)


def message_to_bytes(message: SafetyMessage) -> bytes:
    """A message as bytes for the spool (what is read back equals what was written)."""
    return orjson.dumps(
        {
            "source": message.source, "mine": message.mine, "substation": message.substation,
            "boot": message.boot, "seq": message.seq, "time_us": message.time_us,
            "codes": message.codes, "value": np.where(message.value_ok, message.value, 0.0),
            "value_ok": message.value_ok, "status": message.status,
            "raw_values": message.raw_values,
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )  # fmt: skip


def message_from_bytes(data: bytes) -> SafetyMessage:
    doc = orjson.loads(data)
    value_ok = np.array(doc["value_ok"], dtype=bool)
    return SafetyMessage(
        source=doc["source"], mine=doc["mine"], substation=doc["substation"], boot=doc["boot"],
        seq=doc["seq"], time_us=np.array(doc["time_us"], dtype=np.int64), codes=doc["codes"],
        value=np.array(doc["value"], dtype=np.float64), value_ok=value_ok,
        status=np.array(doc["status"], dtype=np.int64), raw_values=doc["raw_values"],
    )  # fmt: skip
