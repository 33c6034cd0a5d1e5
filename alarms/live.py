"""Live alarm fan-out: one LISTEN connection, many bounded subscriber queues.

The gateway commits alarm changes with ``pg_notify``; this broadcaster hears them and hands
each to every subscriber (an SSE client). A subscriber that cannot keep up is disconnected
rather than allowed to grow memory or slow the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import orjson
import psycopg

from minewatch.alarms.store import ALARM_CHANNEL
from minewatch.backoff import Backoff
from minewatch.retry import stop_if_cancelled

log = logging.getLogger(__name__)

_OVERFLOW: dict[str, object] = {"event": "overflow"}


class AlarmBroadcaster:
    def __init__(self, database_url: str, queue_size: int = 1000) -> None:
        self._url = database_url
        self._queue_size = queue_size
        self._subscribers: set[asyncio.Queue[dict[str, object]]] = set()
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    async def __aenter__(self) -> AlarmBroadcaster:
        self._task = asyncio.create_task(self._listen(), name="alarm-listener")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[dict[str, object]]]:
        queue: asyncio.Queue[dict[str, object]] = asyncio.Queue(self._queue_size)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    def _publish(self, event: dict[str, object]) -> None:
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self._subscribers.discard(queue)
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                queue.put_nowait(_OVERFLOW)

    async def _listen(self) -> None:
        backoff = Backoff()
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {ALARM_CHANNEL}")
                    self.listening.set()
                    backoff.reset()
                    async for note in conn.notifies():
                        self._publish(orjson.loads(note.payload))
            except psycopg.Error as error:
                stop_if_cancelled(error)  # psycopg's clean-up may hide a cancellation
                self.listening.clear()
                delay = backoff.next_delay()
                log.warning("alarm listener lost its connection (%s); retry in %.1fs", error, delay)
                await asyncio.sleep(delay)
