"""The report tables of the national files (migration 0008): their SQL, named parameters only.

Every row is an upsert on the table's key that replaces a stored row only with the version of a
later file, greater ``(data_time, source_file)`` (FZSS: ``(time, source_file)``), so the same
file stored twice is a no-op and an older file delivered late does not undo a newer one.
"""

from __future__ import annotations

import psycopg

from minewatch.ingest.sources.national.reports import REPORT_KEYS, NationalReport, ReportTable

#: The columns each report row carries (the keys of the rows of
#: :func:`.reports.national_report`), besides ``first_file``.
_COLUMNS: dict[ReportTable, tuple[str, ...]] = {
    ReportTable.SUBSTATION_STATUS: (
        "time", "mine_code", "substation_code", "run_state", "power_state", "source_file",
    ),
    ReportTable.POINT_ALARMS: (
        "mine_code", "point_code", "abnormal_type", "started_at", "ended_at", "sensor_type_name",
        "location", "unit", "max_value", "max_at", "min_value", "min_at", "mean_value", "cause",
        "measures", "entered_at", "entered_by", "data_time", "source_file",
    ),
    ReportTable.STATISTICS: (
        "mine_code", "point_code", "started_at", "ended_at", "sensor_type_name", "location",
        "unit", "max_value", "max_at", "min_value", "min_at", "mean_value", "data_time",
        "source_file",
    ),
    ReportTable.PERSONNEL_ALARMS: (
        "mine_code", "rule", "subject_kind", "subject_code", "started_at", "ended_at",
        "file_type", "card_code", "name", "mine_entered_at", "area_code", "area_name",
        "area_since", "station_code", "station_since", "alarm_type", "rated_headcount",
        "headcount", "people", "data_time", "source_file",
    ),
}  # fmt: skip
#: The column that orders versions of a row, with source_file (FZSS: its 数据时间 is the key).
_VERSION_TIME = {ReportTable.SUBSTATION_STATUS: "time"}


def _upsert(table: ReportTable) -> str:
    """The statement storing one row of ``table`` (built from the constants above only)."""
    columns = _COLUMNS[table]
    key = REPORT_KEYS[table]
    version = _VERSION_TIME.get(table, "data_time")
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in key)
    return (
        f"INSERT INTO {table} AS t ({', '.join(columns)}, first_file) "
        f"VALUES ({', '.join(f'%({c})s' for c in columns)}, %(source_file)s) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates} "
        f"WHERE (EXCLUDED.{version}, EXCLUDED.source_file) > (t.{version}, t.source_file)"
    )


UPSERTS: dict[ReportTable, str] = {table: _upsert(table) for table in ReportTable}


async def write_report(cur: psycopg.AsyncCursor, report: NationalReport) -> None:
    """Store the rows of one report (in the caller's transaction)."""
    if report.rows:
        await cur.executemany(UPSERTS[report.table], [dict(row) for row in report.rows])
