"""The Sparkplug B payload decoder: bytes to plain values, refusals with reasons, signed ints."""

from __future__ import annotations

import math

import pytest

from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.sources.sparkplug import (
    DataType,
    SparkplugPayload,
    decode_payload,
    encode_rebirth_request,
    metric_number,
    parse_topic,
)
from minewatch.ingest.sources.sparkplug import sparkplug_b_pb2 as pb
from minewatch.ingest.sources.sparkplug.topic import MessageType
from tests.sparkplug.builders import T0, M, encode

_BAD_NAME = encode([M("axb", 1.0, DataType.DOUBLE)]).replace(b"axb", b"a\xffb")


def _decode(data: bytes, max_bytes: int = 1 << 20) -> SparkplugPayload:
    decoded = decode_payload(data, source="s", max_bytes=max_bytes)
    assert isinstance(decoded, SparkplugPayload), decoded
    return decoded


def test_a_payload_decodes_to_timestamp_seq_and_metrics() -> None:
    data = encode(
        [
            M("CH4", 0.42, DataType.DOUBLE, alias=7, timestamp=T0 - 5),
            M("FEED", True, DataType.BOOLEAN),
            M(alias=9, value=3, field="int_value"),  # data style: alias only, no datatype
            M("broken", datatype=DataType.FLOAT, is_null=True),
        ],
        seq=17,
    )
    payload = _decode(data)
    assert (payload.timestamp_ms, payload.seq) == (T0, 17)
    ch4, feed, by_alias, null = payload.metrics
    assert (ch4.name, ch4.alias, ch4.datatype, ch4.timestamp_ms) == ("CH4", 7, 10, T0 - 5)
    assert (ch4.field, ch4.value, ch4.is_null) == ("double_value", 0.42, False)
    assert (feed.field, feed.value) == ("boolean_value", True)
    assert (by_alias.name, by_alias.alias, by_alias.datatype, by_alias.value) == (None, 9, None, 3)
    assert null.is_null and null.value is None and null.field is None
    assert payload.metric_named("FEED") is feed and payload.metric_named("x") is None


def test_an_empty_payload_is_valid_and_has_nothing() -> None:
    assert _decode(b"") == SparkplugPayload(None, None, ())


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x12\xff\xff\xff\xff\x0f", QuarantineReason.MALFORMED_PROTOBUF),  # length overruns
        (b"\x08", QuarantineReason.MALFORMED_PROTOBUF),  # truncated varint
        (b"\x0f", QuarantineReason.MALFORMED_PROTOBUF),  # wire type 7 does not exist
        (b'{"v": 1}', QuarantineReason.MALFORMED_PROTOBUF),  # JSON is not Sparkplug B
        (_BAD_NAME, QuarantineReason.INVALID_UTF8),  # a metric name that is not UTF-8
    ],
)
def test_bad_bytes_are_refused_with_their_reason_and_kept(
    data: bytes, reason: QuarantineReason
) -> None:
    refused = decode_payload(data, source="m/sparkplug/e", max_bytes=1024)
    assert isinstance(refused, Rejection)
    assert (refused.source, refused.reason, refused.payload) == ("m/sparkplug/e", reason, data)
    assert refused.detail


def test_a_payload_over_the_size_limit_is_refused_before_decoding() -> None:
    data = encode([M("CH4", 0.1, DataType.DOUBLE)] * 50)
    refused = decode_payload(data, source="s", max_bytes=100)
    assert isinstance(refused, Rejection)
    assert refused.reason is QuarantineReason.PAYLOAD_TOO_LARGE
    assert refused.payload == data  # kept whole (issue 15)


