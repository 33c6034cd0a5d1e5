"""Production (产量) for regulators and mine management: output per day, month and year from
the cumulative output counters, against the approved capacity (核定生产能力)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from minewatch.api import production_repository as repo
from minewatch.api.auth import Access, mine_access
from minewatch.api.deps import PoolDep, Report
from minewatch.api.errors import NOT_FOUND, SIGNED_IN_ERRORS
from minewatch.api.params import End, Start, Zone, check_range

router = APIRouter(
    prefix="/api/v1/production", tags=["production"], responses=SIGNED_IN_ERRORS | NOT_FOUND
)

#: 重大事故隐患判定标准: monthly output above 10% of the approved annual capacity, or yearly
#: output above 110% of it, is over-capacity production (超能力).
LIMIT_SHARE = {"day": None, "month": 0.10, "year": 1.10}


class OutputTotal(BaseModel):
    period_start: dt.datetime
    output_t: float
    readings: int
    restarts: int  # counter resets or wraps inside the period
    approved_capacity_t: float | None
    share_of_capacity: float | None  # output / approved annual capacity
    limit_t: float | None
    exceeds_limit: bool | None


@router.get("/mines/{mine}/output", response_model=list[OutputTotal], dependencies=[Report])
async def output(
    access: Annotated[Access, Depends(mine_access())],
    pool: PoolDep,
    start: Start,
    end: End,
    period: Literal["day", "month", "year"] = "day",
    tz: Annotated[Zone, Field(description="IANA time zone of the periods.")] = "Asia/Shanghai",
    wrap_fraction: Annotated[float, Query(gt=0, le=1, allow_inf_nan=False)] = 0.9,
) -> list[OutputTotal]:
    """Output totals per period (mine local time); see docs/feeds.md (Output) for the rule."""
    check_range(start, end)
    mine = str(access.mine)
    async with pool.connection() as conn:
        _, capacity = await repo.approved_capacity(conn, mine)
        rows = await repo.output_totals(conn, mine, period, start, end, tz, wrap_fraction)
    share = LIMIT_SHARE[period]
    limit = None if share is None or capacity is None else share * capacity
    return [
        OutputTotal(
            **row,
            approved_capacity_t=capacity,
            share_of_capacity=None if not capacity else row["output_t"] / capacity,  # type: ignore[operator]
            limit_t=limit,
            exceeds_limit=None if limit is None else row["output_t"] > limit,  # type: ignore[operator]
        )
        for row in rows
    ]
