"""The maintenance task: rollups, then retention, every ``interval_s``, with its metrics.

One task per database is enough; when several gateways run it, a transaction-level advisory
lock lets one round run at a time and the others skip theirs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time

import psycopg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from minewatch.ingest.maintenance.retention import retention_round
from minewatch.ingest.maintenance.rollups import rollup_round
from minewatch.retry import run_rounds, stop_if_cancelled
from minewatch.settings import RetentionSettings

log = logging.getLogger(__name__)

#: Any fixed number: one maintenance round at a time per database.
_MAINTENANCE_LOCK = 72_190_014


class MaintenanceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.rounds = Counter(
            "minewatch_maintenance_rounds_total", "Maintenance rounds run", ["outcome"],
            registry=r,
        )  # fmt: skip
        self.last_round = Gauge(
            "minewatch_maintenance_last_round_timestamp_seconds",
            "When the last maintenance round finished", registry=r,
        )  # fmt: skip
        self.duration = Histogram(
            "minewatch_maintenance_round_seconds", "Duration of a maintenance round", registry=r
        )
        self.chunks_dropped = Counter(
            "minewatch_retention_chunks_dropped_total", "Chunks dropped by retention",
            ["hypertable"], registry=r,
        )  # fmt: skip
        self.rows_deleted = Counter(
            "minewatch_retention_rows_deleted_total",
            "Rows deleted by retention from ordinary tables (the national files)", ["table"],
            registry=r,
        )  # fmt: skip
        self.below_floor = Gauge(
            "minewatch_retention_below_floor", "1 when a table's retention is below AQ 6201",
            ["hypertable"], registry=r,
        )  # fmt: skip
        self.rollup_windows = Counter(
            "minewatch_rollup_windows_total", "Rollup windows recomputed", registry=r
        )


class Maintenance:
    """Rollups and retention on ``database_url``; :meth:`run_once` for one round."""

    def __init__(
        self,
        database_url: str,
        settings: RetentionSettings,
        metrics: MaintenanceMetrics | None = None,
    ) -> None:
        self._url = database_url
        self.settings = settings
        self.metrics = metrics or MaintenanceMetrics()

    async def run(self) -> None:
        """Run a round every ``interval_s`` until cancelled. Transient database errors are
        retried with a backoff (run_rounds); any other error is logged and counted, and the
        rounds start again after ``interval_s``: maintenance never stops the gateway beside it."""
        while True:
            try:
                await run_rounds(
                    self._url, self.settings.interval_s, self._scheduled, "maintenance"
                )
            except Exception as error:
                stop_if_cancelled(error)
                log.exception(
                    "maintenance round failed; next try in %.0fs", self.settings.interval_s
                )
                await asyncio.sleep(self.settings.interval_s)

    async def run_once(self, now: dt.datetime | None = None) -> bool:
        """One round now; False when another process held the round."""
        async with await psycopg.AsyncConnection.connect(self._url) as conn:
            return await self._round(conn, now)

    async def _scheduled(self, conn: psycopg.AsyncConnection) -> None:
        await self._round(conn)

    async def _round(self, conn: psycopg.AsyncConnection, now: dt.datetime | None = None) -> bool:
        began = time.perf_counter()
        await conn.set_autocommit(True)
        cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (_MAINTENANCE_LOCK,))
        row = await cur.fetchone()
        if not (row and row[0]):
            self.metrics.rounds.labels("skipped").inc()
            return False
        try:
            now = now or dt.datetime.now(dt.UTC)
            lookback = dt.timedelta(seconds=self.settings.rollup_lookback_s)
            windows = await rollup_round(conn, now, lookback)
            self.metrics.rollup_windows.inc(windows)
            for dropped in await retention_round(conn, now):
                if dropped.rows is None:
                    self.metrics.chunks_dropped.labels(dropped.hypertable).inc(dropped.chunks)
                else:
                    self.metrics.rows_deleted.labels(dropped.hypertable).inc(dropped.rows)
            await self._floors(conn)
        except Exception:
            self.metrics.rounds.labels("failed").inc()
            raise
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_MAINTENANCE_LOCK,))
        self.metrics.rounds.labels("done").inc()
        self.metrics.last_round.set_to_current_time()
        self.metrics.duration.observe(time.perf_counter() - began)
        return True

    async def _floors(self, conn: psycopg.AsyncConnection) -> None:
        cur = await conn.execute("SELECT hypertable, keep < floor FROM retention_policies")
        for table, below in await cur.fetchall():
            self.metrics.below_floor.labels(table).set(1 if below else 0)
