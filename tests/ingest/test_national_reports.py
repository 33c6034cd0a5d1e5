"""FZSS, YCBJ, TJSJ, RYCS, RYCY, RYXZ and RYQJ files: from the drop folder, through a real
gateway, into the report tables of a real TimescaleDB (migration 0008)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import shutil
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minewatch.codes import AbnormalType
from minewatch.ingest.sources.national.adapter import NationalFileSource, file_messages
from minewatch.ingest.sources.national.inbox import (
    Accept,
    AcceptedFile,
    Inbox,
    InboxConfig,
    judge,
)
from minewatch.ingest.sources.national.report_repository import UPSERTS
from minewatch.ingest.sources.national.reports import (
    REPORT_KEYS,
    REPORT_TABLES,
    NationalReport,
    ReportTable,
    national_report,
)
from minewatch.national import (
    CHINA_TZ,
    RECORD_TYPES,
    FileType,
    FzssRecord,
    Header,
    JzssRecord,
    ParsedFile,
    Record,
    RycsRecord,
    RycyRecord,
    RyqjRecord,
    RyxzRecord,
    StationPowerState,
    StationRunState,
    TjsjRecord,
    YcbjRecord,
    encode_file,
    parse_file,
)
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.national_files import (
    DropFolderOptions,
    NationalFileWriter,
    mine_starting_at,
)
from tests.helpers import eventually, running_gateway, scalar
from tests.minewatch.test_national_format import headers_of, records_of

MINE = "620823009203"
CARD = MINE + "00017"
AREA = MINE + "0003"
STATION = AREA + "000101"
#: Whole seconds in China time, a few minutes ago: the inbox refuses stale and future files.
NOW = dt.datetime.now(CHINA_TZ).replace(microsecond=0)
T0 = NOW - dt.timedelta(minutes=30)


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def file_of(file_type: FileType, upload: dt.datetime, *records: Record) -> tuple[str, bytes]:
    return encode_file(Header(file_type, MINE, "某煤矿", upload), records)


def parsed_of(file_type: FileType, upload: dt.datetime, *records: Record) -> ParsedFile:
    parsed = parse_file(*file_of(file_type, upload, *records))
    assert isinstance(parsed, ParsedFile)
    return parsed


FZSS = (
    FzssRecord("01", StationRunState.OK, StationPowerState.AC, at(1)),
    FzssRecord("02", StationRunState.INTERRUPTED, StationPowerState.UNKNOWN, at(1)),
)
YCBJ_OPEN = YcbjRecord(
    "0101A01", "环境瓦斯", "1301回风巷", "%CH4", AbnormalType.OVER_LIMIT, at(2), None,
    Decimal("1.02"), at(3), Decimal("0.85"), at(2), Decimal("0.93"), "", "", None, "", at(4),
)  # fmt: skip
YCBJ_CLOSED = YcbjRecord(
    "0101A01", "环境瓦斯", "1301回风巷", "%CH4", AbnormalType.OVER_LIMIT, at(2), at(6),
    Decimal("1.20"), at(5), Decimal("0.80"), at(6), Decimal("0.99"), "局扇停风", "恢复通风",
    at(7), "张三", at(8),
)  # fmt: skip
TJSJ = TjsjRecord(
    "0101A01", "环境瓦斯", "1301回风巷", "%CH4", at(0), at(5), Decimal("0.50"), at(1),
    Decimal("0.30"), at(4), Decimal("0.412"), at(5),
)  # fmt: skip
RYCS = RycsRecord(CARD, "李四", at(-600), at(0), None, AREA, at(-30), STATION, at(-20), at(1))
RYCY_MINE = RycyRecord("矿井超员", 450, 452, "", "", at(3), at(9), "", at(10))
RYCY_AREA = RycyRecord("区域超员", 25, 27, AREA, "1201综采工作面", at(4), None, CARD, at(10))
RYXZ = RyxzRecord(CARD, "李四", at(5), at(6), at(-600), AREA, at(5), STATION, at(5), at(7))
JZSS = JzssRecord(STATION, StationRunState.OK, StationPowerState.DC, at(1))
RYQJ = RyqjRecord(CARD, "李四", at(8), None, at(-600), AREA, at(-30), STATION, at(-20), at(9))


# -- pure: what each file type becomes -------------------------------------------------------


def test_each_report_type_becomes_rows_of_its_table_naming_the_file() -> None:
    fzss = national_report(parsed_of(FileType.FZSS, at(1), *FZSS))
    assert fzss.table == ReportTable.SUBSTATION_STATUS
    assert fzss.source_file == f"{MINE}_FZSS_{at(1):%Y%m%d%H%M%S}.txt"
    assert [dict(r) for r in fzss.rows] == [
        {"time": at(1), "substation_code": "01", "run_state": 0, "power_state": 1,
         "mine_code": MINE, "source_file": fzss.source_file},
        {"time": at(1), "substation_code": "02", "run_state": 1, "power_state": 9,
         "mine_code": MINE, "source_file": fzss.source_file},
    ]  # fmt: skip

    (ycbj,) = national_report(parsed_of(FileType.YCBJ, at(9), YCBJ_CLOSED)).rows
    assert (ycbj["abnormal_type"], ycbj["started_at"], ycbj["ended_at"]) == ("001", at(2), at(6))
    assert (ycbj["cause"], ycbj["measures"], ycbj["entered_at"], ycbj["entered_by"]) == (
        "局扇停风", "恢复通风", at(7), "张三",
    )  # fmt: skip
    assert ycbj["max_value"] == Decimal("1.20") and str(ycbj["max_value"]) == "1.20"

    (rycy_mine, rycy_area) = national_report(
        parsed_of(FileType.RYCY, at(11), RYCY_MINE, RYCY_AREA)
    ).rows
    assert (rycy_mine["rule"], rycy_mine["subject_kind"], rycy_mine["subject_code"]) == (
        "mine_overcrowding", "mine", MINE,
    )  # fmt: skip
    assert rycy_mine["area_code"] is None and rycy_mine["card_code"] is None
    assert (rycy_area["rule"], rycy_area["subject_kind"], rycy_area["subject_code"]) == (
        "area_overcrowding", "area", AREA,
    )  # fmt: skip

    rules = {
        t: national_report(parsed_of(t, at(11), r)).rows[0]["rule"]
        for t, r in ((FileType.RYCS, RYCS), (FileType.RYXZ, RYXZ), (FileType.RYQJ, RYQJ))
    }
    assert rules == {FileType.RYCS: "overtime", FileType.RYXZ: "restricted_area",
                     FileType.RYQJ: "sos"}  # fmt: skip


def test_a_key_repeated_within_a_file_keeps_the_last_record() -> None:
    report = national_report(parsed_of(FileType.YCBJ, at(9), YCBJ_OPEN, YCBJ_CLOSED))
    (row,) = report.rows
    assert row["ended_at"] == at(6) and row["cause"] == "局扇停风"


def test_other_types_are_not_reports() -> None:
    with pytest.raises(ValueError, match="not stored as a report"):
        national_report(parsed_of(FileType.JZSS, at(1)))


SAMPLES: dict[FileType, Record] = {
    FileType.FZSS: FZSS[0], FileType.YCBJ: YCBJ_OPEN, FileType.TJSJ: TJSJ, FileType.RYCS: RYCS,
    FileType.RYCY: RYCY_MINE, FileType.RYXZ: RYXZ, FileType.RYQJ: RYQJ,
}  # fmt: skip


def test_each_upsert_stores_exactly_the_columns_of_its_rows() -> None:
    assert set(SAMPLES) == set(REPORT_TABLES)
    for file_type, record in SAMPLES.items():
        (row,) = national_report(parsed_of(file_type, at(11), record)).rows
        upsert = UPSERTS[REPORT_TABLES[file_type]]
        assert set(re.findall(r"%\((\w+)\)s", upsert)) == set(row), file_type
        assert set(REPORT_KEYS[REPORT_TABLES[file_type]]) <= set(row)


# -- fuzzed: every file of every type is accounted for ---------------------------------------


@st.composite
def any_file(draw: st.DrawFn) -> ParsedFile:
    file_type = draw(st.sampled_from(FileType))
    head = draw(headers_of(file_type))
    records = draw(st.lists(records_of(RECORD_TYPES[file_type]), max_size=4))
    parsed = parse_file(*encode_file(head, records))
    assert isinstance(parsed, ParsedFile)
    return parsed


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(any_file())
def test_every_accepted_file_becomes_messages_without_raising(parsed: ParsedFile) -> None:
    accepted = AcceptedFile(Path(str(parsed.name)), parsed, "0" * 64)
    messages = file_messages(accepted)
    reports = [m for m in messages if isinstance(m, NationalReport)]
    if parsed.file_type in REPORT_TABLES and parsed.records:
        (report,) = reports
        keys = REPORT_KEYS[report.table]
        # one row per distinct key: each record is in it, or replaced by a later one
        distinct = {tuple(row[k] for k in keys) for row in report.rows}
        assert len(distinct) == len(report.rows) <= len(parsed.records)
        assert all(row["source_file"] == str(parsed.name) for row in report.rows)
        assert all(row["mine_code"] == parsed.mine_code for row in report.rows)
    else:
        assert reports == []
    if not parsed.records and (parsed.file_type in REPORT_TABLES or parsed.file_type == "CDSS"):
        assert messages == []  # nothing to store: the file moves to done/ at once


# -- malformed variants of each new type: refused with the reason ----------------------------

_HEAD = f"{MINE};某煤矿;{{upload}}~"
_T = "{t}"
MALFORMED = {
    FileType.FZSS: ("01;7;1;{t}", "unknown_code"),  # 运行状态 7 is not in 表B.8
    FileType.YCBJ: ("0101A01;环境瓦斯;x;%CH4;999;{t};;;;;;;;;;;{t}", "unknown_code"),
    FileType.TJSJ: ("0101A01;环境瓦斯;x;%CH4;{t};;;;;;;{t}", "missing_value"),  # 结束时间
    FileType.RYCS: (f"{CARD[:-1]};李四;;{_T};;{AREA};;{STATION};;{_T}", "invalid_code"),
    FileType.RYCY: ("区域超员;x;3;;;{t};;;{t}", "invalid_integer"),
    FileType.RYXZ: (f"{CARD};李四;{_T};;;{AREA};;{STATION}1;;{_T}", "invalid_code"),
    FileType.RYQJ: (f"{CARD};李四;2026-13-01 00:00:00;;;{AREA};;{STATION};;{_T}", "invalid_time"),
}


def malformed_file(file_type: FileType, upload: dt.datetime) -> tuple[str, bytes]:
    body, _ = MALFORMED[file_type]
    stamp = f"{upload:%Y-%m-%d %H:%M:%S}"
    text = _HEAD.format(upload=stamp) + body.format(t=stamp) + "~||"
    return f"{MINE}_{file_type}_{upload:%Y%m%d%H%M%S}.txt", text.encode()


@pytest.mark.parametrize("file_type", list(MALFORMED))
def test_a_malformed_record_of_each_new_type_is_listed_with_its_reason(
    tmp_path: Path, file_type: FileType
) -> None:
    inbox = Inbox(tmp_path, InboxConfig())
    name, data = malformed_file(file_type, at(20))
    (inbox.inbox / name).write_bytes(data)
    result = inbox.scan(NOW)
    assert result.rejected == []
    (accepted,) = result.accepted  # 1 bad record of 1: flagged, never refused for the share
    inbox.commit(accepted)
    reason = (inbox.done / f"{name}.reason.txt").read_text(encoding="utf-8")
    assert reason.startswith("reason: too_many_bad_records\n")
    assert f"record 0: {MALFORMED[file_type][1]}: " in reason
    assert (inbox.done / name).read_bytes() == data
    # after four good records the same bad record is tolerated (1 of 5) and listed
    good = SAMPLES[file_type]
    name, good_file = file_of(file_type, at(21), good, good, good, good)
    bad_record = data.decode().split("~")[1]
    mixed = good_file.decode().removesuffix("||") + bad_record + "~||"
    verdict = judge(name, mixed.encode(), 0.0, NOW, inbox, InboxConfig())
    assert isinstance(verdict, Accept)
    assert [(p.index, p.reason) for p in verdict.parsed.problems] == [(4, MALFORMED[file_type][1])]
    assert len(national_report(verdict.parsed)) == 1  # the four good ones share one key


# -- through a real gateway into a real database ---------------------------------------------

_TABLE_SQL = {
    "substation_status": "SELECT time, substation_code, run_state, power_state, source_file, "
    "first_file FROM substation_status ORDER BY substation_code",
    "reported_point_alarms": "SELECT point_code, abnormal_type, started_at, ended_at, max_value, "
    "max_at, min_value, mean_value, cause, measures, entered_at, entered_by, data_time, "
    "source_file, first_file FROM reported_point_alarms",
    "reported_statistics": "SELECT point_code, started_at, ended_at, max_value, max_at, "
    "min_value, min_at, mean_value, data_time, source_file FROM reported_statistics",
    "reported_personnel_alarms": "SELECT rule, subject_kind, subject_code, file_type, "
    "started_at, ended_at, card_code, area_code, station_code, alarm_type, rated_headcount, "
    "headcount, people, source_file FROM reported_personnel_alarms ORDER BY rule",
}


def snapshot(database_url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every report row with its xmin: a row updated in place gets a new one."""
    with psycopg.connect(database_url) as conn:
        return {
            table: conn.execute(sql.replace("SELECT ", "SELECT xmin::text, ", 1)).fetchall()  # type: ignore[arg-type]
            for table, sql in _TABLE_SQL.items()
        }


