"""The gateway task that stores each national report (:mod:`.report_repository` has the SQL),
and each file's copy for the levels above (:mod:`.copies`), and then acknowledges it (the file
moves to ``done/`` with its last part).

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

from minewatch.ingest.durable import DurableWriter
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.repository import write_rejections
from minewatch.ingest.sources.base import Delivery
from minewatch.ingest.sources.national.copies import FileCopy, keep_copy
from minewatch.ingest.sources.national.report_repository import write_report
from minewatch.ingest.sources.national.reports import NationalReport

log = logging.getLogger(__name__)


class ReportWriter(DurableWriter):
    """Stores reports one transaction each; owns its connection."""

    async def __aenter__(self) -> ReportWriter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._close()

    async def store(self, report: NationalReport | FileCopy) -> bool:
        """Make ``report`` (or a file's copy) durable; False if the database refused it for
        good (then it is in ``quarantine``, with the file's records re-encoded as the payload,
        or the copied file itself)."""

        async def attempt(conn: psycopg.AsyncConnection) -> None:
            async with conn.transaction(), conn.cursor() as cur:
                if isinstance(report, FileCopy):
                    await keep_copy(cur, report)
                else:
                    await write_report(cur, report)

        try:
            await self._retrying(attempt)
            return True
        except psycopg.Error as error:
            name = report.name if isinstance(report, FileCopy) else report.source_file
            log.error("%s refused by the database (%s); quarantined", name, error)
            raw = report.content if isinstance(report, FileCopy) else report.raw
            rejection = Rejection(
                report.source, QuarantineReason.DATABASE_REJECTED, str(error)[:2000], raw
            )

            async def keep(conn: psycopg.AsyncConnection) -> None:
                async with conn.transaction(), conn.cursor() as cur:
                    await write_rejections(cur, [rejection])

            await self._retrying(keep)
            return False


class ReportSink:
    """The gateway task for :class:`NationalReport` and :class:`FileCopy` deliveries: store,
    then acknowledge.

    The file source hands deliveries to :attr:`queue` (bounded: a slow database holds the
    inbox's scan, and the files wait in ``inbox/``).
    """

    def __init__(self, database_url: str, max_pending: int = 16) -> None:
        self.queue: asyncio.Queue[Delivery[NationalReport | FileCopy]] = asyncio.Queue(max_pending)
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
