"""Thousands of random and mutated Sparkplug payloads and message sequences: the decoder and the
host session never raise, and every metric they are given is accounted for (a reading, a
refusal with its reason, or a protocol metric), with output the gateway can store."""

from __future__ import annotations

import numpy as np
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minewatch.ingest.contract import SafetyMessage
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.sources.sparkplug import (
    DataType,
    SparkplugHost,
    SparkplugPayload,
    decode_payload,
)
from tests.sparkplug.builders import MINE, T0, M, encode, topic

_DECODE_REASONS = {
    QuarantineReason.MALFORMED_PROTOBUF,
    QuarantineReason.INVALID_UTF8,
    QuarantineReason.PAYLOAD_TOO_LARGE,
}
_NAMES = ["CH4", "FEED", "TEMP", "bdSeq", "Node Control/Rebirth", "Device Control/Rebirth", "x"]
_FIELD_VALUES = {
    "int_value": st.integers(0, 2**32 - 1),
    "long_value": st.integers(0, 2**64 - 1),
    "float_value": st.floats(width=32, allow_nan=True),
    "double_value": st.floats(allow_nan=True),
    "boolean_value": st.booleans(),
    "string_value": st.text(max_size=8),
    "bytes_value": st.binary(max_size=8),
}
_PROTOCOL = ("bdSeq", "Node Control/", "Device Control/")


@st.composite
def metrics(draw: st.DrawFn) -> M:
    field = draw(st.sampled_from([None, *_FIELD_VALUES]))
    return M(
        name=draw(st.one_of(st.none(), st.sampled_from(_NAMES))),
        value=None if field is None else draw(_FIELD_VALUES[field]),
        datatype=draw(st.one_of(st.none(), st.integers(0, 40).map(_datatype))),
        alias=draw(st.one_of(st.none(), st.integers(0, 5))),
        timestamp=draw(st.one_of(st.none(), st.integers(0, 2**64 - 1), st.just(T0))),
        field=field,
        is_null=draw(st.booleans()),
    )


