"""Dependencies shared by the routers, as short named types."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from psycopg_pool import AsyncConnectionPool

from minewatch.alarms.live import AlarmBroadcaster


def get_pool(request: Request) -> AsyncConnectionPool:
    return request.app.state.pool  # type: ignore[no-any-return]


def get_broadcaster(request: Request) -> AlarmBroadcaster:
    return request.app.state.broadcaster  # type: ignore[no-any-return]


PoolDep = Annotated[AsyncConnectionPool, Depends(get_pool)]
BroadcasterDep = Annotated[AlarmBroadcaster, Depends(get_broadcaster)]
