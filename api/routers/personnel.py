"""Personnel positioning (人员定位) for dispatchers and safety officers: who is underground
now and where, head-counts now and over time, a person's trajectory, time underground and
each shift's leader (带班) coverage."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from minewatch.api import personnel_repository as repo
from minewatch.api.auth import Access, mine_access
from minewatch.api.deps import PoolDep, Report
from minewatch.api.errors import NOT_FOUND, SIGNED_IN_ERRORS, invalid
from minewatch.api.params import CodeInPath, Duration, End, Limit, Start, Zone, check_range

router = APIRouter(
    prefix="/api/v1/personnel", tags=["personnel"], responses=SIGNED_IN_ERRORS | NOT_FOUND
)

MAX_POINTS = 20_000

MineAccess = Annotated[Access, Depends(mine_access())]
Code = Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")]


class PersonUnderground(BaseModel):
    card_code: str
    name: str | None
    job: str | None
    title: str | None
    team: str | None
    is_leader: bool
    is_special: bool
    entered_at: dt.datetime | None
    underground_s: float | None
    area_code: str
    area_name: str | None
    area_type: str | None
    area_since: dt.datetime
    station_code: str
    station_since: dt.datetime
    distance_m: float | None
    last_seen_at: dt.datetime


class AreaCount(BaseModel):
    area_code: str
    name: str | None
    area_type: str | None
    approved_count: int | None
    count: int
    leaders: int
    over_quota: bool  # more people than 核定人数
    restricted_occupied: bool  # someone in a 限制区域


class Headcount(BaseModel):
    mine: str
    total: int
    areas: list[AreaCount]


class HeadcountPoint(BaseModel):
    time: dt.datetime
    total: int
    areas: dict[str, int]


class TrajectoryPoint(BaseModel):
    time: dt.datetime
    station_code: str
    station_name: str | None
    area_code: str
    area_name: str | None
    distance_m: float | None
    in_mine: int


class TimeUnderground(BaseModel):
    card_code: str
    name: str | None
    is_leader: bool
    trips: int
    underground_s: float
    underground_now: bool


class LeaderTrip(BaseModel):
    card_code: str
    name: str | None
    entered_at: dt.datetime
    left_at: dt.datetime | None


class ShiftCoverage(BaseModel):
    shift_start: dt.datetime
    shift_end: dt.datetime
    workers: int
    leaders: list[LeaderTrip]
    covered: bool  # a 矿领导 went down with this shift
    leaders_underground_now: int
    first_worker_entered_at: dt.datetime | None
    last_worker_left_at: dt.datetime | None


@router.get("/mines/{mine}/underground", response_model=list[PersonUnderground])
async def underground(
    access: MineAccess, pool: PoolDep, area: Code | None = None
) -> list[dict[str, object]]:
    """Everyone underground now, with area and station and since when."""
    async with pool.connection() as conn:
        return await repo.underground_now(conn, str(access.mine), area)


@router.get("/mines/{mine}/headcount", response_model=Headcount)
async def headcount(access: MineAccess, pool: PoolDep) -> Headcount:
    """Head-count now per area (with 核定人数) and for the mine."""
    mine = str(access.mine)
    async with pool.connection() as conn:
        rows = await repo.headcount_now(conn, mine)
    areas = [
        AreaCount(
            **row,
            over_quota=row["approved_count"] is not None and row["count"] > row["approved_count"],  # type: ignore[operator]
            restricted_occupied=row["area_type"] == "restricted" and row["count"] > 0,  # type: ignore[operator]
        )
        for row in rows
    ]
    return Headcount(mine=mine, total=sum(a.count for a in areas), areas=areas)


@router.get(
    "/mines/{mine}/headcount/series", response_model=list[HeadcountPoint], dependencies=[Report]
)
async def headcount_series(
    access: MineAccess,
    pool: PoolDep,
    start: Start,
    end: End,
    step: Annotated[Duration, Query(description="ISO 8601 duration, e.g. PT1M.")] = (
        dt.timedelta(minutes=1)
    ),
) -> list[HeadcountPoint]:
    """Head-count per area and for the mine at start, start + step, ... (before end)."""
    check_range(start, end)
    if (end - start) / step > MAX_POINTS:
        raise invalid(("query", "step"), f"gives more than {MAX_POINTS} points")
    mine = str(access.mine)
    async with pool.connection() as conn:
        totals, areas = await repo.headcount_series(conn, mine, start, end, step)
    points = {row["time"]: HeadcountPoint(time=row["time"], total=row["count"], areas={})
              for row in totals}  # fmt: skip
    for row in areas:
        points[row["time"]].areas[str(row["area_code"])] = int(row["count"])  # type: ignore[call-overload]
    return list(points.values())


@router.get(
    "/mines/{mine}/people/{card}/trajectory",
    response_model=list[TrajectoryPoint],
    dependencies=[Report],
)
async def trajectory(
    access: MineAccess,
    card: CodeInPath,
    pool: PoolDep,
    start: Start,
    end: End,
    limit: Limit = 10_000,
) -> list[dict[str, object]]:
    """The stations a card passed in [start, end), in order (行进轨迹)."""
    check_range(start, end)
    async with pool.connection() as conn:
        return await repo.trajectory(conn, str(access.mine), card, start, end, limit)


@router.get(
    "/mines/{mine}/time-underground", response_model=list[TimeUnderground], dependencies=[Report]
)
async def time_underground(
    access: MineAccess, pool: PoolDep, start: Start, end: End, card: Code | None = None
) -> list[dict[str, object]]:
    """Seconds underground per person within [start, end)."""
    check_range(start, end)
    async with pool.connection() as conn:
        return await repo.time_underground(conn, str(access.mine), start, end, card)


@router.get(
    "/mines/{mine}/leader-coverage", response_model=list[ShiftCoverage], dependencies=[Report]
)
async def leader_coverage(
    access: MineAccess,
    pool: PoolDep,
    start: Start,
    end: End,
    shift_hours: Annotated[int, Query(ge=1, le=24, description="8 for 三八制")] = 8,
    first_shift_hour: Annotated[int, Query(ge=0, le=23)] = 0,
    tz: Annotated[Zone, Field(description="IANA time zone of the shift grid.")] = "Asia/Shanghai",
) -> list[ShiftCoverage]:
    """Per shift: workers, the leaders who went down with it, and whether one is still down."""
    check_range(start, end)
    if (end - start) / dt.timedelta(hours=shift_hours) > MAX_POINTS:
        raise invalid(("query", "end"), f"the range has more than {MAX_POINTS} shifts")
    mine = str(access.mine)
    async with pool.connection() as conn:
        rows = await repo.leader_coverage(conn, mine, start, end, shift_hours, first_shift_hour, tz)
    return [ShiftCoverage(**row, covered=bool(row["leaders"])) for row in rows]
