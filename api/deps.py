"""Dependencies shared by the routers, as short named types."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from psycopg_pool import AsyncConnectionPool

from minewatch.alarms.live import AlarmBroadcaster


def get_pool(request: Request) -> AsyncConnectionPool:
    return request.app.state.pool


def get_broadcaster(request: Request) -> AlarmBroadcaster:
    return request.app.state.broadcaster


def get_read_pool(request: Request) -> AsyncConnectionPool:
    """The replica's pool (MINEWATCH_API__REPLICA_URL), else the primary's: for routes that
    only read (reports, history); never for a route that writes, audit records included."""
    return request.app.state.read_pool


PoolDep = Annotated[AsyncConnectionPool, Depends(get_pool)]
ReadPoolDep = Annotated[AsyncConnectionPool, Depends(get_read_pool)]
BroadcasterDep = Annotated[AlarmBroadcaster, Depends(get_broadcaster)]


@dataclass(frozen=True, slots=True)
class ReportSlots:
    """At most ``limit`` reports at once: the live board (active alarms, the stream, the
    lifecycle steps) keeps the rest of the pool however many reports are asked for."""

    semaphore: asyncio.Semaphore
    wait_s: float


async def report_slot(request: Request) -> AsyncIterator[None]:
    """Hold one report slot for the request; none free within the wait: 503, retry later."""
    slots: ReportSlots = request.app.state.report_slots
    try:
        await asyncio.wait_for(slots.semaphore.acquire(), slots.wait_s)
    except TimeoutError:
        raise HTTPException(
            503, "too many reports at once; retry shortly", headers={"Retry-After": "2"}
        ) from None
    try:
        yield
    finally:
        slots.semaphore.release()


#: Add to a report route: ``dependencies=[Report]``.
Report = Depends(report_slot)
