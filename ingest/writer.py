"""The pipeline's storage stage: one transaction per write batch, retried until it is durable.

A write batch holds the readings of many messages, the rejections, the new sequence watermarks
and the alarm changes the batch causes; all are committed together, then the messages are
acknowledged. The writer owns the database connection, the point registry, the watermarks
and the alarm engine: one owner, no locks.

**Pipelined** (:meth:`BatchWriter.submit`): while batch N's transaction runs (a task of its
own, on the writer's connection), batch N+1 is validated, evaluated on top of N's alarm state
(not committed yet) and encoded; its transaction starts once N's has ended. N's messages are
acknowledged, and its alarm state adopted, only after N committed, in order. If N was
quarantined instead (a permanent refusal), its alarm state is never adopted and N+1 is
evaluated again from the state that did commit. At most one batch is in flight: everything
else that uses the connection (the clock, a registry refresh, a mine definition) first waits
for it (:meth:`BatchWriter.drain`). Deduplication counts the in-flight batch's sequence
numbers as taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
import psycopg

from minewatch.alarms import lifecycle
from minewatch.alarms.engine import AlarmEngine, Evaluation
from minewatch.alarms.store import load_engine_state, load_incident_state, write_changes
from minewatch.batch import ReadingBatch
from minewatch.ingest.contract import SafetyMessage
from minewatch.ingest.durable import DurableWriter, Pending
from minewatch.ingest.metrics import GatewayMetrics
from minewatch.ingest.pgcopy import COPY_READINGS_SQL, encode_readings
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.repository import committed_before, write_rejections, write_watermarks
from minewatch.ingest.time_limits import TimeLimits
from minewatch.ingest.validate import PointResolver, validate_messages
from minewatch.metadata import MineDefinition, upsert_mine_async
from minewatch.registry import PointRegistry, load_registry_async
from minewatch.timeutil import now_us

log = logging.getLogger(__name__)


@dataclass
class _Prepared:
    """A write batch ready for its transaction: validated, evaluated, encoded."""

    pending: PendingWrite
    batch: ReadingBatch
    evaluation: Evaluation
    copy: bytes  # the readings' binary COPY stream
    started: float  # when its flush began (monotonic)


@dataclass
class PendingWrite(Pending):
    """The safety feed's write batch: messages to validate and store together."""

    messages: list[SafetyMessage] = field(default_factory=list)
    readings: int = 0
    #: message source -> whom to tell which of its readings were refused (Delivery.refused)
    refusal_listeners: dict[str, Callable[[list[Rejection]], None]] = field(default_factory=dict)


