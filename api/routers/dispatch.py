"""The mine dispatcher's live view: active alarms and the server-sent event stream."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from fastapi import APIRouter, HTTPException
from fastapi.responses import StreamingResponse
from psycopg import AsyncConnection
from pydantic import BaseModel, Field

from minewatch.alarms import lifecycle
from minewatch.alarms.lifecycle import LifecycleError
from minewatch.alarms.live import AlarmBroadcaster
from minewatch.api import repository
from minewatch.api.deps import BroadcasterDep, PoolDep
from minewatch.api.models import Alarm

router = APIRouter(prefix="/api/v1/dispatch", tags=["dispatch"])


class Acknowledge(BaseModel):
    by: str = Field(min_length=1, max_length=100, description="Who acknowledges (录入人).")


class Shelve(BaseModel):
    by: str = Field(min_length=1, max_length=100)
    reason: str = Field(min_length=1, max_length=500)
    minutes: float = Field(gt=0, le=24 * 60, description="Expiry: at most one day.")


class Dispose(BaseModel):
    """The disposal record (报警处置): YCBJ 异常原因, 处理措施, 录入人."""

    cause: str = Field(min_length=1, max_length=2000)
    measures: str = Field(min_length=1, max_length=2000)
    by: str = Field(min_length=1, max_length=100)


class LifecycleState(BaseModel):
    id: int
    mine_code: str
    rule: str
    state: str
    grade: str | None
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None
    shelved_until: dt.datetime | None
    shelved_reason: str | None
    disposed_at: dt.datetime | None
    cause: str | None
    measures: str | None
    handled_by: str | None
    ended_at: dt.datetime | None


async def _transition(
    pool: PoolDep, step: Callable[[AsyncConnection], Awaitable[dict[str, object]]]
) -> dict[str, object]:
    async with pool.connection() as conn:
        try:
            return await step(conn)
        except LifecycleError as error:
            raise HTTPException(404 if error.missing else 409, str(error)) from None


@router.post("/alarms/{alarm_id}/acknowledge", response_model=LifecycleState)
async def acknowledge(alarm_id: int, body: Acknowledge, pool: PoolDep) -> dict[str, object]:
    """A dispatcher saw the alarm (once; 409 if already acknowledged or disposed)."""
    return await _transition(pool, lambda c: lifecycle.acknowledge(c, alarm_id, body.by))


@router.post("/alarms/{alarm_id}/shelve", response_model=LifecycleState)
async def shelve(alarm_id: int, body: Shelve, pool: PoolDep) -> dict[str, object]:
    """Hide the alarm from the live view until the expiry, with a reason (e.g. known repair)."""
    until = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=body.minutes)
    return await _transition(
        pool, lambda c: lifecycle.shelve(c, alarm_id, body.by, body.reason, until)
    )


@router.post("/alarms/{alarm_id}/unshelve", response_model=LifecycleState)
async def unshelve(alarm_id: int, pool: PoolDep) -> dict[str, object]:
    return await _transition(pool, lambda c: lifecycle.unshelve(c, alarm_id))


@router.post("/alarms/{alarm_id}/dispose", response_model=LifecycleState)
async def dispose(alarm_id: int, body: Dispose, pool: PoolDep) -> dict[str, object]:
    """Record cause, measures and handler: the alarm is closed for the record (处置)."""
    return await _transition(
        pool, lambda c: lifecycle.dispose(c, alarm_id, body.cause, body.measures, body.by)
    )


KEEPALIVE_S = 15.0


class Fusion(BaseModel):
    """What a fused alarm (docs/alarms.md, "Fusion across systems") brings together."""

    area_code: str
    fused_alarm_ids: list[int]  # the alarms it fuses: gas alarms, or the fan stop first
    head_count: int | None  # gas_people: people in the area now
    cards: list[str]  # gas_people: who they are
    cameras_offline: list[str]  # gas_camera_offline
    rising_points: list[str]  # fan_stop_gas_rise: methane points (codes) of the area


class DispatchAlarm(Alarm):
    grade: str | None = None  # red / orange / yellow / blue (alarm_grade_rules)
    fusion: Fusion | None = None


def _dispatch_row(row: dict[str, object]) -> dict[str, object]:
    if row.get("fused_alarm_ids") is None:
        return row
    cards = list(row["fusion_cards"] or [])  # type: ignore[call-overload]
    row["fusion"] = {
        "area_code": row["fusion_area"], "fused_alarm_ids": row["fused_alarm_ids"],
        "head_count": len(cards) if row["rule"] == "gas_people" else None, "cards": cards,
        "cameras_offline": row["fusion_cameras"] or [],
        "rising_points": row["fusion_points"] or [],
    }  # fmt: skip
    return row


@router.get("/alarms/active", response_model=list[DispatchAlarm])
async def active_alarms(
    pool: PoolDep, mine: str | None = None, limit: int = 1000, include_shelved: bool = False
) -> list[dict[str, object]]:
    """Open alarms, newest first; shelved ones only with ``include_shelved`` (until expiry).
    Each with its grade; fused alarms with what they fuse (``fusion``)."""
    where = repository.AlarmFilter(
        mine=mine, active=True, limit=limit, hide_shelved=not include_shelved
    )
    async with pool.connection() as conn:
        return [_dispatch_row(r) for r in await repository.list_alarms(conn, where)]


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
