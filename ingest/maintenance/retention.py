"""Retention as data: each hypertable's ``keep`` in ``retention_policies``, applied with
TimescaleDB's ``drop_chunks``.

Raw readings are special: the statistics of a chunk are recomputed from it, under a lock that
holds inserts off, in the same transaction that drops it, so the 1- and 5-minute statistics
always hold what the raw data gave, whenever it arrived.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import psycopg

from minewatch.ingest.maintenance.rollups import raw_chunks, recompute

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Policy:
    hypertable: str
    keep: dt.timedelta
    floor: dt.timedelta

    @property
    def below_floor(self) -> bool:
        return self.keep < self.floor


@dataclass(frozen=True, slots=True)
class Dropped:
    hypertable: str
    chunks: int
    older_than: dt.datetime


async def policies(conn: psycopg.AsyncConnection) -> list[Policy]:
    """The policies of the hypertables that exist (a table not yet created is skipped)."""
    cur = await conn.execute(
        "SELECT p.hypertable, p.keep, p.floor FROM retention_policies p"
        " JOIN timescaledb_information.hypertables h"
        "   ON h.hypertable_schema = 'public' AND h.hypertable_name = p.hypertable"
        " ORDER BY p.hypertable"
    )
    return [Policy(*row) for row in await cur.fetchall()]


async def _log(conn: psycopg.AsyncConnection, dropped: Dropped, detail: str) -> None:
    await conn.execute(
        "INSERT INTO maintenance_log (job, hypertable, detail, chunks, range_end)"
        " VALUES ('retention', %s, %s, %s, %s)",
        (dropped.hypertable, detail, dropped.chunks, dropped.older_than),
    )


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
