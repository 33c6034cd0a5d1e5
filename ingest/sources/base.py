"""What every source of the gateway is: something that yields deliveries once connected.

A :class:`Delivery` carries a parsed message and its acknowledgement. Sources whose peer keeps
the data until acknowledged (an MQTT broker, a drop folder) acknowledge after the write; the
Modbus poller reads devices that keep nothing, so it appends what it polled to its own durable
spool and the acknowledgement releases the spool's record (without a spool directory it does
nothing: see docs/ingest.md, "Durability per source").

Batching, backpressure, retries and the shared metrics belong to the gateway, not to a source;
a source with gauges of its own (the Modbus spool depth) registers them in
:meth:`Source.bind_metrics`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from minewatch.ingest.metrics import GatewayMetrics
from minewatch.ingest.quarantine import Rejection

Ack = Callable[[], None]

M = TypeVar("M")


@dataclass(frozen=True, slots=True)
class Delivery(Generic[M]):
    """A parsed message and the way to acknowledge it once it is durable.

    ``refused``, if given, is told which readings of the message validation refused (before
    ``ack``), for a source that keeps its own account of them (the drop folder's reason files).
    """

    message: M
    ack: Ack
    received_at: float
    refused: Callable[[list[Rejection]], None] | None = None


class Source(Protocol):
    """One protocol adapter: ``connected`` is set once it receives, ``deliveries`` yields
    forever (or until its input ends, for a replay)."""

    connected: asyncio.Event

    def deliveries(self) -> AsyncIterator[Delivery[Any]]: ...

    def bind_metrics(self, metrics: GatewayMetrics, name: str) -> None:
        """Register this source's own gauges under the label ``name``; most sources have none
        (the gateway counts every source's messages and readings itself)."""
        return None  # a body, so that the protocol's default is not abstract for mypy


def no_ack() -> None:
    """The acknowledgement of a delivery that nobody upstream keeps."""


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What a source factory gets besides the gateway's settings: the servers it may use."""

    mqtt_url: str
    database_url: str | None = None
