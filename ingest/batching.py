"""The write-batching loop every pipeline shares: accumulate deliveries, flush on size or age.

Whatever is already queued is taken without waiting, so a backlog (after a restart, or while
the database was slow) is written in full batches rather than one message at a time. When the
loop is cancelled it flushes what it accumulated (making it durable and acknowledging it); what
is still queued was never acknowledged and is redelivered by the broker.
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
) -> None:
    """Run until cancelled. ``flush`` makes a batch durable and returns an empty one."""
    loop = asyncio.get_running_loop()
    pending = empty()
    deadline = 0.0
    try:
        while True:
            if not pending:
                delivery = await queue.get()
                deadline = loop.time() + max_delay_s
            else:
                try:
                    delivery = await asyncio.wait_for(queue.get(), deadline - loop.time())
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