class BatchWriter(DurableWriter):
    def __init__(
        self, database_url: str, metrics: GatewayMetrics, refresh_s: float, limits: TimeLimits
    ) -> None:
        super().__init__(database_url, on_retry=metrics.write_retries.inc)
        self._limits = limits
        self._metrics = metrics
        self._refresh_s = refresh_s
        self._loaded_at = 0.0
        self.registry: PointRegistry = PointRegistry.empty()
        self.points = PointResolver(self.registry)
        self.engine = AlarmEngine(self.registry)
        #: the batch whose transaction runs (its task returns the evaluation it adopted, None
        #: when it was quarantined), with its prepared batch
        self._inflight: tuple[asyncio.Task[Evaluation | None], _Prepared] | None = None

    async def __aenter__(self) -> BatchWriter:
        conn = await self._connection()
        self.registry = await load_registry_async(conn)
        self.points = PointResolver(self.registry)
        self._loaded_at = time.monotonic()
        self.engine = AlarmEngine(self.registry)
        self.engine.restore(*await load_engine_state(conn))
        self.engine.restore_incidents(*await load_incident_state(conn))
        await self._load_watermarks(conn)
        await conn.rollback()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self._inflight is not None and exc[0] is None:
                await self.drain()
        finally:
            if self._inflight is not None:  # leaving on an error: nothing more is acknowledged
                self._inflight[0].cancel()
                with contextlib.suppress(BaseException):
                    await self._inflight[0]
                self._inflight = None
            await self._close()

    # -- the dedup decision belongs to the writer: it knows what is durable -----------------

    def accepts(self, pending: PendingWrite, message: SafetyMessage) -> bool:
        """Whether ``message`` is new for its source (not a redelivery); counts gaps."""
        inflight = self._inflight[1].pending.watermarks if self._inflight is not None else None
        mark = (message.boot, message.seq)
        missing = self.is_new(pending.watermarks, message.source, mark, inflight)
        if missing:
            self._metrics.sequence_gaps.inc(missing)
        return missing is not None

    async def maybe_refresh_registry(self) -> None:
        if time.monotonic() - self._loaded_at >= self._refresh_s:
            await self.refresh_registry()

    async def refresh_registry(self) -> None:
        await self.drain()
        conn = await self._connection()
        self.registry = await load_registry_async(conn)
        self.points = PointResolver(self.registry)
        await conn.rollback()
        self._loaded_at = time.monotonic()
        self.engine.use_registry(self.registry)

    async def apply_definition(self, definition: MineDefinition) -> None:
        await self.drain()
        await self._retrying(lambda conn: self._apply_definition(conn, definition))
        await self.refresh_registry()

    async def _apply_definition(
        self, conn: psycopg.AsyncConnection, definition: MineDefinition
    ) -> None:
        async with conn.transaction():
            await upsert_mine_async(conn, definition)

    # -- the clock ----------------------------------------------------------------------------

    async def tick(self) -> None:
        """Clock-driven alarm checks: data interruption (stored like a batch's changes) and
        escalation of alarms left unacknowledged past their grade's deadline."""
        await self.drain()
        evaluation = self.engine.tick(now_us())
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
        """Make ``pending`` durable (retrying transient failures forever), then acknowledge it
        (after the batch in flight, if any)."""
        await self.submit(pending)
        await self.drain()

    async def submit(self, pending: PendingWrite) -> None:
        """Start making ``pending`` durable behind the batch in flight (see the module's
        docstring): prepared now, its transaction started once the one in flight has ended.
        Returns when it is in flight; :meth:`drain` waits for it."""
        if not pending:
            return
        started = time.monotonic()
        ahead = self._inflight[1].evaluation if self._inflight is not None else None
        prepared = self._prepare(pending, ahead, started)
        adopted = await self.drain()
        if ahead is not None and adopted is not ahead:  # the batch ahead was quarantined
            prepared = self._prepare(pending, None, started)
        task = asyncio.create_task(self._commit(prepared), name="write-transaction")
        self._inflight = (task, prepared)

    async def drain(self) -> Evaluation | None:
        """Wait for the batch in flight to end (committed and acknowledged, or quarantined);
        the evaluation its commit adopted (None: none in flight, or quarantined)."""
        if self._inflight is None:
            return None
        task = self._inflight[0]
        try:
            # shielded: a cancelled caller (the gateway stopping) flushes again on its way
            # out, and that flush waits for this same transaction
            return await asyncio.shield(task)
        finally:
            if task.done() and self._inflight is not None and self._inflight[0] is task:
                self._inflight = None

    def _prepare(
        self, pending: PendingWrite, ahead: Evaluation | None, started: float
    ) -> _Prepared:
        """Validate, evaluate (on top of ``ahead``, the batch in flight, when given) and
        encode: the Python work of a write, done while the database works on the batch
        ahead."""
        batch, refused = validate_messages(pending.messages, self.points, now_us(), self._limits)
        pending.rejections.extend(refused)
        evaluation = self.engine.evaluate(batch, after=ahead)
        stored = batch.with_flags(evaluation.flags)
        copy = encode_readings(stored) if len(stored) else b""
        return _Prepared(pending, batch, evaluation, copy, started)

    async def _commit(self, prepared: _Prepared) -> Evaluation | None:
        """The batch's transaction (retried until durable; quarantined if refused), then its
        alarm state adopted and its messages acknowledged."""
        pending = prepared.pending
        try:
            evaluation: Evaluation | None = await self._retrying(
                lambda conn: self._write(conn, prepared)
            )
        except psycopg.Error as error:  # permanent: keep the data aside, never drop it
            log.error("write refused by the database (%s); quarantining the batch", error)
            refusal = str(error)
            await self._retrying(lambda conn: self._quarantine_all(conn, pending, refusal))
            evaluation = None
        if evaluation is not None:
            self.engine.commit(evaluation)
            self._metrics.readings_stored.inc(len(prepared.batch))
        self.watermarks.update(pending.watermarks)
        for rejection in pending.rejections:
            self._metrics.quarantined.labels(rejection.reason.value).inc()
        _tell_refusals(pending)
        acks, pending.acks = pending.acks, []  # a pending write is flushed once, whoever
        for ack in acks:  # holds it (a cancelled caller may hand the same one in again)
            ack()
        done = time.monotonic()
        self._metrics.flushes.observe(done - prepared.started)
        if pending.first_received_at is not None:
            self._metrics.lag.set(asyncio.get_running_loop().time() - pending.first_received_at)
        return evaluation

    async def _write(self, conn: psycopg.AsyncConnection, prepared: _Prepared) -> Evaluation:
        pending, evaluation = prepared.pending, prepared.evaluation
        async with conn.transaction(), conn.cursor() as cur:
            if await committed_before(cur, pending.watermarks):
                return evaluation
            if prepared.copy:
                async with cur.copy(COPY_READINGS_SQL) as copy:
                    await copy.write(prepared.copy)
            await write_rejections(cur, pending.rejections)
            await write_watermarks(cur, pending.watermarks)
            await write_changes(cur, evaluation.changes, self.registry, evaluation.incidents)
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
