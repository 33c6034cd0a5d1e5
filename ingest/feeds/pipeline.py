"""The feed pipeline: source -> parse -> dedup + screen -> store -> acknowledge, plus the
camera watchdog and, every ``watchdog_interval_s``, the clock-driven alarm checks. Same shape
as :class:`ingest.gateway.Gateway` (receive and write tasks joined by a bounded queue, flush on
size or age, flush what was accumulated when cancelled), so the gateway can run it as one more
task in its TaskGroup.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from minewatch.ingest.batching import batch_loop
from minewatch.ingest.feeds.contract import CommsMeta, FeedBatch, PersonnelMeta, VideoMeta
from minewatch.ingest.feeds.screening import screen
from minewatch.ingest.feeds.source import FeedDelivery, feed_source
from minewatch.ingest.feeds.watchdog import CameraWatchdog
from minewatch.ingest.feeds.writer import FeedPending, FeedWriter
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.time_limits import TimeLimits
from minewatch.settings import FeedSettings
from minewatch.timeutil import now_us

log = logging.getLogger(__name__)


class FeedPipeline:
    def __init__(
        self, settings: FeedSettings, database_url: str, mqtt_url: str,
        clock: Callable[[], int] = now_us,
    ) -> None:  # fmt: skip
        self.settings = settings
        self.source = feed_source(
            mqtt_url,
            settings.client_id or "minewatch-feeds",
            settings.topics,
            settings.max_message_bytes,
        )
        self.writer = FeedWriter(database_url, settings.heartbeat_timeout_s)
        self.watchdog = CameraWatchdog(
            database_url, settings.heartbeat_timeout_s, settings.watchdog_interval_s, clock
        )
        self._clock = clock
        self._limits = TimeLimits(
            int(settings.max_future_skew_s * 1e6), int(settings.max_past_age_s * 1e6)
        )
        self.ready = asyncio.Event()
        # Other sources (the national file inbox) hand personnel batches in here.
        self.queue: asyncio.Queue[FeedDelivery] = asyncio.Queue(settings.max_inflight_messages)
        self.flushed = 0  # write batches committed (tests wait on it)
        self.ticks = 0  # clock-driven alarm checks done

    async def run(self) -> None:
        """Run until cancelled."""
        queue = self.queue
        async with self.writer, asyncio.TaskGroup() as tasks:
            tasks.create_task(self._receive(self.source.deliveries(), queue), name="feeds-receive")
            tasks.create_task(self._write(queue), name="feeds-write")
            tasks.create_task(self.watchdog.run(), name="camera-watchdog")
            await self.source.connected.wait()
            self.ready.set()

    async def _receive(
        self, deliveries: AsyncIterator[FeedDelivery], queue: asyncio.Queue[FeedDelivery]
    ) -> None:
        async for delivery in deliveries:
            await queue.put(delivery)  # blocks when the writer falls behind: backpressure

    async def _write(self, queue: asyncio.Queue[FeedDelivery]) -> None:
        max_rows = self.settings.batch_max_rows
        await batch_loop(
            queue,
            empty=FeedPending,
            accept=self._accept,
            flush=self._flush,
            is_full=lambda pending: pending.rows >= max_rows,
            max_delay_s=self.settings.batch_max_delay_ms / 1000,
            tick=self._tick,
            tick_s=self.settings.watchdog_interval_s,
        )

    async def _tick(self) -> None:
        """Clock-driven alarms (overtime while nobody reports, output over capacity), in the
        writer's task: the alarm state has one owner."""
        await self.writer.tick(self._clock())
        self.ticks += 1

    async def _flush(self, pending: FeedPending) -> FeedPending:
        if pending:
            await self.writer.flush(pending, self._clock())
            self.flushed += 1
        return FeedPending()

    async def _accept(self, delivery: FeedDelivery, pending: FeedPending) -> FeedPending:
        message = delivery.message
        match message:
            case Rejection():
                pending.rejections.append(message)
            case PersonnelMeta() | VideoMeta() | CommsMeta():
                pending = await self._flush(pending)  # definitions apply in arrival order
                try:
                    await self.writer.apply_meta(message)
                except Exception as error:  # a permanent database refusal of the definition
                    log.error("%s definition refused: %s", message.source, error)
                    pending.rejections.append(Rejection(
                        message.source, QuarantineReason.INVALID_METADATA, str(error)[:2000],
                        message.document.model_dump_json().encode(),
                    ))  # fmt: skip
            case FeedBatch():
                if self.writer.accepts(pending, message):
                    pending.add(*screen(message, self._clock(), self._limits))
        pending.acks.append(delivery.ack)
        pending.note_received(delivery.received_at)
        return pending