@pytest.mark.parametrize(
    ("datatype", "field", "raw", "expected"),
    [
        (DataType.INT8, "int_value", 0xFF, -1.0),  # pysparkplug: N bits
        (DataType.INT8, "int_value", 0xFFFFFFFF, -1.0),  # Eclipse Tahu: sign-extended
        (DataType.INT8, "int_value", 127, 127.0),
        (DataType.INT8, "int_value", 0x1FF, None),  # neither encoding
        (DataType.INT16, "int_value", 0xFFA9, -87.0),
        (DataType.INT16, "int_value", 0xFFFFFFA9, -87.0),
        (DataType.INT32, "int_value", 0x80000000, -(2.0**31)),
        (DataType.INT32, "long_value", 0xFFFFFFFFFFFFFFFE, -2.0),
        (DataType.INT64, "long_value", 2**64 - 5, -5.0),
        (DataType.UINT8, "int_value", 255, 255.0),
        (DataType.UINT8, "int_value", 256, None),
        (DataType.UINT32, "long_value", 4_000_000_000, 4e9),  # Tahu puts UInt32 in long_value
        (DataType.UINT32, "int_value", 4_000_000_000, 4e9),
        (DataType.UINT64, "long_value", 2**64 - 1, float(2**64 - 1)),
        (DataType.FLOAT, "float_value", 0.5, 0.5),
        (DataType.DOUBLE, "double_value", -1.25, -1.25),
        (DataType.DOUBLE, "float_value", 2.0, 2.0),
        (DataType.BOOLEAN, "boolean_value", True, 1.0),
        (DataType.BOOLEAN, "boolean_value", False, 0.0),
        (DataType.BOOLEAN, "int_value", 1, None),  # field does not fit the datatype
        (DataType.DOUBLE, "int_value", 3, None),
        (DataType.INT32, "double_value", 3.0, None),
        (DataType.STRING, "string_value", "1.5", None),  # text is never a reading
        (DataType.DATETIME, "long_value", T0, None),
        (DataType.UNKNOWN, "long_value", 1, None),
    ],
)
def test_metric_number_applies_the_datatype(
    datatype: DataType, field: str, raw: object, expected: float | None
) -> None:
    payload = pb.Payload()
    metric = payload.metrics.add()
    setattr(metric, field, raw)
    decoded = _decode(payload.SerializeToString()).metrics[0]
    number = metric_number(datatype, decoded)
    assert number == expected or (expected is not None and math.isclose(number or 0, expected))


def test_a_null_metric_has_no_number_even_with_a_value() -> None:
    data = encode([M("x", 1.0, DataType.DOUBLE, is_null=True)])
    assert metric_number(DataType.DOUBLE, _decode(data).metrics[0]) is None


def test_the_rebirth_request_is_an_ncmd_with_node_control_rebirth_true() -> None:
    payload = _decode(encode_rebirth_request(T0))
    (metric,) = payload.metrics
    assert payload.timestamp_ms == T0
    assert (metric.name, metric.datatype, metric.value) == (
        "Node Control/Rebirth",
        DataType.BOOLEAN,
        True,
    )


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("spBv1.0/141024010001/NDATA/001", ("141024010001", MessageType.NDATA, "001", None)),
        ("spBv1.0/141024010001/DBIRTH/001/d1", ("141024010001", MessageType.DBIRTH, "001", "d1")),
        ("spBv1.0/STATE/host-1", ("", MessageType.STATE, "host-1", None)),
        ("spBv1.0/141024010001/NDATA/001/d1", None),  # node messages have no device
        ("spBv1.0/141024010001/DDATA/001", None),  # device messages need one
        ("spBv1.0/141024010001/NTHING/001", None),
        ("spBv1.0/141024010001//001", None),
        ("spAv1.0/141024010001/NDATA/001", None),
        ("minewatch/v1/141024010001/safety/001", None),
        ("spBv1.0/141024010001/NDATA/001/a/b", None),
    ],
)
def test_topics_are_parsed_by_the_namespace_rules(
    topic: str, expected: tuple[str, MessageType, str, str | None] | None
) -> None:
    parsed = parse_topic(topic)
    if expected is None:
        assert parsed is None
    else:
        assert parsed is not None
        assert (parsed.group, parsed.kind, parsed.edge_node, parsed.device) == expected
