"""The JSON contract parser and the validation stage, without any server."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from minewatch.codes import PointStatus
from minewatch.feeds import (
    alarm_topic,
    comms_meta_topic,
    comms_topic,
    personnel_meta_topic,
    personnel_topic,
    video_meta_topic,
    video_topic,
)
from minewatch.ingest.contract import MetaMessage, OtherFeed, SafetyMessage, parse_message
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.time_limits import TimeLimits
from minewatch.ingest.validate import PointResolver, validate
from minewatch.registry import _COLUMNS, PointRegistry
from minewatch.timeutil import datetime_to_us

TOPIC = "minewatch/v1/141024010001/safety/001"
MAX = 1 << 20


def _payload(**overrides: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "v": 1, "mine": "141024010001", "substation": "001", "boot": 1, "seq": 5,
        "ts": "2026-11-29T08:00:00+08:00", "points": ["A", "B", "C"],
        "values": [0.25, 1, 3.5], "status": [0, 4, 0],
    }  # fmt: skip
    payload.update(overrides)
    return payload


def _parse(**overrides: object) -> SafetyMessage | MetaMessage | Rejection:
    return parse_message(TOPIC, orjson.dumps(_payload(**overrides)), MAX)


def test_a_valid_message_becomes_columns() -> None:
    message = _parse()
    assert isinstance(message, SafetyMessage)
    assert message.source == "141024010001/001"
    assert message.codes == ["A", "B", "C"]
    assert message.value.tolist() == [0.25, 1.0, 3.5]
    assert message.value_ok.all()
    assert message.status.tolist() == [0, 4, 0]
    # 08:00 in China is 00:00 UTC
    assert set(message.time_us.tolist()) == {datetime_to_us(pd.Timestamp("2026-11-29T00:00Z"))}


def test_offsets_give_each_reading_its_own_time() -> None:
    message = _parse(offsets_ms=[0, -1000, -2000])
    assert isinstance(message, SafetyMessage)
    assert np.diff(message.time_us).tolist() == [-1_000_000, -1_000_000]


def test_values_that_are_not_numbers_are_marked_not_converted() -> None:
    message = _parse(values=[True, "0.3", None])
    assert isinstance(message, SafetyMessage)
    assert message.value_ok.tolist() == [False, False, False]


def test_a_bool_among_numbers_is_not_taken_for_one() -> None:
    message = _parse(values=[0.5, True, 2])
    assert isinstance(message, SafetyMessage)
    assert message.value_ok.tolist() == [True, False, True]


def _reason(topic: str, payload: bytes) -> QuarantineReason:
    result = parse_message(topic, payload, MAX)
    assert isinstance(result, Rejection), result
    return result.reason


def test_message_level_refusals_name_their_reason() -> None:
    assert _reason(TOPIC, b"{") == QuarantineReason.MALFORMED_JSON
    assert _reason(TOPIC, b"\xc3\x28") == QuarantineReason.INVALID_UTF8
    assert _reason(TOPIC, b"[1]") == QuarantineReason.SCHEMA_VIOLATION
    assert _reason(TOPIC, orjson.dumps(_payload(v=2))) == QuarantineReason.UNSUPPORTED_VERSION
    assert _reason(TOPIC, orjson.dumps(_payload(seq="5"))) == QuarantineReason.SCHEMA_VIOLATION
    assert _reason(TOPIC, orjson.dumps(_payload(ts="2026-11-29 08:00:00"))) == (
        QuarantineReason.SCHEMA_VIOLATION  # no UTC offset: ambiguous, refused
    )
    assert _reason(TOPIC, orjson.dumps(_payload(status=[0, 0]))) == (
        QuarantineReason.SCHEMA_VIOLATION
    )
    assert _reason(TOPIC, orjson.dumps(_payload(substation="002"))) == (
        QuarantineReason.TOPIC_MISMATCH
    )
    assert _reason("minewatch/v1/x/other", b"{}") == QuarantineReason.UNKNOWN_TOPIC
    assert parse_message(TOPIC, b" " * 100, 10).reason == QuarantineReason.PAYLOAD_TOO_LARGE  # type: ignore[union-attr]


def _registry() -> PointRegistry:
    rows = []
    for i, code in enumerate(["A", "B", "C"], start=1):
        row = dict.fromkeys(_COLUMNS)
        row.update(id=i, mine_code="141024010001", code=code, sensor_type="0001",
                   value_type="MN", range_low=0.0, range_high=4.0)  # fmt: skip
        rows.append(row)
    return PointRegistry.from_frame(pd.DataFrame(rows, columns=list(_COLUMNS)))


def _validate(message: object, now: str = "2026-11-29T00:00:30Z") -> tuple[object, list[Rejection]]:
    assert isinstance(message, SafetyMessage)
    limits = TimeLimits(max_future_skew_us=300_000_000, max_past_age_us=86_400_000_000)
    return validate(message, PointResolver(_registry()), datetime_to_us(pd.Timestamp(now)), limits)


def test_validation_keeps_good_rows_and_refuses_each_bad_row_with_its_reason() -> None:
    message = _parse(
        points=["A", "B", "C", "ZZZ", "A", "B", "C"],
        values=[0.2, 9.0, 9.0, 0.1, math.inf, "x", 0.3],  # JSON has no Inf: orjson writes null
        status=[0, 0, PointStatus.OVER_RANGE, 0, 0, 0, 512],
    )
    batch, rejections = _validate(message)
    assert batch.point_id.tolist() == [1, 3]  # type: ignore[attr-defined]
    assert batch.value.tolist() == [0.2, 9.0]  # over range, but flagged so by the mine  # type: ignore[attr-defined]
    assert sorted(r.reason.value for r in rejections) == sorted(
        ["out_of_range", "unknown_point", "wrong_type", "wrong_type", "invalid_status"]
    )
    assert all(orjson.loads(r.payload)["mine"] == "141024010001" for r in rejections)


def test_timestamps_far_from_now_are_refused() -> None:
    future = _parse(ts="2026-11-29T01:00:00Z")
    old = _parse(ts="2026-11-20T00:00:00Z")
    assert {r.reason for r in _validate(future)[1]} == {QuarantineReason.TIME_IN_FUTURE}
    assert {r.reason for r in _validate(old)[1]} == {QuarantineReason.TIME_TOO_OLD}


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False)
    | st.integers(-(2**63), 2**64 - 1)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=10,
)


@settings(max_examples=1500, deadline=None)
@given(
    mutation=st.dictionaries(
        st.sampled_from(
            [
                "v",
                "mine",
                "substation",
                "boot",
                "seq",
                "ts",
                "points",
                "values",
                "status",
                "offsets_ms",
            ]
        ),
        json_values,
        max_size=3,
    ),
    garbage=st.binary(max_size=40)
    | st.sampled_from(
        [
            b'{"v":1,"mine":"141024010001","substation":"001","boot":1,"seq":1,"ts":"2026-11-29T00:00:00Z",'
            b'"points":["A"],"values":[1],"status":[99999999999999999999999]}',
            b'{"v":1,"mine":"141024010001","substation":"001","boot":1,"seq":1,"ts":"2026-11-29T00:00:00Z",'
            b'"points":["A"],"values":[1e400],"status":[0]}',
        ]
    ),
)
def test_fuzzed_messages_never_crash_and_every_reading_is_accounted_for(
    mutation: dict[str, object], garbage: bytes
) -> None:
    for payload in (orjson.dumps(_payload(**mutation)), garbage):
        result = parse_message(TOPIC, payload, MAX)
        if isinstance(result, SafetyMessage):
            batch, rejections = _validate(result, now="2026-11-29T00:00:00Z")
            assert len(batch) + len(rejections) == len(result)  # type: ignore[arg-type]
        else:
            assert isinstance(result, Rejection)


def test_every_other_feed_under_the_tree_is_left_to_its_own_client() -> None:
    """The safety source subscribes to the whole tree: a message of any other feed minewatch
    defines must be acknowledged and left alone, never quarantined as an unknown topic."""
    mine = "141024010001"
    others = [
        alarm_topic, personnel_topic, personnel_meta_topic, video_topic, video_meta_topic,
        comms_topic, comms_meta_topic,
    ]  # fmt: skip
    for topic in others:
        assert isinstance(parse_message(topic(mine), b"{}", 1 << 20), OtherFeed), topic(mine)


@given(
    st.lists(st.sampled_from(["A", "B", "C", "ZZZ", "a", ""]), max_size=20),
    st.sampled_from(["141024010001", "141024019999"]),
)
def test_the_resolver_gives_what_the_registry_lookup_gives(codes: list[str], mine: str) -> None:
    """Remembered lists and the per-mine dict resolve exactly as ``PointRegistry.lookup``:
    unknown codes and unknown mines -1, a code repeated resolved each time."""
    registry = _registry()
    resolver = PointResolver(registry)
    for _ in range(2):  # the second time from the remembered list
        got = resolver.resolve(mine, codes)
        assert got.dtype == np.int32
        assert got.tolist() == registry.lookup(mine, codes).tolist()
    long = codes * (PointResolver.MAX_REMEMBERED_LENGTH // max(len(codes), 1) + 1)
    assert resolver.resolve(mine, long).tolist() == registry.lookup(mine, long).tolist()
