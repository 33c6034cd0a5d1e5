"""MQTT source for the JSON contract: QoS 1, persistent session, acknowledged only once durable.

aiomqtt 2.5 has no public manual acknowledgement; its paho client has. Both private uses are
confined to :class:`_ManualAck`. With a fixed client id and ``clean_session=False`` the broker
redelivers every unacknowledged message after a reconnect or a crash (docs/ingest.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import aiomqtt

from ingest.backoff import Backoff
from ingest.contract import parse_message
from minewatch.feeds import broker_address

log = logging.getLogger(__name__)

Ack = Callable[[], None]


M = TypeVar("M")

#: Turns (topic, payload, max bytes) into a parsed message or a rejection; never raises.
Parser = Callable[[str, bytes, int], M]


@dataclass(frozen=True, slots=True)
class Delivery(Generic[M]):
    """A parsed message and the way to acknowledge it once it is durable."""

    message: M
    ack: Ack
    received_at: float


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


class MqttJsonSource(Generic[M]):
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
                    async for message in client.messages:
                        payload = message.payload
                        data = payload if isinstance(payload, bytes) else str(payload).encode()
                        parsed = self._parse(message.topic.value, data, self._max_bytes)
                        yield Delivery(
                            parsed,
                            manual.ack_function(
                                message.mid, message.qos, generation, self._generation_now
                            ),
                            loop.time(),
                        )
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                delay = backoff.next_delay()
                log.warning("broker connection lost (%s); reconnecting in %.1fs", exc, delay)
                await asyncio.sleep(delay)
