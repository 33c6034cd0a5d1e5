"""The personnel/video contract parser (pure) and the quarantine of bad input by the running
pipeline: a malformed message is kept aside whole, a row with a bad code alone."""

from __future__ import annotations

import aiomqtt
import orjson
import pytest

from minewatch.feeds import broker_address, personnel_meta_topic, personnel_topic, video_topic
from minewatch.ingest.feeds.contract import FeedBatch, PersonnelMeta
from minewatch.ingest.feeds.parsing import parse_feed_message
from minewatch.ingest.feeds.screening import screen
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.time_limits import TimeLimits
from tests.helpers import eventually, scalar
from tests.personnel.stack import running_feeds, watermark

MINE = "141024010001"
CARD, AREA = f"{MINE}00001", f"{MINE}0003"
STATION = f"{AREA}000001"
TS = "2026-01-10T08:00:00+08:00"
LIMITS = TimeLimits(300_000_000, 10**16)


def _positions(**overrides: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "v": 1, "mine": MINE, "system": "rydw", "boot": 1, "seq": 1, "kind": "positions",
        "ts": TS, "cards": [CARD, CARD[:-1]], "stations": [STATION, STATION],
        "areas": [AREA, AREA], "in_mine": [1, 2], "distance_m": [3.5, None],
    }  # fmt: skip
    doc.update(overrides)
    return doc


def _parse(doc: object, topic: str = personnel_topic(MINE)) -> object:
    return parse_feed_message(topic, orjson.dumps(doc), 1 << 20)


def test_a_positions_batch_parses_to_columns_and_a_bad_code_refuses_its_row_alone() -> None:
    batch = _parse(_positions())
    assert isinstance(batch, FeedBatch)
    assert batch.source == f"{MINE}/personnel/rydw" and len(batch) == 2
    assert batch.columns["in_mine"].tolist() == [1, 2]
    kept, rejected = screen(batch, batch.time_us, LIMITS)
    assert kept.columns["cards"].tolist() == [CARD]
    assert [r.reason for r in rejected] == [QuarantineReason.INVALID_CODE]


@pytest.mark.parametrize(
    ("payload", "topic", "reason"),
    [
        (b"{not json", personnel_topic(MINE), QuarantineReason.MALFORMED_JSON),
        (_positions(v=2), personnel_topic(MINE), QuarantineReason.UNSUPPORTED_VERSION),
        (_positions(mine="141024010002"), personnel_topic(MINE), QuarantineReason.TOPIC_MISMATCH),
        (_positions(kind="sos"), personnel_topic(MINE), QuarantineReason.SCHEMA_VIOLATION),
        (_positions(in_mine=[1]), personnel_topic(MINE), QuarantineReason.SCHEMA_VIOLATION),
        (_positions(in_mine=[1, 3]), personnel_topic(MINE), QuarantineReason.SCHEMA_VIOLATION),
        (_positions(ts="2026-01-10T08:00:00"), personnel_topic(MINE),
         QuarantineReason.SCHEMA_VIOLATION),
        (_positions(extra=1), personnel_topic(MINE), QuarantineReason.SCHEMA_VIOLATION),
        (_positions(kind="heartbeats"), video_topic(MINE), QuarantineReason.SCHEMA_VIOLATION),
        (_positions(), f"minewatch/v1/{MINE}/personnel/x", QuarantineReason.UNKNOWN_TOPIC),
        ({"v": 1, "mine": MINE, "ts": TS, "areas": [{"code": AREA, "type": "矿井"}]},
         personnel_meta_topic(MINE), QuarantineReason.INVALID_METADATA),
    ],
)  # fmt: skip
def test_bad_messages_are_refused_with_their_reason(
    payload: object, topic: str, reason: QuarantineReason
) -> None:
    data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    result = parse_feed_message(topic, data, 1 << 20)
    assert isinstance(result, Rejection) and result.reason == reason, result
    assert result.payload == data


def test_a_definition_accepts_the_chinese_area_types() -> None:
    doc = {"v": 1, "mine": MINE, "ts": TS, "areas": [
        {"code": AREA, "type": "限制区域", "approved": 0}]}  # fmt: skip
    meta = _parse(doc, personnel_meta_topic(MINE))
    assert isinstance(meta, PersonnelMeta) and meta.document.areas[0].type == "restricted"


@pytest.mark.anyio
async def test_the_pipeline_quarantines_bad_input_and_keeps_running(
    database_url: str, mqtt_url: str, unique_id: str
) -> None:
    host, port = broker_address(mqtt_url)
    now = "2026-01-10T08:00:00+08:00"
    with_bad_row = orjson.dumps(_positions(ts=now))
    async with (
        running_feeds(database_url, mqtt_url, f"feeds-{unique_id}", max_past_age_s=1e10),
        aiomqtt.Client(host, port, identifier=f"pub-{unique_id}") as client,
    ):
        meta = {"v": 1, "mine": MINE, "mine_name": "x", "ts": now}
        await client.publish(personnel_meta_topic(MINE), orjson.dumps(meta), qos=1)
        await client.publish(personnel_topic(MINE), b"\xff\xfe", qos=1)
        await client.publish(personnel_topic(MINE), with_bad_row, qos=1)
        await eventually(lambda: watermark(database_url, f"{MINE}/personnel/rydw") == 1)
    reasons = scalar(database_url, "SELECT string_agg(reason, ',' ORDER BY id) FROM quarantine")
    assert reasons == "invalid_utf8,invalid_code"
    assert scalar(database_url, "SELECT count(*) FROM personnel_positions") == 1
    assert scalar(database_url, "SELECT count(*) FROM personnel_trips WHERE left_at IS NULL") == 1
