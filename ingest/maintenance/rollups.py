"""1-minute and 5-minute statistics per point (count, min, max, mean, last), recomputed from
the raw readings.

A window is always recomputed whole: its rollup rows are deleted and written again from the
readings in one transaction, so late and replayed readings leave exactly what the raw data
gives. Which windows, each round, per raw chunk of ``readings``:
- a *current* chunk (one that reaches into the recent window, ``lookback`` back from now):
  the recent window, from where the previous round's began. If PostgreSQL counted more
  inserts into the chunk (``n_tup_ins``) since the previous round than that window gained,
  readings arrived before it (a replay, a backlog drained after an outage): the rest of the
  chunk is recomputed too;
- a *closed* chunk: recomputed whole when its insert count moved since its last recompute,
  or it never was.
PostgreSQL publishes a session's insert counts when the session goes idle (at most once a
second), so a late reading can be found a round later than it arrived, never missed.
Windows are clamped to the raw chunks that still exist: the statistics of dropped raw data
are never erased.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import psycopg

log = logging.getLogger(__name__)

#: both bucket widths divide it, so a window aligned on it holds whole buckets of each
ALIGN = dt.timedelta(minutes=5)
_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

_CHUNKS_SQL = """
SELECT format('%I.%I', c.chunk_schema, c.chunk_name), c.range_start, c.range_end,
       coalesce(s.n_tup_ins, 0), r.inserted, r.window_lo, r.window_rows
FROM timescaledb_information.chunks c
LEFT JOIN pg_stat_user_tables s ON s.schemaname = c.chunk_schema AND s.relname = c.chunk_name
LEFT JOIN rollup_chunks r ON r.chunk = format('%I.%I', c.chunk_schema, c.chunk_name)
WHERE c.hypertable_schema = 'public' AND c.hypertable_name = 'readings'
ORDER BY c.range_start
"""

#: The statistics of [lo, hi) from the raw readings (1 minute) or from the 1-minute rows
#: (5 minutes); written where they differ from what is stored, and the stored rows the raw data
#: no longer gives are deleted: the window ends exactly as a delete and refill would leave it,
#: but an unchanged statistic keeps its number (``change_seq``, migration 0024), so the
#: statistics publisher sends up only what changed.
_FRESH_1M = """
SELECT time_bucket(INTERVAL '1 minute', time) AS bucket, point_id, count(*) AS n,
       min(value) AS min, max(value) AS max, avg(value) AS mean, last(value, time) AS last,
       max(time) AS last_time
FROM readings WHERE time >= %(lo)s AND time < %(hi)s
GROUP BY 1, 2
"""

_FRESH_5M = """
SELECT time_bucket(INTERVAL '5 minutes', bucket) AS bucket, point_id, sum(n)::int AS n,
       min(min) AS min, max(max) AS max, sum(mean * n) / sum(n) AS mean,
       last(last, last_time) AS last, max(last_time) AS last_time
FROM readings_1m WHERE bucket >= %(lo)s AND bucket < %(hi)s
GROUP BY 1, 2
"""

_WRITE = """
WITH fresh AS ({fresh}),
written AS (
    INSERT INTO {table} (bucket, point_id, n, min, max, mean, last, last_time)
    SELECT bucket, point_id, n, min, max, mean, last, last_time FROM fresh
    ON CONFLICT (point_id, bucket) DO UPDATE SET n = EXCLUDED.n, min = EXCLUDED.min,
        max = EXCLUDED.max, mean = EXCLUDED.mean, last = EXCLUDED.last,
        last_time = EXCLUDED.last_time
    WHERE ({table}.n, {table}.min, {table}.max, {table}.mean, {table}.last, {table}.last_time)
        IS DISTINCT FROM (EXCLUDED.n, EXCLUDED.min, EXCLUDED.max, EXCLUDED.mean, EXCLUDED.last,
                          EXCLUDED.last_time)
)
DELETE FROM {table} r WHERE r.bucket >= %(lo)s AND r.bucket < %(hi)s
    AND NOT EXISTS (SELECT 1 FROM fresh f WHERE f.point_id = r.point_id AND f.bucket = r.bucket)
"""
_WRITE_1M = _WRITE.format(fresh=_FRESH_1M, table="readings_1m")
_WRITE_5M = _WRITE.format(fresh=_FRESH_5M, table="readings_5m")

#: Held (per transaction) by every writer of the statistics, so that their numbers
#: (``change_seq``) are committed in order and a publisher that has read up to a number never
#: finds a smaller one committed later.
STATISTICS_LOCK = 0x6D77_5354  # "mwST"

_RECORD_SQL = """
INSERT INTO rollup_chunks (chunk, range_start, range_end, inserted, window_lo, window_rows)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (chunk) DO UPDATE SET inserted = EXCLUDED.inserted,
    window_lo = EXCLUDED.window_lo, window_rows = EXCLUDED.window_rows, rolled_at = now()
