"""Storage stage of the feed pipeline: one transaction per write batch, retried until durable.

A write batch holds the rows of many messages (positions, snapshots, station states,
heartbeats, analytic events), the transitions they cause (trips, area stays, presence, camera
status), the personnel alarms they raise or clear (ingest/feeds/alarms.py), the rejections
and the new sequence watermarks; all commit together, then the messages are acknowledged.
A message its source's mark cannot tell about (``UNKNOWN``, ingest/sequence.py) is asked of the
database before the batch is written (:meth:`FeedWriter._drop_stored`), as the safety writer
does.
The writer owns its connection, the watermarks, the presence tracker and the alarm state: one
owner, no locks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import psycopg

from minewatch.alarms.rules.personnel import AlarmUpdate
from minewatch.alarms.subject_store import write_subject_changes
from minewatch.ingest.durable import DurableWriter, Pending
from minewatch.ingest.feeds.alarms import FeedAlarms
from minewatch.ingest.feeds.contract import (
    NO_TIME,
    CommsMeta,
    FeedBatch,
    PersonnelMeta,
    VideoMeta,
    is_time_sequenced,
)
from minewatch.ingest.feeds.metadata_repository import (
    apply_comms_meta,
    apply_personnel_meta,
    apply_video_meta,
    load_camera_timeouts,
)
from minewatch.ingest.feeds.presence import PresenceTracker, SnapshotRow, Update
from minewatch.ingest.feeds.repository import (
    copy_batches,
    copy_positions,
    load_tracker,
    stored_batches,
    upsert_camera_status,
    upsert_device_status,
    upsert_presence,
    upsert_snapshot_times,
    write_transitions,
)
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.repository import committed_before, write_rejections, write_watermarks
from minewatch.ingest.sequence import UNKNOWN, SourceMark
from minewatch.timeutil import us_to_datetime

log = logging.getLogger(__name__)


@dataclass
class FeedPending(Pending):
    """The personnel/video/comms write batch."""

    batches: list[FeedBatch] = field(default_factory=list)
    rows: int = 0
    #: (source, boot, seq) of the messages their source's mark cannot tell about: whether they
    #: are stored is asked of the database at flush (:meth:`FeedWriter.flush`)
    unremembered: set[tuple[str, int, int]] = field(default_factory=set)
    #: the screening's rejections of those messages, quarantined only if they are new
    held: dict[tuple[str, int, int], list[Rejection]] = field(default_factory=dict)

    def add(self, batch: FeedBatch, rejections: list[Rejection]) -> None:
        """An accepted message's screened rows and the rows its screening refused."""
        self.batches.append(batch)
        self.rows += len(batch)
        key = (batch.source, batch.boot, batch.seq)
        if key in self.unremembered:
            self.held.setdefault(key, []).extend(rejections)
        else:
            self.rejections.extend(rejections)


def _opt_time(value: int) -> int | None:
    return None if value == NO_TIME else int(value)


