"""Communications (通信联络) for the control room and regulators: the mine's underground base
stations, dispatch phones and broadcast speakers with their status now (docs/feeds.md,
"Communications")."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from minewatch.api import comms_repository as repo
from minewatch.api.auth import Access, mine_access
from minewatch.api.deps import PoolDep
from minewatch.api.errors import NOT_FOUND, SIGNED_IN_ERRORS

router = APIRouter(prefix="/api/v1/comms", tags=["comms"], responses=SIGNED_IN_ERRORS | NOT_FOUND)
MineAccess = Annotated[Access, Depends(mine_access())]


class DeviceStatus(BaseModel):
    device_code: str
    kind: str | None  # base_station / phone / broadcast (None: reported, never defined)
    name: str | None
    area_code: str | None
    location: str | None
    heartbeat_timeout_s: float | None
    defined: bool
    status: str  # online / fault / offline / unknown (never reported)
    status_reason: str | None  # report / fault / reported (offline) / timeout
    status_since: dt.datetime | None
    fault: str | None
    last_report_at: dt.datetime | None


@router.get("/mines/{mine}/devices", response_model=list[DeviceStatus])
async def devices(access: MineAccess, pool: PoolDep) -> list[dict[str, object]]:
    """The mine's communications devices with their status now: a device whose last report
    is older than its timeout (its own ``heartbeat_timeout_s``, else 90 s) is offline."""
    async with pool.connection() as conn:
        return await repo.devices(conn, str(access.mine))