def rows(database_url: str, table: str) -> list[tuple[object, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(_TABLE_SQL[table]).fetchall()  # type: ignore[arg-type]


def put(folder: Path, name: str, data: bytes) -> str:
    (folder / name).write_bytes(data)
    return name


def done_names(root: Path) -> set[str]:
    return {p.name for p in (root / "done").glob("*.txt") if not p.name.endswith(".reason.txt")}


@pytest.mark.anyio
async def test_report_files_are_stored_exactly_then_moved_to_done_and_redelivery_is_a_no_op(
    database_url: str, mqtt_url: str, unique_id: str, tmp_path: Path
) -> None:
    root = tmp_path / "first"
    (root / "inbox").mkdir(parents=True)
    inbox = root / "inbox"
    files = {
        "fzss": file_of(FileType.FZSS, at(1), *FZSS),
        "ycbj_open": file_of(FileType.YCBJ, at(4), YCBJ_OPEN),
        "ycbj_closed": file_of(FileType.YCBJ, at(9), YCBJ_CLOSED),
        "tjsj": file_of(FileType.TJSJ, at(5), TJSJ),
        "rycs": file_of(FileType.RYCS, at(1), RYCS),
        "rycy": file_of(FileType.RYCY, at(10), RYCY_MINE, RYCY_AREA),
        "ryxz": file_of(FileType.RYXZ, at(7), RYXZ),
        "ryqj": file_of(FileType.RYQJ, at(9), RYQJ),
        # JZSS one minute apart: their sequence (the time in seconds) jumps by 60
        "jzss_1": file_of(FileType.JZSS, at(1), JZSS),
        "jzss_2": file_of(FileType.JZSS, at(2), dataclasses.replace(JZSS, data_time=at(2))),
    }
    for name, data in files.values():
        put(inbox, name, data)
    bad_name, bad = malformed_file(FileType.YCBJ, at(12))
    put(inbox, bad_name, bad)
    n = {k: v[0] for k, v in files.items()}
    source = NationalFileSource(root, InboxConfig(), scan_s=0.1)
    async with running_gateway(database_url, mqtt_url, f"gw-{unique_id}", [source]) as gateway:
        # the malformed file too: its one record is quarantined, never the file refused
        await eventually(lambda: done_names(root) == set(n.values()) | {bad_name})
        assert (root / "done" / bad_name).read_bytes() == bad
        assert scalar(database_url, "SELECT reason FROM quarantine") == "invalid_record"
        await eventually(lambda: scalar(database_url, "SELECT count(*) FROM "
                                        "personnel_station_status") == 2)  # fmt: skip
        assert gateway.feeds.writer.sequence_gaps == 0  # 60 s between files is no gap

    assert rows(database_url, "substation_status") == [
        (at(1), "01", 0, 1, n["fzss"], n["fzss"]),
        (at(1), "02", 1, 9, n["fzss"], n["fzss"]),
    ]
    # the closed version of the later file, first reported by the earlier one
    assert rows(database_url, "reported_point_alarms") == [(
        "0101A01", "001", at(2), at(6), Decimal("1.20"), at(5), Decimal("0.80"), Decimal("0.99"),
        "局扇停风", "恢复通风", at(7), "张三", at(8), n["ycbj_closed"], n["ycbj_open"],
    )]  # fmt: skip
    assert rows(database_url, "reported_statistics") == [(
        "0101A01", at(0), at(5), Decimal("0.50"), at(1), Decimal("0.30"), at(4),
        Decimal("0.412"), at(5), n["tjsj"],
    )]  # fmt: skip
    assert rows(database_url, "reported_personnel_alarms") == [
        ("area_overcrowding", "area", AREA, "RYCY", at(4), None, None, AREA, None, "区域超员",
         25, 27, CARD, n["rycy"]),
        ("mine_overcrowding", "mine", MINE, "RYCY", at(3), at(9), None, None, None, "矿井超员",
         450, 452, "", n["rycy"]),
        ("overtime", "person", CARD, "RYCS", at(0), None, CARD, AREA, STATION, None, None, None,
         None, n["rycs"]),
        ("restricted_area", "person", CARD, "RYXZ", at(5), at(6), CARD, AREA, STATION, None,
         None, None, None, n["ryxz"]),
        ("sos", "person", CARD, "RYQJ", at(8), None, CARD, AREA, STATION, None, None, None, None,
         n["ryqj"]),
    ]  # fmt: skip
    before = snapshot(database_url)

    # The same file dropped again is refused by the inbox, and nothing changes.
    root2 = tmp_path / "again"
    shutil.copytree(root, root2)
    put(root2 / "inbox", *files["tjsj"])
    # A restart that lost done/ (a crash between the commit and the move) reads every file
    # again, the older YCBJ file last: nothing changes, not a single row is rewritten.
    root3 = tmp_path / "reread"
    (root3 / "inbox").mkdir(parents=True)
    for key, (name, data) in files.items():
        if key != "ycbj_open":
            put(root3 / "inbox", name, data)
    sources = [NationalFileSource(r, InboxConfig(), scan_s=0.1) for r in (root2, root3)]
    async with running_gateway(database_url, mqtt_url, f"gw2-{unique_id}", sources) as gateway:
        await eventually(lambda: any((root2 / "rejected").glob(n["tjsj"] + "*.reason.txt")))
        await eventually(lambda: done_names(root3) == set(n.values()) - {n["ycbj_open"]})
        put(root3 / "inbox", *files["ycbj_open"])
        stored = gateway.reports.stored
        await eventually(lambda: n["ycbj_open"] in done_names(root3))
        assert gateway.reports.stored == stored + 1
    reason = next((root2 / "rejected").glob(n["tjsj"] + "*.reason.txt")).read_text()
    assert reason.startswith("reason: duplicate\n")
    assert snapshot(database_url) == before


@pytest.mark.anyio
async def test_a_file_the_database_refuses_is_quarantined_and_leaves_the_inbox(
    database_url: str, mqtt_url: str, unique_id: str, tmp_path: Path
) -> None:
    # PostgreSQL text cannot hold NUL, which the file layout does not forbid.
    record = dataclasses.replace(YCBJ_OPEN, cause="a\x00b")
    name, data = file_of(FileType.YCBJ, at(5), record)
    (tmp_path / "inbox").mkdir()
    put(tmp_path / "inbox", name, data)
    source = NationalFileSource(tmp_path, InboxConfig(), scan_s=0.1)
    async with running_gateway(database_url, mqtt_url, f"gw-{unique_id}", [source]) as gateway:
        await eventually(lambda: done_names(tmp_path) == {name})
        assert (gateway.reports.stored, gateway.reports.quarantined) == (0, 1)
    with psycopg.connect(database_url) as conn:
        quarantined = conn.execute("SELECT source, reason, payload FROM quarantine").fetchall()
        assert conn.execute("SELECT count(*) FROM reported_point_alarms").fetchone() == (0,)
    assert quarantined == [(f"{MINE}/files/{name.removesuffix('.txt')}", "database_rejected",
                            data)]  # fmt: skip


def test_an_empty_report_file_has_nothing_to_store(tmp_path: Path) -> None:
    name, data = file_of(FileType.FZSS, at(1))
    inbox = Inbox(tmp_path, InboxConfig())
    (inbox.inbox / name).write_bytes(data)
    (accepted,) = inbox.scan(NOW).accepted
    assert file_messages(accepted) == []  # the source moves it to done/ at once


@pytest.mark.anyio
async def test_the_simulators_fzss_and_ycbj_files_are_stored_as_written(
    database_url: str, mqtt_url: str, unique_id: str, tmp_path: Path
) -> None:
    """The simulator's own writer (substation states every upload, YCBJ when a labelled event
    begins and ends): every file reaches done/, every record its table, latest version."""
    start = (NOW - dt.timedelta(minutes=45)).replace(second=0)
    config = load_mine_config(example_mine_path("small"))
    types = frozenset({FileType.FZSS, FileType.YCBJ})
    writer = NationalFileWriter(
        tmp_path / "inbox", start, mine=mine_starting_at(config, start),
        options=DropFolderOptions(upload_s=60, types=types, fsync=False),
    )  # fmt: skip
    report = writer.run(40 * 60)
    assert report.counts[FileType.FZSS] == 40 and report.records[FileType.YCBJ] >= 1
    expected: dict[ReportTable, dict[tuple[object, ...], tuple[object, ...]]] = {}
    for name in sorted(report.files):  # the names' order is the upload order
        parsed = parse_file(name, (tmp_path / "inbox" / name).read_bytes())
        assert isinstance(parsed, ParsedFile)
        if not parsed.records:
            continue
        got = national_report(parsed)
        for row in got.rows:
            key = tuple(row[k] for k in REPORT_KEYS[got.table])
            expected.setdefault(got.table, {})[key] = (row.get("ended_at"), row["source_file"])
    source = NationalFileSource(tmp_path, InboxConfig(), scan_s=0.1)
    async with running_gateway(database_url, mqtt_url, f"gw-{unique_id}", [source]):
        await eventually(lambda: done_names(tmp_path) == set(report.files), limit_s=60)
    assert list((tmp_path / "rejected").iterdir()) == []
    with psycopg.connect(database_url) as conn:
        status = conn.execute(
            "SELECT mine_code, substation_code, time, NULL, source_file FROM substation_status"
        ).fetchall()
        alarms = conn.execute(
            "SELECT mine_code, point_code, abnormal_type, started_at, ended_at, source_file "
            "FROM reported_point_alarms"
        ).fetchall()
    fzss = expected[ReportTable.SUBSTATION_STATUS]
    assert len(fzss) == report.records[FileType.FZSS]
    assert {tuple(r[:3]): tuple(r[3:]) for r in status} == fzss and len(status) == len(fzss)
    ycbj = expected.get(ReportTable.POINT_ALARMS, {})
    assert {tuple(r[:4]): tuple(r[4:]) for r in alarms} == ycbj and len(alarms) == len(ycbj)
