"""MQTT source for the JSON contract: QoS 1, persistent session, acknowledged only once durable.

aiomqtt 2.5 has no public manual acknowledgement; its paho client has. The private uses of
the paho client are confined to :class:`_ManualAck`. With a fixed client id and
``clean_session=False`` the broker redelivers every unacknowledged message after a reconnect or
a crash (docs/ingest.md).

aiomqtt's message iterator creates a task and an ``asyncio.wait`` for every message, which cost
more CPU than paho's whole packet handling (about 35-50 of 55-75 us per 1.7 kB message, measured
draining a backlog); the loop here waits through that iterator only when nothing is queued and
takes what aiomqtt has already received without waiting. That use of aiomqtt's private incoming
queue is confined to :class:`_Received`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

import aiomqtt

from minewatch.backoff import Backoff
from minewatch.broker_auth import login_options
from minewatch.feeds import broker_address
from minewatch.ingest.contract import ParsedMessage, parse_message
from minewatch.ingest.sources.base import Ack, Delivery, Source, SourceContext
from minewatch.ingest.sources.mqtt_json.settings import MqttJsonSettings
from minewatch.retry import resume_cancellation, stop_if_cancelled
from minewatch.settings import GatewaySettings

log = logging.getLogger(__name__)

M = TypeVar("M")

#: Turns (topic, payload, max bytes) into a parsed message or a rejection; never raises.
Parser = Callable[[str, bytes, int], M]


class _ManualAck:
    """The one place that touches aiomqtt's private paho client."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self._paho = client._client
        self._paho.manual_ack_set(True)  # must happen before connecting

    def ack_function(self, mid: int, qos: int, generation: int, current: Callable[[], int]) -> Ack:
        def ack() -> None:
            # A message from an earlier connection is redelivered by the broker on the new
            # one; acknowledging its old packet id there would acknowledge a stranger.
            if qos > 0 and generation == current():
                self._paho.ack(mid, qos)

        return ack


class _Received:
    """What aiomqtt has already received on one connection, taken without a task per message.

    The one other use of an aiomqtt private attribute (its incoming queue, filled by paho's
    callback). Waiting still goes through ``client.messages``, which notices a disconnect;
    taking a queued message does not wait, so a disconnect is noticed at the next wait, after
    the messages that arrived before it (delivered as usual, acknowledged only if their
    connection is still the current one).
    """

    #: Messages taken at once. Putting deliveries on the gateway's queue does not suspend while
    #: it has room, so the event loop serves the writer's database I/O only between two takes;
    #: every step of a write (BEGIN, the watermark check, each COPY chunk, COMMIT) waits for the
    #: take in progress. Measured draining a backlog: 64 messages a take (about 4 ms of parsing)
    #: stretched a 20,000-reading write from 70-80 ms to 130-190 ms; 8 (about 0.5 ms) does not.
    TAKE = 8

    def __init__(self, client: aiomqtt.Client) -> None:
        self._messages = client.messages
        self._queue: asyncio.Queue[aiomqtt.Message] = client._queue

    async def next_batch(self) -> list[aiomqtt.Message]:
        """Up to :attr:`TAKE` received messages; waits (noticing a disconnect) only for the
        first one, and only when nothing is queued."""
        queue = self._queue
        if queue.empty():
            batch = [await anext(self._messages)]
        else:
            await asyncio.sleep(0)  # a turn for the other tasks between two takes
            batch = []
        take = self.TAKE
        while len(batch) < take and not queue.empty():
            batch.append(queue.get_nowait())
        return batch


class MqttJsonSource(Source, Generic[M]):
    """Yields :class:`Delivery` objects forever, reconnecting with backoff.

    ``parse`` is the feed's sans-IO parser (the safety contract by default); every MQTT feed of
    minewatch shares this one source and so this one acknowledgement discipline.
    """

    def __init__(
        self,
        url: str,
        client_id: str,
        topics: list[str],
        max_message_bytes: int,
        parse: Parser[M] = parse_message,  # type: ignore[assignment]
    ) -> None:
        self._parse = parse
        self._host, self._port = broker_address(url)
        self._login = login_options(url)
        self._client_id = client_id
        self._topics = topics
        self._max_bytes = max_message_bytes
        self._generation = 0
        self.connected = asyncio.Event()

    def _generation_now(self) -> int:
        return self._generation

    async def deliveries(self) -> AsyncIterator[Delivery[M]]:
        backoff = Backoff()
        loop = asyncio.get_running_loop()
        while True:
            client = aiomqtt.Client(
                self._host,
                self._port,
                identifier=self._client_id,
                clean_session=False,
                keepalive=30,
                **self._login,
            )
            manual = _ManualAck(client)
            try:
                async with client:
                    self._generation += 1
                    generation = self._generation
                    for topic in self._topics:
                        await client.subscribe(topic, qos=1)
                    self.connected.set()
                    backoff.reset()
                    log.info("connected to %s:%s as %s", self._host, self._port, self._client_id)
                    received = _Received(client)
                    parse, max_bytes, current = self._parse, self._max_bytes, self._generation_now
                    while True:
                        resume_cancellation()
                        for message in await received.next_batch():
                            payload = message.payload
                            data = payload if isinstance(payload, bytes) else str(payload).encode()
                            yield Delivery(
                                parse(message.topic.value, data, max_bytes),
                                manual.ack_function(message.mid, message.qos, generation, current),
                                loop.time(),
                            )
            except aiomqtt.MqttError as exc:
                stop_if_cancelled(exc)
                self.connected.clear()
                delay = backoff.next_delay()
                log.warning("broker connection lost (%s); reconnecting in %.1fs", exc, delay)
                await asyncio.sleep(delay)


def create(
    gateway: GatewaySettings, context: SourceContext
) -> MqttJsonSource[ParsedMessage] | None:
    """The registry's factory: the safety contract's source, unless its topics are empty."""
    settings = MqttJsonSettings.from_gateway(gateway)
    if settings is None:
        return None
    return MqttJsonSource(
        context.mqtt_url, settings.client_id, list(settings.topics), settings.max_message_bytes
    )
