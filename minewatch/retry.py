"""Which database errors are worth retrying, for every writer of the pipeline.

Transient: connection loss (class 08), deadlock/serialisation (40), insufficient resources
(53), object in use / lock not available (55), operator intervention such as a shutdown (57),
system errors (58). Anything else is permanent: retrying it would starve good data, so the
writer sets the batch aside in quarantine instead (Telegraf's postgresql output does the same).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import psycopg

from minewatch.backoff import Backoff

log = logging.getLogger(__name__)

_TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "55", "57", "58")


def stop_if_cancelled(error: BaseException) -> None:
    """Raise CancelledError if the running task is being cancelled.

    A library that turns a cancellation into its own error (aiomqtt's ``Client.__aexit__``
    waits up to its timeout for the broker's goodbye and then raises ``MqttError`` in place of
    the ``CancelledError``) would otherwise send a reconnect loop round again, and a stop would
    never end. Call it first in every ``except`` that retries.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from error


def resume_cancellation() -> None:
    """Raise CancelledError if the running task was cancelled and the cancel got lost.

    Python 3.11's ``asyncio.wait_for`` drops a cancellation that arrives in the same loop turn
    as the result it waits for (fixed in 3.12), and aiomqtt waits in it for CONNACK and for each
    QoS 1 acknowledgement. The task is then "cancelling" but runs on, and a loop that waits on
    its next event never ends. Call it at the top of every long-lived loop around such calls.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def is_transient(error: BaseException) -> bool:
    """Whether retrying the same write can succeed."""
    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError | OSError):
        return True
    sqlstate = getattr(error, "sqlstate", None) or ""
    return sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES


async def run_rounds(
    database_url: str,
    interval_s: float,
    one_round: Callable[[psycopg.AsyncConnection], Awaitable[None]],
    what: str,
) -> None:
    """Run ``one_round`` on an owned connection every ``interval_s`` until cancelled.

    A transient error drops the connection and retries after a backoff; a permanent one is
    raised (it stops the caller's task, and so the gateway's TaskGroup). The clock-driven
    database tasks (camera watchdog, alarm fusion) are this loop around their own round.
    """
    backoff = Backoff()
    conn: psycopg.AsyncConnection | None = None
    try:
        while True:
            try:
                if conn is None or conn.closed or conn.broken:
                    conn = await psycopg.AsyncConnection.connect(database_url)
                await one_round(conn)
                backoff.reset()
                await asyncio.sleep(interval_s)
            except Exception as error:
                stop_if_cancelled(error)
                if not is_transient(error):
                    raise
                delay = backoff.next_delay()
                log.warning("%s failed (%s); retrying in %.1fs", what, error, delay)
                if conn is not None:
                    await conn.close()
                    conn = None
                await asyncio.sleep(delay)
    finally:
        if conn is not None:
            await conn.close()
