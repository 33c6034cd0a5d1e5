"""The personnel alarm files of the simulator (RYCS 超时, RYCY 超员, RYXZ 限制区域, RYQJ 求救):
written from the personnel scenarios' labels, byte-exact, one open record when an alarm begins
and a closed one when it ends, and stored by a real gateway exactly as labelled."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import psycopg
import pytest

from minewatch.ingest.sources.national.adapter import NationalFileSource
from minewatch.ingest.sources.national.inbox import InboxConfig
from minewatch.national import (
    CHINA_TZ,
    FileType,
    ParsedFile,
    Record,
    RycsRecord,
    RycyRecord,
    RyqjRecord,
    RyxzRecord,
    encode_file,
    parse_file,
)
from minewatch.simulators.feeds import MineFeeds
from minewatch.simulators.national_files import (
    ALARM_FILES,
    ALARM_TYPES,
    INGESTED_TYPES,
    DropFolderOptions,
    NationalFileWriter,
    feeds_starting_at,
    to_time,
)
from minewatch.simulators.personnel import US
from minewatch.trace import FeedLabel
from tests.helpers import eventually, running_gateway, scalar
from tests.simulators.helpers import feed_day_config

pytestmark = pytest.mark.anyio

START = dt.datetime(2025, 1, 1, 8, tzinfo=CHINA_TZ)
HOURS = 11  # the overtime (10 h limit) of a day-shift worker ends before 19:00
_config = feed_day_config  # every personnel kind; leader_absent has no file type


def _alarm_labels(feeds: MineFeeds) -> list[FeedLabel]:
    return [g for g in feeds.labels if g.kind in ALARM_FILES]


def _grid(offset_s: float, every: int = 30) -> int:
    return math.ceil(offset_s / every) * every


def _read(folder: Path) -> dict[str, ParsedFile]:
    out = {}
    for path in sorted(folder.iterdir()):
        data = path.read_bytes()
        parsed = parse_file(path.name, data)
        assert isinstance(parsed, ParsedFile), parsed
        assert not parsed.problems, parsed.problems
        assert encode_file(parsed.header, parsed.records) == (path.name, data)
        out[path.name] = parsed
    return out


def _subject(record: Record, mine: str) -> tuple[str, str, dt.datetime, dt.datetime | None]:
    """(kind, subject, start, end) of a record, in the labels' terms."""
    if isinstance(record, RycyRecord):
        kind = "area_overcrowding" if record.area_code else "mine_overcrowding"
        return kind, record.area_code or mine, record.alarm_start, record.alarm_end
    if isinstance(record, RyqjRecord):
        return "sos", record.card_code, record.sos_start, record.sos_end
    assert isinstance(record, RycsRecord | RyxzRecord)
    kind = "overtime" if isinstance(record, RycsRecord) else "restricted_area"
    return kind, record.card_code, record.alarm_start, record.alarm_end


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> tuple[MineFeeds, dict[str, ParsedFile]]:
    """11 simulated hours of the positioning system alone, every file type."""
    folder = tmp_path_factory.mktemp("alarms")
    feeds = feeds_starting_at(_config(), START)
    writer = NationalFileWriter(folder, START, feeds=feeds,
                                options=DropFolderOptions(fsync=False))  # fmt: skip
    writer.run(HOURS * 3600)
    return feeds, _read(folder)


def test_every_personnel_kind_is_labelled_and_written(
    day: tuple[MineFeeds, dict[str, ParsedFile]],
) -> None:
    feeds, files = day
    kinds = sorted(g.kind for g in _alarm_labels(feeds))
    assert kinds == ["area_overcrowding", "mine_overcrowding", "overtime", "overtime",
                     "restricted_area", "sos"]  # fmt: skip
    assert {f.file_type for f in files.values()} >= ALARM_TYPES


def test_alarm_files_are_written_when_an_alarm_begins_and_when_it_ends(
    day: tuple[MineFeeds, dict[str, ParsedFile]],
) -> None:
    """On the 30 s grid: an open record at the first instant at or after the start, a closed
    one at the first instant at or after the end; no other alarm file."""
    feeds, files = day
    expected: set[tuple[str, dt.datetime]] = set()
    for g in _alarm_labels(feeds):
        for offset in (g.start_s, g.end_s):
            expected.add((ALARM_FILES[g.kind], START + dt.timedelta(seconds=_grid(offset))))
    written = {(f.file_type, f.header.upload_time) for f in files.values()
               if f.file_type in ALARM_TYPES}  # fmt: skip
    assert written == expected
    for parsed in files.values():
        if parsed.file_type in ALARM_TYPES:
            assert {r.data_time for r in parsed.records} == {parsed.header.upload_time}  # type: ignore[attr-defined]


