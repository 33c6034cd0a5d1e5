"""Production (产量) for regulators and mine management: output per day, month and year from
the cumulative output counters, against the approved capacity (核定生产能力)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from minewatch.api import production_repository as repo
from minewatch.api.deps import PoolDep

router = APIRouter(prefix="/api/v1/production", tags=["production"])

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


@router.get("/mines/{mine}/output", response_model=list[OutputTotal])
async def output(
    mine: str,
    pool: PoolDep,
    start: Annotated[dt.datetime, Query(description="Inclusive, ISO 8601 with offset.")],
    end: Annotated[dt.datetime, Query(description="Exclusive, ISO 8601 with offset.")],
    period: Literal["day", "month", "year"] = "day",
    tz: str = "Asia/Shanghai",
    wrap_fraction: Annotated[float, Query(gt=0, le=1)] = 0.9,
) -> list[OutputTotal]:
    """Output totals per period (mine local time); see docs/feeds.md (Output) for the rule."""
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise HTTPException(422, "start and end need a UTC offset and end must be after start")
    async with pool.connection() as conn:
        known, capacity = await repo.approved_capacity(conn, mine)
        if not known:
            raise HTTPException(404, f"mine {mine} is not known")
        rows = await repo.output_totals(conn, mine, period, start, end, tz, wrap_fraction)
    share = LIMIT_SHARE[period]
    limit = None if share is None or capacity is None else share * capacity
    return [
        OutputTotal(
            **row,  # type: ignore[arg-type]
            approved_capacity_t=capacity,
            share_of_capacity=None if not capacity else row["output_t"] / capacity,  # type: ignore[operator]
            limit_t=limit,
            exceeds_limit=None if limit is None else row["output_t"] > limit,  # type: ignore[operator]
        )
        for row in rows
    ]
