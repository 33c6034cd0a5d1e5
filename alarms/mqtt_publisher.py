"""Alarm events on MQTT for control-room screens and the levels above:
``minewatch/v1/<mine>/alarms``.

Every committed alarm change (raise, clear, acknowledgement, disposal, escalation), incident
change and pre-alarm raise or clear is numbered in ``alarm_changes`` by a trigger (the numbers
the SSE stream gives as event ids). This task publishes them in number order at QoS 1 from a
durable position (``outbox_positions``, migration 0024), moved once the broker has acknowledged
them (the loop of :func:`minewatch.outbox.publish_outbox`): while the broker is away nothing is
lost; after it is back, the changes of the outage go out, in order, then the live ones. A
database notification only wakes it (a poll every ``poll_s`` covers a lost one). At least once:
after a crash between the broker's acknowledgement and the position's update a change goes out
again with the same ``(source, seq)``, by which receivers drop it (docs/federation.md).

A number can be committed after a larger one (two writers); the publisher waits at such a gap
up to ``gap_grace_s`` (a rolled-back number never fills), as the SSE stream does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg

from minewatch.alarms.change_log import NEWEST_CHANGE, change_event, changes_after
from minewatch.alarms.live import AlarmBroadcaster
from minewatch.feeds import alarm_topic
from minewatch.outbox import Outbox, Round, publish_outbox

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


class _AlarmOutbox(Outbox):
    """The numbered changes of ``alarm_changes``, woken by the broadcaster's notifications."""

    what = "alarms"
    start = NEWEST_CHANGE

    def __init__(
        self, broadcaster: AlarmBroadcaster, source: str, poll_s: float, gap_grace_s: float,
        on_published: Callable[[float], None] | None = None,
    ) -> None:  # fmt: skip
        self._broadcaster = broadcaster
        self._on_published = on_published
        self._committed_at: list[float] = []
        self._source = source
        self.poll_s = poll_s
        self._cursor = _Cursor(0, gap_grace_s)
        self._wakeups: asyncio.Queue[dict[str, object]] | None = None

    @contextlib.asynccontextmanager
    async def connected(self) -> AsyncIterator[object]:
        async with self._broadcaster.subscribe() as wakeups:
            self._wakeups = wakeups
            self._cursor.gap_since = None
            yield wakeups

    async def next_round(self, conn: psycopg.AsyncConnection, position: int) -> Round:
        self._cursor.last = position
        rows = await changes_after(conn, position, BATCH)
        taken = self._cursor.take(rows)
        messages = [
            (alarm_topic(row["mine"]), orjson.dumps(change_event(row, self._source)))
            for row in taken
        ]
        self._committed_at = [row["at"].timestamp() for row in taken]
        last = int(taken[-1]["seq"]) if taken else position
        return Round(messages, last, more=len(rows) == BATCH and self._cursor.gap_since is None)

    def published(self, index: int) -> None:
        if self._on_published is not None:
            self._on_published(max(0.0, time.time() - self._committed_at[index]))

    async def idle(self) -> bool:
        assert self._wakeups is not None
        # true: the broadcaster dropped this slow subscriber: subscribe again
        return await _woken(self._wakeups, self.poll_s if self._cursor.gap_since is None else 0.2)


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
    outbox = _AlarmOutbox(broadcaster, source or client_id, poll_s, gap_grace_s, on_published)
    await publish_outbox(outbox, database_url, mqtt_url, client_id)


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
