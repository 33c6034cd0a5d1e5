"""The mine dispatcher's live view: active alarms and the server-sent event stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from api import repository
from api.deps import BroadcasterDep, PoolDep
from api.live import AlarmBroadcaster
from api.models import Alarm

router = APIRouter(prefix="/api/v1/dispatch", tags=["dispatch"])

KEEPALIVE_S = 15.0


@router.get("/alarms/active", response_model=list[Alarm])
async def active_alarms(
    pool: PoolDep, mine: str | None = None, limit: int = 1000
) -> list[dict[str, object]]:
    async with pool.connection() as conn:
        return await repository.list_alarms(
            conn, repository.AlarmFilter(mine=mine, active=True, limit=limit)
        )


async def _events(broadcaster: AlarmBroadcaster, mine: str | None) -> AsyncIterator[bytes]:
    async with broadcaster.subscribe() as queue:
        yield b": connected\n\n"
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield b": keepalive\n\n"
                continue
            if event.get("event") == "overflow":
                yield b"event: overflow\ndata: {}\n\n"
                return
            if mine is None or event.get("mine") == mine:
                yield b"event: alarm\ndata: " + orjson.dumps(event) + b"\n\n"


@router.get("/alarms/stream")
async def alarm_stream(broadcaster: BroadcasterDep, mine: str | None = None) -> StreamingResponse:
    """Server-sent events: one ``alarm`` event per raise or clear, as it is committed."""
    return StreamingResponse(
        _events(broadcaster, mine),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
