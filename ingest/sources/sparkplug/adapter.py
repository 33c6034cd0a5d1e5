"""MQTT source for Sparkplug B edge nodes: the same deliveries as the JSON contract's source.

A thin adapter around :class:`ingest.sources.sparkplug.SparkplugHost` (the sans-IO session): it
connects as a Sparkplug 3.0 Primary Host Application (its STATE Will, then subscriptions to
``spBv1.0/<mine>/+/#`` for the configured mines and to its own STATE topic, then its STATE
birth), hands every message to the host, stores the births the host reports
(:class:`.store.BirthStore`), yields readings and refusals as
:class:`~ingest.sources.base.Delivery` objects (acknowledged once durable, like
:class:`~..mqtt_json.adapter.MqttJsonSource`), passes interruption events to ``on_event``
and publishes the rebirth requests (NCMD) the host asks for. See docs/sparkplug.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import aiomqtt

from minewatch.backoff import Backoff
from minewatch.broker_auth import login_options
from minewatch.feeds import broker_address
from minewatch.ingest.metrics import GatewayMetrics
from minewatch.ingest.sources.base import Delivery, Source, SourceContext
from minewatch.ingest.sources.mqtt_json.adapter import _ManualAck
from minewatch.ingest.sources.sparkplug import (
    DataInterruption,
    RebirthRequest,
    SourceEvent,
    SparkplugHost,
    subscription,
)
from minewatch.ingest.sources.sparkplug.host_state import (
    STATE_QOS,
    STATE_RETAIN,
    HostState,
    must_answer,
    parse_state,
)
from minewatch.ingest.sources.sparkplug.metric_map import MetricMap
from minewatch.ingest.sources.sparkplug.nodes import HostOutput
from minewatch.ingest.sources.sparkplug.settings import SparkplugSettings
from minewatch.ingest.sources.sparkplug.store import BirthStore
from minewatch.ingest.sources.sparkplug.topic import state_topic, valid_host_id
from minewatch.retry import resume_cancellation, stop_if_cancelled
from minewatch.settings import GatewaySettings

__all__ = ["SourceEvent", "SparkplugHost", "SparkplugSource"]

log = logging.getLogger(__name__)

#: How long a clean shutdown waits for the broker to take the offline STATE.
_OFFLINE_TIMEOUT_S = 3.0


def _log_event(event: SourceEvent) -> None:
    if isinstance(event, DataInterruption):
        log.warning("sparkplug source %s interrupted: %s (%s)", event.source, event.cause,
                    event.detail)  # fmt: skip
    else:
        log.info("sparkplug source %s resumed (boot %d)", event.source, event.boot)


def _no_ack() -> None:
    """Deliveries before the last one of a message: the last one carries the real ack."""


class SparkplugSource(Source):
    """Yields :class:`Delivery` objects forever, reconnecting with backoff.

    ``host_id`` is the Sparkplug Host ID of the STATE topic (default: ``client_id``);
    ``database_url`` enables stored births (unset: a restarted gateway knows no births).
    """

    def __init__(
        self,
        url: str,
        client_id: str,
        groups: list[str],
        max_message_bytes: int,
        *,
        host_id: str | None = None,
        database_url: str | None = None,
        on_event: Callable[[SourceEvent], None] = _log_event,
        rebirth_retry_s: float = 10.0,
        clock: Callable[[], float] = time.time,
        metric_map: MetricMap | None = None,
    ) -> None:
        self._host_name, self._port = broker_address(url)
        self._login = login_options(url)
        self._client_id = client_id
        self._groups = groups
        self.host_id = client_id if host_id is None else host_id
        if not valid_host_id(self.host_id):
            raise ValueError(f"Sparkplug host id {self.host_id!r} is not one topic level")
        self.state_topic = state_topic(self.host_id)
        self._database_url = database_url
        self._on_event = on_event
        self._clock = clock
        self.host = SparkplugHost(
            max_message_bytes=max_message_bytes, rebirth_retry_ms=int(rebirth_retry_s * 1000),
            metric_map=metric_map,
        )  # fmt: skip
        self._refusals: Callable[[str], None] = lambda kind: None
        self.refusals = 0  # births and deaths refused (also in /metrics once bound)
        self._client: aiomqtt.Client | None = None
        self._generation = 0
        self._birth_ms = 0  # the timestamp of the current connection's Will and STATE birth
        self.connected = asyncio.Event()

    def _generation_now(self) -> int:
        return self._generation

    def bind_metrics(self, metrics: GatewayMetrics, name: str) -> None:
        """Refused births and deaths: ``minewatch_sparkplug_refusals_total{source,kind}``."""
        counter = metrics.sparkplug_refusals
        self._refusals = lambda kind: counter.labels(name, kind).inc()

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def request_rebirth(self, request: RebirthRequest) -> None:
        """Publish an NCMD rebirth request (QoS 0, not retained, as the specification asks)."""
        if self._client is None:
            raise aiomqtt.MqttError("not connected to the broker")
        await self._client.publish(request.topic, request.payload(self._now_ms()), qos=0)
        log.info("asked %s/%s to rebirth: %s", request.group, request.edge_node, request.reason)

    async def deliveries(self) -> AsyncIterator[Delivery]:
        async with contextlib.AsyncExitStack() as stack:
            store = None
            if self._database_url is not None:
                store = await stack.enter_async_context(BirthStore(self._database_url))
                alive = self.host.restore(await store.load(self._groups))
                log.info("restored %d living sparkplug source(s) from stored births", alive)
            async for delivery in self._connections(store):
                yield delivery

    async def _connections(self, store: BirthStore | None) -> AsyncIterator[Delivery]:
        backoff = Backoff()
        while True:
            # Sparkplug 3.0 §4.2.3: the Will is the offline STATE stamped with the CONNECT's
            # time, and the birth after subscribing carries that same timestamp.
            self._birth_ms = self._now_ms()
            will = aiomqtt.Will(
                self.state_topic,
                HostState(False, self._birth_ms).payload(),
                qos=STATE_QOS,
                retain=STATE_RETAIN,
            )
            client = aiomqtt.Client(
                self._host_name,
                self._port,
                identifier=self._client_id,
                clean_session=False,  # see docs/sparkplug.md: a deliberate deviation
                keepalive=30,
                will=will,
                **self._login,
            )
            manual = _ManualAck(client)  # before connecting, or queued messages are auto-acked
            try:
                async with (
                    client,
                    contextlib.aclosing(self._session(client, manual, store)) as session,
                ):
                    backoff.reset()
                    async for delivery in session:
                        yield delivery
            except aiomqtt.MqttError as exc:
                stop_if_cancelled(exc)
                self.connected.clear()
                delay = backoff.next_delay()
                log.warning("broker connection lost (%s); reconnecting in %.1fs", exc, delay)
                await asyncio.sleep(delay)

    async def _session(
        self, client: aiomqtt.Client, manual: _ManualAck, store: BirthStore | None
    ) -> AsyncGenerator[Delivery[Any], None]:
        """One connection: subscribe, announce, then turn every message into deliveries."""
        loop = asyncio.get_running_loop()
        self._generation += 1
        generation = self._generation
        # §5.3: subscribe to the namespace and to our own STATE topic, then publish the birth.
        filters = [(subscription(group), 1) for group in self._groups]
        await client.subscribe([*filters, (self.state_topic, STATE_QOS)])
        await self._publish_state(client, HostState(True, self._birth_ms))
        self._client = client
        self.connected.set()
        log.info("sparkplug host %r online at %s:%s as %s",
                 self.host_id, self._host_name, self._port, self._client_id)  # fmt: skip
        resume_cancellation()  # one lost while subscribing or announcing
        try:
            async for message in client.messages:
                resume_cancellation()
                payload = message.payload
                data = payload if isinstance(payload, bytes) else str(payload).encode()
                ack = manual.ack_function(
                    message.mid, message.qos, generation, self._generation_now
                )
                topic = message.topic.value
                if topic == self.state_topic:
                    await self._own_state(client, data, retained=message.retain)
                    ack()
                    continue
                output = self.host.receive(topic, data, self._now_ms())
                await self._act(output, store)
                if not output.messages:
                    ack()  # commands, stale deaths, host states: nothing to make durable
                    continue
                last = len(output.messages) - 1
                for index, item in enumerate(output.messages):
                    yield Delivery(item, ack if index == last else _no_ack, loop.time())
        except (asyncio.CancelledError, GeneratorExit):
            await self._announce_offline(client)  # a clean stop: say so before DISCONNECT
            raise
        finally:
            self._client = None

    async def _act(self, output: HostOutput, store: BirthStore | None) -> None:
        """Events, rebirth requests and births of one message, before its readings go on."""
        for kind, text in output.warnings:
            # a refused birth leaves the node unborn; an NDEATH of an earlier session is normal
            # after a clean disconnect of some edge nodes (pysparkplug's carries the next bdSeq)
            log.log(logging.INFO if kind == "NDEATH" else logging.WARNING, "%s", text)
            self.refusals += 1
            self._refusals(kind)
        for event in output.events:
            self._on_event(event)
        for request in output.commands:
            await self.request_rebirth(request)
        if store is not None and output.births:
            try:
                await store.save(output.births)
            except Exception:  # a permanent refusal: data still flows, a restart maps less
                log.exception("could not store sparkplug births of %s",
                              [b.source for b in output.births])  # fmt: skip

    async def _publish_state(self, client: aiomqtt.Client, state: HostState) -> None:
        await client.publish(self.state_topic, state.payload(), qos=STATE_QOS, retain=STATE_RETAIN)

    async def _own_state(self, client: aiomqtt.Client, data: bytes, *, retained: bool) -> None:
        """§5.3: an offline STATE of ours while we are connected is answered at once."""
        if must_answer(parse_state(data), retained=retained, birth_ms=self._birth_ms):
            # Also the offline of our own previous connection, queued in the persistent
            # session: answering it costs one message, guessing wrong would leave us offline.
            log.info("offline STATE seen on %s while online: publishing online again",
                     self.state_topic)  # fmt: skip
            await self._publish_state(client, HostState(True, self._now_ms()))

    async def _announce_offline(self, client: aiomqtt.Client) -> None:
        """§4.2.3: before a clean DISCONNECT, the offline STATE stamped with the time of it."""
        stamp = max(self._now_ms(), self._birth_ms)
        try:
            async with asyncio.timeout(_OFFLINE_TIMEOUT_S):
                await self._publish_state(client, HostState(False, stamp))
        except (aiomqtt.MqttError, TimeoutError) as exc:
            log.warning("could not publish the offline STATE (%s); the Will will say it", exc)


def create(gateway: GatewaySettings, context: SourceContext) -> SparkplugSource | None:
    """The registry's factory: a Primary Host for the configured groups, keeping its births in
    the database when there is one."""
    settings = SparkplugSettings.from_gateway(gateway)
    if settings is None:
        return None
    metric_map = None if settings.map_file is None else MetricMap.load(settings.map_file)
    return SparkplugSource(
        context.mqtt_url, settings.client_id, list(settings.groups), settings.max_message_bytes,
        host_id=settings.host_id, database_url=context.database_url, metric_map=metric_map,
    )  # fmt: skip
