"""The report tables of the national files (migration 0008): their SQL, and the gateway task that
stores each report and then acknowledges it (the file moves to ``done/``).

One transaction per report (one file). A file read again after a crash (stored, not yet moved
to ``done/``) stores nothing new: every row is an upsert on the table's key that replaces a
stored row only with the version of a later file, greater ``(data_time, source_file)``, so the
same file is a no-op and an older file delivered late does not undo a newer one. Transient
database errors are retried with backoff; a permanent refusal puts the file's records into
``quarantine`` (``database_rejected``), so one bad file cannot stop the inbox.
"""

from __future__ import annotations

import asyncio
import logging

import psycopg
from minewatch.ingest.durable import DurableWriter, write_rejections
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.sources.base import Delivery
from minewatch.ingest.sources.national.reports import REPORT_KEYS, NationalReport, ReportTable

log = logging.getLogger(__name__)

#: The columns each report row carries (the keys of the rows of
#: :func:`ingest.sources.national_reports.national_report`), besides ``first_file``.
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


class ReportWriter(DurableWriter):
    """Stores reports one transaction each; owns its connection."""

    async def __aenter__(self) -> ReportWriter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._close()

    async def store(self, report: NationalReport) -> bool:
        """Make ``report`` durable; False if the database refused it for good (then it is in
        ``quarantine``, with the file's records re-encoded as the payload)."""

        async def attempt(conn: psycopg.AsyncConnection) -> None:
            async with conn.transaction(), conn.cursor() as cur:
                await write_report(cur, report)

        try:
            await self._retrying(attempt)
            return True
        except psycopg.Error as error:
            log.error("%s refused by the database (%s); quarantined", report.source_file, error)
            rejection = Rejection(
                report.source, QuarantineReason.DATABASE_REJECTED, str(error)[:2000], report.raw
            )

            async def keep(conn: psycopg.AsyncConnection) -> None:
                async with conn.transaction(), conn.cursor() as cur:
                    await write_rejections(cur, [rejection])

            await self._retrying(keep)
            return False


class ReportSink:
    """The gateway task for :class:`NationalReport` deliveries: store, then acknowledge.

    The file source hands deliveries to :attr:`queue` (bounded: a slow database holds the
    inbox's scan, and the files wait in ``inbox/``).
    """

    def __init__(self, database_url: str, max_pending: int = 16) -> None:
        self.queue: asyncio.Queue[Delivery[NationalReport]] = asyncio.Queue(max_pending)
        self._writer = ReportWriter(database_url)
        self.stored = 0  # reports stored (tests wait on it)
        self.quarantined = 0

    async def run(self) -> None:
        """Run until cancelled; a report being stored when cancelled is not acknowledged (its
        file stays in ``inbox/`` and is read again, harmlessly)."""
        async with self._writer:
            while True:
                delivery = await self.queue.get()
                if await self._writer.store(delivery.message):
                    self.stored += 1
                else:
                    self.quarantined += 1
                delivery.ack()
