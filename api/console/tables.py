"""A report as a table: its columns (Chinese and English headers, units), the rows the report
query returned, and its exports (CSV and XLSX with the jurisdiction and the period in the
sheet). The report pages and the report API render the same ``Table``."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Font

#: Times on pages and in exports: the mines' local time.
LOCAL = ZoneInfo("Asia/Shanghai")


def local_time(value: object) -> str:
    """A time as the mine's local time (UTC+8), to the second; other values unchanged."""
    if isinstance(value, dt.datetime):
        return value.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M:%S")
    return "" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    zh: str
    en: str
    unit: str = ""
    digits: int | None = None  # rounding of numbers on pages and in exports

    def header(self, lang: str) -> str:
        name = self.en if lang == "en" else self.zh
        return f"{name} ({self.unit})" if self.unit else name

    def cell(self, row: dict[str, object]) -> object:
        """The value as a sheet holds it: local time as text, numbers rounded."""
        value = row.get(self.key)
        if isinstance(value, dt.datetime):
            return local_time(value)
        if isinstance(value, float) and self.digits is not None:
            return round(value) if self.digits == 0 else round(value, self.digits)
        if isinstance(value, list | tuple):
            return ", ".join(str(v) for v in value)
        return value

    def text(self, row: dict[str, object]) -> str:
        value = self.cell(row)
        return "" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Table:
    name: str  # the report's path name, e.g. "alarms"
    title_zh: str
    title_en: str
    columns: tuple[Column, ...]
    rows: list[dict[str, object]]
    jurisdiction: str  # the caller's scope (or the mine asked about); "全部" for everything
    period: str  # e.g. "2026-03-01 00:00:00 至 2026-03-02 00:00:00 (UTC+8)"

    def title(self, lang: str) -> str:
        return self.title_en if lang == "en" else self.title_zh


def period_text(start: dt.datetime, end: dt.datetime) -> str:
    return f"{local_time(start)} 至 {local_time(end)} (UTC+8)"


def to_csv(table: Table) -> bytes:
    """UTF-8 with a byte-order mark (so that spreadsheet programs read the Chinese headers),
    the headers with units, one line per row."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([c.header("zh") for c in table.columns])
    for row in table.rows:
        writer.writerow([c.text(row) for c in table.columns])
    return ("\ufeff" + out.getvalue()).encode()


#: Rows above the table in a sheet: title, jurisdiction, period, when made, then a blank line.
XLSX_HEADER_ROW = 5


def to_xlsx(
    table: Table, now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
) -> bytes:
    """One sheet: the title, 管辖范围 (jurisdiction), 统计时段 (period) and 导出时间 above the
    table, whose header row (with units) is row ``XLSX_HEADER_ROW``."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = table.title_zh[:31]
    sheet.append([table.title_zh])
    sheet["A1"].font = Font(bold=True, size=14)
    sheet.append(["管辖范围", table.jurisdiction])
    sheet.append(["统计时段", table.period])
    sheet.append(["导出时间", local_time(now()) + " (UTC+8)"])
    sheet.append([c.header("zh") for c in table.columns])
    for cell in sheet[XLSX_HEADER_ROW]:
        cell.font = Font(bold=True)
    for row in table.rows:
        sheet.append([c.cell(row) for c in table.columns])
    for index, column in enumerate(table.columns, start=1):
        letter = sheet.cell(row=XLSX_HEADER_ROW, column=index).column_letter
        sheet.column_dimensions[letter].width = max(10, 2 * len(column.header("zh")) + 2)
    sheet.freeze_panes = sheet.cell(row=XLSX_HEADER_ROW + 1, column=1)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
