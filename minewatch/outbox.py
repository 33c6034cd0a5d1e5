"""Outbox publishers: a numbered log of the database published on MQTT at QoS 1 from a durable
position (``outbox_positions``, migration 0024), moved only once the broker has acknowledged
what was sent, with reconnection and backoff (docs/federation.md "A province that stores
summaries").

:func:`publish_outbox` is the loop every publisher shares (the alarm changes, the statistics,
the head-counts, the national files, the directives down); an :class:`Outbox` says what one
round sends and how to wait between rounds. At least once: after a crash between the broker's
acknowledgement and the position's update a round goes out again, with the same numbers (or
ids), by which receivers drop it. An outbox whose rows carry their own mark (the directives'
``published_at``) has no position: it marks them in :meth:`Outbox.acknowledged`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import aiomqtt
import psycopg

from minewatch.backoff import Backoff
from minewatch.broker_auth import login_options
from minewatch.feeds import broker_address
from minewatch.retry import resume_cancellation, stop_if_cancelled

log = logging.getLogger(__name__)

#: messages of a round in flight at once (sent in order, acknowledged by the broker as they
#: come): a round of many changes costs a few round trips, not one per change (issue 14)
WINDOW = 100


async def read_position(conn: psycopg.AsyncConnection, name: str, start: str) -> int:
    """The position of the outbox publisher ``name`` (migration 0024); a new one starts at
    the value of the SQL expression ``start`` (its log's newest number): what was numbered
    before it first ran is not its to send."""
    cur = await conn.execute(
        "INSERT INTO outbox_positions (name, position) SELECT %s, " + start + " "
        "ON CONFLICT (name) DO NOTHING",
        (name,),
    )
    cur = await conn.execute("SELECT position FROM outbox_positions WHERE name = %s", (name,))
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def write_position(conn: psycopg.AsyncConnection, name: str, position: int) -> None:
    await conn.execute(
        "UPDATE outbox_positions SET position = %s, updated_at = now() WHERE name = %s",
        (position, name),
    )


def connection_lost(client: aiomqtt.Client) -> bool:
    """Whether the broker connection of ``client`` has ended (aiomqtt notices it only at the
    next call otherwise). The one use of aiomqtt's private ``_disconnected`` future here: its
    exception (the unexpected disconnection) is retrieved, which nothing else would do for a
    publisher idle at the time, and asyncio would report it as never retrieved."""
    future: asyncio.Future[None] = client._disconnected
    if not future.done():
        return False
    if not future.cancelled():
        future.exception()
    return True


@dataclass(frozen=True, slots=True)
class Round:
    """What one round publishes: ``(topic, payload)`` messages, the position once the broker
    has acknowledged them all, and whether another round follows at once (a full batch)."""

    messages: Sequence[tuple[str, bytes]]
    position: int
    more: bool = False


class Outbox(ABC):
    """One numbered log to publish. ``what`` names it (``<what>:<client id>`` in
    ``outbox_positions``, and in the log); ``start`` is the SQL expression of a new publisher's
    position, or None for a log without a position (its rows marked as published instead,
    :meth:`acknowledged`; the position is then always 0)."""

    what: str
    start: str | None
    poll_s: float = 5.0

    def connected(self) -> AbstractAsyncContextManager[object]:
        """Held while the publisher is connected (e.g. a subscription to wake-ups); entered
        before the database and the broker."""
        return contextlib.nullcontext()

    @abstractmethod
    async def next_round(self, conn: psycopg.AsyncConnection, position: int) -> Round:
        """What follows ``position`` (the last number the broker acknowledged)."""

    def published(self, index: int) -> None:
        """The broker acknowledged message ``index`` of the last round (e.g. for a metric);
        nothing by default."""
        return None

    async def acknowledged(self, conn: psycopg.AsyncConnection, step: Round) -> None:
        """The broker acknowledged every message of ``step``, whose position is not written
        yet (a log without a position marks its rows here); nothing by default."""
        return None

    async def idle(self) -> bool:
        """Wait before the next round; true: connect again (the wake-ups were lost)."""
        await asyncio.sleep(self.poll_s)
        return False


async def _publish_round(
    client: aiomqtt.Client, outbox: Outbox, messages: Sequence[tuple[str, bytes]]
) -> None:
    """Publish ``messages`` at QoS 1, in their order, up to :data:`WINDOW` in flight; return
    once the broker has acknowledged every one (raise the first failure after the others of
    its window have ended: none is left running)."""

    async def one(index: int, topic: str, payload: bytes) -> None:
        await client.publish(topic, payload, qos=1)  # returns once acknowledged
        outbox.published(index)

    client.pending_calls_threshold = WINDOW + 1  # a full window is expected, not a warning
    for start in range(0, len(messages), WINDOW):
        window = messages[start : start + WINDOW]
        outcomes = await asyncio.gather(
            *(one(start + k, t, p) for k, (t, p) in enumerate(window)), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome


async def publish_outbox(outbox: Outbox, database_url: str, mqtt_url: str, client_id: str) -> None:
    """Publish ``outbox`` at QoS 1 until cancelled; the position is kept under the client id.
    A broker or database outage delays what follows the position, never loses it."""
    host, port = broker_address(mqtt_url)
    login: dict[str, Any] = login_options(mqtt_url)
    name = f"{outbox.what}:{client_id}"
    backoff = Backoff()
    while True:
        try:
            async with (
                outbox.connected(),
                await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn,
                aiomqtt.Client(
                    host, port, identifier=client_id, max_inflight_messages=WINDOW, **login
                ) as client,
            ):
                position = 0
                if outbox.start is not None:
                    position = await read_position(conn, name, outbox.start)
                backoff.reset()
                while True:
                    resume_cancellation()
                    step = await outbox.next_round(conn, position)
                    await _publish_round(client, outbox, step.messages)
                    if step.messages:
                        await outbox.acknowledged(conn, step)
                    if step.position != position:
                        position = step.position
                        await write_position(conn, name, position)
                    if not step.more and await outbox.idle():
                        break
                    if connection_lost(client):
                        raise aiomqtt.MqttError("the broker connection was lost")
        except (aiomqtt.MqttError, psycopg.Error, OSError) as error:
            stop_if_cancelled(error)
            delay = backoff.next_delay()
            log.warning("%s publisher: %s; retry in %.1fs", outbox.what, error, delay)
            await asyncio.sleep(delay)
