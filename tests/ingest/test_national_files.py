"""The drop-folder inbox of national TXT files, on real files in a temporary folder."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from minewatch.codes import RelationKind, SystemCode, ValueType
from minewatch.ingest.sources.national.inbox import (
    Accept,
    Inbox,
    InboxConfig,
    InboxReason,
    Refuse,
    Wait,
    judge,
)
from minewatch.ingest.sources.national.safety import cdss_messages, definition_update
from minewatch.metadata import Relation as MetaRelation
from minewatch.national import (
    CHINA_TZ,
    CddyRecord,
    CdssRecord,
    FileType,
    FzdyRecord,
    Header,
    ParsedFile,
    Reason,
    Relation,
    encode_file,
    parse_file,
)
from minewatch.timeutil import datetime_to_us

MINE = "620823009203"
NOW = dt.datetime(2026, 9, 23, 10, 15, 0, tzinfo=CHINA_TZ)
CONFIG = InboxConfig(grace_period_s=600, max_age_s=3600, max_future_skew_s=300)


def cdss_file(
    upload: dt.datetime = NOW - dt.timedelta(minutes=2), values: tuple[str, ...] = ("0.52",)
) -> tuple[str, bytes]:
    records = [
        CdssRecord(
            f"0101A{i:02d}", "环境瓦斯", "回风巷", Decimal(v) if v else None, "%CH4", i, upload
        )
        for i, v in enumerate(values)
    ]
    return encode_file(Header(FileType.CDSS, MINE, "某煤矿", upload), records)


def drop(inbox: Inbox, name: str, data: bytes, age_s: float = 5.0) -> Path:
    path = inbox.inbox / name
    path.write_bytes(data)
    mtime = NOW.timestamp() - age_s
    os.utime(path, (mtime, mtime))
    return path


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def inbox(tmp_path: Path) -> Inbox:
    return Inbox(tmp_path, CONFIG)


def test_a_complete_file_is_accepted_then_moved_to_done_and_indexed(inbox: Inbox) -> None:
    name, data = cdss_file()
    drop(inbox, name, data)
    result = inbox.scan(NOW)
    assert result.rejected == [] and result.waiting == []
    (accepted,) = result.accepted
    assert accepted.parsed.file_type == FileType.CDSS
    assert (inbox.inbox / name).exists()  # stays until the data is durable
    assert inbox.scan(NOW).accepted == []  # taken: not offered twice
    target = inbox.commit(accepted)
    assert target == inbox.done / name and target.read_bytes() == data
    assert not (inbox.inbox / name).exists()
    assert (inbox.done / ".index").read_text() == f"{accepted.sha256} {name}\n"
    assert not (inbox.done / (name + ".reason.txt")).exists()


def test_an_incomplete_file_waits_for_the_grace_period_then_is_rejected(inbox: Inbox) -> None:
    name, data = cdss_file()
    drop(inbox, name, data[:-2], age_s=60)
    result = inbox.scan(NOW)
    assert result.waiting == [name] and result.accepted == [] and result.rejected == []
    drop(inbox, name, data[:-2], age_s=601)
    (rejected,) = inbox.scan(NOW).rejected
    assert rejected.reason == InboxReason.INCOMPLETE_TIMEOUT
    assert (inbox.rejected / name).read_bytes() == data[:-2]
    reason = (inbox.rejected / (name + ".reason.txt")).read_text()
    assert reason.startswith("reason: incomplete_timeout\n")


def test_a_file_completed_within_the_grace_period_is_taken(inbox: Inbox) -> None:
    name, data = cdss_file()
    drop(inbox, name, data[:-2], age_s=1)
    assert inbox.scan(NOW).waiting == [name]
    drop(inbox, name, data + b"\r\n", age_s=1)  # trailing line break after || is fine
    assert len(inbox.scan(NOW).accepted) == 1


def test_duplicates_by_content_and_by_name_are_rejected_even_after_a_restart(
    tmp_path: Path, inbox: Inbox
) -> None:
    name, data = cdss_file()
    drop(inbox, name, data)
    inbox.commit(inbox.scan(NOW).accepted[0])

    again = Inbox(tmp_path, CONFIG)  # a restart reads done/.index
    drop(again, name, data)
    (rejected,) = again.scan(NOW).rejected
    assert rejected.reason == InboxReason.DUPLICATE

    renamed = name.replace("CDSS_2026", "CDSS_2025")  # same bytes under another name
    drop(again, renamed, data)
    assert [r.reason for r in again.scan(NOW).rejected] == [InboxReason.DUPLICATE]

    _, other = cdss_file(values=("0.61",))  # same name, other content
    drop(again, name, other)
    (rejected,) = again.scan(NOW).rejected
    assert rejected.reason == InboxReason.DUPLICATE_NAME
    assert rejected.path == again.rejected / f"{name}.1"  # the first rejected copy is kept
    assert (again.rejected / f"{name}.1.reason.txt").exists()
    assert sorted(p.name for p in again.done.iterdir()) == [".index", name]


def test_two_identical_files_in_one_scan_are_taken_once(inbox: Inbox) -> None:
    name, data = cdss_file()
    drop(inbox, name, data)
    drop(inbox, name.replace("CDSS_2026", "CDSS_2025"), data)
    result = inbox.scan(NOW)
    assert len(result.accepted) == 1
    assert [r.reason for r in result.rejected] == [InboxReason.DUPLICATE]


def test_done_files_missing_from_the_index_are_indexed_on_start(tmp_path: Path) -> None:
    name, data = cdss_file()
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / name).write_bytes(data)  # a crash between the move and the append
    inbox = Inbox(tmp_path, CONFIG)
    assert name in (inbox.done / ".index").read_text()
    drop(inbox, name, data)
    assert [r.reason for r in inbox.scan(NOW).rejected] == [InboxReason.DUPLICATE]


@pytest.mark.parametrize(
    "upload, reason",
    [
        (NOW - dt.timedelta(hours=2), InboxReason.STALE),
        (NOW + dt.timedelta(minutes=10), InboxReason.FUTURE),
    ],
)
def test_stale_and_future_files_are_rejected(
    inbox: Inbox, upload: dt.datetime, reason: InboxReason
) -> None:
    drop(inbox, *cdss_file(upload))
    assert [r.reason for r in inbox.scan(NOW).rejected] == [reason]


def test_a_bad_name_waits_then_is_rejected(inbox: Inbox) -> None:
    _, data = cdss_file()
    drop(inbox, "upload.tmp", data, age_s=10)
    drop(inbox, ".hidden.txt", data, age_s=10_000)
    assert inbox.scan(NOW).waiting == ["upload.tmp"]
    drop(inbox, "upload.tmp", data, age_s=700)
    (rejected,) = inbox.scan(NOW).rejected
    assert rejected.reason == InboxReason.BAD_NAME_TIMEOUT
    assert (inbox.inbox / ".hidden.txt").exists()  # hidden files are not ours


def test_codec_refusals_are_rejected_with_the_codec_reason(inbox: Inbox) -> None:
    name, data = cdss_file()
    drop(inbox, name.replace(MINE, "620823009204"), data)
    (rejected,) = inbox.scan(NOW).rejected
    assert rejected.reason == Reason.MINE_CODE_MISMATCH


def test_bad_records_are_listed_and_too_many_only_flag_the_file(inbox: Inbox) -> None:
    good = "0101A01;环境瓦斯;回风巷;0.5;%CH4;0;2026-09-23 10:13:00~"
    bad = "0101A02;环境瓦斯;回风巷;x;%CH4;0;2026-09-23 10:13:00~"
    head = f"{MINE};某煤矿;2026-09-23 10:13:00~"
    few = f"{MINE}_CDSS_20260923101300.txt"
    many = f"{MINE}_CDSS_20260923101400.txt"
    drop(inbox, few, (head + good * 4 + bad + "||").encode())  # 1 of 5: 20 % is allowed
    drop(
        inbox,
        many,
        (head + good * 3 + bad + "||").encode().replace(b"10:13:00~0", b"10:14:00~0", 1),
    )
    result = inbox.scan(NOW)
    assert result.rejected == []
    first, second = result.accepted
    assert (first.path.name, second.path.name) == (few, many)
    inbox.commit(first)
    listed = (inbox.done / f"{few}.reason.txt").read_text()
    assert listed.startswith("reason: accepted_with_problems\n")
    assert "record 4: invalid_number: 测点值 'x' is not a number" in listed
    inbox.commit(second)  # 1 of 4: flagged, its three good records stored all the same
    flagged = (inbox.done / f"{many}.reason.txt").read_text()
    assert flagged.startswith("reason: too_many_bad_records\n")
    assert "record 3: invalid_number" in flagged


def test_files_are_taken_in_the_order_of_their_names_times(inbox: Inbox) -> None:
    for minutes in (1, 3, 2):
        drop(inbox, *cdss_file(NOW - dt.timedelta(minutes=minutes)))
    seqs = [a.parsed.name.seq for a in inbox.scan(NOW).accepted]
    assert seqs == [20260923101200, 20260923101300, 20260923101400]


def test_nothing_is_ever_deleted(inbox: Inbox, tmp_path: Path) -> None:
    name, data = cdss_file()
    files = [(name, data), (name, data), ("x.txt", b"junk"), (name.replace("10", "11", 1), b"")]
    contents = []
    for file_name, content in files:
        drop(inbox, file_name, content, age_s=900)
        contents.append(content)
        for accepted in inbox.scan(NOW + dt.timedelta(seconds=0)).accepted:
            inbox.commit(accepted)
    kept = [v for k, v in tree(tmp_path).items() if not k.endswith((".reason.txt", ".index"))]
    assert sorted(kept) == sorted(contents)


def test_judge_is_pure() -> None:
    class Nothing:
        def digest_of(self, name: str) -> str | None:
            return None

        def name_of(self, digest: str) -> str | None:
            return None

    name, data = cdss_file()
    assert isinstance(judge(name, data, 0.0, NOW, Nothing(), CONFIG), Accept)
    assert isinstance(judge(name, data[:-1], 0.0, NOW, Nothing(), CONFIG), Wait)
    small = InboxConfig(max_file_bytes=1024)
    verdict = judge(name, data + b" " * 2000, 0.0, NOW, Nothing(), small)
    assert isinstance(verdict, Refuse) and verdict.reason == InboxReason.TOO_LARGE


# -- conversions -----------------------------------------------------------------------------


def test_a_cdss_file_becomes_one_safety_message() -> None:
    upload = NOW - dt.timedelta(minutes=2)
    name, data = cdss_file(upload, values=("0.52", "", "1"))
    parsed = parse_file(name, data)
    assert isinstance(parsed, ParsedFile)
    (message,) = cdss_messages(parsed)
    assert (message.source, message.mine, message.substation) == (
        f"{MINE}/files/{MINE}_CDSS_20260923101300",  # each file its own source: see the docstring
        MINE,
        "files",
    )
    assert (message.boot, message.seq) == (0, 1)
    assert message.codes == ["0101A00", "0101A01", "0101A02"]
    assert message.time_us.tolist() == [datetime_to_us(upload)] * 3
    assert message.time_us[0] == datetime_to_us(dt.datetime(2026, 9, 23, 2, 13, tzinfo=dt.UTC))
    np.testing.assert_array_equal(message.value, [0.52, np.nan, 1.0])
    assert message.value_ok.tolist() == [True, False, True]
    assert message.status.tolist() == [0, 1, 2]
    assert message.raw_values == [0.52, "", 1.0]


def test_an_empty_cdss_file_gives_no_message() -> None:
    parsed = parse_file(*cdss_file(values=()))
    assert isinstance(parsed, ParsedFile) and cdss_messages(parsed) == []


def _cddy(*records: CddyRecord) -> ParsedFile:
    head = Header(
        FileType.CDDY, MINE, "某煤矿", NOW, "KJ90X", "安全监控系统", "某厂家", "2027-01-01"
    )
    parsed = parse_file(*encode_file(head, records))
    assert isinstance(parsed, ParsedFile)
    return parsed


METHANE = CddyRecord(
    "0101A01", SystemCode.SAFETY_MONITORING, "01", "0001", ValueType.ANALOG, "%CH4",
    Decimal("4"), Decimal("0"), Decimal("1.0"), Decimal("0.9"), None, None, Decimal("1.5"),
    Decimal("1.0"), None, None, "", "", "掘进工作面", Decimal("1"), Decimal("2"), None,
    ((Relation(RelationKind.CONTROL, "0101D05", "1#局扇"),
      Relation(RelationKind.POWER_OFF, "0101D02")),),
    NOW,
)  # fmt: skip


def test_cddy_and_fzdy_become_a_mine_definition() -> None:
    feed = dataclasses.replace(
        METHANE, point_code="0101D02", station_code="02", sensor_type="1011",
        value_type=ValueType.SWITCH, unit="", range_high=None, range_low=None, alarm_high=None,
        alarm_high_clear=None, poweroff_high=None, restore_high=None, desc_on="有电",
        desc_off="无电", relations=(),
    )  # fmt: skip
    fan = dataclasses.replace(feed, point_code="0101C03", sensor_type="1001", desc_on="开",
                              desc_off="停")  # fmt: skip
    unknown = dataclasses.replace(METHANE, point_code="0101A09", sensor_type="0099")
    contradiction = dataclasses.replace(METHANE, point_code="0101A08", value_type=ValueType.SWITCH)
    older = dataclasses.replace(METHANE, alarm_high=Decimal("2.0"))
    fzdy_head = Header(FileType.FZDY, MINE, "某煤矿", NOW)
    fzdy = parse_file(
        *encode_file(fzdy_head, [FzdyRecord("01", "中央变电所", None, None, None, NOW)])
    )
    assert isinstance(fzdy, ParsedFile)

    update = definition_update(_cddy(older, METHANE, feed, fan, unknown, contradiction), fzdy)

    definition = update.definition
    assert definition.mine.code == MINE and definition.mine.name == "某煤矿"
    assert [(s.code, s.location) for s in definition.substations] == [
        ("01", "中央变电所"),
        ("02", ""),
    ]
    assert [p.code for p in definition.points] == ["0101A01", "0101D02", "0101C03"]
    # a 局部通风机 alarms when stopped (开停报警): CDDY has no field, the code table says 0 = 停
    assert [p.alarm_state for p in definition.points] == [None, None, 0]
    methane = definition.points[0]
    assert (methane.alarm_high, methane.alarm_high_clear) == (1.0, 0.9)  # the last one wins
    assert (methane.poweroff_high, methane.restore_high) == (1.5, 1.0)
    assert (methane.range_low, methane.range_high) == (0.0, 4.0)
    assert (methane.x, methane.y, methane.z) == (1.0, 2.0, None)
    assert methane.relations == (
        MetaRelation(kind=RelationKind.CONTROL, target="0101D05", device="1#局扇"),
        MetaRelation(kind=RelationKind.POWER_OFF, target="0101D02"),
    )
    assert (definition.points[1].desc_on, definition.points[1].desc_off) == ("有电", "无电")
    assert sorted(p.code for p in update.problems) == ["0101A08", "0101A09"]


def test_a_threshold_inversion_is_reported_not_raised() -> None:
    inverted = dataclasses.replace(METHANE, alarm_high_clear=Decimal("1.2"))
    update = definition_update(_cddy(inverted))
    assert update.definition.points == ()
    (problem,) = update.problems
    assert problem.code == "0101A01" and "alarm_high_clear" in problem.detail
