"""Personnel positioning (人员定位) for dispatchers and safety officers: who is underground
now and where, head-counts now and over time, a person's trajectory, time underground and
each shift's leader (带班) coverage."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from minewatch.api import personnel_repository as repo
from minewatch.api.deps import PoolDep

router = APIRouter(prefix="/api/v1/personnel", tags=["personnel"])

MAX_POINTS = 20_000

Start = Annotated[dt.datetime, Query(description="Inclusive, ISO 8601 with offset.")]
End = Annotated[dt.datetime, Query(description="Exclusive, ISO 8601 with offset.")]


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


def _check_range(start: dt.datetime, end: dt.datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise HTTPException(422, "start and end need a UTC offset")
    if end <= start:
        raise HTTPException(422, "end must be after start")


async def _known(conn, mine: str) -> None:  # type: ignore[no-untyped-def]
    if not await repo.mine_known(conn, mine):
        raise HTTPException(404, f"mine {mine} is not known")


@router.get("/mines/{mine}/underground", response_model=list[PersonUnderground])
async def underground(mine: str, pool: PoolDep, area: str | None = None) -> list[dict[str, object]]:
    """Everyone underground now, with area and station and since when."""
    async with pool.connection() as conn:
        await _known(conn, mine)
        return await repo.underground_now(conn, mine, area)


@router.get("/mines/{mine}/headcount", response_model=Headcount)
async def headcount(mine: str, pool: PoolDep) -> Headcount:
    """Head-count now per area (with 核定人数) and for the mine."""
    async with pool.connection() as conn:
        await _known(conn, mine)
        rows = await repo.headcount_now(conn, mine)
    areas = [
        AreaCount(
            **row,  # type: ignore[arg-type]
            over_quota=row["approved_count"] is not None and row["count"] > row["approved_count"],  # type: ignore[operator]
            restricted_occupied=row["area_type"] == "restricted" and row["count"] > 0,  # type: ignore[operator]
        )
        for row in rows
    ]
    return Headcount(mine=mine, total=sum(a.count for a in areas), areas=areas)


@router.get("/mines/{mine}/headcount/series", response_model=list[HeadcountPoint])
async def headcount_series(
    mine: str,
    pool: PoolDep,
    start: Start,
    end: End,
    step: Annotated[dt.timedelta, Query(description="ISO 8601 duration, e.g. PT1M.")] = (
        dt.timedelta(minutes=1)
    ),
) -> list[HeadcountPoint]:
    """Head-count per area and for the mine at start, start + step, ... (before end)."""
    _check_range(start, end)
    if step <= dt.timedelta(0) or (end - start) / step > MAX_POINTS:
        raise HTTPException(422, f"step must be positive and give at most {MAX_POINTS} points")
    async with pool.connection() as conn:
        await _known(conn, mine)
        totals, areas = await repo.headcount_series(conn, mine, start, end, step)
    points = {row["time"]: HeadcountPoint(time=row["time"], total=row["count"], areas={})  # type: ignore[arg-type]
              for row in totals}  # fmt: skip
    for row in areas:
        points[row["time"]].areas[str(row["area_code"])] = int(row["count"])  # type: ignore[call-overload]
    return list(points.values())


@router.get("/mines/{mine}/people/{card}/trajectory", response_model=list[TrajectoryPoint])
async def trajectory(
    mine: str,
    card: str,
    pool: PoolDep,
    start: Start,
    end: End,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> list[dict[str, object]]:
    """The stations a card passed in [start, end), in order (行进轨迹)."""
    _check_range(start, end)
    async with pool.connection() as conn:
        await _known(conn, mine)
        return await repo.trajectory(conn, mine, card, start, end, limit)


@router.get("/mines/{mine}/time-underground", response_model=list[TimeUnderground])
async def time_underground(
    mine: str, pool: PoolDep, start: Start, end: End, card: str | None = None
) -> list[dict[str, object]]:
    """Seconds underground per person within [start, end)."""
    _check_range(start, end)
    async with pool.connection() as conn:
        await _known(conn, mine)
        return await repo.time_underground(conn, mine, start, end, card)


@router.get("/mines/{mine}/leader-coverage", response_model=list[ShiftCoverage])
async def leader_coverage(
    mine: str,
    pool: PoolDep,
    start: Start,
    end: End,
    shift_hours: Annotated[int, Query(ge=1, le=24, description="8 for 三八制")] = 8,
    first_shift_hour: Annotated[int, Query(ge=0, le=23)] = 0,
    tz: str = "Asia/Shanghai",
) -> list[ShiftCoverage]:
    """Per shift: workers, the leaders who went down with it, and whether one is still down."""
    _check_range(start, end)
    if (end - start) / dt.timedelta(hours=shift_hours) > MAX_POINTS:
        raise HTTPException(422, "range too long")
    async with pool.connection() as conn:
        await _known(conn, mine)
        rows = await repo.leader_coverage(conn, mine, start, end, shift_hours, first_shift_hour, tz)
    return [ShiftCoverage(**row, covered=bool(row["leaders"])) for row in rows]  # type: ignore[arg-type]
