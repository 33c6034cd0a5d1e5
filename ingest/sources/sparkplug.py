"""MQTT source for Sparkplug B edge nodes: the same deliveries as the JSON contract's source.

A thin adapter around :class:`ingest.sparkplug.SparkplugHost` (the sans-IO session): it
subscribes at QoS 1 to ``spBv1.0/<mine>/+/#`` for the configured mines with a persistent
session, hands every message to the host, yields its readings and refusals as
:class:`~ingest.sources.mqtt_json.Delivery` objects (acknowledged once durable, like
:class:`~ingest.sources.mqtt_json.MqttJsonSource`), passes interruption events to ``on_event``
and publishes the rebirth requests (NCMD) the host asks for. See docs/sparkplug.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

import aiomqtt

from ingest.backoff import Backoff
from ingest.sources.mqtt_json import Delivery, _ManualAck
from ingest.sparkplug import (
    DataInterruption,
    RebirthRequest,
    SourceEvent,
    SparkplugHost,
    subscription,
)
from minewatch.feeds import broker_address

__all__ = ["SourceEvent", "SparkplugHost", "SparkplugSource"]

log = logging.getLogger(__name__)


def _log_event(event: SourceEvent) -> None:
    if isinstance(event, DataInterruption):
        log.warning("sparkplug source %s interrupted: %s (%s)", event.source, event.cause,
                    event.detail)  # fmt: skip
    else:
        log.info("sparkplug source %s resumed (boot %d)", event.source, event.boot)


def _no_ack() -> None:
    """Deliveries before the last one of a message: the last one carries the real ack."""


class SparkplugSource:
    """Yields :class:`Delivery` objects forever, reconnecting with backoff."""

    def __init__(
        self,
        url: str,
        client_id: str,
        groups: list[str],
        max_message_bytes: int,
        *,
        on_event: Callable[[SourceEvent], None] = _log_event,
        rebirth_retry_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._host_name, self._port = broker_address(url)
        self._client_id = client_id
        self._groups = groups
        self._on_event = on_event
        self._clock = clock
        self.host = SparkplugHost(
            max_message_bytes=max_message_bytes, rebirth_retry_ms=int(rebirth_retry_s * 1000)
        )
        self._client: aiomqtt.Client | None = None
        self._generation = 0
        self.connected = asyncio.Event()

    def _generation_now(self) -> int:
        return self._generation

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def request_rebirth(self, request: RebirthRequest) -> None:
        """Publish an NCMD rebirth request (QoS 0, not retained, as the specification asks)."""
        if self._client is None:
            raise aiomqtt.MqttError("not connected to the broker")
        await self._client.publish(request.topic, request.payload(self._now_ms()), qos=0)
        log.info("asked %s/%s to rebirth: %s", request.group, request.edge_node, request.reason)

    async def deliveries(self) -> AsyncIterator[Delivery]:
        backoff = Backoff()
        while True:
            client = aiomqtt.Client(
                self._host_name,
                self._port,
                identifier=self._client_id,
                clean_session=False,
                keepalive=30,
            )
            manual = _ManualAck(client)  # before connecting, or queued messages are auto-acked
            try:
                async with client, contextlib.aclosing(self._session(client, manual)) as session:
                    backoff.reset()
                    async for delivery in session:
                        yield delivery
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                delay = backoff.next_delay()
                log.warning("broker connection lost (%s); reconnecting in %.1fs", exc, delay)
                await asyncio.sleep(delay)

    async def _session(self, client: aiomqtt.Client, manual: _ManualAck) -> AsyncIterator[Delivery]:
        """One connection: subscribe, then turn every message into deliveries and commands."""
        loop = asyncio.get_running_loop()
        self._generation += 1
        generation = self._generation
        for group in self._groups:
            await client.subscribe(subscription(group), qos=1)
        self._client = client
        self.connected.set()
        log.info("sparkplug host connected to %s:%s as %s",
                 self._host_name, self._port, self._client_id)  # fmt: skip
        try:
            async for message in client.messages:
                payload = message.payload
                data = payload if isinstance(payload, bytes) else str(payload).encode()
                output = self.host.receive(message.topic.value, data, self._now_ms())
                for event in output.events:
                    self._on_event(event)
                for request in output.commands:
                    await self.request_rebirth(request)
                ack = manual.ack_function(
                    message.mid, message.qos, generation, self._generation_now
                )
                if not output.messages:
                    ack()  # commands, stale deaths, host states: nothing to make durable
                    continue
                last = len(output.messages) - 1
                for index, item in enumerate(output.messages):
                    yield Delivery(item, ack if index == last else _no_ack, loop.time())
        finally:
            self._client = None
