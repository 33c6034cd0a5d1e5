"""RYSS/JZSS files as feed batches: their sequence is the upload time in seconds, so the feed
writer counts no gaps between them, and still drops a file delivered twice."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

import pytest

from minewatch.ingest.feeds.contract import is_time_sequenced
from minewatch.ingest.feeds.writer import FeedPending, FeedWriter
from minewatch.ingest.sequence import SourceMark
from minewatch.ingest.sources.national.personnel import jzss_batch, ryss_batch
from minewatch.national import (
    CHINA_TZ,
    FileType,
    Header,
    JzssRecord,
    ParsedFile,
    Record,
    RyssRecord,
    ShaftFlag,
    StationPowerState,
    StationRunState,
    encode_file,
    parse_file,
)

MINE = "620823009203"
CARD = MINE + "00017"
AREA = MINE + "0003"
STATION = AREA + "000101"
T0 = dt.datetime(2026, 9, 23, 10, 0, 0, tzinfo=CHINA_TZ)


def parsed(file_type: FileType, upload: dt.datetime, *records: Record) -> ParsedFile:
    result = parse_file(*encode_file(Header(file_type, MINE, "某煤矿", upload), records))
    assert isinstance(result, ParsedFile)
    return result


def jzss(minute: int) -> ParsedFile:
    at = T0 + dt.timedelta(minutes=minute)
    return parsed(
        FileType.JZSS, at, JzssRecord(STATION, StationRunState.OK, StationPowerState.AC, at)
    )


def ryss(minute: int) -> ParsedFile:
    at = T0 + dt.timedelta(minutes=minute)
    record = RyssRecord(
        CARD, "李四", ShaftFlag.IN, T0, None, AREA, T0, STATION, T0, "三八制", None, "正常",
        False, False, (),
    )  # fmt: skip
    return parsed(FileType.RYSS, at, record)


@pytest.fixture
def writer() -> FeedWriter:
    return FeedWriter("postgresql://nowhere.invalid/unused", 90.0)  # accepts() needs no server


def test_one_minute_files_are_no_sequence_gap(
    writer: FeedWriter, caplog: pytest.LogCaptureFixture
) -> None:
    pending = FeedPending()
    with caplog.at_level(logging.WARNING):
        for minute in (0, 1, 2, 7):  # even 5 minutes without a file: the format has no cadence
            assert writer.accepts(pending, jzss_batch(jzss(minute)))
            assert writer.accepts(pending, ryss_batch(ryss(minute)))
    assert writer.sequence_gaps == 0
    assert not [r for r in caplog.records if "missing" in r.getMessage()]
    last = int((T0 + dt.timedelta(minutes=7)).timestamp())  # the upload time in seconds
    assert pending.watermarks[f"{MINE}/personnel/national-jzss"].top == (0, last)


def test_a_file_delivered_again_or_older_than_the_last_is_still_a_duplicate(
    writer: FeedWriter,
) -> None:
    writer.watermarks = {f"{MINE}/personnel/national-ryss": SourceMark(0, ryss_batch(ryss(5)).seq)}
    pending = FeedPending()
    assert not writer.accepts(pending, ryss_batch(ryss(5)))  # committed before a crash
    assert not writer.accepts(pending, ryss_batch(ryss(4)))
    assert writer.accepts(pending, ryss_batch(ryss(6)))
    assert not writer.accepts(pending, ryss_batch(ryss(6)))  # twice in one write batch
    assert (writer.duplicates, writer.sequence_gaps) == (3, 0)


def test_a_counted_sequence_still_reports_its_gaps(writer: FeedWriter) -> None:
    batch = jzss_batch(jzss(0))
    mqtt = dataclasses.replace(batch, source=f"{MINE}/personnel/rydw", boot=1, seq=10)
    pending = FeedPending()
    assert writer.accepts(pending, mqtt)
    assert writer.accepts(pending, dataclasses.replace(mqtt, seq=13))
    assert writer.sequence_gaps == 2


def test_only_the_national_file_sources_are_time_sequenced() -> None:
    assert is_time_sequenced(jzss_batch(jzss(0)).source)
    assert is_time_sequenced(ryss_batch(ryss(0)).source)
    assert not is_time_sequenced(f"{MINE}/personnel/rydw")
    assert not is_time_sequenced(f"{MINE}/video/national")