def _opt_float(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def snapshot_rows(batch: FeedBatch) -> list[SnapshotRow]:
    """The rows of a ``snapshot`` batch as :class:`SnapshotRow` records."""
    c = batch.columns
    return [
        SnapshotRow(
            card=c["cards"][i], station=c["stations"][i], area=c["areas"][i],
            in_mine=int(c["in_mine"][i]),
            mine_entered_at=_opt_time(c["mine_entered_at"][i]),
            mine_left_at=_opt_time(c["mine_left_at"][i]),
            area_since=_opt_time(c["area_since"][i]),
            station_since=_opt_time(c["station_since"][i]),
            distance_m=_opt_float(c["distance_m"][i]),
        )
        for i in range(len(batch))
    ]  # fmt: skip


def apply_batches(
    tracker: PresenceTracker, batches: list[FeedBatch],
    after: Callable[[FeedBatch, Update], None] | None = None,
) -> Update:  # fmt: skip
    """The presence changes that the personnel batches cause, in arrival order (pure);
    ``after`` sees the state each batch left (the alarm rules run there)."""
    update = tracker.begin()
    for batch in batches:
        c = batch.columns
        if batch.kind == "positions":
            for i in range(len(batch)):
                update.observe(
                    (batch.mine, c["cards"][i]), int(c["time_us"][i]), c["stations"][i],
                    c["areas"][i], int(c["in_mine"][i]), _opt_float(c["distance_m"][i]),
                    _opt_time(c["mine_entered_at"][i]),
                )  # fmt: skip
        elif batch.kind == "snapshot":
            update.snapshot(batch.mine, batch.time_us, snapshot_rows(batch))
        if after is not None:
            after(batch, update)
    return update


class FeedWriter(DurableWriter):
    def __init__(self, database_url: str, default_timeout_s: float) -> None:
        super().__init__(database_url)
        self._default_timeout_s = default_timeout_s
        self.tracker = PresenceTracker()
        self.alarms = FeedAlarms()
        self.timeouts: dict[tuple[str, str], float] = {}
        self.duplicates = 0
        self.sequence_gaps = 0

    async def __aenter__(self) -> FeedWriter:
        conn = await self._connection()
        await self._load_watermarks(conn)
        self.tracker = await load_tracker(conn)
        await self.alarms.load(conn)
        self.timeouts = await load_camera_timeouts(conn)
        await conn.rollback()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._close()

    def accepts(self, pending: FeedPending, batch: FeedBatch) -> bool:
        """Whether ``batch`` is new for its source (not a redelivery); counts gaps, except for
        sources numbered by time (national files: a jump there is the time between files)."""
        mark = (batch.boot, batch.seq)
        if is_time_sequenced(batch.source):
            current = pending.watermarks.get(batch.source) or self.watermarks.get(batch.source)
            if current is not None and mark <= current.top:
                self.duplicates += 1
                return False
            pending.watermarks[batch.source] = SourceMark(*mark, forgotten=mark[0])
            return True
        missing = self.is_new(pending.watermarks, batch.source, mark)
        if missing is UNKNOWN:  # never taken for a redelivery on the mark's word: asked at flush
            key = (batch.source, *mark)
            if key in pending.unremembered:  # the same message twice in this write batch
                self.duplicates += 1
                return False
            pending.unremembered.add(key)
            return True
        if missing is None:
            self.duplicates += 1
            return False
        self.sequence_gaps += missing
        return True

    async def apply_meta(self, meta: PersonnelMeta | VideoMeta | CommsMeta) -> None:
        """Store a definition; a permanent refusal raises (the caller quarantines it)."""
        if isinstance(meta, CommsMeta):
            await self._retrying(lambda conn: apply_comms_meta(conn, meta))
        elif isinstance(meta, PersonnelMeta):
            await self._retrying(lambda conn: apply_personnel_meta(conn, meta))
            conn = await self._connection()
            await self.alarms.reload(conn)  # limits, areas and leaders the rules use
            await conn.rollback()
        else:
            await self._retrying(lambda conn: apply_video_meta(conn, meta))
            conn = await self._connection()
            self.timeouts = await load_camera_timeouts(conn)
            await conn.rollback()

    def timeout_s(self, mine: str, camera: str) -> float:
        return self.timeouts.get((mine, camera), self._default_timeout_s)

    async def flush(self, pending: FeedPending, now_us: int) -> None:
        """Make ``pending`` durable (retrying transient failures forever), then acknowledge."""
        if not pending:
            return
        if pending.unremembered:
            await self._drop_stored(pending)
        update: Update | None = None
        alarms: AlarmUpdate | None = None

        async def attempt(conn: psycopg.AsyncConnection) -> None:
            nonlocal update, alarms
            alarms = self.alarms.begin()  # fresh per attempt, like the presence update
            evaluate = alarms

            def after(batch: FeedBatch, presence: Update) -> None:
                self.alarms.after_batch(self.tracker, presence, batch, evaluate)

            update = apply_batches(self.tracker, pending.batches, after)
            await self._write(conn, pending, update, now_us, alarms)

        try:
            await self._retrying(attempt)
        except psycopg.Error as error:  # permanent: keep the data aside, never drop it
            log.error("feed write refused by the database (%s); quarantining the batch", error)
            refusal = str(error)[:2000]
            pending.rejections.extend(
                Rejection(b.source, QuarantineReason.DATABASE_REJECTED, refusal, b.raw)
                for b in pending.batches
            )
            await self._retrying(lambda conn: self._write_bookkeeping(conn, pending))
            update = alarms = None
        if update is not None:
            self.tracker.commit(update)
        if alarms is not None:
            self.alarms.commit(alarms)
        self.watermarks.update(pending.watermarks)
        acks, pending.acks = pending.acks, []  # a pending write is flushed once, whoever
        for ack in acks:  # holds it (a cancelled caller may hand the same one in again)
            ack()

    async def _drop_stored(self, pending: FeedPending) -> None:
        """Take out of ``pending`` the messages their sources' marks cannot tell about whose
        rows are stored already (a redelivery: :func:`stored_batches`); the others are new and
        stay, with the rows their screening refused. Only this writer stores these feeds."""
        doubtful = [
            i for i, b in enumerate(pending.batches)
            if (b.source, b.boot, b.seq) in pending.unremembered
        ]  # fmt: skip
        stored = await self._retrying(
            lambda conn: stored_batches(conn, [pending.batches[i] for i in doubtful])
        )
        drop = {doubtful[k] for k in stored}
        log.info(
            "%d message(s) their sources' marks cannot tell about: %d stored already "
            "(redelivered), %d new", len(doubtful), len(drop), len(doubtful) - len(drop),
        )  # fmt: skip
        for i in doubtful:
            b = pending.batches[i]
            refused = pending.held.pop((b.source, b.boot, b.seq), [])
            if i not in drop:
                pending.rejections.extend(refused)
        pending.unremembered = set()
        pending.held = {}
        if drop:
            self.duplicates += len(drop)
            pending.rows -= sum(len(pending.batches[i]) for i in drop)
            pending.batches = [b for i, b in enumerate(pending.batches) if i not in drop]

    async def tick(self, now_us: int) -> None:
        """Clock-driven alarm checks (overtime, output over capacity), stored and committed."""
        alarms = await self._retrying(lambda conn: self.alarms.tick(conn, self.tracker, now_us))
        self.alarms.commit(alarms)

    async def _write(
        self, conn: psycopg.AsyncConnection, pending: FeedPending, update: Update, now_us: int,
        alarms: AlarmUpdate,
    ) -> None:  # fmt: skip
        by_kind: dict[str, list[FeedBatch]] = {}
        for batch in pending.batches:
            by_kind.setdefault(batch.kind, []).append(batch)
        async with conn.transaction(), conn.cursor() as cur:
            if await committed_before(cur, pending.watermarks):
                return  # an earlier attempt committed after all (the COMMIT's reply was lost)
            await copy_positions(cur, update.positions)
            await write_transitions(cur, update.transitions)
            await upsert_presence(cur, update.changed)
            await upsert_snapshot_times(cur, update.snapshot_at)
            await copy_batches(cur, by_kind)
            await self._write_camera_status(cur, by_kind.get("heartbeats", []), now_us)
            await upsert_device_status(cur, _device_status(by_kind.get("device_status", [])))
            await write_subject_changes(cur, alarms.changes)
            await _write_bookkeeping_rows(cur, pending)

    async def _write_camera_status(
        self, cur: psycopg.AsyncCursor, batches: list[FeedBatch], now_us: int
    ) -> None:
        latest: dict[tuple[str, str], tuple[int, bool]] = {}
        for batch in batches:
            times, cameras, online = (batch.columns[n] for n in ("time_us", "cameras", "online"))
            for t, camera, up in zip(times.tolist(), cameras, online.tolist(), strict=True):
                key = (batch.mine, camera)
                if key not in latest or t >= latest[key][0]:
                    latest[key] = (t, up)
        params = []
        for (mine, camera), (t, up) in latest.items():
            deadline = t + int(self.timeout_s(mine, camera) * 1e6)
            if up and deadline < now_us:  # a stale heartbeat (a backlog): already timed out
                is_online, since, reason = False, deadline, "timeout"
            else:
                is_online, since, reason = up, t, ("heartbeat" if up else "reported")
            params.append({
                "mine": mine, "camera": camera, "online": is_online, "since": us_to_datetime(since),
                "time": us_to_datetime(t), "reason": reason,
            })  # fmt: skip
        await upsert_camera_status(cur, params)

    async def _write_bookkeeping(self, conn: psycopg.AsyncConnection, pending: FeedPending) -> None:
        async with conn.transaction(), conn.cursor() as cur:
            await _write_bookkeeping_rows(cur, pending)


def _device_status(batches: list[FeedBatch]) -> list[dict[str, object]]:
    """The newest report per communications device of the write batch."""
    latest: dict[tuple[str, str], tuple[int, bool, object]] = {}
    for batch in batches:
        c = batch.columns
        rows = zip(c["time_us"].tolist(), c["devices"], c["online"].tolist(), c["faults"],
                   strict=True)  # fmt: skip
        for t, device, up, fault in rows:
            key = (batch.mine, device)
            if key not in latest or t >= latest[key][0]:
                latest[key] = (t, up, fault)
    return [
        {"mine": mine, "device": device, "online": up, "fault": fault,
         "time": us_to_datetime(t)}
        for (mine, device), (t, up, fault) in latest.items()
    ]  # fmt: skip


async def _write_bookkeeping_rows(cur: psycopg.AsyncCursor, pending: FeedPending) -> None:
    await write_rejections(cur, pending.rejections)
    await write_watermarks(cur, pending.watermarks)
