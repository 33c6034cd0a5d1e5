"""Directives down the hierarchy (docs/federation.md "Directives down"): a regulator's
inspection note or required action, written through the API of the level where the regulator
works, reaches the console of the mine.

No code of minewatch's crosses machines: this installation's gateway publishes the directives
written here (an outbox in the database, ``published_at`` set once the broker acknowledged) on
``minewatch/down/v1/<mine>/directives`` at QoS 1; every bridge below carries that topic ``in``
to its own broker, persistently, like the readings going up; and every gateway below stores
what arrives, by the directive's id (a resend after a link flap changes nothing), before it
acknowledges it. So an outage of the link delays a directive, never loses it.

:func:`parse_directive` is the sans-IO parser (bytes in, a :class:`Directive` or a
:class:`Rejection` out).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from typing import Any, Literal

import aiomqtt
import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from minewatch.backoff import Backoff
from minewatch.broker_auth import login_options
from minewatch.feeds import DOWN_ROOT, broker_address, directive_topic
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.repository import write_rejections
from minewatch.ingest.sources.mqtt_json.adapter import MqttJsonSource
from minewatch.outbox import connection_lost
from minewatch.retry import is_transient, resume_cancellation, stop_if_cancelled

log = logging.getLogger(__name__)

#: What a gateway subscribes to: directives to any mine (its broker login limits which).
DIRECTIVE_SUBSCRIPTION = f"{DOWN_ROOT}/+/directives"


class Directive(BaseModel):
    """One directive as it travels (JSON) and is stored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1
    id: uuid.UUID
    mine: str = Field(pattern=r"^[0-9]{12}$")
    kind: Literal["note", "action"]
    body: str = Field(min_length=1, max_length=4000)
    author: str = Field(min_length=1, max_length=200)
    origin: str = Field(min_length=1, max_length=100)
    created_at: dt.datetime
    due_at: dt.datetime | None = None
    point: str | None = Field(None, max_length=64)
    rule: str | None = Field(None, max_length=64)
    alarm_started_at: dt.datetime | None = None


def parse_directive(topic: str, payload: bytes, max_bytes: int) -> Directive | Rejection:
    """A directive, or why not (never raises)."""
    if len(payload) > max_bytes:
        return Rejection(topic, QuarantineReason.PAYLOAD_TOO_LARGE, str(len(payload)), b"")
    try:
        directive = Directive.model_validate_json(payload)
    except ValidationError as error:
        return Rejection(topic, QuarantineReason.SCHEMA_VIOLATION, str(error)[:2000], payload)
    if directive_topic(directive.mine) != topic:
        return Rejection(topic, QuarantineReason.TOPIC_MISMATCH, directive.mine, payload)
    return directive


_OUTBOX = (
    "SELECT id, mine_code AS mine, kind, body, author, created_at, due_at, point_code AS point, "
    "rule, alarm_started_at FROM directives "
    "WHERE published_at IS NULL AND received_at IS NULL ORDER BY created_at LIMIT 100"
)
_PUBLISHED = "UPDATE directives SET published_at = now(), origin = %(origin)s WHERE id = %(id)s"
_STORE = (
    "INSERT INTO directives (id, mine_code, kind, body, author, due_at, point_code, rule, "
    "alarm_started_at, created_at, origin, received_at) VALUES (%(id)s, %(mine)s, %(kind)s, "
    "%(body)s, %(author)s, %(due_at)s, %(point)s, %(rule)s, %(alarm_started_at)s, "
    "%(created_at)s, %(origin)s, now()) ON CONFLICT (id) DO NOTHING"
)


class DirectiveRelay:
    """Publishes this installation's directives and stores those arriving from above."""

    def __init__(
        self, database_url: str, mqtt_url: str, client_id: str, installation: str,
        poll_s: float = 2.0, max_message_bytes: int = 64 * 1024,
    ) -> None:  # fmt: skip
        self._url = database_url
        self._mqtt_url = mqtt_url
        self._client_id = client_id
        self._installation = installation
        self._poll_s = poll_s
        self._source = MqttJsonSource(
            mqtt_url, f"{client_id}-in", [DIRECTIVE_SUBSCRIPTION], max_message_bytes,
            parse=parse_directive,
        )  # fmt: skip

    async def run(self) -> None:
        """Run until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._publish_loop(), name="directives-out")
            tasks.create_task(self._receive_loop(), name="directives-in")

    # -- down from here ---------------------------------------------------------------------

    async def _publish_loop(self) -> None:
        host, port = broker_address(self._mqtt_url)
        login: dict[str, Any] = login_options(self._mqtt_url)
        backoff = Backoff()
        while True:
            try:
                async with aiomqtt.Client(
                    host, port, identifier=f"{self._client_id}-out", **login
                ) as client:
                    backoff.reset()
                    while True:
                        resume_cancellation()
                        await self._publish_pending(client)
                        await asyncio.sleep(self._poll_s)
                        if connection_lost(client):
                            raise aiomqtt.MqttError("the broker connection was lost")
            except (aiomqtt.MqttError, psycopg.Error, OSError) as error:
                stop_if_cancelled(error)
                delay = backoff.next_delay()
                log.warning("directive publisher: %s; retry in %.1fs", error, delay)
                await asyncio.sleep(delay)

    async def _publish_pending(self, client: aiomqtt.Client) -> None:
        async with await psycopg.AsyncConnection.connect(self._url, autocommit=True) as conn:
            cur = conn.cursor(row_factory=dict_row)
            rows = await (await cur.execute(_OUTBOX)).fetchall()
            for row in rows:
                directive = Directive(origin=self._installation, **row)
                # aiomqtt returns once the broker acknowledged (QoS 1): then it is the
                # broker's, and the bridges' persistent queues carry it down.
                await client.publish(
                    directive_topic(directive.mine), directive.model_dump_json().encode(), qos=1
                )
                await conn.execute(_PUBLISHED, {"id": row["id"], "origin": self._installation})
                log.info("directive %s to mine %s published", directive.id, directive.mine)

    # -- down to here -----------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        async for delivery in self._source.deliveries():
            message = delivery.message
            backoff = Backoff()
            while True:
                try:
                    await self._store(message)
                    break
                except psycopg.Error as error:
                    stop_if_cancelled(error)
                    if not is_transient(error):
                        log.error("directive refused by the database: %s", error)
                        break
                    delay = backoff.next_delay()
                    log.warning("storing a directive failed (%s); retry in %.1fs", error, delay)
                    await asyncio.sleep(delay)
            delivery.ack()

    async def _store(self, message: Directive | Rejection) -> None:
        async with await psycopg.AsyncConnection.connect(self._url) as conn:
            async with conn.transaction(), conn.cursor() as cur:
                if isinstance(message, Rejection):
                    await write_rejections(cur, [message])
                    return
                row = message.model_dump(exclude={"v"})
                await cur.execute(_STORE, row)
            log.info("directive %s for mine %s received from %s", message.id, message.mine,
                     message.origin)  # fmt: skip


__all__ = ["DIRECTIVE_SUBSCRIPTION", "Directive", "DirectiveRelay", "parse_directive"]
