"""The SQL every writer of the pipeline shares: the per-source ``(boot, seq)`` marks
(:mod:`.sequence`), the sequence gaps and the quarantine. Named parameters only; the readings'
binary COPY is :mod:`.pgcopy`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import orjson
import psycopg

from minewatch.batch import ReadingBatch
from minewatch.ingest.contract import SafetyMessage
from minewatch.ingest.pgcopy import (
    Float8Array,
    Int2Array,
    Int4Array,
    Int8Array,
    register_array_dumpers,
)
from minewatch.ingest.quarantine import Rejection
from minewatch.ingest.sequence import SourceMark
from minewatch.timeutil import us_to_datetime


@dataclass(frozen=True, slots=True)
class SequenceGap:
    """Sequence numbers of a source that never arrived (``first_seq``..``last_seq``)."""

    source: str
    boot: int
    first_seq: int
    last_seq: int
    next_time_us: int | None  # event time of the message that came after the gap


# The JSON columns are read as text and parsed with orjson (psycopg's jsonb loader is the
# standard library's json, several times slower).
_COLUMNS = "source, boot, seq, missing::text, earlier::text, forgotten, trimmed_boot, trimmed_seq"
_SELECT_WATERMARKS = f"SELECT {_COLUMNS} FROM source_watermarks WHERE source LIKE %(like)s"
_LOCK_WATERMARKS = (
    f"SELECT {_COLUMNS} FROM source_watermarks WHERE source = ANY(%(sources)s) FOR UPDATE"
)
# The writer owns its sources' marks and writes each whole; it never moves the newest
# (boot, seq) back (a hole filled or an earlier boot's tail keeps it). Every source of a write
# batch in one statement (a write batch holds each source once): one row per source through
# ``executemany`` was 20 % of the samples in the gateway's ``BatchWriter.flush`` in the city
# soak, whose write batches hold a hundred sources of a few readings each (issue 14).
_UPSERT_WATERMARKS = (
    "INSERT INTO source_watermarks "
    "(source, boot, seq, missing, earlier, forgotten, trimmed_boot, trimmed_seq) "
    "SELECT * FROM unnest(%(sources)s::text[], %(boots)s::int8[], %(seqs)s::int8[], "
    "%(missing)s::text[]::jsonb[], %(earlier)s::text[]::jsonb[], %(forgotten)s::int8[], "
    "%(trimmed_boots)s::int8[], %(trimmed_seqs)s::int8[]) "
    "ON CONFLICT (source) DO UPDATE SET boot = EXCLUDED.boot, seq = EXCLUDED.seq, "
    "missing = EXCLUDED.missing, earlier = EXCLUDED.earlier, forgotten = EXCLUDED.forgotten, "
    "trimmed_boot = EXCLUDED.trimmed_boot, trimmed_seq = EXCLUDED.trimmed_seq, "
    "updated_at = now() WHERE (EXCLUDED.boot, EXCLUDED.seq) >= "
    "(source_watermarks.boot, source_watermarks.seq)"
)


def _marks(rows: list[tuple[object, ...]]) -> dict[str, SourceMark]:
    marks = {}
    for source, boot, seq, missing, earlier, forgotten, trimmed_boot, trimmed_seq in rows:
        assert isinstance(missing, str) and isinstance(earlier, str)
        marks[str(source)] = SourceMark.from_row(
            int(boot), int(seq), orjson.loads(missing), orjson.loads(earlier),  # type: ignore[call-overload]
            int(forgotten), (int(trimmed_boot), int(trimmed_seq)),  # type: ignore[call-overload]
        )  # fmt: skip
    return marks


_INSERT_QUARANTINE = (
    "INSERT INTO quarantine (source, reason, detail, payload) "
    "VALUES (%(source)s, %(reason)s, %(detail)s, %(payload)s)"
)


async def load_watermarks(conn: psycopg.AsyncConnection, like: str = "%") -> dict[str, SourceMark]:
    """The committed marks of the sources whose name is ``LIKE`` the pattern."""
    cur = await conn.execute(_SELECT_WATERMARKS, {"like": like})
    return _marks(await cur.fetchall())


async def write_watermarks(cur: psycopg.AsyncCursor, marks: dict[str, SourceMark]) -> None:
    """Store each source's mark (its newest (boot, seq) never moves back)."""
    if marks:
        values = marks.values()
        await cur.execute(_UPSERT_WATERMARKS, {
            "sources": list(marks), "boots": [m.boot for m in values],
            "seqs": [m.seq for m in values], "forgotten": [m.forgotten for m in values],
            "missing": [_json_pairs(m.missing) for m in values],
            "earlier": [_json_pairs(m.earlier) for m in values],
            "trimmed_boots": [m.trimmed[0] for m in values],
            "trimmed_seqs": [m.trimmed[1] for m in values],
        })  # fmt: skip


def _json_pairs(pairs: tuple[tuple[int, int], ...]) -> str:
    """``((boot, seq), ...)`` as the JSON the mark's row holds: ``[[boot, seq], ...]``."""
    return orjson.dumps(pairs).decode() if pairs else "[]"


async def write_rejections(cur: psycopg.AsyncCursor, rejections: list[Rejection]) -> None:
    if rejections:
        await cur.executemany(
            _INSERT_QUARANTINE,
            [
                {"source": r.source, "reason": r.reason.value, "detail": r.detail,
                 "payload": r.payload}
                for r in rejections
            ],
        )  # fmt: skip


