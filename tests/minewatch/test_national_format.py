"""The national TXT codec: exact bytes per file type, round trips, and a fuzzed parser."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minewatch.codes import AbnormalType, RelationKind, SystemCode, ValueType
from minewatch.national import (
    CHINA_TZ,
    RECORD_TYPES,
    CddyRecord,
    CdssRecord,
    FileRejection,
    FileType,
    FzdyRecord,
    FzssRecord,
    Header,
    JzssRecord,
    ParsedFile,
    Reason,
    Record,
    Relation,
    RycsRecord,
    RycyRecord,
    RyjzRecord,
    RyqjRecord,
    RyqyRecord,
    RyssRecord,
    RyxxRecord,
    RyxzRecord,
    ShaftFlag,
    StationPowerState,
    StationRunState,
    TjsjRecord,
    TrackPoint,
    YcbjRecord,
    encode_file,
    format_relations,
    parse_file,
    parse_relations,
)
from minewatch.national.fields import FieldSpec, field_specs
from minewatch.national.format import RESERVED

MINE = "620823009203"
CARD = MINE + "00017"
AREA = MINE + "0003"
STATION = AREA + "000101"
UPLOAD = dt.datetime(2026, 9, 23, 10, 13, 19, tzinfo=CHINA_TZ)
T1 = dt.datetime(2026, 9, 23, 10, 13, 15, tzinfo=CHINA_TZ)
T0 = dt.datetime(2026, 9, 23, 6, 58, 2, tzinfo=CHINA_TZ)
HEAD3 = "620823009203;某煤矿;2026-09-23 10:13:19~"
NAME = "620823009203_{}_20260923101319.txt"


def header(file_type: FileType, **extra: str) -> Header:
    return Header(file_type, MINE, "某煤矿", UPLOAD, **extra)


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=CHINA_TZ)


# -- exact bytes: one hand-written file per type ---------------------------------------------

CDDY_HEADER = header(
    FileType.CDDY,
    system_model="KJ90X",
    system_name="安全监控系统",
    manufacturer="重庆煤科院",
    certificate_date="2027-05-01",
)
METHANE = CddyRecord(
    point_code="0101A01",
    system_code=SystemCode.SAFETY_MONITORING,
    station_code="01",
    sensor_type="0001",
    value_type=ValueType.ANALOG,
    unit="%CH4",
    range_high=Decimal("4.00"),
    range_low=Decimal("0.00"),
    alarm_high=Decimal("0.80"),
    alarm_high_clear=Decimal("0.75"),
    alarm_low=None,
    alarm_low_clear=None,
    poweroff_high=Decimal("0.80"),
    restore_high=Decimal("0.75"),
    poweroff_low=None,
    restore_low=None,
    desc_on="",
    desc_off="",
    location="1301回风巷甲烷T2",
    x=Decimal("37512345.12"),
    y=Decimal("4012345.5"),
    z=Decimal("-312.4"),
    relations=(
        (
            Relation(RelationKind.CONTROL, "0101A05", "1#局扇"),
            Relation(RelationKind.POWER_OFF, "0101D02"),
        ),
        (Relation(RelationKind.POWER_OFF, "0101D03"),),
    ),
    data_time=T1,
)
FAN = dataclasses.replace(
    METHANE,
    point_code="0101D02",
    sensor_type="1011",
    value_type=ValueType.SWITCH,
    unit="",
    range_high=None,
    range_low=None,
    alarm_high=None,
    alarm_high_clear=None,
    poweroff_high=None,
    restore_high=None,
    desc_on="有电",
    desc_off="无电",
    location="1301回风巷馈电",
    x=None,
    y=None,
    z=None,
    relations=(),
)

LAYOUTS: list[tuple[Header, list[Record], str]] = [
    (
        CDDY_HEADER,
        [METHANE, FAN],
        "620823009203;某煤矿;KJ90X;安全监控系统;重庆煤科院;2027-05-01;2026-09-23 10:13:19~"
        "0101A01;01;01;0001;MN;%CH4;4.00;0.00;0.80;0.75;;;0.80;0.75;;;;;1301回风巷甲烷T2;"
        "37512345.12;4012345.5;-312.4;K-0101A05-1#局扇:D-0101D02◇D-0101D03;2026-09-23 10:13:15~"
        "0101D02;01;01;1011;KG;;;;;;;;;;;;有电;无电;1301回风巷馈电;;;;;2026-09-23 10:13:15~||",
    ),
    (
        header(FileType.CDSS),
        [
            CdssRecord("0101A01", "环境瓦斯", "1301回风巷", Decimal("0.52"), "%CH4", 0, T1),
            CdssRecord("0101D02", "馈电器", "1301回风巷馈电", Decimal(1), "", 3, T1),
            CdssRecord("0101A07", "一氧化碳", "主井", None, "ppm", 128, T1),
        ],
        HEAD3 + "0101A01;环境瓦斯;1301回风巷;0.52;%CH4;0;2026-09-23 10:13:15~"
        "0101D02;馈电器;1301回风巷馈电;1;;3;2026-09-23 10:13:15~"
        "0101A07;一氧化碳;主井;;ppm;128;2026-09-23 10:13:15~||",
    ),
    (
        header(FileType.YCBJ),
        [
            YcbjRecord(
                "0101A01",
                "环境瓦斯",
                "1301回风巷",
                "%CH4",
                AbnormalType.OVER_LIMIT,
                ts("2026-09-23 09:58:00"),
                None,
                Decimal("1.02"),
                ts("2026-09-23 10:01:30"),
                Decimal("0.81"),
                ts("2026-09-23 09:58:00"),
                Decimal("0.93"),
                "",
                "",
                None,
                "",
                T1,
            ),
            YcbjRecord(
                "0101A03",
                "环境瓦斯",
                "掘进工作面",
                "%CH4",
                AbnormalType.CALIBRATION,
                ts("2026-09-23 08:00:00"),
                ts("2026-09-23 08:05:00"),
                Decimal("2.00"),
                ts("2026-09-23 08:02:00"),
                Decimal("0.02"),
                ts("2026-09-23 08:00:00"),
                Decimal("1.1"),
                "标校",
                "已报备",
                ts("2026-09-23 08:30:00"),
                "张三",
                T1,
            ),
        ],
        HEAD3 + "0101A01;环境瓦斯;1301回风巷;%CH4;001;2026-09-23 09:58:00;;1.02;"
        "2026-09-23 10:01:30;0.81;2026-09-23 09:58:00;0.93;;;;;2026-09-23 10:13:15~"
        "0101A03;环境瓦斯;掘进工作面;%CH4;007;2026-09-23 08:00:00;2026-09-23 08:05:00;2.00;"
        "2026-09-23 08:02:00;0.02;2026-09-23 08:00:00;1.1;标校;已报备;2026-09-23 08:30:00;张三;"
        "2026-09-23 10:13:15~||",
    ),
    (
        header(FileType.TJSJ),
        [
            TjsjRecord(
                "0101A01",
                "环境瓦斯",
                "1301回风巷",
                "%CH4",
                ts("2026-09-23 10:05:00"),
                ts("2026-09-23 10:10:00"),
                Decimal("0.55"),
                ts("2026-09-23 10:07:10"),
                Decimal("0.40"),
                ts("2026-09-23 10:05:00"),
                Decimal("0.47"),
                T1,
            )
        ],
        HEAD3 + "0101A01;环境瓦斯;1301回风巷;%CH4;2026-09-23 10:05:00;2026-09-23 10:10:00;0.55;"
        "2026-09-23 10:07:10;0.40;2026-09-23 10:05:00;0.47;2026-09-23 10:13:15~||",
    ),
    (
        header(FileType.FZDY),
        [FzdyRecord("01", "中央变电所", Decimal("100.5"), None, Decimal("-300"), T1)],
        HEAD3 + "01;中央变电所;100.5;;-300;2026-09-23 10:13:15~||",
    ),
    (
        header(FileType.FZSS),
        [
            FzssRecord("01", StationRunState.OK, StationPowerState.AC, T1),
            FzssRecord("02", StationRunState.UNKNOWN, StationPowerState.FAULT, T1),
        ],
        HEAD3 + "01;0;1;2026-09-23 10:13:15~02;9;2;2026-09-23 10:13:15~||",
    ),
    (
        header(
            FileType.RYXX,
            rated_headcount="500",
            system_model="KJ128A",
            system_name="人员定位系统",
            manufacturer="某厂家",
            certificate_date="2027-01-01",
        ),
        [
            RyxxRecord(CARD, "李四", "采煤工", "班长", "综采一队", "1985-03-02", "", False, True),
            RyxxRecord(MINE + "00001", "王五", "未设置", "矿长", "矿领导", "", "", True, False),
        ],
        "620823009203;某煤矿;500;KJ128A;人员定位系统;某厂家;2027-01-01;2026-09-23 10:13:19~"
        "62082300920300017;李四;采煤工;班长;综采一队;1985-03-02;;0;1~"
        "62082300920300001;王五;未设置;矿长;矿领导;;;1;0~||",
    ),
    (
        header(FileType.RYQY),
        [
            RyqyRecord("重点区域", AREA, 25, "1301综采工作面"),
            RyqyRecord("井口区域", MINE + "0001", None, "主井口"),
        ],
        HEAD3 + "重点区域;6208230092030003;25;1301综采工作面~井口区域;6208230092030001;;主井口~||",
    ),
    (
        header(FileType.RYJZ),
        [RyjzRecord(STATION, "1301运顺口", Decimal("12.5"), Decimal("3"), None, "")],
        HEAD3 + "6208230092030003000101;1301运顺口;12.5;3;;~||",
    ),
    (
        header(FileType.JZSS),
        [JzssRecord(STATION, StationRunState.INTERRUPTED, StationPowerState.DC, T1)],
        HEAD3 + "6208230092030003000101;1;0;2026-09-23 10:13:15~||",
    ),
    (
        header(FileType.RYSS),
        [
            RyssRecord(
                CARD,
                "李四",
                ShaftFlag.IN,
                T0,
                None,
                AREA,
                ts("2026-09-23 07:20:00"),
                STATION,
                ts("2026-09-23 09:00:05"),
                "三八制",
                Decimal("-12.50"),
                "正常",
                False,
                True,
                (
                    TrackPoint(MINE + "0001000001", T0),
                    TrackPoint(STATION, ts("2026-09-23 09:00:05")),
                ),
            )
        ],
        HEAD3 + "62082300920300017;李四;1;2026-09-23 06:58:02;;6208230092030003;"
        "2026-09-23 07:20:00;6208230092030003000101;2026-09-23 09:00:05;三八制;-12.50;正常;0;1;"
        "6208230092030001000001&2026-09-23 06:58:02,6208230092030003000101&2026-09-23 09:00:05~||",
    ),
    (
        header(FileType.RYCS),
        [
            RycsRecord(
                CARD,
                "李四",
                T0,
                ts("2026-09-23 16:58:02"),
                None,
                AREA,
                ts("2026-09-23 07:20:00"),
                STATION,
                ts("2026-09-23 09:00:05"),
                T1,
            )
        ],
        HEAD3 + "62082300920300017;李四;2026-09-23 06:58:02;2026-09-23 16:58:02;;"
        "6208230092030003;2026-09-23 07:20:00;6208230092030003000101;2026-09-23 09:00:05;"
        "2026-09-23 10:13:15~||",
    ),
    (
        header(FileType.RYCY),
        [
            RycyRecord("区域超员", 25, 27, AREA, "1301综采工作面", T0, None, "李四,王五", T1),
            RycyRecord("矿井超员", 450, 452, "", "", T0, T1, "", T1),
        ],
        HEAD3 + "区域超员;25;27;6208230092030003;1301综采工作面;2026-09-23 06:58:02;;李四,王五;"
        "2026-09-23 10:13:15~矿井超员;450;452;;;2026-09-23 06:58:02;2026-09-23 10:13:15;;"
        "2026-09-23 10:13:15~||",
    ),
    (
        header(FileType.RYXZ),
        [RyxzRecord(CARD, "李四", T0, T1, T0, AREA, T0, STATION, T0, T1)],
        HEAD3 + "62082300920300017;李四;2026-09-23 06:58:02;2026-09-23 10:13:15;"
        "2026-09-23 06:58:02;6208230092030003;2026-09-23 06:58:02;6208230092030003000101;"
        "2026-09-23 06:58:02;2026-09-23 10:13:15~||",
    ),
    (
        header(FileType.RYQJ),
        [RyqjRecord(CARD, "李四", T1, None, T0, AREA, T0, STATION, T0, T1)],
        HEAD3 + "62082300920300017;李四;2026-09-23 10:13:15;;2026-09-23 06:58:02;"
        "6208230092030003;2026-09-23 06:58:02;6208230092030003000101;2026-09-23 06:58:02;"
        "2026-09-23 10:13:15~||",
    ),
]


def test_every_file_type_has_a_layout_case() -> None:
    assert {h.file_type for h, _, _ in LAYOUTS} == set(FileType)


@pytest.mark.parametrize(
    "head, records, expected", LAYOUTS, ids=[h.file_type for h, _, _ in LAYOUTS]
)
def test_encode_writes_the_exact_bytes_and_parse_reads_them_back(
    head: Header, records: list[Record], expected: str
) -> None:
    name, data = encode_file(head, records)
    assert name == NAME.format(head.file_type)
    assert data == expected.encode("utf-8")
    parsed = parse_file(name, data)
    assert isinstance(parsed, ParsedFile), parsed
    assert parsed.problems == ()
    assert parsed.header == head
    assert parsed.records == tuple(records)


def test_field_counts_match_the_domain_reference() -> None:
    counts = {t: len(field_specs(cls)) for t, cls in RECORD_TYPES.items()}
    assert counts == {
        FileType.CDDY: 24, FileType.CDSS: 7, FileType.YCBJ: 17, FileType.TJSJ: 12,
        FileType.FZDY: 6, FileType.FZSS: 4, FileType.RYXX: 9, FileType.RYQY: 4,
        FileType.RYJZ: 6, FileType.JZSS: 4, FileType.RYSS: 15, FileType.RYCS: 10,
        FileType.RYCY: 9, FileType.RYXZ: 10, FileType.RYQJ: 10,
    }  # fmt: skip


def test_an_empty_file_is_just_the_header() -> None:
    name, data = encode_file(header(FileType.CDSS), [])
    assert data == (HEAD3 + "||").encode()
    parsed = parse_file(name, data)
    assert isinstance(parsed, ParsedFile)
    assert parsed.records == () and parsed.record_count == 0


# -- tolerated variations ------------------------------------------------------------------

CDSS_NAME = NAME.format("CDSS")
CDSS_OK = "0101A01;环境瓦斯;1301回风巷;0.52;%CH4;0;2026-09-23 10:13:15~"


def cdss(body: str, head: str = HEAD3) -> ParsedFile | FileRejection:
    return parse_file(CDSS_NAME, (head + body).encode("utf-8"))


def test_a_bom_line_breaks_and_padding_are_tolerated() -> None:
    data = (
        "\ufeff"
        + HEAD3
        + "\r\n"
        + CDSS_OK
        + "\r\n"
        + " 0101A02 ; 风速 ;; 1.5 ;m/s;0;2026-09-23 10:13:15 ~\n||\r\n"
    )
    parsed = parse_file(CDSS_NAME, data.encode())
    assert isinstance(parsed, ParsedFile)
    assert parsed.problems == ()
    assert [r.point_code for r in parsed.records] == ["0101A01", "0101A02"]
    assert parsed.records[1] == CdssRecord("0101A02", "风速", "", Decimal("1.5"), "m/s", 0, T1)


def test_java_style_numbers_are_read_and_written_plainly() -> None:
    parsed = cdss("0101A01;环境瓦斯;;1.0E-4;%CH4;0;2026-09-23 10:13:15~||")
    assert isinstance(parsed, ParsedFile)
    record = parsed.records[0]
    assert isinstance(record, CdssRecord) and record.value == Decimal("0.0001")
    assert b";0.00010;" in encode_file(parsed.header, parsed.records)[1]


def test_times_are_china_time_whatever_zone_the_writer_used() -> None:
    utc = dt.datetime(2026, 9, 23, 2, 13, 15, tzinfo=dt.UTC)
    record = CdssRecord("0101A01", "", "", Decimal(0), "", 0, utc)
    _, data = encode_file(header(FileType.CDSS), [record])
    assert b";2026-09-23 10:13:15~" in data
    parsed = parse_file(CDSS_NAME, data)
    assert isinstance(parsed, ParsedFile)
    assert parsed.records[0].data_time == utc  # type: ignore[attr-defined]
    assert parsed.records[0].data_time.utcoffset() == dt.timedelta(hours=8)  # type: ignore[attr-defined]


def test_records_refuse_values_the_layout_cannot_carry() -> None:
    naive = dt.datetime(2026, 9, 23, 10, 13, 15)
    for bad in (
        lambda: CdssRecord("0101A01", "", "", None, "", 0, naive),  # naive time
        lambda: CdssRecord("0101A01", "a;b", "", None, "", 0, T1),  # separator in text
        lambda: CdssRecord("0101A01", "", "甲；乙", None, "", 0, T1),  # full-width separator
        lambda: CdssRecord("", "", "", None, "", 0, T1),  # missing point code
        lambda: CdssRecord("0101A01", "", "", Decimal("NaN"), "", 0, T1),
        lambda: CdssRecord("0101A01", "", "", None, "", -1, T1),
        lambda: RyqyRecord("重点区域", AREA[:-1], None, ""),  # area code of 15 digits
        lambda: Header(FileType.CDSS, MINE, "x", UPLOAD, system_model="KJ90X"),
    ):
        with pytest.raises(ValueError):
            bad()


def test_floats_given_to_a_record_become_decimals() -> None:
    record = CdssRecord("0101A01", "", "", 0.1, "", 0, T1)  # type: ignore[arg-type]
    assert record.value == Decimal("0.1")


# -- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, data, reason",
    [
        ("620823009203_CDSS_2026092310131.txt", HEAD3 + "||", Reason.BAD_FILE_NAME),
        ("620823009203_CDSS_20261323101319.txt", HEAD3 + "||", Reason.BAD_FILE_NAME),
        ("620823009203_cdss_20260923101319.txt", HEAD3 + "||", Reason.BAD_FILE_NAME),
        ("620823009203_RYYJCS_20260923101319.txt", HEAD3 + "||", Reason.UNKNOWN_FILE_TYPE),
        (CDSS_NAME, HEAD3 + CDSS_OK, Reason.INCOMPLETE),
        (CDSS_NAME, HEAD3 + CDSS_OK + "|", Reason.INCOMPLETE),
        (CDSS_NAME, "620823009204;某煤矿;2026-09-23 10:13:19~||", Reason.MINE_CODE_MISMATCH),
        (CDSS_NAME, "620823009203；某煤矿；2026-09-23 10:13:19~||", Reason.BAD_HEADER),
        (CDSS_NAME, "620823009203;某煤矿;2026/09/23 10:13:19~||", Reason.BAD_HEADER),
        (CDSS_NAME, "620823009203;某煤矿;x;2026-09-23 10:13:19~||", Reason.BAD_HEADER),
        (NAME.format("CDDY"), HEAD3 + "||", Reason.BAD_HEADER),  # CDDY needs the long header
    ],
)
def test_whole_file_refusals(name: str, data: str, reason: Reason) -> None:
    result = parse_file(name, data.encode())
    assert isinstance(result, FileRejection)
    assert result.reason == reason


def test_invalid_utf8_is_refused() -> None:
    result = parse_file(CDSS_NAME, HEAD3.encode() + b"\xff\xfe;~||")
    assert isinstance(result, FileRejection) and result.reason == Reason.INVALID_UTF8


@pytest.mark.parametrize(
    "record, reason",
    [
        ("0101A01;环境瓦斯;1301回风巷;0.52;0;2026-09-23 10:13:15", Reason.WRONG_FIELD_COUNT),
        (
            "0101A01；环境瓦斯；1301回风巷；0.52；%CH4；0；2026-09-23 10:13:15",
            Reason.FULLWIDTH_SEPARATOR,
        ),
        ("0101A01;环境瓦斯;回风；巷;0.52;%CH4;0;2026-09-23 10:13:15", Reason.FULLWIDTH_SEPARATOR),
        ("0101A01;环境|瓦斯;1301回风巷;0.52;%CH4;0;2026-09-23 10:13:15", Reason.RESERVED_CHARACTER),
        (";环境瓦斯;1301回风巷;0.52;%CH4;0;2026-09-23 10:13:15", Reason.MISSING_VALUE),
        ("0101A01;环境瓦斯;1301回风巷;abc;%CH4;0;2026-09-23 10:13:15", Reason.INVALID_NUMBER),
        ("0101A01;环境瓦斯;1301回风巷;1e999;%CH4;0;2026-09-23 10:13:15", Reason.INVALID_NUMBER),
        ("0101A01;环境瓦斯;1301回风巷;0.52;%CH4;-1;2026-09-23 10:13:15", Reason.INVALID_INTEGER),
        ("0101A01;环境瓦斯;1301回风巷;0.52;%CH4;0;2026-09-23 10:13:15.0", Reason.INVALID_TIME),
        ("0101A01;环境瓦斯;1301回风巷;0.52;%CH4;0;2026-02-30 10:13:15", Reason.INVALID_TIME),
        ("0101A01;环境瓦斯;1301回风巷;0.52;%CH4;0;", Reason.MISSING_VALUE),
    ],
)
def test_a_bad_record_is_reported_with_its_index_and_the_others_parse(
    record: str, reason: Reason
) -> None:
    parsed = cdss(CDSS_OK + record + "~" + CDSS_OK + "||")
    assert isinstance(parsed, ParsedFile)
    assert len(parsed.records) == 2 and parsed.record_count == 3
    (problem,) = parsed.problems
    assert (problem.index, problem.reason) == (1, reason)
    assert problem.text == record


@pytest.mark.parametrize(
    "file_type, body, reason",
    [
        ("RYQY", "重点区域;620823009203003;25;工作面", Reason.INVALID_CODE),  # area of 15
        ("RYQY", "重点区域;62082300920300031;25;工作面", Reason.INVALID_CODE),  # area of 17
        ("RYQY", "重点区域;62082300920300０3;25;工作面", Reason.INVALID_CODE),  # full-width digit
        ("RYJZ", "620823009203000300010;名称;;;;", Reason.INVALID_CODE),  # station of 21
        ("JZSS", "6208230092030003000101;3;0;2026-09-23 10:13:15", Reason.UNKNOWN_CODE),
        ("RYXX", "6208230092030001;张;;;;;;0;0", Reason.INVALID_CODE),  # card of 16
        ("RYXX", "62082300920300017;张;;;;;;是;0", Reason.INVALID_FLAG),
        ("RYSS", "62082300920300017;李四;1;;;6208230092030003;;6208230092030003000101;;;;;0;0;"
         "6208230092030003000101@2026-09-23 06:58:02", Reason.INVALID_TRACK),
        ("RYSS", "62082300920300017;李四;3;;;6208230092030003;;6208230092030003000101;;;;;0;0;",
         Reason.UNKNOWN_CODE),
    ],
)  # fmt: skip
def test_code_lengths_and_tables_are_checked(file_type: str, body: str, reason: Reason) -> None:
    head = HEAD3
    if file_type == "RYXX":
        head = "620823009203;某煤矿;500;KJ128A;人员定位系统;某厂家;2027-01-01;2026-09-23 10:13:19~"
    parsed = parse_file(NAME.format(file_type), (head + body + "~||").encode())
    assert isinstance(parsed, ParsedFile)
    assert [p.reason for p in parsed.problems] == [reason]


# -- relations ------------------------------------------------------------------------------


def test_relation_field_round_trips() -> None:
    text = "K-0101A05-1#局扇:D-0101D02◇D-0101D03◇B-0101A09-2#风门-北"
    groups = parse_relations(text)
    assert groups[0] == (
        Relation(RelationKind.CONTROL, "0101A05", "1#局扇"),
        Relation(RelationKind.POWER_OFF, "0101D02"),
    )
    assert groups[2] == (Relation(RelationKind.LOCK, "0101A09", "2#风门-北"),)
    assert format_relations(groups) == text
    assert parse_relations("") == ()


@pytest.mark.parametrize("text", ["X-0101A01", "D", "D-", "D-a::D-b", "D-a◇", "-a"])
def test_bad_relations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_relations(text)


# -- property tests -------------------------------------------------------------------------

_TEXT = st.text(
    st.characters(blacklist_characters="".join(RESERVED), blacklist_categories=("Cs",)),
    max_size=12,
).map(str.strip)
_TIMES = st.datetimes(
    min_value=dt.datetime(1990, 1, 1),
    max_value=dt.datetime(2060, 1, 1),
    timezones=st.sampled_from([CHINA_TZ, dt.UTC]),
).map(lambda t: t.replace(microsecond=0))
_NUMBERS = st.decimals(
    allow_nan=False, allow_infinity=False, min_value=-(10**12), max_value=10**12, places=3
)


def _digits(length: int) -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=length, max_size=length)


_RELATION = st.builds(
    Relation,
    st.sampled_from(RelationKind),
    _TEXT.filter(lambda s: s and not any(c in s for c in "-:◇")),
    _TEXT.filter(lambda s: not any(c in s for c in ":◇")),
)


def _value(spec: FieldSpec) -> st.SearchStrategy[object]:
    match spec.kind:
        case "text":
            return _TEXT.filter(bool) if spec.required else _TEXT
        case "digits":
            return _digits(spec.param) if spec.required else st.just("") | _digits(spec.param)
        case "code":
            return st.sampled_from(list(spec.param))
        case "flag":
            return st.booleans()
        case "number":
            return st.none() | _NUMBERS
        case "integer":
            values = st.integers(0, 10**18 - 1)
            return values if spec.required else st.none() | values
        case "time":
            return _TIMES if spec.required else st.none() | _TIMES
        case "relations":
            return st.lists(st.lists(_RELATION, min_size=1, max_size=3).map(tuple), max_size=3).map(
                tuple
            )
        case "track":
            points = st.builds(TrackPoint, _digits(22), _TIMES)
            return st.lists(points, max_size=3).map(tuple)
    raise AssertionError(spec.kind)


def records_of(cls: type[Record]) -> st.SearchStrategy[Record]:
    return st.builds(cls, **{name: _value(spec) for name, spec in field_specs(cls)})


def headers_of(file_type: FileType) -> st.SearchStrategy[Header]:
    long = file_type in (FileType.CDDY, FileType.RYXX)
    extra = _TEXT if long else st.just("")
    return st.builds(
        Header,
        st.just(file_type),
        _digits(12),
        _TEXT,
        _TIMES,
        extra,
        extra,
        extra,
        extra,
        _TEXT if file_type == FileType.RYXX else st.just(""),
    )


@st.composite
def files(draw: st.DrawFn) -> tuple[Header, list[Record]]:
    file_type = draw(st.sampled_from(FileType))
    head = draw(headers_of(file_type))
    return head, draw(st.lists(records_of(RECORD_TYPES[file_type]), max_size=4))


@settings(max_examples=150, derandomize=True, database=None, deadline=None)
@given(files())
def test_encode_then_parse_gives_equal_records(file: tuple[Header, list[Record]]) -> None:
    head, records = file
    name, data = encode_file(head, records)
    parsed = parse_file(name, data)
    assert isinstance(parsed, ParsedFile), parsed
    assert parsed.problems == ()
    assert parsed.header == head
    assert parsed.records == tuple(records)
    assert encode_file(parsed.header, parsed.records) == (name, data)  # byte-exact inverse


_NOISE = [";", "~", "|", "||", "；", "\n", " ", "-", ":", "◇", "&", ",", "0", "9", "a", "甲"]
_NOISE += ["\ufeff", "\x00", ".", "1e5", "2026-09-23 10:13:15", ""]
#: Valid files of every type (the hand-written layouts) as the seeds that mutations start from:
#: drawing fresh records for each of thousands of examples would make the test slow.
_SEEDS = [encode_file(head, records) for head, records, _ in LAYOUTS]


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid file with a few random edits (insert, delete, replace), or random bytes.

    The edits come from one drawn :class:`random.Random`, which keeps each example cheap.
    """
    rnd = draw(st.randoms(use_true_random=False))
    name, data = rnd.choice(_SEEDS)
    if rnd.random() < 0.1:
        return name, rnd.randbytes(rnd.randint(0, 200))
    text = data.decode()
    for _ in range(rnd.randint(1, 6)):
        at, span, noise = rnd.randint(0, len(text)), rnd.randint(1, 4), rnd.choice(_NOISE)
        match rnd.choice(["insert", "delete", "replace"]):
            case "insert":
                text = text[:at] + noise + text[at:]
            case "delete":
                text = text[:at] + text[at + span :]
            case _:
                text = text[:at] + noise + text[at + span :]
    raw = text.encode()
    if rnd.random() < 0.15:
        cut = rnd.randint(0, len(raw))
        raw = raw[:cut] + rnd.randbytes(rnd.randint(1, 3)) + raw[cut:]
    return name, raw


@settings(
    max_examples=2000,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(mutated())
def test_parse_never_raises_and_accounts_for_every_record(case: tuple[str, bytes]) -> None:
    name, data = case
    result = parse_file(name, data)
    assert isinstance(result, ParsedFile | FileRejection)
    if isinstance(result, FileRejection):
        assert isinstance(result.reason, Reason)
        return
    indices = [p.index for p in result.problems]
    assert indices == sorted(set(indices))
    assert all(0 <= i < result.record_count for i in indices)
    assert len(result.records) + len(result.problems) == result.record_count
    cls = RECORD_TYPES[result.file_type]
    assert all(type(r) is cls for r in result.records)
    # whatever was accepted can be written and reads back equal
    again = parse_file(*encode_file(result.header, result.records))
    assert isinstance(again, ParsedFile)
    assert again.records == result.records and again.problems == ()
