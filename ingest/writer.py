"""The pipeline's storage stage: one transaction per write batch, retried until it is durable.

A write batch holds the readings of many messages, the rejections, the new sequence watermarks
and the alarm changes the batch causes; all are committed together, then the messages are
acknowledged. The writer owns the database connection, the point registry, the watermarks
and the alarm engine: one owner, no locks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
import psycopg

from minewatch.alarms import lifecycle
from minewatch.alarms.engine import AlarmEngine, Evaluation
from minewatch.alarms.late_incidents import with_late
from minewatch.alarms.late_store import LateEvaluation, LateOutcome
from minewatch.alarms.prealarm_store import load_prealarm_state, write_prealarms
from minewatch.alarms.rules.params import RuleDefaults
from minewatch.alarms.store import load_engine_state, load_incident_state, write_changes
from minewatch.batch import ReadingBatch
from minewatch.ingest.contract import SafetyMessage
from minewatch.ingest.durable import DurableWriter, Pending
from minewatch.ingest.metrics import GatewayMetrics
from minewatch.ingest.pgcopy import COPY_READINGS_SQL, encode_readings
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.repository import (
    SequenceGap,
    committed_before,
    stored_messages,
    write_fills,
    write_gaps,
    write_latest,
    write_rejections,
    write_watermarks,
)
from minewatch.ingest.sequence import UNKNOWN
from minewatch.ingest.time_limits import TimeLimits
from minewatch.ingest.validate import PointResolver, validate_messages
from minewatch.metadata import MineDefinition, upsert_mine_async
from minewatch.registry import PointRegistry, load_registry_async, registry_version_async
from minewatch.timeutil import now_us

log = logging.getLogger(__name__)


@dataclass
class PendingWrite(Pending):
    """The safety feed's write batch: messages to validate and store together."""

    messages: list[SafetyMessage] = field(default_factory=list)
    readings: int = 0
    received_at: list[float] = field(default_factory=list)  # loop time, per message: metrics
    #: message source -> whom to tell which of its readings were refused (Delivery.refused)
    refusal_listeners: dict[str, Callable[[list[Rejection]], None]] = field(default_factory=dict)
    gaps: list[SequenceGap] = field(default_factory=list)  # sequence numbers never received
    fills: list[tuple[str, int, int]] = field(default_factory=list)  # (source, boot, seq) late
    #: (source, boot, seq) of the messages the source's mark cannot tell about (UNKNOWN):
    #: whether they are stored is asked of the database at flush (:meth:`BatchWriter.flush`)
    unremembered: set[tuple[str, int, int]] = field(default_factory=set)


