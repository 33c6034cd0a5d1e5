"""Alarm events on MQTT for control-room screens and the levels above:
``minewatch/v1/<mine>/alarms``.

Every committed alarm change (raise, clear, acknowledgement, disposal, escalation), incident
change and pre-alarm raise or clear is numbered in ``alarm_changes`` by a trigger (the numbers
the SSE stream gives as event ids). This task publishes them in number order at QoS 1 from a
durable position (``outbox_positions``, migration 0024), moved once the broker has acknowledged
them: while the broker is away nothing is lost; after it is back, the changes of the outage
go out, in order, then the live ones. A database notification only wakes it (a poll every
``poll_s`` covers a lost one). At least once: after a crash between the broker's acknowledgement
and the position's update a change goes out again with the same ``(source, seq)``, by which
receivers drop it (docs/federation.md).

A number can be committed after a larger one (two writers); the publisher waits at such a gap
up to ``gap_grace_s`` (a rolled-back number never fills), as the SSE stream does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiomqtt
import orjson
import psycopg

from minewatch.alarms.change_log import NEWEST_CHANGE, change_event, changes_after
from minewatch.alarms.live import AlarmBroadcaster
from minewatch.backoff import Backoff
from minewatch.broker_auth import login_options
from minewatch.feeds import alarm_topic, broker_address
from minewatch.outbox import read_position, write_position
from minewatch.retry import resume_cancellation, stop_if_cancelled

log = logging.getLogger(__name__)

BATCH = 500


@dataclass
class _Cursor:
    """Where the publisher is in the numbered changes, and since when it waits at a gap."""

    last: int
    grace_s: float
    gap_since: float | None = None

    def take(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows up to the first gap still within its grace."""
        taken: list[dict[str, Any]] = []
        expected = self.last
        for row in rows:
            seq = int(row["seq"])
            if seq != expected + 1:
                now = time.monotonic()
                self.gap_since = self.gap_since or now
                if now - self.gap_since < self.grace_s:
                    return taken
            self.gap_since = None
            expected = seq
            taken.append(row)
        return taken


async def publish_alarms(
    database_url: str, broadcaster: AlarmBroadcaster, mqtt_url: str, client_id: str,
    source: str | None = None, poll_s: float = 1.0, gap_grace_s: float = 5.0,
    on_published: Callable[[float], None] | None = None,
) -> None:  # fmt: skip
    """Run until cancelled. ``source``: this installation's name in the events (the client id
    when unnamed); the position is kept under the client id. ``on_published`` is given, for
    each change the broker acknowledged, the seconds since its commit (its ``alarm_changes.at``,
    stamped in the committing transaction: database clock against this one, so they must agree,
    e.g. NTP; at least 0)."""
    host, port = broker_address(mqtt_url)
    login: dict[str, Any] = login_options(mqtt_url)
    name, source = f"alarms:{client_id}", source or client_id
    backoff = Backoff()
    while True:
        try:
            async with (
                broadcaster.subscribe() as wakeups,
                await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn,
                aiomqtt.Client(host, port, identifier=client_id, **login) as client,
            ):
                cursor = _Cursor(await read_position(conn, name, NEWEST_CHANGE), gap_grace_s)
                backoff.reset()
                while True:
                    resume_cancellation()
                    rows = await changes_after(conn, cursor.last, BATCH)
                    taken = cursor.take(rows)
                    for row in taken:
                        event = change_event(row, source)
                        # returns once the broker has acknowledged it (QoS 1)
                        await client.publish(alarm_topic(row["mine"]), orjson.dumps(event), qos=1)
                        cursor.last = int(row["seq"])
                        if on_published is not None:
                            on_published(max(0.0, time.time() - row["at"].timestamp()))
                    if taken:
                        await write_position(conn, name, cursor.last)
                    if len(rows) == BATCH and cursor.gap_since is None:
                        continue
                    if await _woken(wakeups, poll_s if cursor.gap_since is None else 0.2):
                        break  # the broadcaster dropped this slow subscriber: subscribe again
        except (aiomqtt.MqttError, psycopg.Error, OSError) as error:
            stop_if_cancelled(error)
            delay = backoff.next_delay()
            log.warning("alarm publisher: %s; retry in %.1fs", error, delay)
            await asyncio.sleep(delay)


async def _woken(wakeups: asyncio.Queue[dict[str, object]], timeout_s: float) -> bool:
    """Wait for a notification (or the timeout); true when the subscription overflowed."""
    with contextlib.suppress(TimeoutError):
        event = await asyncio.wait_for(wakeups.get(), timeout_s)
        while not wakeups.empty():  # one read covers every change notified so far
            if event.get("event") == "overflow":
                return True
            event = wakeups.get_nowait()
        return event.get("event") == "overflow"
    return False
