"""Sparkplug B payloads as plain values: bytes in, a :class:`SparkplugPayload` or a
:class:`~ingest.quarantine.Rejection` out, never an exception (sans-IO, fuzzed in the tests).

The protobuf schema is ``sparkplug_b.proto`` next to this module; ``sparkplug_b_pb2`` is what
protoc generated from it. Values stay as they travelled (the ``oneof`` field that held them and
its raw value): in DATA messages the datatype is usually left out and only the birth knows it,
so turning a value into a number is :func:`metric_number`, called once the datatype is known.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np
from google.protobuf.message import DecodeError

from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.sources.sparkplug import sparkplug_b_pb2 as pb
from minewatch.modbus_map import float32_to_decimal

#: A metric value as it was on the wire (before the datatype is applied).
RawValue = int | float | bool | str | bytes | None


class DataType(enum.IntEnum):
    """Sparkplug B datatypes (specification 3.0, §6.4.16)."""

    UNKNOWN = 0
    INT8 = 1
    INT16 = 2
    INT32 = 3
    INT64 = 4
    UINT8 = 5
    UINT16 = 6
    UINT32 = 7
    UINT64 = 8
    FLOAT = 9
    DOUBLE = 10
    BOOLEAN = 11
    STRING = 12
    DATETIME = 13
    TEXT = 14
    UUID = 15
    DATASET = 16
    BYTES = 17
    FILE = 18
    TEMPLATE = 19
    PROPERTYSET = 20
    PROPERTYSETLIST = 21
    INT8_ARRAY = 22
    INT16_ARRAY = 23
    INT32_ARRAY = 24
    INT64_ARRAY = 25
    UINT8_ARRAY = 26
    UINT16_ARRAY = 27
    UINT32_ARRAY = 28
    UINT64_ARRAY = 29
    FLOAT_ARRAY = 30
    DOUBLE_ARRAY = 31
    BOOLEAN_ARRAY = 32
    STRING_ARRAY = 33
    DATETIME_ARRAY = 34


_SIGNED_BITS = {DataType.INT8: 8, DataType.INT16: 16, DataType.INT32: 32, DataType.INT64: 64}
_UNSIGNED_BITS = {DataType.UINT8: 8, DataType.UINT16: 16, DataType.UINT32: 32, DataType.UINT64: 64}
_INTEGER_FIELDS = frozenset({"int_value", "long_value"})
_FLOAT_FIELDS = frozenset({"float_value", "double_value"})
#: Values of these fields are messages; they are kept as a short description, not decoded.
_COMPOUND_FIELDS = frozenset({"dataset_value", "template_value", "extension_value"})


@dataclass(frozen=True, slots=True)
class SparkplugMetric:
    """One metric of a payload. ``datatype`` is None where the payload left it out."""

    name: str | None
    alias: int | None
    datatype: int | None
    field: str | None  # which ``oneof value`` field held the value; None: no value
    value: RawValue  # the field's raw value (unsigned as on the wire); None without a value
    is_null: bool
    timestamp_ms: int | None
    is_historical: bool = False
    is_transient: bool = False


@dataclass(frozen=True, slots=True)
class SparkplugPayload:
    timestamp_ms: int | None
    seq: int | None
    metrics: tuple[SparkplugMetric, ...]

    def metric_named(self, name: str) -> SparkplugMetric | None:
        return next((m for m in self.metrics if m.name == name), None)


def decode_payload(data: bytes, *, source: str, max_bytes: int) -> SparkplugPayload | Rejection:
    """Decode one Sparkplug B payload; refusals carry the exact bytes. Never raises."""
    if len(data) > max_bytes:
        return Rejection(
            source,
            QuarantineReason.PAYLOAD_TOO_LARGE,
            f"{len(data)} bytes > {max_bytes}",
            data,
        )
    try:
        message = pb.Payload.FromString(data)
        return _payload(message)
    except DecodeError as exc:
        return Rejection(source, QuarantineReason.MALFORMED_PROTOBUF, str(exc)[:500], data)
    except _Invalid as exc:
        return Rejection(source, exc.reason, exc.detail, data)
    except Exception as exc:  # a protobuf runtime surprise must not stop the gateway
        detail = f"undecodable payload ({type(exc).__name__}: {exc})"[:500]
        return Rejection(source, QuarantineReason.MALFORMED_PROTOBUF, detail, data)


class _Invalid(Exception):
    def __init__(self, reason: QuarantineReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _payload(message: pb.Payload) -> SparkplugPayload:
    return SparkplugPayload(
        timestamp_ms=message.timestamp if message.HasField("timestamp") else None,
        seq=message.seq if message.HasField("seq") else None,
        metrics=tuple(_metric(i, m) for i, m in enumerate(message.metrics)),
    )


def _text(value: str | bytes, what: str) -> str:
    # The upb runtime hands out bytes for a proto2 string that is not valid UTF-8.
    if isinstance(value, bytes):
        raise _Invalid(QuarantineReason.INVALID_UTF8, f"{what} is not valid UTF-8: {value!r:.80}")
    return value


def _metric(index: int, metric: pb.Payload.Metric) -> SparkplugMetric:
    field = metric.WhichOneof("value")
    value: RawValue = None
    if field in _COMPOUND_FIELDS:
        value = f"<{field}>"
    elif field is not None:
        value = getattr(metric, field)
    return SparkplugMetric(
        name=_text(metric.name, f"name of metric {index}") if metric.HasField("name") else None,
        alias=metric.alias if metric.HasField("alias") else None,
        datatype=metric.datatype if metric.HasField("datatype") else None,
        field=field,
        value=value,
        is_null=metric.is_null,
        timestamp_ms=metric.timestamp if metric.HasField("timestamp") else None,
        is_historical=metric.is_historical,
        is_transient=metric.is_transient,
    )


def metric_number(datatype: int, metric: SparkplugMetric) -> float | None:
    """The metric's value as a reading, or None if it is null or not a number of ``datatype``.

    Signed integers travel in unsigned fields; producers disagree on the encoding of a negative
    IntN (Eclipse Tahu sign-extends it to 32 or 64 bits, pysparkplug keeps N bits), so both are
    accepted, and anything else is refused rather than guessed.
    """
    value, field = metric.value, metric.field
    if metric.is_null or field is None or isinstance(value, str | bytes) or value is None:
        return None
    if datatype == DataType.BOOLEAN:
        return float(value) if field == "boolean_value" else None
    if datatype == DataType.FLOAT:
        if field == "float_value":  # the shortest decimal that gives back the float32
            single = np.array([value], np.float32)  # (1.3, not 1.2999999523162842)
            return float(float32_to_decimal(single)[0])  # as the Modbus path does
        return float(value) if field in _FLOAT_FIELDS else None
    if datatype == DataType.DOUBLE:
        return float(value) if field in _FLOAT_FIELDS else None
    if field not in _INTEGER_FIELDS or isinstance(value, bool | float):
        return None
    if datatype in _UNSIGNED_BITS:
        return float(value) if 0 <= value < 1 << _UNSIGNED_BITS[DataType(datatype)] else None
    if datatype in _SIGNED_BITS:
        signed = _signed(value, _SIGNED_BITS[DataType(datatype)])
        return None if signed is None else float(signed)
    return None


def _signed(raw: int, bits: int) -> int | None:
    low = raw & ((1 << bits) - 1)
    signed = low - (1 << bits) if low >> (bits - 1) else low
    for width in (bits, 32, 64):
        if width >= bits and raw == signed % (1 << width):
            return signed
    return None


def json_safe(metric: SparkplugMetric) -> object:
    """The raw value in a form that JSON can hold (kept verbatim with refused readings)."""
    value = metric.value
    if metric.is_null:
        return None
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def encode_rebirth_request(timestamp_ms: int) -> bytes:
    """The NCMD payload that asks an edge node to publish its births again (§6.4.19)."""
    payload = pb.Payload(timestamp=timestamp_ms)
    metric = payload.metrics.add()
    metric.name = "Node Control/Rebirth"
    metric.timestamp = timestamp_ms
    metric.datatype = DataType.BOOLEAN
    metric.boolean_value = True
    data: bytes = payload.SerializeToString()  # protobuf's generated code is untyped here
    return data
