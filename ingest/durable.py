"""What every writer of the pipeline shares: one owned connection, retries of transient
errors, and the per-source ``(boot, seq)`` watermarks that make redelivery harmless.

The safety writer (ingest/writer.py) and the personnel/video writer (ingest/feeds/writer.py)
both derive from :class:`DurableWriter`; the watermark rules live here once, their SQL in
:mod:`.repository`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import psycopg

from minewatch.backoff import Backoff
from minewatch.ingest.quarantine import Rejection
from minewatch.ingest.repository import load_watermarks
from minewatch.ingest.sequence import UNKNOWN, SourceMark, Verdict, Watermark, first_mark
from minewatch.retry import is_transient

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class Pending:
    """What every write batch accumulates between two flushes, besides its data."""

    rejections: list[Rejection] = field(default_factory=list)
    watermarks: dict[str, SourceMark] = field(default_factory=dict)
    acks: list[Callable[[], None]] = field(default_factory=list)
    first_received_at: float | None = None

    def __bool__(self) -> bool:
        return bool(self.acks)

    def note_received(self, at: float) -> None:
        if self.first_received_at is None:
            self.first_received_at = at


class DurableWriter:
    """Owns one database connection and the committed watermarks of its sources."""

    def __init__(self, database_url: str, on_retry: Callable[[], None] = lambda: None) -> None:
        self._url = database_url
        self._on_retry = on_retry
        self._conn: psycopg.AsyncConnection | None = None
        self.watermarks: dict[str, SourceMark] = {}

    async def _connection(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = await psycopg.AsyncConnection.connect(self._url)
        return self._conn

    async def _load_watermarks(self, conn: psycopg.AsyncConnection, like: str = "%") -> None:
        self.watermarks = await load_watermarks(conn, like)

    async def _close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _retrying(self, attempt: Callable[[psycopg.AsyncConnection], Awaitable[T]]) -> T:
        """Run ``attempt`` until it succeeds; transient errors wait with backoff, permanent
        ones are raised (the caller sets the data aside)."""
        backoff = Backoff()
        while True:
            conn = None
            try:
                conn = await self._connection()
                return await attempt(conn)
            except Exception as error:
                if _being_cancelled():
                    # psycopg cleans up after a cancellation (it cancels the query, leaves
                    # pipeline mode) and that clean-up can raise (an AssertionError leaving the
                    # pipeline of an executemany), hiding the CancelledError. Caught by a
                    # caller's ``except Exception`` (a refused definition), the cancellation
                    # would be lost and the gateway would never stop.
                    raise asyncio.CancelledError() from error
                if not is_transient(error):
                    if conn is not None and not conn.closed:
                        await conn.rollback()
                    raise
                self._on_retry()
                delay = backoff.next_delay()
                log.warning("database write failed (%s); retrying in %.1fs", error, delay)
                if conn is not None:
                    await conn.close()
                await asyncio.sleep(delay)

    def is_new(
        self, pending: dict[str, SourceMark], source: str, mark: Watermark, quiet: bool = False
    ) -> int | Literal[Verdict.UNKNOWN] | None:
        """None if ``mark`` is a redelivery for ``source`` (stored, or earlier in this batch);
        :data:`UNKNOWN` if the source's mark cannot tell (a boot no longer remembered, or a
        hole no longer kept: the caller finds out whether it is stored; the mark is
        unchanged); else the number of messages found missing just before it (0: none; logged
        unless ``quiet``). Notes the new mark in ``pending``.
        Exact whatever the order of arrival (:mod:`.sequence`)."""
        current = pending.get(source) or self.watermarks.get(source)
        if current is None:
            pending[source] = first_mark(mark)
            return 0
        admitted = current.admit(mark)
        if admitted is None or admitted is UNKNOWN:
            return admitted
        pending[source], missing = admitted
        if missing and not quiet:
            log.warning("source %s: %d message(s) missing before seq %d", source, missing, mark[1])
        return missing


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
