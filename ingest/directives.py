"""Directives down the hierarchy (docs/federation.md "Directives down"): a regulator's
inspection note or required action, written through the API of the level where the regulator
works, reaches the console of the mine.

No code of minewatch's crosses machines: this installation's gateway publishes the directives
written here (an outbox in the database, ``published_at`` set once the broker acknowledged; the
shared loop :func:`minewatch.outbox.publish_outbox`) on
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
from typing import Literal

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from minewatch.backoff import Backoff
from minewatch.feeds import DOWN_ROOT, directive_topic
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.repository import write_rejections
from minewatch.ingest.sources.mqtt_json.adapter import MqttJsonSource
from minewatch.outbox import Outbox, Round, publish_outbox
from minewatch.retry import is_transient, stop_if_cancelled

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


#: Directives in one round at most.
BATCH = 100

_OUTBOX = (
    "SELECT id, mine_code AS mine, kind, body, author, created_at, due_at, point_code AS point, "
    "rule, alarm_started_at FROM directives "
    "WHERE published_at IS NULL AND received_at IS NULL ORDER BY created_at LIMIT %(batch)s"
)
_PUBLISHED = (
    "UPDATE directives SET published_at = now(), origin = %(origin)s WHERE id = ANY(%(ids)s)"
)
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
        outbox = _DirectiveOutbox(self._installation, self._poll_s)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(
                publish_outbox(outbox, self._url, self._mqtt_url, f"{self._client_id}-out"),
                name="directives-out",
            )
            tasks.create_task(self._receive_loop(), name="directives-in")

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


class _DirectiveOutbox(Outbox):
    """Down from here: the directives written here and not yet published, oldest first. No
    position: each row is marked (``published_at``) once the broker has acknowledged its
    round; then it is the broker's, and the bridges' persistent queues carry it down. A round
    sent again after a lost connection carries the same ids, by which the mines store each
    directive once."""

    what = "directives"
    start = None

    def __init__(self, installation: str, poll_s: float) -> None:
        self._installation = installation
        self.poll_s = poll_s
        self._sent: list[Directive] = []

    async def next_round(self, conn: psycopg.AsyncConnection, position: int) -> Round:
        cur = conn.cursor(row_factory=dict_row)
        rows = await (await cur.execute(_OUTBOX, {"batch": BATCH})).fetchall()
        self._sent = [Directive(origin=self._installation, **row) for row in rows]
        messages = [(directive_topic(d.mine), d.model_dump_json().encode()) for d in self._sent]
        return Round(messages, position, more=len(rows) == BATCH)

    async def acknowledged(self, conn: psycopg.AsyncConnection, step: Round) -> None:
        ids = [d.id for d in self._sent]
        await conn.execute(_PUBLISHED, {"ids": ids, "origin": self._installation})
        for d in self._sent:
            log.info("directive %s to mine %s published", d.id, d.mine)


__all__ = ["DIRECTIVE_SUBSCRIPTION", "Directive", "DirectiveRelay", "parse_directive"]
