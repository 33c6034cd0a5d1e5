"""The SQL every writer of the pipeline shares: the per-source ``(boot, seq)`` watermarks, the
sequence gaps and the quarantine. Named parameters only; the readings' binary COPY is
:mod:`.pgcopy`."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from minewatch.ingest.quarantine import Rejection
from minewatch.timeutil import us_to_datetime

Watermark = tuple[int, int]  # (boot, seq)


@dataclass(frozen=True, slots=True)
class SequenceGap:
    """Sequence numbers of a source that never arrived (``first_seq``..``last_seq``)."""

    source: str
    boot: int
    first_seq: int
    last_seq: int
    next_time_us: int | None  # event time of the message that came after the gap


_SELECT_WATERMARKS = "SELECT source, boot, seq FROM source_watermarks WHERE source LIKE %(like)s"
_LOCK_WATERMARKS = (
    "SELECT source, boot, seq FROM source_watermarks WHERE source = ANY(%(sources)s) FOR UPDATE"
)
_UPSERT_WATERMARK = (
    "INSERT INTO source_watermarks (source, boot, seq) VALUES (%(source)s, %(boot)s, %(seq)s) "
    "ON CONFLICT (source) DO UPDATE SET boot = EXCLUDED.boot, seq = EXCLUDED.seq, "
    "updated_at = now() WHERE (EXCLUDED.boot, EXCLUDED.seq) > "
    "(source_watermarks.boot, source_watermarks.seq)"
)
_INSERT_QUARANTINE = (
    "INSERT INTO quarantine (source, reason, detail, payload) "
    "VALUES (%(source)s, %(reason)s, %(detail)s, %(payload)s)"
)


async def load_watermarks(conn: psycopg.AsyncConnection, like: str = "%") -> dict[str, Watermark]:
    """The committed watermarks of the sources whose name is ``LIKE`` the pattern."""
    cur = await conn.execute(_SELECT_WATERMARKS, {"like": like})
    return {str(s): (int(b), int(q)) for s, b, q in await cur.fetchall()}


async def write_watermarks(cur: psycopg.AsyncCursor, marks: dict[str, Watermark]) -> None:
    """Raise each source's watermark to its mark (never lower it)."""
    if marks:
        await cur.executemany(
            _UPSERT_WATERMARK,
            [{"source": s, "boot": b, "seq": q} for s, (b, q) in marks.items()],
        )


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


async def committed_before(cur: psycopg.AsyncCursor, marks: dict[str, Watermark]) -> bool:
    """Whether an earlier attempt of this very write committed after all.

    A connection lost during COMMIT leaves the outcome unknown, and the retry must not store the
    batch twice. The batch's watermarks commit together with its data, so if the database
    already holds them, the earlier attempt went through. The rows are locked, so no other
    writer can move them while this transaction decides.
    """
    if not marks:
        return False
    await cur.execute(_LOCK_WATERMARKS, {"sources": list(marks)})
    stored = {str(s): (int(b), int(q)) for s, b, q in await cur.fetchall()}
    return any(stored.get(source, (-1, -1)) >= mark for source, mark in marks.items())


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
