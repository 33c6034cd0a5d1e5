"""The audit log for regulators (their jurisdiction) and admins (everything)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from minewatch.api import audit
from minewatch.api.accounts import Role
from minewatch.api.auth import Access, mine_filter
from minewatch.api.deps import PoolDep, Report
from minewatch.api.errors import NOT_FOUND, SIGNED_IN_ERRORS
from minewatch.api.params import INT8_MAX, Instant, Limit, ShortText

router = APIRouter(prefix="/api/v1", tags=["audit"], responses=SIGNED_IN_ERRORS)


class AuditRecord(BaseModel):
    id: int
    at: dt.datetime
    actor: str
    actor_role: str
    client_addr: str | None
    action: str
    mine_code: str | None
    alarm_id: int | None
    detail: dict[str, object]


class AuditPage(BaseModel):
    total: int  # records matching, over all pages
    items: list[AuditRecord]


@router.get("/audit", response_model=AuditPage, responses=NOT_FOUND, dependencies=[Report])
async def audit_log(
    pool: PoolDep,
    access: Annotated[Access, Depends(mine_filter(Role.REGULATOR, Role.ADMIN))],
    alarm_id: Annotated[int | None, Query(ge=1, le=INT8_MAX)] = None,
    action: ShortText | None = None,
    since: Instant | None = None,
    until: Instant | None = None,
    limit: Limit = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> AuditPage:
    """Who did what, when, from where, in the caller's jurisdiction, newest first: every
    lifecycle step, every regulator query of a mine's data, every annotation."""
    where = audit.AuditFilter(access.scope, access.mine, alarm_id, action, since, until, limit,
                              offset)  # fmt: skip
    async with pool.connection() as conn:
        total, rows = await audit.search(conn, where)
    return AuditPage(total=total, items=[AuditRecord(**r) for r in rows])
