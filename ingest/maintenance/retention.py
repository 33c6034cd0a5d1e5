"""Retention as data: each table's ``keep`` in ``retention_policies``, applied with
TimescaleDB's ``drop_chunks`` to a hypertable and by deleting rows (in batches) from an
ordinary table (a policy with a ``time_column``, migration 0039).

Raw readings are special: the statistics of a chunk are recomputed from it, under a lock that
holds inserts off, in the same transaction that drops it, so the 1- and 5-minute statistics
always hold what the raw data gave, whenever it arrived.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import psycopg
from psycopg import sql

from minewatch.ingest.maintenance.rollups import raw_chunks, recompute

log = logging.getLogger(__name__)


#: Rows deleted from an ordinary table in one transaction at most.
DELETE_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class Policy:
    """One row of ``retention_policies``. ``hypertable`` names the table (a hypertable, or an
    ordinary table when ``time_column`` is set); ``outbox``: rows whose ``seq`` a publisher of
    that outbox has not passed yet are kept whatever their age."""

    hypertable: str
    keep: dt.timedelta
    floor: dt.timedelta
    time_column: str | None = None
    outbox: str | None = None

    @property
    def below_floor(self) -> bool:
        return self.keep < self.floor


@dataclass(frozen=True, slots=True)
class Dropped:
    hypertable: str
    chunks: int
    older_than: dt.datetime
    rows: int | None = None  # rows deleted from an ordinary table; None: a hypertable


_POLICIES = """
SELECT p.hypertable, p.keep, p.floor, p.time_column, p.outbox FROM retention_policies p
WHERE CASE WHEN p.time_column IS NULL
           THEN EXISTS (SELECT FROM timescaledb_information.hypertables h
                        WHERE h.hypertable_schema = 'public' AND h.hypertable_name = p.hypertable)
           ELSE to_regclass(format('public.%I', p.hypertable)) IS NOT NULL END
ORDER BY p.hypertable
"""

#: The last number every publisher of an outbox has passed; 0 while none has run (a new
#: publisher of the national files starts at the first).
_SENT = "SELECT coalesce(min(position), 0) FROM outbox_positions WHERE starts_with(name, %s)"


async def policies(conn: psycopg.AsyncConnection) -> list[Policy]:
    """The policies of the tables that exist (a table not yet created is skipped)."""
    cur = await conn.execute(_POLICIES)
    return [Policy(*row) for row in await cur.fetchall()]


async def _log(conn: psycopg.AsyncConnection, dropped: Dropped, detail: str) -> None:
    await conn.execute(
        "INSERT INTO maintenance_log (job, hypertable, detail, chunks, rows_deleted, range_end)"
        " VALUES ('retention', %s, %s, %s, %s, %s)",
        (dropped.hypertable, detail, dropped.chunks, dropped.rows or 0, dropped.older_than),
    )


def _delete_statement(policy: Policy) -> sql.Composed:
    """One batch of the rows ``policy`` no longer keeps (names from ``retention_policies``,
    quoted as identifiers)."""
    assert policy.time_column is not None
    unsent = sql.SQL(" AND seq <= %(sent)s") if policy.outbox else sql.SQL("")
    return sql.SQL(
        "DELETE FROM {table} WHERE ctid = ANY(ARRAY("
        "SELECT ctid FROM {table} WHERE {time} < %(cutoff)s{unsent} LIMIT %(batch)s))"
    ).format(
        table=sql.Identifier(policy.hypertable),
        time=sql.Identifier(policy.time_column),
        unsent=unsent,
    )


async def _delete_rows(conn: psycopg.AsyncConnection, policy: Policy, cutoff: dt.datetime) -> int:
    """Delete the rows of an ordinary table older than ``cutoff``, DELETE_BATCH per
    transaction, each batch logged; never one an outbox publisher has not sent yet."""
    sent = None
    if policy.outbox is not None:
        cur = await conn.execute(_SENT, (policy.outbox + ":",))
        row = await cur.fetchone()
        sent = int(row[0]) if row else 0
    statement = _delete_statement(policy)
    params = {"cutoff": cutoff, "sent": sent, "batch": DELETE_BATCH}
    total = 0
    while True:
        async with conn.transaction():
            cur = await conn.execute(statement, params)
            deleted = cur.rowcount
            if deleted:
                dropped = Dropped(policy.hypertable, 0, cutoff, deleted)
                await _log(conn, dropped, f"deleted rows older than {policy.keep}")
        total += deleted
        if deleted < DELETE_BATCH:
            return total


async def _drop_raw(conn: psycopg.AsyncConnection, cutoff: dt.datetime) -> int:
    """Roll the raw chunks ending before ``cutoff`` up, then drop them (one transaction)."""
    doomed = [c for c in await raw_chunks(conn) if c.end <= cutoff]
    if not doomed:
        return 0
    for chunk in doomed:  # names from TimescaleDB's catalogue
        await conn.execute(f"LOCK TABLE {chunk.name} IN SHARE MODE")
    await recompute(conn, doomed[0].start, doomed[-1].end)
    cur = await conn.execute(
        "SELECT count(*) FROM drop_chunks('readings', older_than => %s)", (cutoff,)
    )
    row = await cur.fetchone()
    names = [c.name for c in doomed]
    await conn.execute("DELETE FROM rollup_chunks WHERE chunk = ANY(%s)", (names,))
    return int(row[0]) if row else 0


async def apply_policy(conn: psycopg.AsyncConnection, policy: Policy, now: dt.datetime) -> Dropped:
    """Drop what ``policy`` no longer keeps; logged in ``maintenance_log``."""
    cutoff = now - policy.keep
    if policy.below_floor:
        log.warning(
            "retention of %s (%s) is below the %s that AQ 6201 asks for",
            policy.hypertable, policy.keep, policy.floor,
        )  # fmt: skip
    if policy.time_column is not None:
        rows = await _delete_rows(conn, policy, cutoff)
        if rows:
            log.info("retention: deleted %d row(s) of %s older than %s",
                     rows, policy.hypertable, cutoff)  # fmt: skip
        return Dropped(policy.hypertable, 0, cutoff, rows)
    async with conn.transaction():
        if policy.hypertable == "readings":
            count = await _drop_raw(conn, cutoff)
        else:
            cur = await conn.execute(
                "SELECT count(*) FROM drop_chunks(%s::regclass, older_than => %s)",
                (policy.hypertable, cutoff),
            )
            row = await cur.fetchone()
            count = int(row[0]) if row else 0
        dropped = Dropped(policy.hypertable, count, cutoff)
        if count:
            await _log(conn, dropped, f"dropped chunks older than {policy.keep}")
    if count:
        log.info("retention: dropped %d chunk(s) of %s older than %s",
                 count, policy.hypertable, cutoff)  # fmt: skip
    return dropped


async def retention_round(conn: psycopg.AsyncConnection, now: dt.datetime) -> list[Dropped]:
    return [await apply_policy(conn, policy, now) for policy in await policies(conn)]
