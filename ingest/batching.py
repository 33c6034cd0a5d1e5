"""The write-batching loop every pipeline shares: accumulate deliveries, flush on size or age.

Whatever is already queued is taken without waiting, so a backlog (after a restart, or while
the database was slow) is written in full batches rather than one message at a time. When the
loop is cancelled it flushes what it accumulated (making it durable and acknowledging it); what
is still queued was never acknowledged and is redelivered by the broker.

The waits use ``asyncio.timeout`` rather than ``asyncio.wait_for``: on Python 3.11, ``wait_for``
returns the item and drops a cancellation that arrives as the item does (fixed in 3.12), and a
gateway asked to stop while messages flow would then run on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar


class Pending(Protocol):
    def __bool__(self) -> bool: ...


D = TypeVar("D")
P = TypeVar("P", bound=Pending)


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
) -> None:
    """Run until cancelled. ``flush`` makes a batch durable and returns an empty one.

    ``tick`` (if given) runs every ``tick_s`` between batches, also when nothing arrives: the
    clock-driven checks (a silent source is a data interruption) must not wait for the next
    message, and running them here keeps them in the one task that owns the state.
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
        await asyncio.shield(flush(pending))
        raise
