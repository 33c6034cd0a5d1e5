"""Storage stage of the feed pipeline: one transaction per write batch, retried until durable.

A write batch holds the rows of many messages (positions, snapshots, station states,
heartbeats, analytic events), the transitions they cause (trips, area stays, presence, camera
status), the personnel alarms they raise or clear (ingest/feeds/alarms.py), the rejections
and the new sequence watermarks; all commit together, then the messages are acknowledged.
The writer owns its connection, the watermarks, the presence tracker and the alarm state: one
owner, no locks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import groupby

import numpy as np
import psycopg
from minewatch.alarms.rules.personnel import AlarmUpdate
from minewatch.alarms.subject_store import write_subject_changes
from minewatch.ingest.durable import (
    DurableWriter,
    Pending,
    committed_before,
    write_rejections,
    write_watermarks,
)
from minewatch.ingest.feeds.alarms import FeedAlarms
from minewatch.ingest.feeds.contract import NO_TIME, FeedBatch, PersonnelMeta, VideoMeta
from minewatch.ingest.feeds.metadata import (
    apply_personnel_meta,
    apply_video_meta,
    load_camera_timeouts,
)
from minewatch.ingest.feeds.presence import (
    Presence,
    PresenceTracker,
    SnapshotRow,
    StayClosed,
    StayOpened,
    StayRetargeted,
    Transition,
    TripClosed,
    TripOpened,
    Update,
)
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.sources.national.personnel import is_time_sequenced

from minewatch.timeutil import datetime_to_us, us_to_datetime

log = logging.getLogger(__name__)


_COPY_POSITIONS = (
    "COPY personnel_positions (time, mine_code, card_code, station_code, area_code, distance_m, "
    "in_mine) FROM STDIN"
)
_COPY_STATION_STATUS = (
    "COPY personnel_station_status (time, mine_code, station_code, run_state, power_state) "
    "FROM STDIN"
)
_COPY_HEARTBEATS = "COPY video_heartbeats (time, mine_code, camera_code, online) FROM STDIN"
_COPY_EVENTS = (
    "COPY video_events (time, mine_code, camera_code, area_code, event_type, confidence, "
    "snapshot_ref, event_id) FROM STDIN"
)
_COPIES = (
    (_COPY_STATION_STATUS, "station_status", ("stations", "run_state", "power_state")),
    (_COPY_HEARTBEATS, "heartbeats", ("cameras", "online")),
    (_COPY_EVENTS, "events", ("cameras", "areas", "types", "confidence", "snapshots", "ids")),
)
_TRANSITION_SQL: dict[type, str] = {
    TripOpened: "INSERT INTO personnel_trips (mine_code, card_code, entered_at) "
    "VALUES (%s, %s, %s) ON CONFLICT (mine_code, card_code, entered_at) "
    "DO UPDATE SET left_at = NULL",
    TripClosed: "UPDATE personnel_trips SET left_at = %s "
    "WHERE mine_code = %s AND card_code = %s AND entered_at = %s",
    StayOpened: "INSERT INTO personnel_stays (mine_code, card_code, area_code, entered_at) "
    "VALUES (%s, %s, %s, %s) ON CONFLICT (mine_code, card_code, entered_at) "
    "DO UPDATE SET area_code = EXCLUDED.area_code, left_at = NULL",
    StayClosed: "UPDATE personnel_stays SET left_at = %s "
    "WHERE mine_code = %s AND card_code = %s AND entered_at = %s",
    StayRetargeted: "UPDATE personnel_stays SET area_code = %s "
    "WHERE mine_code = %s AND card_code = %s AND entered_at = %s",
}
_PRESENCE_COLUMNS = (
    "underground", "entered_at", "left_at", "area_code", "area_since", "station_code",
    "station_since", "distance_m", "last_seen_at", "changed_at",
)  # fmt: skip
_UPSERT_PRESENCE = (
    "INSERT INTO personnel_presence (mine_code, card_code, " + ", ".join(_PRESENCE_COLUMNS)
    + ") VALUES (" + ", ".join(["%s"] * (len(_PRESENCE_COLUMNS) + 2)) + ") "
    "ON CONFLICT (mine_code, card_code) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _PRESENCE_COLUMNS)
)  # fmt: skip
_UPSERT_SNAPSHOT_AT = (
    "INSERT INTO personnel_feed_state (mine_code, snapshot_at) VALUES (%s, %s) "
    "ON CONFLICT (mine_code) DO UPDATE SET snapshot_at = EXCLUDED.snapshot_at"
)
# One heartbeat per camera and write batch (its latest): status, and a change row if it flips.
_HEARTBEAT_STATUS = """
WITH old AS (
    SELECT online FROM video_camera_status WHERE mine_code = %(mine)s AND camera_code = %(camera)s
), up AS (
    INSERT INTO video_camera_status AS s
        (mine_code, camera_code, online, since, last_heartbeat_at, reason)
    VALUES (%(mine)s, %(camera)s, %(online)s, %(since)s, %(time)s, %(reason)s)
    ON CONFLICT (mine_code, camera_code) DO UPDATE SET
        since = CASE WHEN s.online = EXCLUDED.online THEN s.since ELSE EXCLUDED.since END,
        reason = CASE WHEN s.online = EXCLUDED.online THEN s.reason ELSE EXCLUDED.reason END,
        online = EXCLUDED.online,
        last_heartbeat_at = EXCLUDED.last_heartbeat_at,
        updated_at = now()
    WHERE EXCLUDED.last_heartbeat_at > s.last_heartbeat_at
    RETURNING online, since, reason
)
INSERT INTO video_status_changes (time, mine_code, camera_code, online, reason)
SELECT up.since, %(mine)s, %(camera)s, up.online, up.reason FROM up
WHERE NOT EXISTS (SELECT 1 FROM old WHERE old.online = up.online)
"""


@dataclass
class FeedPending(Pending):
    """The personnel/video write batch."""

    batches: list[FeedBatch] = field(default_factory=list)
    rows: int = 0


def _opt_time(value: int) -> int | None:
    return None if value == NO_TIME else int(value)


def _opt_float(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def _dt(us: int | None):  # type: ignore[no-untyped-def]
    return None if us is None else us_to_datetime(us)


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
            if current is not None and mark <= current:
                self.duplicates += 1
                return False
            pending.watermarks[batch.source] = mark
            return True
        missing = self.is_new(pending.watermarks, batch.source, mark)
        if missing is None:
            self.duplicates += 1
            return False
        self.sequence_gaps += missing
        return True

    async def apply_meta(self, meta: PersonnelMeta | VideoMeta) -> None:
        """Store a definition; a permanent refusal raises (the caller quarantines it)."""
        if isinstance(meta, PersonnelMeta):
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
            if update.positions:
                async with cur.copy(_COPY_POSITIONS) as copy:
                    for p in update.positions:
                        await copy.write_row((
                            us_to_datetime(p.time_us), p.key[0], p.key[1], p.station, p.area,
                            p.distance_m, p.in_mine,
                        ))  # fmt: skip
            await _write_transitions(cur, update.transitions)
            if update.changed:
                await cur.executemany(
                    _UPSERT_PRESENCE, [_presence_row(k, p) for k, p in update.changed.items()]
                )
            if update.snapshot_at:
                await cur.executemany(
                    _UPSERT_SNAPSHOT_AT,
                    [(m, us_to_datetime(t)) for m, t in update.snapshot_at.items()],
                )
            for sql, kind, names in _COPIES:
                await _copy_rows(cur, sql, by_kind.get(kind, []), names)
            await self._write_camera_status(cur, by_kind.get("heartbeats", []), now_us)
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
                online, since, reason = False, deadline, "timeout"
            else:
                online, since, reason = up, t, ("heartbeat" if up else "reported")
            params.append({
                "mine": mine, "camera": camera, "online": online, "since": us_to_datetime(since),
                "time": us_to_datetime(t), "reason": reason,
            })  # fmt: skip
        if params:
            await cur.executemany(_HEARTBEAT_STATUS, params)

    async def _write_bookkeeping(self, conn: psycopg.AsyncConnection, pending: FeedPending) -> None:
        async with conn.transaction(), conn.cursor() as cur:
            await _write_bookkeeping_rows(cur, pending)


async def _write_bookkeeping_rows(cur: psycopg.AsyncCursor, pending: FeedPending) -> None:
    await write_rejections(cur, pending.rejections)
    await write_watermarks(cur, pending.watermarks)


async def _copy_rows(
    cur: psycopg.AsyncCursor, sql: str, batches: list[FeedBatch], names: tuple[str, ...]
) -> None:
    if not batches:
        return
    async with cur.copy(sql) as copy:
        for batch in batches:
            columns = [batch.columns["time_us"], *(batch.columns[n] for n in names)]
            for row in zip(*(c.tolist() for c in columns), strict=True):
                await copy.write_row((us_to_datetime(row[0]), batch.mine, *_nan_to_none(row[1:])))


def _nan_to_none(values: tuple[object, ...]) -> tuple[object, ...]:
    return tuple(None if isinstance(v, float) and v != v else v for v in values)


async def _write_transitions(cur: psycopg.AsyncCursor, transitions: list[Transition]) -> None:
    """Executed in order, consecutive transitions of one kind as one ``executemany``."""
    for kind, group in groupby(transitions, type):
        await cur.executemany(_TRANSITION_SQL[kind], [_transition_params(t) for t in group])


def _transition_params(t: Transition) -> tuple[object, ...]:
    mine, card = t.key
    match t:
        case TripOpened():
            return (mine, card, us_to_datetime(t.entered_at))
        case TripClosed() | StayClosed():
            return (us_to_datetime(t.left_at), mine, card, us_to_datetime(t.entered_at))
        case StayOpened():
            return (mine, card, t.area, us_to_datetime(t.entered_at))
        case StayRetargeted():
            return (t.area, mine, card, us_to_datetime(t.entered_at))
    raise AssertionError(t)


def _presence_row(key: tuple[str, str], p: Presence) -> tuple[object, ...]:
    return (
        key[0], key[1], p.underground, _dt(p.entered_at), _dt(p.left_at), p.area,
        us_to_datetime(p.area_since), p.station, us_to_datetime(p.station_since), p.distance_m,
        us_to_datetime(p.last_seen), us_to_datetime(p.changed_at),
    )  # fmt: skip


async def load_tracker(conn: psycopg.AsyncConnection) -> PresenceTracker:
    """The committed presence state, as stored by earlier runs."""
    cur = await conn.execute(
        "SELECT mine_code, card_code, " + ", ".join(_PRESENCE_COLUMNS) + " FROM personnel_presence"
    )
    state = {}
    for row in await cur.fetchall():
        (mine, card, underground, entered, left, area, area_since, station, station_since,
         distance, last_seen, changed) = row  # fmt: skip
        state[(str(mine), str(card))] = Presence(
            bool(underground), _us(entered), _us(left), str(area), datetime_to_us(area_since),
            str(station), datetime_to_us(station_since),
            None if distance is None else float(distance), datetime_to_us(last_seen),
            datetime_to_us(changed),
        )  # fmt: skip
    cur = await conn.execute(
        "SELECT mine_code, snapshot_at FROM personnel_feed_state WHERE snapshot_at IS NOT NULL"
    )
    snapshot_at = {str(m): datetime_to_us(t) for m, t in await cur.fetchall()}
    return PresenceTracker(state, snapshot_at)


def _us(value: object) -> int | None:
    return None if value is None else datetime_to_us(value)  # type: ignore[arg-type]
