"""Remote inspection (远程监察) for regulators: history of readings and alarms over time ranges,
one alarm by id, annotations of an inspection."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from minewatch.api import audit, reconciliation_repository, repository
from minewatch.api.accounts import Role
from minewatch.api.auth import Access, alarm_access, mine_access, mine_filter, point_access
from minewatch.api.deps import PoolDep, ReadPoolDep, Report
from minewatch.api.errors import NOT_FOUND, SIGNED_IN_ERRORS, invalid
from minewatch.api.models import Alarm, ReadingBucket, Reconciliation
from minewatch.api.params import (
    INT4_MAX,
    MAX_DURATION,
    AlarmId,
    End,
    Instant,
    Limit,
    PointId,
    ShortText,
    Start,
    Text,
    Zone,
    check_range,
    parse_bucket,
)

router = APIRouter(prefix="/api/v1", tags=["inspection"], responses=SIGNED_IN_ERRORS)

MAX_BUCKETS = 20_000


@router.get("/points/{point_id}/readings", response_model=list[ReadingBucket],
            responses=NOT_FOUND, dependencies=[Report])  # fmt: skip
async def readings(
    pool: ReadPoolDep,
    access: Annotated[Access, Depends(point_access())],
    point_id: PointId,
    start: Start,
    end: End,
    bucket: Annotated[
        str,
        Query(
            max_length=40,
            pattern=r"^P(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$",
            description="Bucket width, ISO 8601 duration: PT1M, PT15M, P1D; calendar months "
            "and years (P1M, P1Y) follow the calendar of tz.",
        ),
    ] = "PT1M",
    tz: Annotated[
        Zone, Query(description="IANA time zone the buckets align to (a day starts at local "
                    "midnight).")
    ] = "UTC",
) -> list[dict[str, object]]:  # fmt: skip
    """A point's readings aggregated per time bucket (TimescaleDB ``time_bucket``, aligned in
    ``tz``), at most 20,000 buckets."""
    check_range(start, end)
    try:
        width = parse_bucket(bucket)
    except ValueError as error:
        raise invalid(("query", "bucket"), str(error)) from None
    if (end - start) / width.shortest > MAX_BUCKETS:
        raise invalid(("query", "bucket"), f"gives more than {MAX_BUCKETS} buckets")
    async with pool.connection() as conn:
        return await repository.reading_buckets(conn, point_id, start, end, width.iso, tz)


TOTAL_HEADER = {
    "X-Total-Count": {
        "description": "Alarms matching the filters over all pages.",
        "schema": {"type": "integer"},
    }
}


@router.get(
    "/alarms", response_model=list[Alarm], dependencies=[Report],
    responses={200: {"headers": TOTAL_HEADER}, **NOT_FOUND},
)  # fmt: skip
async def alarms(
    pool: ReadPoolDep,
    response: Response,
    access: Annotated[Access, Depends(mine_filter())],
    point_id: Annotated[int | None, Query(ge=1, le=INT4_MAX)] = None,
    rule: ShortText | None = None,
    active: bool | None = None,
    since: Instant | None = None,
    until: Instant | None = None,
    min_duration_s: Annotated[
        float | None,
        Query(ge=0, le=MAX_DURATION.total_seconds(), allow_inf_nan=False,
              description="持续时长 at least (seconds, at most ten years)"),
    ] = None,
    limit: Limit = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Rows to skip.")] = 0,
) -> list[dict[str, object]]:  # fmt: skip
    """Alarm episodes of the caller's mines (or of ``mine``), newest first, with the YCBJ
    statistics, the lifecycle (who acknowledged, shelved, disposed) and escalation; a page of
    ``limit`` from ``offset``, the total in ``X-Total-Count``."""
    where = repository.AlarmFilter(
        access.mine, point_id, rule, active, since, until, min_duration_s, limit,
        scope=access.scope, offset=offset,
    )  # fmt: skip
    async with pool.connection() as conn:
        rows = await repository.list_alarms(conn, where)
        response.headers["X-Total-Count"] = str(await repository.count_alarms(conn, where))
    return rows


@router.get("/alarms/{alarm_id}", response_model=Alarm, responses=NOT_FOUND)
async def alarm(
    pool: PoolDep, access: Annotated[Access, Depends(alarm_access())], alarm_id: AlarmId
) -> dict[str, object]:
    """One alarm (stream events carry only its id)."""
    async with pool.connection() as conn:
        rows = await repository.list_alarms(
            conn, repository.AlarmFilter(alarm_id=alarm_id, scope=access.scope, limit=1)
        )
    if not rows:
        raise HTTPException(404, "alarm not known (or not in your scope)")
    return rows[0]


class Annotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[Text, Field(min_length=1)]


class AnnotationRecord(BaseModel):
    alarm_id: int
    mine_code: str
    by: str
    note: str


@router.post("/alarms/{alarm_id}/annotations", response_model=AnnotationRecord,
             status_code=201, responses=NOT_FOUND)  # fmt: skip
async def annotate(
    pool: PoolDep, access: Annotated[Access, Depends(alarm_access(Role.REGULATOR))],
    alarm_id: AlarmId, body: Annotation,
) -> AnnotationRecord:  # fmt: skip
    """A regulator's note on an alarm during an inspection; kept in the audit log."""
    principal = access.principal
    async with pool.connection() as conn:
        await audit.record(conn, principal.identity, principal.client_addr, "annotated",
                           access.mine, alarm_id, {"note": body.note})  # fmt: skip
    return AnnotationRecord(alarm_id=alarm_id, mine_code=str(access.mine),
                            by=principal.identity.actor, note=body.note)  # fmt: skip


@router.get(
    "/mines/{mine}/reconciliation",
    response_model=Reconciliation,
    responses=NOT_FOUND,
    dependencies=[Report],
)
async def reconciliation(
    pool: ReadPoolDep,
    access: Annotated[Access, Depends(mine_access())],
    start: Start,
    end: End,
    tolerance_s: Annotated[
        float, Query(ge=0, le=3600, allow_inf_nan=False,
                     description="Slack when matching two episodes' spans.")
    ] = 60.0,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Rows per list at most.")] = 1000,
) -> dict[str, object]:  # fmt: skip
    """The mine's own alarm records (YCBJ, RYCS/RYCY/RYXZ/RYQJ files) against minewatch's
    computed alarms over episodes starting in [start, end): matched, reported only, computed
    only (not reported by the mine)."""
    check_range(start, end)
    mine = str(access.mine)
    window = reconciliation_repository.Window(
        mine, start, end, dt.timedelta(seconds=tolerance_s), limit
    )
    async with pool.connection() as conn:
        lists = await reconciliation_repository.reconcile(conn, window)
    truncated = any(
        isinstance(rows, list) and len(rows) >= limit
        for part in lists.values()
        for rows in part.values()
    )
    return {"mine": mine, "start": start, "end": end, "tolerance_s": tolerance_s,
            "limit": limit, "truncated": truncated, **lists}  # fmt: skip
