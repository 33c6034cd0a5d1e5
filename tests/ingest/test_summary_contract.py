"""The sans-IO parser of the summaries a level receives from below (``alarms`` mode)."""

from __future__ import annotations

import orjson

from minewatch.feeds import alarm_topic, statistics_topic
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.summary_contract import (
    ChangeEvent,
    HeadcountBatch,
    StatisticsBatch,
    parse_summary,
)

MINE = "141024010031"
ALARM = {
    "source": "city", "seq": 7, "kind": "alarm", "event": "cleared", "mine": MINE, "id": 3,
    "point": f"{MINE}01001A0001", "rule": "upper_alarm", "abnormal_type": "001",
    "classification": "exceedance", "state": "cleared", "grade": "orange",
    "started_at": "2026-12-06T08:00:00+00:00", "ended_at": "2026-12-06T08:00:30+00:00",
    "max_value": 1.6, "value_count": 30, "time": "2026-12-06T08:00:30+00:00",
}  # fmt: skip
STATISTICS = {
    "v": 1, "source": "city", "mine": MINE, "width_s": 60,
    "rows": {"seq": [1, 2], "point": ["a", "b"], "bucket": ["2026-12-06T08:00:00Z"] * 2,
             "n": [60, 60], "min": [0.1, 0.2], "max": [0.3, 0.4], "mean": [0.2, 0.3],
             "last": [0.2, 0.3], "last_time": ["2026-12-06T08:00:59Z"] * 2},
}  # fmt: skip


HEADCOUNTS = {
    "v": 1, "kind": "headcount", "source": "city", "mine": MINE,
    "rows": {"minute": ["2026-12-06T08:00:00Z"] * 2, "area": ["", "A01"], "count": [5, 3]},
}  # fmt: skip


def test_an_alarm_change_and_statistics_and_head_count_batches_parse() -> None:
    change = parse_summary(alarm_topic(MINE), orjson.dumps(ALARM), 1 << 20)
    assert isinstance(change, ChangeEvent)
    assert (change.source, change.seq, change.kind, change.max_value) == ("city", 7, "alarm", 1.6)
    batch = parse_summary(statistics_topic(MINE), orjson.dumps(STATISTICS), 1 << 20)
    assert isinstance(batch, StatisticsBatch) and batch.rows.n == [60, 60]
    counts = parse_summary(statistics_topic(MINE), orjson.dumps(HEADCOUNTS), 1 << 20)
    assert isinstance(counts, HeadcountBatch) and counts.rows.count == [5, 3]


def test_what_cannot_be_stored_is_refused_with_its_reason() -> None:
    def reason(topic: str, body: object, limit: int = 1 << 20) -> QuarantineReason:
        parsed = parse_summary(topic, orjson.dumps(body), limit)
        assert isinstance(parsed, Rejection)
        return parsed.reason

    assert reason(alarm_topic(MINE), {**ALARM, "rule": None}) is QuarantineReason.SCHEMA_VIOLATION
    assert reason(alarm_topic(MINE), {**ALARM, "seq": 0}) is QuarantineReason.SCHEMA_VIOLATION
    assert reason(alarm_topic("141024010032"), ALARM) is QuarantineReason.TOPIC_MISMATCH
    assert reason(statistics_topic(MINE), ALARM) is QuarantineReason.SCHEMA_VIOLATION
    short = {**STATISTICS, "rows": {**STATISTICS["rows"], "n": [60]}}  # type: ignore[dict-item]
    assert reason(statistics_topic(MINE), short) is QuarantineReason.SCHEMA_VIOLATION
    assert reason(alarm_topic(MINE), ALARM, limit=10) is QuarantineReason.PAYLOAD_TOO_LARGE
    negative = {**HEADCOUNTS, "rows": {**HEADCOUNTS["rows"], "count": [5, -1]}}  # type: ignore[dict-item]
    assert reason(statistics_topic(MINE), negative) is QuarantineReason.SCHEMA_VIOLATION
    refused = parse_summary(alarm_topic(MINE), b"{not json", 1 << 20)
    assert isinstance(refused, Rejection)
