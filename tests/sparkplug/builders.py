"""Sparkplug B payloads for the tests, built with the vendored schema (protobuf), field by field."""

from __future__ import annotations

from dataclasses import dataclass

from minewatch.ingest.sources.sparkplug import DataType
from minewatch.ingest.sources.sparkplug import sparkplug_b_pb2 as pb

MINE = "141024010001"
EDGE = "001"
T0 = 1_750_000_000_000  # ms


@dataclass(frozen=True)
class M:
    """A metric to encode; ``field`` defaults from the datatype."""

    name: str | None = None
    value: object = None
    datatype: DataType | None = None
    alias: int | None = None
    timestamp: int | None = None
    field: str | None = None
    is_null: bool = False


_FIELDS = {
    DataType.DOUBLE: "double_value", DataType.FLOAT: "float_value",
    DataType.BOOLEAN: "boolean_value", DataType.STRING: "string_value",
    DataType.INT8: "int_value", DataType.INT16: "int_value", DataType.INT32: "int_value",
    DataType.UINT8: "int_value", DataType.UINT16: "int_value", DataType.UINT32: "long_value",
    DataType.INT64: "long_value", DataType.UINT64: "long_value", DataType.BYTES: "bytes_value",
}  # fmt: skip


def encode(metrics: list[M], *, timestamp: int | None = T0, seq: int | None = 0) -> bytes:
    payload = pb.Payload()
    if timestamp is not None:
        payload.timestamp = timestamp
    if seq is not None:
        payload.seq = seq
    for m in metrics:
        metric = payload.metrics.add()
        if m.name is not None:
            metric.name = m.name
        if m.alias is not None:
            metric.alias = m.alias
        if m.timestamp is not None:
            metric.timestamp = m.timestamp
        if m.datatype is not None:
            metric.datatype = m.datatype
        if m.is_null:
            metric.is_null = True
        field = m.field or (_FIELDS.get(m.datatype) if m.datatype is not None else None)
        if m.value is not None and field is not None:
            setattr(metric, field, m.value)
    return payload.SerializeToString()


def topic(kind: str, edge: str = EDGE, device: str | None = None, group: str = MINE) -> str:
    base = f"spBv1.0/{group}/{kind}/{edge}"
    return base if device is None else f"{base}/{device}"


def bd_seq(value: int) -> M:
    return M("bdSeq", value, DataType.INT64)


def nbirth(metrics: list[M], *, bd: int = 0, timestamp: int = T0, seq: int = 0) -> bytes:
    return encode([*metrics, bd_seq(bd)], timestamp=timestamp, seq=seq)


def ndeath(bd: int, timestamp: int = T0) -> bytes:
    return encode([bd_seq(bd)], timestamp=timestamp, seq=None)
