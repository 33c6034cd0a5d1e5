"""What every source of the gateway is: something that yields deliveries once connected.

A delivery carries a parsed message and its acknowledgement. Sources whose peer keeps the data
until acknowledged (an MQTT broker, a drop folder) acknowledge after the write; the Modbus
poller reads devices that keep nothing, so its acknowledgement does nothing (see
docs/ingest.md, "Durability per source").
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Protocol

from minewatch.ingest.sources.mqtt_json import Delivery


class Source(Protocol):
    connected: asyncio.Event

    def deliveries(self) -> AsyncIterator[Delivery[Any]]: ...


def no_ack() -> None:
    """The acknowledgement of a delivery that nobody upstream keeps."""