"""


@dataclass(frozen=True, slots=True)
class RawChunk:
    name: str
    start: dt.datetime
    end: dt.datetime
    inserted: int  # n_tup_ins now
    rolled_inserted: int | None  # n_tup_ins at the last round that looked at it
    window_lo: dt.datetime | None
    window_rows: int | None

    @property
    def changed(self) -> bool:
        return self.rolled_inserted is None or self.rolled_inserted != self.inserted


def floor_aligned(t: dt.datetime) -> dt.datetime:
    return t - ((t - _EPOCH) % ALIGN)


def ceil_aligned(t: dt.datetime) -> dt.datetime:
    down = floor_aligned(t)
    return down if down == t else down + ALIGN


async def raw_chunks(conn: psycopg.AsyncConnection) -> list[RawChunk]:
    cur = await conn.execute(_CHUNKS_SQL)
    return [RawChunk(*row) for row in await cur.fetchall()]


async def recompute(
    conn: psycopg.AsyncConnection, lo: dt.datetime, hi: dt.datetime
) -> tuple[dt.datetime, dt.datetime] | None:
    """Rewrite both rollups over [lo, hi) widened to whole 5-minute buckets and clamped to the
    raw data that still exists; returns the window rewritten (None: no raw data there).
    Runs in the caller's transaction."""
    chunks = await raw_chunks(conn)
    if not chunks:
        return None
    lo = max(floor_aligned(lo), ceil_aligned(chunks[0].start))
    hi = ceil_aligned(hi)
    if lo >= hi:
        return None
    window = {"lo": lo, "hi": hi}
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (STATISTICS_LOCK,))
    await conn.execute(_WRITE_1M, window)
    await conn.execute(_WRITE_5M, window)
    return lo, hi


async def _rows(conn: psycopg.AsyncConnection, lo: dt.datetime, hi: dt.datetime) -> int:
    cur = await conn.execute(
        "SELECT coalesce(sum(n), 0) FROM readings_1m WHERE bucket >= %s AND bucket < %s", (lo, hi)
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def _log(
    conn: psycopg.AsyncConnection, detail: str, lo: dt.datetime, hi: dt.datetime
) -> None:
    await conn.execute(
        "INSERT INTO maintenance_log (job, hypertable, detail, chunks, range_start, range_end)"
        " VALUES ('rollup', 'readings', %s, 1, %s, %s)",
        (detail, lo, hi),
    )
    log.info("rollups: %s [%s, %s)", detail, lo, hi)


async def recompute_chunk(conn: psycopg.AsyncConnection, chunk: RawChunk) -> None:
    """Recompute the whole range of a closed raw chunk and remember its insert count. Inserts
    into the chunk wait meanwhile (SHARE lock), so the count and the statistics agree."""
    async with conn.transaction():
        await conn.execute(f"LOCK TABLE {chunk.name} IN SHARE MODE")  # name from the catalogue
        await recompute(conn, chunk.start, chunk.end)
        await conn.execute(_RECORD_SQL, (chunk.name, chunk.start, chunk.end, chunk.inserted,
                                         None, None))  # fmt: skip
        await _log(conn, "closed chunk recomputed", chunk.start, chunk.end)


def _arrived_before_window(chunk: RawChunk, gained: int, lo: dt.datetime) -> bool:
    """Whether inserts into ``chunk`` since the last round may lie before the recent window:
    more inserts than the window gained, or nothing to compare with."""
    if chunk.rolled_inserted is None or chunk.window_lo is None or chunk.window_rows is None:
        return True
    if chunk.window_lo > lo or chunk.inserted < chunk.rolled_inserted:  # clock or stats reset
        return True
    return chunk.inserted - chunk.rolled_inserted > gained


async def _current_chunk(conn: psycopg.AsyncConnection, chunk: RawChunk, lo: dt.datetime) -> None:
    window_lo = max(lo, chunk.start)
    start = max(chunk.start, min(window_lo, chunk.window_lo or window_lo))
    async with conn.transaction():
        await recompute(conn, start, chunk.end)
        gained = await _rows(conn, start, chunk.end) - (chunk.window_rows or 0)
        if start > chunk.start and _arrived_before_window(chunk, gained, lo):
            await recompute(conn, chunk.start, start)
            await _log(conn, "current chunk recomputed before the recent window",
                       chunk.start, start)  # fmt: skip
        rows = await _rows(conn, window_lo, chunk.end)
        await conn.execute(_RECORD_SQL, (chunk.name, chunk.start, chunk.end, chunk.inserted,
                                         window_lo, rows))  # fmt: skip


async def rollup_round(
    conn: psycopg.AsyncConnection, now: dt.datetime, lookback: dt.timedelta
) -> int:
    """One round over every raw chunk; returns the number of chunks whose rollups were
    rewritten."""
    lo = floor_aligned(now - lookback)
    written = 0
    for chunk in await raw_chunks(conn):
        if chunk.end > lo:
            await _current_chunk(conn, chunk, lo)
            written += 1
        elif chunk.changed:
            await recompute_chunk(conn, chunk)
            written += 1
    return written
