"""Remote inspection (远程监察) for regulators: history of readings and alarms over time ranges."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from minewatch.api import reconciliation_repository, repository
from minewatch.api.deps import PoolDep
from minewatch.api.models import Alarm, ReadingBucket, Reconciliation

router = APIRouter(prefix="/api/v1", tags=["inspection"])

MAX_BUCKETS = 20_000


@router.get("/points/{point_id}/readings", response_model=list[ReadingBucket])
async def readings(
    point_id: int,
    pool: PoolDep,
    start: Annotated[dt.datetime, Query(description="Inclusive, ISO 8601 with offset.")],
    end: Annotated[dt.datetime, Query(description="Exclusive, ISO 8601 with offset.")],
    bucket: Annotated[
        dt.timedelta, Query(description="Bucket width, ISO 8601 duration, e.g. PT1M or PT15M.")
    ] = dt.timedelta(minutes=1),
) -> list[dict[str, object]]:  # fmt: skip
    """A point's readings aggregated per time bucket (TimescaleDB ``time_bucket``)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise HTTPException(422, "start and end need a UTC offset")
    if end <= start:
        raise HTTPException(422, "end must be after start")
    if bucket <= dt.timedelta(0) or (end - start) / bucket > MAX_BUCKETS:
        raise HTTPException(422, f"bucket must be positive and give at most {MAX_BUCKETS} buckets")
    async with pool.connection() as conn:
        if not await repository.point_exists(conn, point_id):
            raise HTTPException(404, f"point {point_id} is not known")
        return await repository.reading_buckets(conn, point_id, start, end, bucket)


@router.get("/alarms", response_model=list[Alarm])
async def alarms(
    pool: PoolDep,
    mine: str | None = None,
    point_id: int | None = None,
    rule: str | None = None,
    active: bool | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    min_duration_s: Annotated[float | None, Query(ge=0, description="持续时长 at least")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[dict[str, object]]:
    """Alarm episodes, newest first, with the YCBJ statistics and disposal fields."""
    where = repository.AlarmFilter(
        mine, point_id, rule, active, since, until, min_duration_s, limit
    )
    async with pool.connection() as conn:
        return await repository.list_alarms(conn, where)


@router.get("/mines/{mine}/reconciliation", response_model=Reconciliation)
async def reconciliation(
    mine: str,
    pool: PoolDep,
    start: Annotated[dt.datetime, Query(description="Inclusive, ISO 8601 with offset.")],
    end: Annotated[dt.datetime, Query(description="Exclusive, ISO 8601 with offset.")],
    tolerance_s: Annotated[
        float, Query(ge=0, le=3600, description="Slack when matching two episodes' spans.")
    ] = 60.0,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Rows per list at most.")] = 1000,
) -> dict[str, object]:
    """The mine's own alarm records (YCBJ, RYCS/RYCY/RYXZ/RYQJ files) against minewatch's
    computed alarms over episodes starting in [start, end): matched, reported only, computed
    only (not reported by the mine)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise HTTPException(422, "start and end need a UTC offset")
    if end <= start:
        raise HTTPException(422, "end must be after start")
    window = reconciliation_repository.Window(
        mine, start, end, dt.timedelta(seconds=tolerance_s), limit
    )
    async with pool.connection() as conn:
        if not await repository.mine_exists(conn, mine):
            raise HTTPException(404, f"mine {mine} is not known")
        lists = await reconciliation_repository.reconcile(conn, window)
    return {"mine": mine, "start": start, "end": end, "tolerance_s": tolerance_s, **lists}