def test_alarm_records_match_the_labels(day: tuple[MineFeeds, dict[str, ParsedFile]]) -> None:
    """Each labelled alarm: one open record (end empty) and one closed record with the
    label's subject, start and end; the person's card, name, 入井时刻 and place when it
    began; RYCY's quota, and a head-count above it that lists exactly its cards."""
    feeds, files = day
    mine = feeds.config.mine.code
    sim = feeds.personnel
    records = [r for f in files.values() if f.file_type in ALARM_TYPES for r in f.records]
    found = [(_subject(r, mine), r) for r in records]
    labels = _alarm_labels(feeds)
    closed = {(k, s, a, b) for (k, s, a, b), _ in found if b is not None}
    assert closed == {
        (g.kind, g.subject, to_time(START, g.start_s), to_time(START, g.end_s)) for g in labels
    }
    opened = sorted((k, s, a) for (k, s, a, b), _ in found if b is None)
    assert opened == sorted((g.kind, g.subject, to_time(START, g.start_s)) for g in labels)
    names = {p.card: p.name for p in sim.people}
    for (kind, subject, begin, _), r in found:
        g = next(x for x in labels if (x.kind, x.subject) == (kind, subject))
        if isinstance(r, RycyRecord):
            assert r.rated_headcount == g.limit
            assert r.headcount is not None and r.rated_headcount is not None
            assert r.headcount > r.rated_headcount
            cards = r.people.split(",")
            assert len(cards) == r.headcount == len(set(cards))
            # the head-count when written, inside the alarm (its last cycle once it ended)
            last = feeds.start_us + round(g.end_s * US) - sim.cycle_us
            places = sim.places(min(int(r.data_time.timestamp()) * US, last))
            if kind == "area_overcrowding":
                assert (r.alarm_type, r.area_name) == ("区域超员", "1201综采工作面")
                assert set(cards) == {c for c, p in places.items() if p.area == subject}
            else:
                assert (r.alarm_type, r.area_code, r.area_name) == ("矿井超员", "", "")
                assert set(cards) == set(places)
            continue
        assert isinstance(r, RycsRecord | RyxzRecord | RyqjRecord)
        place = sim.places(int(begin.timestamp()) * US)[subject]
        assert r.name == names[subject]
        assert int(r.in_time.timestamp()) * US == place.entered_at  # type: ignore[union-attr]
        assert (r.area_code, r.station_code) == (place.area, place.station)
        assert int(r.area_time.timestamp()) * US == place.area_since  # type: ignore[union-attr]
        if isinstance(r, RyxzRecord):
            assert r.area_code == g.related == sim.area_codes[2]  # the 限制区域
            assert r.area_time == begin


# -- end to end: the gateway stores exactly the labelled alarms -------------------------------


def _recent_0800() -> dt.datetime:
    """The latest 08:00 China time whose following 11 hours are over."""
    now = dt.datetime.now(CHINA_TZ)
    start = now.replace(hour=8, minute=0, second=0, microsecond=0)
    while start + dt.timedelta(hours=HOURS, minutes=1) > now:
        start -= dt.timedelta(days=1)
    return start


async def test_the_gateway_stores_exactly_the_labelled_personnel_alarms(
    database_url: str, mqtt_url: str, unique_id: str, tmp_path: Path
) -> None:
    start = _recent_0800()
    feeds = feeds_starting_at(_config(), start)
    mine = feeds.config.mine.code
    types = ALARM_TYPES | {FileType.RYXX, FileType.RYQY, FileType.RYJZ}
    assert types <= INGESTED_TYPES
    writer = NationalFileWriter(tmp_path / "inbox", start, feeds=feeds,
                                options=DropFolderOptions(types=types, fsync=False))  # fmt: skip
    report = writer.run(HOURS * 3600)
    assert set(report.counts) == types

    def all_done() -> bool:
        # a day-old file is flagged late_upload in a reason file beside it (issue 15)
        done = {p.name for p in (tmp_path / "done").glob("*.txt")}
        return {n for n in done if not n.endswith(".reason.txt")} == set(report.files)

    def closed() -> object:
        sql = ("SELECT count(*) FROM reported_personnel_alarms "
               "WHERE mine_code = %s AND ended_at IS NOT NULL")  # fmt: skip
        return scalar(database_url, sql, (mine,))

    source = NationalFileSource(tmp_path, InboxConfig(max_age_s=2 * 86_400), scan_s=0.1)
    async with running_gateway(database_url, mqtt_url, f"gw-{unique_id}", [source]):
        await eventually(all_done)
        await eventually(lambda: closed() == len(_alarm_labels(feeds)))
    assert list((tmp_path / "rejected").iterdir()) == []
    assert scalar(database_url, "SELECT count(*) FROM quarantine") == 0
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT rule, subject_kind, subject_code, started_at, ended_at, file_type "
            "FROM reported_personnel_alarms WHERE mine_code = %s",
            (mine,),
        ).fetchall()
    expected = [
        (g.kind, g.subject_kind, g.subject, to_time(start, g.start_s), to_time(start, g.end_s),
         str(ALARM_FILES[g.kind]))
        for g in _alarm_labels(feeds)
    ]  # fmt: skip
    assert sorted(rows) == sorted(expected)
