"""Video dispatch (视频调度) for the control room: cameras with their online status and the
AI analytic events over a time range. Stream URLs are returned as data; the API never opens
them."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from minewatch.api import video_repository as repo
from minewatch.api.deps import PoolDep

router = APIRouter(prefix="/api/v1/video", tags=["video"])


class CameraStatus(BaseModel):
    camera_code: str
    name: str | None
    area_code: str | None
    location: str | None
    stream_url: str | None
    heartbeat_timeout_s: float | None
    defined: bool
    status: str  # online / offline / unknown (never heard from)
    status_since: dt.datetime | None
    status_reason: str | None  # heartbeat / reported / timeout
    last_heartbeat_at: dt.datetime | None


class StatusChange(BaseModel):
    time: dt.datetime
    online: bool
    reason: str


class AnalyticEvent(BaseModel):
    time: dt.datetime
    camera_code: str
    area_code: str | None
    event_type: str
    confidence: float | None
    snapshot_ref: str | None
    event_id: str | None


Start = Annotated[dt.datetime, Query(description="Inclusive, ISO 8601 with offset.")]
End = Annotated[dt.datetime, Query(description="Exclusive, ISO 8601 with offset.")]


def _check_range(start: dt.datetime, end: dt.datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise HTTPException(422, "start and end need a UTC offset and end must be after start")


@router.get("/mines/{mine}/cameras", response_model=list[CameraStatus])
async def cameras(mine: str, pool: PoolDep) -> list[dict[str, object]]:
    async with pool.connection() as conn:
        return await repo.cameras(conn, mine)


@router.get("/mines/{mine}/cameras/{camera}/status-changes", response_model=list[StatusChange])
async def status_changes(
    mine: str, camera: str, pool: PoolDep, start: Start, end: End
) -> list[dict[str, object]]:
    _check_range(start, end)
    async with pool.connection() as conn:
        return await repo.status_changes(conn, mine, camera, start, end)


@router.get("/mines/{mine}/events", response_model=list[AnalyticEvent])
async def events(
    mine: str,
    pool: PoolDep,
    start: Start,
    end: End,
    event_type: str | None = None,
    camera: str | None = None,
    area: str | None = None,
    min_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
) -> list[dict[str, object]]:
    """Analytic events in [start, end), newest first."""
    _check_range(start, end)
    where = repo.EventFilter(start, end, event_type, camera, area, min_confidence, limit)
    async with pool.connection() as conn:
        return await repo.events(conn, mine, where)