def _datatype(n: int) -> DataType:
    return DataType(n) if n <= 34 else n  # type: ignore[return-value]  # unknown numbers too


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    data = encode(
        draw(st.lists(metrics(), max_size=6)),
        timestamp=draw(st.one_of(st.none(), st.just(T0), st.integers(0, 2**64 - 1))),
        seq=draw(st.one_of(st.none(), st.integers(0, 300))),
    )
    return draw(mutated(data)) if draw(st.booleans()) else data


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    buffer = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        at = draw(st.integers(0, len(buffer)))
        if action == "flip" and buffer:
            at = min(at, len(buffer) - 1)
            buffer[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "cut":
            del buffer[at:]
        elif action == "insert":
            buffer[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif buffer:
            del buffer[min(at, len(buffer) - 1)]
    return bytes(buffer)


#: Valid payloads of every shape, for cheap mutation (structured generation is slow).
_SEEDS = [
    encode([M("CH4", 0.31, DataType.DOUBLE, alias=1, timestamp=T0), M("bdSeq", 3, DataType.INT64)]),
    encode([M(alias=1, value=0.5, field="float_value"), M("FEED", True, DataType.BOOLEAN)], seq=9),
    encode([M("T", 2**32 - 5, DataType.INT32), M("S", "text", DataType.STRING, is_null=True)]),
    encode([M("B", b"\x00\x01", DataType.BYTES), M("U", 2**64 - 1, DataType.UINT64)], seq=255),
    encode([], timestamp=None, seq=None),
]


def _check_decoded(data: bytes) -> None:
    decoded = decode_payload(data, source="s", max_bytes=150)
    if isinstance(decoded, Rejection):
        assert decoded.reason in _DECODE_REASONS
        assert decoded.payload == data  # refused, kept whole
    else:
        assert isinstance(decoded, SparkplugPayload)
        for metric in decoded.metrics:
            assert metric.name is None or isinstance(metric.name, str)


@settings(max_examples=2500, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.sampled_from(_SEEDS).flatmap(mutated)))
def test_the_decoder_never_raises_on_random_or_mutated_bytes(data: bytes) -> None:
    _check_decoded(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads())
def test_the_decoder_never_raises_on_generated_payloads(data: bytes) -> None:
    _check_decoded(data)


_KINDS = ["NBIRTH", "NDATA", "NDATA", "NDATA", "DBIRTH", "DDATA", "DDATA", "NDEATH", "DDEATH"]


@st.composite
def exchanges(draw: st.DrawFn) -> list[tuple[str, bytes]]:
    """A plausible edge-node session, shuffled by gaps, repeats, mutations and junk."""
    out: list[tuple[str, bytes]] = []
    seq = 0
    birth = [M(name, 0.1, DataType.DOUBLE, alias=i) for i, name in enumerate(_NAMES[:3])]
    for _ in range(draw(st.integers(1, 25))):
        kind = draw(st.sampled_from(_KINDS))
        device = None if kind.startswith("N") else draw(st.sampled_from(["d1", "d2"]))
        seq = 0 if kind == "NBIRTH" else (seq + draw(st.sampled_from([1, 1, 1, 2, 0, 200]))) % 256
        body = draw(st.lists(metrics(), max_size=4))
        if kind in ("NBIRTH", "DBIRTH") and draw(st.booleans()):
            body = [*birth, M("bdSeq", draw(st.integers(0, 3)), DataType.INT64)]
        if kind == "NDEATH":
            body = [M("bdSeq", draw(st.integers(0, 3)), DataType.INT64)]
        data = encode(body, timestamp=T0 + len(out), seq=None if kind == "NDEATH" else seq)
        if draw(st.integers(0, 9)) == 0:
            data = draw(mutated(data))
        out.append((topic(kind, device=device), data))
        if draw(st.integers(0, 9)) == 0:
            out.append(out[-1])  # a redelivery
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exchanges())
def test_the_session_never_raises_and_accounts_for_every_metric(
    exchange: list[tuple[str, bytes]],
) -> None:
    host = SparkplugHost(max_message_bytes=1 << 16)
    seen: set[tuple[str, bytes]] = set()
    for n, (name, data) in enumerate(exchange):
        out = host.receive(name, data, T0 + n)
        again = (name, data) in seen
        seen.add((name, data))
        whole = [m for m in out.messages if isinstance(m, Rejection) and m.payload == data]
        messages = [m for m in out.messages if isinstance(m, SafetyMessage)]
        faults = [m for m in messages if len(m) and (m.status == 16).all()]
        readings = [m for m in messages if not (len(m) and (m.status == 16).all())]
        single = [m for m in out.messages if isinstance(m, Rejection) and m.payload != data]
        for message in messages:
            _storable(message)
        for fault in faults:  # an interruption (death, seq gap) as substation-fault readings
            assert out.events and fault.value_ok.all() and (fault.value == 0.0).all()
        for refused in out.messages:
            if isinstance(refused, Rejection):
                assert isinstance(refused.reason, QuarantineReason) and refused.detail
        for command in out.commands:
            assert command.topic == f"spBv1.0/{MINE}/NCMD/001"
        if whole:
            assert readings == [] and single == [] and len(whole) == 1
            continue
        decoded = decode_payload(data, source="s", max_bytes=1 << 16)
        assert isinstance(decoded, SparkplugPayload)
        kind = name.split("/")[2]
        if kind in ("NDEATH", "DDEATH"):
            continue  # deaths carry no readings
        if readings and len(readings[0]) == 0:
            assert again and len(out.messages) == 1  # the answer to a redelivery
            continue
        if again and not out.messages:
            continue  # a redelivery of a message that had no readings: nothing to make durable
        protocol = [
            m
            for m in decoded.metrics
            if kind in ("NBIRTH", "DBIRTH") and (m.name or "").startswith(_PROTOCOL)
        ]
        handled = sum(len(m) for m in readings) + len(single)
        if kind in ("NBIRTH", "DBIRTH"):
            assert handled + len(protocol) == len(decoded.metrics)
        else:  # in data, a metric named by alias may be a protocol one: only the birth knows
            maybe_protocol = [
                m
                for m in decoded.metrics
                if m.alias is not None or (m.name or "").startswith(_PROTOCOL)
            ]
            assert handled <= len(decoded.metrics) <= handled + len(maybe_protocol)


def _storable(message: SafetyMessage) -> None:
    n = len(message.codes)
    assert all(isinstance(c, str) for c in message.codes)
    for column, dtype in (
        (message.time_us, np.int64),
        (message.value, np.float64),
        (message.value_ok, np.bool_),
        (message.status, np.int64),
    ):
        assert column.dtype == dtype and column.shape == (n,)
    assert len(message.raw_values) == n
    orjson.dumps(message.raw_values)  # refused readings are quarantined as JSON
    assert message.source.startswith(f"{MINE}/sparkplug/001")