class BatchWriter(DurableWriter):
    def __init__(
        self, database_url: str, metrics: GatewayMetrics, refresh_s: float, limits: TimeLimits,
        defaults: RuleDefaults | None = None,
    ) -> None:  # fmt: skip
        super().__init__(database_url, on_retry=metrics.write_retries.inc)
        self._limits = limits
        self._metrics = metrics
        self._refresh_s = refresh_s
        self._loaded_at = 0.0
        self._version = -1  # of the registry loaded (migration 0034)
        self._definitions_applied = False  # stored, not yet in the registry: reload before use
        self._stored: dict[str, str] = {}  # mine -> the definition this writer stored last
        self._own_version = -2  # the registry version its last definition's transaction left
        self.registry: PointRegistry = PointRegistry.empty()
        self.points = PointResolver(self.registry)
        self._defaults = defaults or RuleDefaults()  # MINEWATCH_GATEWAY__ALLOWED_LATENESS_S
        self.engine = AlarmEngine(self.registry, self._defaults)
        self.late = LateEvaluation(self._defaults)
        self._refused_seqs: dict[str, set[tuple[int, int]]] = {}  # refused_arrived()

    async def __aenter__(self) -> BatchWriter:
        conn = await self._connection()
        self._version = await registry_version_async(conn)  # before the points it numbers
        self.registry = await load_registry_async(conn)
        self.points = PointResolver(self.registry)
        self._loaded_at = time.monotonic()
        self.engine = AlarmEngine(self.registry, self._defaults)
        self.engine.restore(*await load_engine_state(conn))
        self.engine.restore_incidents(*await load_incident_state(conn))
        self.engine.restore_prealarms(*await load_prealarm_state(conn))
        await self._load_watermarks(conn)
        await conn.rollback()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._close()

    # -- the dedup decision belongs to the writer: it knows what is durable -----------------

    def accepts(self, pending: PendingWrite, message: SafetyMessage) -> bool:
        """Whether ``message`` is new for its source (not a redelivery); counts gaps."""
        first = int(message.time_us[0]) if len(message) else None
        return self.received(pending, message.source, (message.boot, message.seq), first)

    def received(
        self, pending: PendingWrite, source: str, mark: tuple[int, int],
        time_us: int | None = None,
    ) -> bool:  # fmt: skip
        """Whether ``mark`` is new for ``source``; counts and records (``sequence_gaps``, with
        the batch) the sequence numbers skipped before it that never arrived (a message
        refused whole but numbered arrived: :meth:`refused_arrived`); a number that fills a
        recorded hole later (a bridge resending after an outage) is counted as filled."""
        current = pending.watermarks.get(source) or self.watermarks.get(source)
        missing = self.is_new(pending.watermarks, source, mark, quiet=True)
        if missing is UNKNOWN:  # never taken for a redelivery on the mark's word: asked at flush
            key = (source, *mark)
            if key in pending.unremembered:
                return False  # the same message twice in this batch
            pending.unremembered.add(key)
            return True
        if missing is not None and current is not None and mark < current.top:
            pending.fills.append((source, *mark))  # a hole filled after all
        refused = self._refused_seqs.get(source)
        arrived: list[int] = []
        if refused:  # those up to this mark are accounted for now
            arrived = sorted(s for b, s in refused if b == mark[0] and s < mark[1])
            self._refused_seqs[source] = {m for m in refused if m > mark}
        if missing:
            boot, seq = mark
            first = seq - missing
            for lo, hi in _holes(first, seq - 1, [s for s in arrived if s >= first]):
                pending.gaps.append(SequenceGap(source, boot, lo, hi, time_us))
                self._metrics.sequence_gaps.inc(hi - lo + 1)
                log.warning("source %s: messages %d-%d never arrived (before seq %d)",
                            source, lo, hi, seq)  # fmt: skip
        return missing is not None

    def refused_arrived(self, source: str, mark: tuple[int, int]) -> None:
        """A message of ``source`` numbered ``mark`` arrived and was refused whole: no gap.
        Remembered in memory only (and for a bounded number per source); the watermark is
        not moved, so a refused message with a wrong ``seq`` can never hide good data."""
        seen = self._refused_seqs.setdefault(source, set())
        if len(seen) < _MAX_REFUSED_SEQS:
            seen.add(mark)

    async def maybe_refresh_registry(self) -> None:
        """Every ``refresh_s``: reload the registry if its tables changed since it was loaded
        (a city's reload costs the write path a second or more: issue 14)."""
        if self._definitions_applied or time.monotonic() - self._loaded_at < self._refresh_s:
            return  # (definitions applied: reloaded before the next write batch anyway)
        conn = await self._connection()
        version = await registry_version_async(conn)
        await conn.rollback()
        self._loaded_at = time.monotonic()
        if version != self._version:
            await self.refresh_registry()

    async def refresh_registry(self) -> None:
        self._metrics.registry_reloads.inc()
        conn = await self._connection()
        self._version = await registry_version_async(conn)  # before the points it numbers
        self.registry = await load_registry_async(conn)
        self.points = PointResolver(self.registry)
        await conn.rollback()
        self._loaded_at = time.monotonic()
        self._definitions_applied = False
        self.engine.use_registry(self.registry)

    async def apply_definition(self, definition: MineDefinition) -> None:
        """Store ``definition``. The registry takes it before the next write batch that holds
        readings (:meth:`_take_definitions`): definitions arriving together (a gateway's start,
        when the broker hands over every mine's retained one) cost one reload, not one each."""
        code, document = definition.mine.code, definition.model_dump_json()
        if self._stored.get(code) == document and await self._retrying(self._unchanged):
            return  # the same again (a broker's retained copy, after a reconnection): a no-op
        self._own_version = await self._retrying(
            lambda conn: self._apply_definition(conn, definition)
        )
        self._stored[code] = document
        self._definitions_applied = True

    async def _unchanged(self, conn: psycopg.AsyncConnection) -> bool:
        """Whether no one but this writer's definitions changed the registry's tables since
        its last definition: each definition writes only its own mine's rows, so one stored
        again as it was is then a no-op (with a change by anyone else it is applied again,
        as it always was: the last definition received wins)."""
        version = await registry_version_async(conn)
        await conn.rollback()
        return version == self._own_version

    async def _take_definitions(self) -> None:
        if self._definitions_applied:
            await self.refresh_registry()

    async def _apply_definition(
        self, conn: psycopg.AsyncConnection, definition: MineDefinition
    ) -> int:
        async with conn.transaction():
            await upsert_mine_async(conn, definition)
            return await registry_version_async(conn)  # moved by this transaction

    # -- the clock ----------------------------------------------------------------------------

    async def tick(self, behind: bool = False) -> None:
        """Clock-driven alarm checks: data interruption (stored like a batch's changes) and
        escalation of alarms left unacknowledged past their grade's deadline.

        ``behind``: readings may still be queued (a backlog): the alarm checks run on the
        readings' own clock (each mine's newest evaluated reading, ``AlarmEngine.tick``)
        rather than the wall clock, so the queued readings are not taken for silence.
        Definitions stored since the registry was loaded wait for the next write batch (a
        city's start takes minutes of definitions: a reload at every tick would be most of it);
        the points they add have no reading to miss yet."""
        evaluation = self.engine.tick(now_us(), behind=behind)
        if evaluation.changes or evaluation.incidents:
            await self._retrying(lambda conn: self._write_tick(conn, evaluation))
        self.engine.commit(evaluation)
        escalated = await self._retrying(lifecycle.escalate_due)
        for row in escalated:
            log.warning("alarm %s (%s, %s) escalated: not acknowledged in time",
                        row["id"], row["rule"], row["grade"])  # fmt: skip

    async def _write_tick(self, conn: psycopg.AsyncConnection, evaluation: Evaluation) -> None:
        async with conn.transaction(), conn.cursor() as cur:
            await write_changes(cur, evaluation.changes, self.registry, evaluation.incidents)

    # -- flushing ---------------------------------------------------------------------------

    async def flush(self, pending: PendingWrite) -> None:
        """Make ``pending`` durable (retrying transient failures forever), then acknowledge it."""
        if not pending:
            return
        if pending.messages:  # readings that arrived after the definitions (gateway._accept)
            await self._take_definitions()
        started = time.monotonic()
        if pending.unremembered:
            await self._drop_stored(pending)
        batch, refused = validate_messages(pending.messages, self.points, now_us(), self._limits)
        pending.rejections.extend(refused)
        try:
            evaluation = await self._retrying(lambda conn: self._write(conn, pending, batch))
            committed_at = asyncio.get_running_loop().time()
        except psycopg.Error as error:  # permanent: keep the data aside, never drop it
            log.error("write refused by the database (%s); quarantining the batch", error)
            refusal = str(error)
            await self._retrying(lambda conn: self._quarantine_all(conn, pending, refusal))
            evaluation = None
        if evaluation is not None:
            self.engine.commit(evaluation)
            self._metrics.readings_stored.inc(len(batch))
            if len(batch):
                self._metrics.data_age.set(time.time() - int(batch.time_us.max()) / 1e6)
            for received_at in pending.received_at:
                self._metrics.receive_to_commit.observe(committed_at - received_at)
        self.watermarks.update(pending.watermarks)
        for rejection in pending.rejections:
            self._metrics.quarantined.labels(rejection.reason.value).inc()
        _tell_refusals(pending)
        acks, pending.acks = pending.acks, []  # a pending write is flushed once, whoever
        for ack in acks:  # holds it (a cancelled caller may hand the same one in again)
            ack()
        done = time.monotonic()
        self._metrics.flushes.observe(done - started)
        if pending.first_received_at is not None:
            self._metrics.lag.set(asyncio.get_running_loop().time() - pending.first_received_at)

    async def _drop_stored(self, pending: PendingWrite) -> None:
        """Take out of ``pending`` the messages their sources' marks cannot tell about whose
        readings are stored already (a redelivery: at least one of its (point, time) is in
        ``readings``); the others are new and stay. Only this writer stores its sources'
        readings."""
        doubtful = [
            i for i, m in enumerate(pending.messages)
            if (m.source, m.boot, m.seq) in pending.unremembered
        ]  # fmt: skip
        stored = await self._retrying(
            lambda conn: stored_messages(conn, [pending.messages[i] for i in doubtful])
        )
        drop = {doubtful[k] for k in stored}
        pending.unremembered = set()
        log.info(
            "%d message(s) their sources' marks cannot tell about: %d stored already "
            "(redelivered), %d new", len(doubtful), len(drop), len(doubtful) - len(drop),
        )  # fmt: skip
        if drop:
            self._metrics.duplicates.inc(len(drop))
            keep = [i for i in range(len(pending.messages)) if i not in drop]
            pending.readings -= sum(len(pending.messages[i]) for i in drop)
            if len(pending.received_at) == len(pending.messages):  # (metrics: per message)
                pending.received_at = [pending.received_at[i] for i in keep]
            pending.messages = [pending.messages[i] for i in keep]

    async def _write(
        self, conn: psycopg.AsyncConnection, pending: PendingWrite, batch: ReadingBatch
    ) -> Evaluation:
        evaluation = self.engine.evaluate(batch)
        stored = batch.with_flags(evaluation.flags)
        async with conn.transaction(), conn.cursor() as cur:
            if await committed_before(cur, pending.watermarks):
                return evaluation
            late = LateOutcome()
            if len(stored):
                async with cur.copy(COPY_READINGS_SQL) as copy:
                    await copy.write(encode_readings(stored))
                await write_latest(cur, stored)  # each point's newest reading (migration 0029)
                late = await self.late.store(cur, self.registry, stored)  # readings flagged late
            await write_rejections(cur, pending.rejections)
            await write_watermarks(cur, pending.watermarks)
            await write_gaps(cur, pending.gaps)
            await write_fills(cur, pending.fills)
            await write_changes(cur, evaluation.changes, self.registry, evaluation.incidents)
            evaluation = await with_late(cur, self.engine, evaluation, late, self.registry)
            await write_prealarms(cur, evaluation.prealarm, self.registry)
        return evaluation

    async def _quarantine_all(
        self, conn: psycopg.AsyncConnection, pending: PendingWrite, refusal: str
    ) -> None:
        refused = [
            Rejection(
                m.source, QuarantineReason.DATABASE_REJECTED, refusal[:2000],
                orjson.dumps({
                    "mine": m.mine, "substation": m.substation, "boot": m.boot, "seq": m.seq,
                    "time_us": m.time_us.tolist(), "points": m.codes, "values": m.raw_values,
                    "status": m.status.tolist(),
                }),
            )
            for m in pending.messages
        ]  # fmt: skip
        pending.rejections.extend(refused)
        async with conn.transaction(), conn.cursor() as cur:
            await write_rejections(cur, pending.rejections)
            await write_watermarks(cur, pending.watermarks)
            await write_gaps(cur, pending.gaps)
            await write_fills(cur, pending.fills)


#: Refused-but-numbered messages remembered per source until its next message (gap counting)
_MAX_REFUSED_SEQS = 10_000


def _holes(first: int, last: int, arrived: list[int]) -> list[tuple[int, int]]:
    """The runs of ``first..last`` left once the (ascending) ``arrived`` numbers are taken out."""
    holes: list[tuple[int, int]] = []
    lo = first
    for n in arrived:
        if n > last:
            break
        if n > lo:
            holes.append((lo, n - 1))
        lo = max(lo, n + 1)
    if lo <= last:
        holes.append((lo, last))
    return holes


def _tell_refusals(pending: PendingWrite) -> None:
    """Each listening source learns which of its readings were refused (once, before the
    acknowledgements)."""
    listeners, pending.refusal_listeners = pending.refusal_listeners, {}
    if not listeners:
        return
    refused: dict[str, list[Rejection]] = {}
    for rejection in pending.rejections:
        if rejection.source in listeners:
            refused.setdefault(rejection.source, []).append(rejection)
    for source, rejections in refused.items():
        listeners[source](rejections)
