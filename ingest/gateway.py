"""The gateway: source -> parse -> validate -> store + evaluate -> acknowledge.

Two tasks with one owner each, joined by a bounded queue:
- *receive* pulls deliveries from the broker and parses them (CPU work, no database);
- *write* validates, deduplicates and accumulates them, and flushes a write batch when it is
  large enough or old enough.
The broker's in-flight window (messages not yet acknowledged) bounds what the gateway holds;
the queue bound is the second line. Cancelling the gateway flushes what was accumulated,
so what was acknowledged is durable and what was not is redelivered: nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from prometheus_client import Counter

from minewatch.alarms.fusion_store import FusionEvaluator
from minewatch.alarms.live import AlarmBroadcaster
from minewatch.alarms.mqtt_publisher import publish_alarms
from minewatch.alarms.rules.params import RuleDefaults
from minewatch.ingest.batching import batch_loop
from minewatch.ingest.contract import MetaMessage, OtherFeed, SafetyMessage
from minewatch.ingest.directives import DirectiveRelay
from minewatch.ingest.feeds import FeedPipeline, FeedSettings
from minewatch.ingest.feeds.contract import FeedBatch, PersonnelMeta
from minewatch.ingest.headcount_publisher import publish_headcounts
from minewatch.ingest.metrics import GatewayMetrics, metrics_endpoint
from minewatch.ingest.national_file_publisher import publish_national_files
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.sources.base import Delivery, Source
from minewatch.ingest.sources.national.copies import FileCopy
from minewatch.ingest.sources.national.report_store import ReportSink
from minewatch.ingest.sources.national.reports import NationalReport
from minewatch.ingest.sources.registry import configured_sources
from minewatch.ingest.statistics_publisher import publish_statistics
from minewatch.ingest.summary_store import SummaryStore
from minewatch.ingest.time_limits import TimeLimits
from minewatch.ingest.writer import BatchWriter, PendingWrite
from minewatch.settings import GatewaySettings

log = logging.getLogger(__name__)


class Gateway:
    def __init__(
        self,
        settings: GatewaySettings,
        database_url: str,
        mqtt_url: str,
        metrics: GatewayMetrics | None = None,
        feeds: FeedSettings | None = None,
        sources: list[Source] | None = None,
    ) -> None:
        self.settings = settings
        self._database_url = database_url
        self._mqtt_url = mqtt_url
        self.metrics = metrics or GatewayMetrics()
        if sources is None:
            sources = configured_sources(settings, mqtt_url, database_url)
        self.sources = sources
        limits = TimeLimits(
            int(settings.max_future_skew_s * 1e6), int(settings.max_past_age_s * 1e6)
        )
        defaults = RuleDefaults(allowed_lateness_s=settings.allowed_lateness_s)
        self._writer = BatchWriter(
            database_url, self.metrics, settings.registry_refresh_s, limits, defaults
        )
        # Personnel and video travel on their own topics, tables and MQTT session.
        feeds = feeds or FeedSettings()
        if feeds.client_id is None:
            feeds = feeds.model_copy(update={"client_id": f"{settings.client_id}-feeds"})
        self.feeds = FeedPipeline(feeds, database_url, mqtt_url)
        # What the national files report besides readings and definitions (FZSS, YCBJ...).
        self.reports = ReportSink(database_url)
        # Fused alarms (gas x people x cameras x fans), on the clock of the clock-driven checks.
        self.fusion = (
            FusionEvaluator(database_url, settings.tick_s,
                            lateness_us=round(settings.allowed_lateness_s * 1e6))
            if settings.tick_s else None
        )  # fmt: skip
        self.ready = asyncio.Event()
        self._held = PendingWrite()  # the write batch being accumulated (the pending gauge)
        self._arrived_at = float("-inf")  # loop time of the last safety delivery queued
        # Counters of every safety message, their labelled children looked up once (_accept)
        self._safety_messages = self.metrics.messages.labels("safety")
        self._readings_in: dict[str, Counter] = {}  # mine -> minewatch_readings_in_total{mine}

    async def run(self) -> None:
        """Run until cancelled."""
        queue: asyncio.Queue[Delivery[Any]] = asyncio.Queue(
            maxsize=self.settings.max_inflight_messages
        )
        endpoint = metrics_endpoint(
            self.metrics.registry, self.settings.metrics_host, self.settings.metrics_port
        )
        # Read when scraped, so an idle gateway shows 0, not its last busy moment.
        self.metrics.pending.set_function(lambda: queue.qsize() + len(self._held.acks))
        with endpoint:
            await self._run(queue)

    async def _run(self, queue: asyncio.Queue[Delivery[Any]]) -> None:
        async with self._writer, asyncio.TaskGroup() as tasks:
            for i, source in enumerate(self.sources):
                name = f"{source.__class__.__name__}-{i}"
                source.bind_metrics(self.metrics, name)
                tasks.create_task(
                    self._receive(source.deliveries(), queue, name), name=f"receive-{i}"
                )
            tasks.create_task(self._write(queue), name="write")
            tasks.create_task(self.feeds.run(), name="feeds")
            tasks.create_task(self.reports.run(), name="national-reports")
            if self.fusion is not None:
                tasks.create_task(self.fusion.run(), name="alarm-fusion")
            if self.settings.publish_alarms:
                tasks.create_task(self._publish_alarms(), name="alarm-publisher")
            if self.settings.installation is not None:
                relay = DirectiveRelay(
                    self._database_url, self._mqtt_url, f"{self.settings.client_id}-directives",
                    self.settings.installation,
                )  # fmt: skip
                tasks.create_task(relay.run(), name="directives")
                summaries = SummaryStore(
                    self._database_url, self._mqtt_url, f"{self.settings.client_id}-summaries",
                    {self.settings.installation},
                )  # fmt: skip
                tasks.create_task(summaries.run(), name="summaries-in")
                if self.settings.publish_statistics:
                    tasks.create_task(publish_statistics(
                        self._database_url, self._mqtt_url,
                        f"{self.settings.client_id}-statistics", self.settings.installation,
                    ), name="statistics-out")  # fmt: skip
                    tasks.create_task(publish_headcounts(
                        self._database_url, self._mqtt_url,
                        f"{self.settings.client_id}-headcounts", self.settings.installation,
                        settle_s=self.settings.allowed_lateness_s,
                    ), name="headcounts-out")  # fmt: skip
                if self.settings.files_root is not None:  # its files, byte for byte
                    tasks.create_task(publish_national_files(
                        self._database_url, self._mqtt_url,
                        f"{self.settings.client_id}-files", self.settings.installation,
                        max_message_bytes=self.settings.files_up_message_bytes,
                    ), name="national-files-out")  # fmt: skip
            for source in self.sources:
                await source.connected.wait()
            await self.feeds.ready.wait()
            self.ready.set()

    async def _receive(
        self,
        deliveries: AsyncIterator[Delivery[Any]],
        queue: asyncio.Queue[Delivery[Any]],
        source: str,
    ) -> None:
        # Closing the source's generator here, when this task is cancelled, runs its cleanup
        # (e.g. Sparkplug's offline STATE) now rather than whenever Python finalises it.
        # The labelled children are looked up once: ``labels()`` per message was 4 % of the
        # gateway's event-loop samples in bench.ingest (issue 14).
        messages = self.metrics.source_messages.labels(source)
        readings = self.metrics.source_readings.labels(source)
        async with _closing(deliveries) as stream:
            async for delivery in stream:
                messages.inc()
                if isinstance(delivery.message, SafetyMessage):
                    readings.inc(len(delivery.message))
                await self._route(delivery, queue)

    async def _route(self, delivery: Delivery[Any], queue: asyncio.Queue[Delivery[Any]]) -> None:
        # Personnel batches and definitions (from the file inbox) go to the feed pipeline.
        feed = isinstance(delivery.message, FeedBatch | PersonnelMeta)
        target = self.feeds.queue if feed else queue
        if isinstance(delivery.message, NationalReport | FileCopy):  # from the file inbox too
            target = self.reports.queue
        await target.put(delivery)  # blocks when the writer falls behind: backpressure
        if target is queue:
            self._arrived_at = asyncio.get_running_loop().time()  # _tick: caught up?

    async def _publish_alarms(self) -> None:
        async with AlarmBroadcaster(self._database_url) as broadcaster:
            await publish_alarms(
                self._database_url, broadcaster, self._mqtt_url,
                f"{self.settings.client_id}-alarms", self.settings.installation,
                on_published=self.metrics.commit_to_notify.observe,
            )  # fmt: skip

    async def _write(self, queue: asyncio.Queue[Delivery[Any]]) -> None:
        max_readings = self.settings.batch_max_readings
        await batch_loop(
            queue,
            empty=PendingWrite,
            accept=self._accept,
            flush=self._flush,
            is_full=lambda pending: pending.readings >= max_readings,
            max_delay_s=self.settings.batch_max_delay_ms / 1000,
            tick=(lambda: self._tick(queue)) if self.settings.tick_s else None,
            tick_s=self.settings.tick_s or 0.0,
            stop_flush_s=self.settings.stop_flush_s,
        )

    async def _tick(self, queue: asyncio.Queue[Delivery[Any]]) -> None:
        """The writer's clock tick, told whether the gateway may be behind (docs/alarms.md,
        data interruption). Caught up: the queue is empty and no safety delivery arrived for
        a tick interval. A queue that is merely empty proves nothing: the broker delivers a
        session's backlog a window at a time (its QoS 1 in-flight limit), after the previous
        window is acknowledged, so right after a flush the queue is often empty while the
        broker still holds many cycles; readings the wall clock would take for silence."""
        await asyncio.sleep(0)  # let the sources hand over what they already received
        quiet_s = asyncio.get_running_loop().time() - self._arrived_at
        idle = queue.empty() and quiet_s >= (self.settings.tick_s or 0.0)
        await self._writer.tick(behind=not idle)

    async def _flush(self, pending: PendingWrite) -> PendingWrite:
        await self._writer.flush(pending)
        await self._writer.maybe_refresh_registry()
        self._held = PendingWrite()
        return self._held

    async def _accept(self, delivery: Delivery, pending: PendingWrite) -> PendingWrite:
        message = delivery.message
        match message:
            case OtherFeed():  # personnel/video/alarms: their own client stores them
                self.metrics.messages.labels("other_feed").inc()
            case Rejection():
                self.metrics.messages.labels("rejected").inc()
                pending.rejections.append(message)  # kept, even if its seq was seen
                if message.numbered is not None:  # it arrived: no sequence gap
                    source, boot, seq = message.numbered
                    self._writer.refused_arrived(source, (boot, seq))
            case MetaMessage():
                self.metrics.messages.labels("meta").inc()
                pending = await self._flush(pending)  # definitions apply in arrival order
                try:
                    await self._writer.apply_definition(message.definition)
                except Exception as error:  # a permanent database refusal of the definition
                    log.error("mine definition refused: %s", error)
                    pending.rejections.append(
                        Rejection(message.source, QuarantineReason.INVALID_METADATA, str(error),
                                  message.definition.model_dump_json().encode())
                    )  # fmt: skip
            case SafetyMessage():
                self._safety_messages.inc()
                readings_in = self._readings_in.get(message.mine)
                if readings_in is None:
                    readings_in = self.metrics.readings_in.labels(message.mine)
                    self._readings_in[message.mine] = readings_in
                readings_in.inc(len(message))
                if not self._writer.accepts(pending, message):
                    self.metrics.duplicates.inc()
                else:  # validated with the whole write batch, at flush
                    pending.messages.append(message)
                    pending.readings += len(message)
                    pending.received_at.append(delivery.received_at)
                    if delivery.refused is not None:
                        pending.refusal_listeners[message.source] = delivery.refused
        pending.acks.append(delivery.ack)
        pending.note_received(delivery.received_at)
        self._held = pending
        return pending


@contextlib.asynccontextmanager
async def _closing(
    deliveries: AsyncIterator[Delivery[Any]],
) -> AsyncIterator[AsyncIterator[Delivery[Any]]]:
    """Close a source's deliveries when its task ends (an async generator has ``aclose``)."""
    try:
        yield deliveries
    finally:
        aclose = getattr(deliveries, "aclose", None)
        if aclose is not None:
            await aclose()
