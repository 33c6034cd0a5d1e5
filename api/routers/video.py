"""Video dispatch (视频调度) for the control room: cameras with their online status and the
AI analytic events over a time range. Stream URLs are returned as data; the API never opens
them."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from minewatch.api import video_repository as repo
from minewatch.api.auth import Access, mine_access
from minewatch.api.deps import PoolDep, Report
from minewatch.api.errors import NOT_FOUND, SIGNED_IN_ERRORS
from minewatch.api.params import CodeInPath, End, Limit, ShortText, Start, check_range

router = APIRouter(prefix="/api/v1/video", tags=["video"], responses=SIGNED_IN_ERRORS | NOT_FOUND)
MineAccess = Annotated[Access, Depends(mine_access())]


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


@router.get("/mines/{mine}/cameras", response_model=list[CameraStatus])
async def cameras(access: MineAccess, pool: PoolDep) -> list[dict[str, object]]:
    """The mine's cameras (defined, or heard from) with their online state."""
    async with pool.connection() as conn:
        return await repo.cameras(conn, str(access.mine))


@router.get(
    "/mines/{mine}/cameras/{camera}/status-changes",
    response_model=list[StatusChange],
    dependencies=[Report],
)
async def status_changes(
    access: MineAccess, camera: CodeInPath, pool: PoolDep, start: Start, end: End
) -> list[dict[str, object]]:
    """A camera's online/offline changes in [start, end)."""
    check_range(start, end)
    async with pool.connection() as conn:
        return await repo.status_changes(conn, str(access.mine), camera, start, end)


@router.get("/mines/{mine}/events", response_model=list[AnalyticEvent], dependencies=[Report])
async def events(
    access: MineAccess,
    pool: PoolDep,
    start: Start,
    end: End,
    event_type: ShortText | None = None,
    camera: ShortText | None = None,
    area: ShortText | None = None,
    min_confidence: Annotated[float | None, Query(ge=0, le=1, allow_inf_nan=False)] = None,
    limit: Limit = 1000,
) -> list[dict[str, object]]:
    """Analytic events in [start, end), newest first."""
    check_range(start, end)
    where = repo.EventFilter(start, end, event_type, camera, area, min_confidence, limit)
    async with pool.connection() as conn:
        return await repo.events(conn, str(access.mine), where)
