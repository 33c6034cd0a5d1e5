"""The report tables' exports and the pages' small rules (pure functions, no browser)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import openpyxl

from minewatch.api.console.tables import XLSX_HEADER_ROW, Column, Table, to_csv, to_xlsx
from minewatch.api.routers.console_dispatch import curve_bucket_s, level_state
from minewatch.api.routers.console_regulator import is_silent

AT = dt.datetime(2026, 3, 1, 16, 30, tzinfo=dt.UTC)  # 2026-03-02 00:30 in UTC+8
TABLE = Table(
    "test", "测试报表", "Test report",
    (Column("at", "时间", "time"), Column("value", "最大值", "maximum", "%CH4", 2),
     Column("secs", "持续时长", "duration", "s", 0)),
    [{"at": AT, "value": 1.23456, "secs": 600.4}, {"at": None, "value": None, "secs": 0.0}],
    "141024", "2026-03-01 00:00:00 至 2026-03-02 00:00:00 (UTC+8)",
)  # fmt: skip


def test_csv_has_chinese_headers_with_units_and_local_times() -> None:
    text = to_csv(TABLE).decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows == [
        ["时间", "最大值 (%CH4)", "持续时长 (s)"],
        ["2026-03-02 00:30:00", "1.23", "600"],
        ["", "", "0"],
    ]


def test_xlsx_holds_title_jurisdiction_period_and_rows() -> None:
    made = dt.datetime(2026, 3, 3, 4, 0, tzinfo=dt.UTC)
    sheet = openpyxl.load_workbook(io.BytesIO(to_xlsx(TABLE, lambda: made))).active
    assert sheet is not None
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert values[0][0] == "测试报表"
    assert values[1][:2] == ["管辖范围", "141024"]
    assert values[2][:2] == ["统计时段", TABLE.period]
    assert values[3][:2] == ["导出时间", "2026-03-03 12:00:00 (UTC+8)"]
    assert values[XLSX_HEADER_ROW - 1] == ["时间", "最大值 (%CH4)", "持续时长 (s)"]
    assert values[XLSX_HEADER_ROW:] == [["2026-03-02 00:30:00", 1.23, 600], [None, None, 0]]


def test_a_point_state_follows_its_levels() -> None:
    levels = {"alarm_high": 1.0, "poweroff_high": 1.5}
    assert level_state({**levels, "value": None}) == "no_data"
    assert level_state({**levels, "value": 0.99}) == "normal"
    assert level_state({**levels, "value": 1.0}) == "alarm"
    assert level_state({**levels, "value": 1.5}) == "power_off"
    assert level_state({"alarm_high": None, "poweroff_high": None, "value": 9.0}) == "normal"


def test_a_curve_keeps_within_1500_buckets() -> None:
    assert curve_bucket_s(0.25) == 1
    assert curve_bucket_s(1) == 3
    assert curve_bucket_s(24) * 1500 >= 24 * 3600 > (curve_bucket_s(24) - 1) * 1500


def test_a_mine_is_silent_after_10_minutes_or_when_it_never_sent_data() -> None:
    assert is_silent(None, AT)
    assert not is_silent(AT - dt.timedelta(minutes=10), AT)
    assert is_silent(AT - dt.timedelta(minutes=10, seconds=1), AT)