async def committed_before(cur: psycopg.AsyncCursor, marks: dict[str, SourceMark]) -> bool:
    """Whether an earlier attempt of this very write committed after all.

    A connection lost during COMMIT leaves the outcome unknown, and the retry must not store the
    batch twice. The batch's marks commit together with its data, and each differs from the
    committed one (its source delivered something new: a higher seq, a hole filled, an earlier
    boot's tail), so if the database already holds one of them, the earlier attempt went
    through. The rows are locked, so no other writer can move them while this transaction
    decides.
    """
    if not marks:
        return False
    await cur.execute(_LOCK_WATERMARKS, {"sources": list(marks)})
    stored = _marks(await cur.fetchall())
    return any(stored.get(source) == mark for source, mark in marks.items())


# Which of some messages have a reading stored: (message index, mine, point code, time) per
# reading; a message its source's mark cannot tell about (ingest/sequence.py: UNKNOWN).
_STORED_MESSAGES = (
    "SELECT DISTINCT d.i FROM unnest(%(i)s::int4[], %(mine)s::text[], %(code)s::text[], "
    "%(t)s::int8[]) AS d(i, mine, code, t) "
    "JOIN points p ON p.mine_code = d.mine AND p.code = d.code "
    "JOIN readings r ON r.point_id = p.id "
    "AND r.time = timestamptz 'epoch' + d.t * interval '1 microsecond'"
)


async def stored_messages(
    conn: psycopg.AsyncConnection, messages: list[SafetyMessage]
) -> list[int]:
    """The indexes (in ``messages``) of the messages at least one of whose readings (point,
    event time) is stored: a redelivery of what was stored before."""
    index, mines, codes, times = [], [], [], []
    for i, m in enumerate(messages):
        index += [i] * len(m)
        mines += [m.mine] * len(m)
        codes += m.codes
        times += m.time_us.tolist()
    if not index:
        return []
    cur = await conn.execute(
        _STORED_MESSAGES, {"i": index, "mine": mines, "code": codes, "t": times}
    )
    found = [int(row[0]) for row in await cur.fetchall()]
    await conn.rollback()
    return found


_INSERT_GAP = (
    "INSERT INTO sequence_gaps (source, boot, first_seq, last_seq, next_time) "
    "VALUES (%(source)s, %(boot)s, %(first)s, %(last)s, %(next_time)s)"
)


async def write_gaps(cur: psycopg.AsyncCursor, gaps: list[SequenceGap]) -> None:
    """Record sequence numbers never received (migration 0018), in the batch's transaction."""
    if gaps:
        await cur.executemany(_INSERT_GAP, [
            {"source": g.source, "boot": g.boot, "first": g.first_seq, "last": g.last_seq,
             "next_time": None if g.next_time_us is None else us_to_datetime(g.next_time_us)}
            for g in gaps
        ])  # fmt: skip


_FILL_GAP = (
    "UPDATE sequence_gaps SET filled = filled + 1 WHERE source = %(source)s "
    "AND boot = %(boot)s AND %(seq)s BETWEEN first_seq AND last_seq"
)


async def write_fills(cur: psycopg.AsyncCursor, fills: list[tuple[str, int, int]]) -> None:
    """Count the messages (source, boot, seq) that arrived inside a recorded gap after all."""
    if fills:
        await cur.executemany(_FILL_GAP, [{"source": s, "boot": b, "seq": q} for s, b, q in fills])


# One row per point of the batch, moved forward only (a late or replayed reading older than
# the stored one leaves it): migration 0029. Times travel as int64 microseconds since the epoch
# (exact: a bigint times an interval of one microsecond stays below 2**53).
_UPSERT_LATEST = (
    "INSERT INTO point_latest (point_id, time, value, status) "
    "SELECT p, timestamptz 'epoch' + t * interval '1 microsecond', v, s "
    "FROM unnest(%(points)s::int4[], %(times)s::int8[], %(values)s::float8[], "
    "%(status)s::int2[]) AS b(p, t, v, s) "
    "ON CONFLICT (point_id) DO UPDATE SET time = EXCLUDED.time, value = EXCLUDED.value, "
    "status = EXCLUDED.status WHERE point_latest.time < EXCLUDED.time"
)


def newest_per_point(batch: ReadingBatch) -> npt.NDArray[np.intp]:
    """The index, in ``batch``, of each point's newest reading (ties: the last in the batch),
    in ascending point order."""
    order = np.lexsort((batch.time_us, batch.point_id))  # by point, then time, stable
    points = batch.point_id[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = points[1:] != points[:-1]
    return order[last]


async def write_latest(cur: psycopg.AsyncCursor, batch: ReadingBatch) -> None:
    """Move each point's newest reading (``point_latest``) forward to the batch's newest for
    that point, in one statement, in the batch's transaction."""
    if not len(batch):
        return
    newest = newest_per_point(batch)
    register_array_dumpers(cur)
    await cur.execute(_UPSERT_LATEST, {
        "points": Int4Array(batch.point_id[newest]), "times": Int8Array(batch.time_us[newest]),
        "values": Float8Array(batch.value[newest]), "status": Int2Array(batch.status[newest]),
    })  # fmt: skip
