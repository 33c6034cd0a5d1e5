"""The write-batching loop every pipeline shares: accumulate deliveries, flush on size or age.

Whatever is already queued is taken without waiting, so a backlog (after a restart, or while
the database was slow) is written in full batches rather than one message at a time. When the
loop is cancelled it flushes what it accumulated (making it durable and acknowledging it), for
a bounded time; what is still queued, or could not be made durable in that time, was never
acknowledged and is redelivered by the broker (or kept by the Modbus spool or the drop folder).

The waits use ``asyncio.timeout`` rather than ``asyncio.wait_for``: on Python 3.11, ``wait_for``
returns the item and drops a cancellation that arrives as the item does (fixed in 3.12), and a
gateway asked to stop while messages flow would then run on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar


class Pending(Protocol):
    def __bool__(self) -> bool: ...


D = TypeVar("D")
P = TypeVar("P", bound=Pending)

log = logging.getLogger(__name__)


async def batch_loop(
    queue: asyncio.Queue[D],
    *,
    empty: Callable[[], P],
    accept: Callable[[D, P], Awaitable[P]],
    flush: Callable[[P], Awaitable[P]],
    is_full: Callable[[P], bool],
    max_delay_s: float,
    tick: Callable[[], Awaitable[None]] | None = None,
    tick_s: float = 5.0,
    stop_flush_s: float = 5.0,
) -> None:
    """Run until cancelled. ``flush`` makes a batch durable and returns an empty one.

    ``tick`` (if given) runs every ``tick_s`` between batches, also when nothing arrives: the
    clock-driven checks (a silent source is a data interruption) must not wait for the next
    message, and running them here keeps them in the one task that owns the state.
    ``stop_flush_s`` bounds the last flush when the loop is cancelled (:func:`last_flush`).
    """
    loop = asyncio.get_running_loop()
    pending = empty()
    deadline = 0.0
    next_tick = loop.time() + tick_s
    try:
        while True:
            if tick is not None and not pending and loop.time() >= next_tick:
                await tick()
                next_tick = loop.time() + tick_s
            if not pending:
                try:
                    wait = None if tick is None else max(0.0, next_tick - loop.time())
                    async with asyncio.timeout(wait):
                        delivery = await queue.get()
                except TimeoutError:
                    continue
                deadline = loop.time() + max_delay_s
            else:
                try:
                    async with asyncio.timeout_at(deadline):
                        delivery = await queue.get()
                except TimeoutError:
                    pending = await flush(pending)
                    continue
            pending = await accept(delivery, pending)
            while not is_full(pending) and not queue.empty():
                pending = await accept(queue.get_nowait(), pending)
            if is_full(pending) or loop.time() >= deadline:
                pending = await flush(pending)
    except asyncio.CancelledError:
        await last_flush(flush, pending, stop_flush_s)
        raise


async def last_flush(flush: Callable[[P], Awaitable[P]], pending: P, limit_s: float) -> None:
    """Flush ``pending`` on the way out, for ``limit_s`` seconds at most.

    A database that is down would keep the writer retrying for ever, and a stop signal must
    stop the process promptly: after ``limit_s`` (or a second cancellation) the flush is
    cancelled, and what it held was never acknowledged, so it is not lost: the broker
    redelivers it, the Modbus spool and the drop folder keep it, to the next run.
    """
    if not pending:
        return
    task = asyncio.ensure_future(flush(pending))
    try:
        await asyncio.wait({task}, timeout=limit_s)
    finally:
        if not task.done():
            task.cancel()
            log.warning(
                "stopping: the last write batch is not durable after %.1f s (database "
                "unreachable?); it was not acknowledged and will be taken again by the next run",
                limit_s,
            )
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if not task.cancelled():
        task.result()
