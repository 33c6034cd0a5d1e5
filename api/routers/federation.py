"""Which installation the records of each mine come from (docs/federation.md): at a city or a
province, every mine below with the installation serving it and the link that carries it up."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from psycopg.rows import dict_row
from pydantic import BaseModel

from minewatch.api.auth import Access, mine_filter
from minewatch.api.deps import PoolDep
from minewatch.api.errors import NOT_FOUND, SIGNED_IN_ERRORS
from minewatch.api.params import Instant

router = APIRouter(prefix="/api/v1", tags=["federation"], responses=SIGNED_IN_ERRORS | NOT_FOUND)


class Source(BaseModel):
    mine_code: str
    installation: str  # the installation serving the mine
    via: str  # the installation directly below this one whose link carries it
    up: str  # what arrives of it: readings (evaluated again here) or alarms
    updated_at: dt.datetime


_SOURCES = (
    "SELECT mine_code, installation, via, up, updated_at FROM federation_sources "
    "WHERE (%(mine)s::text IS NULL OR mine_code = %(mine)s) "
    "AND (%(scope)s::text IS NULL OR mine_code LIKE %(scope)s || '%%') ORDER BY mine_code"
)


@router.get("/federation/sources", response_model=list[Source])
async def sources(
    pool: PoolDep, access: Annotated[Access, Depends(mine_filter())]
) -> list[dict[str, object]]:
    """The caller's mines (or ``mine``) that reach this installation from below, with where
    their records come from; recorded by ``minewatch federation links``."""
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        params = {"mine": access.mine, "scope": access.scope}
        return await (await cur.execute(_SOURCES, params)).fetchall()


class FederatedAlarm(BaseModel):
    """An alarm record of a mine below, as the installation that sent it up holds it
    (docs/federation.md "A province that stores summaries")."""

    source: str  # the installation that published it
    source_id: int  # its id there
    mine_code: str
    point_code: str | None
    rule: str
    abnormal_type: str
    classification: str
    state: str
    grade: str | None
    started_at: dt.datetime
    ended_at: dt.datetime | None
    threshold: float | None
    max_value: float | None
    min_value: float | None
    value_count: int | None
    acknowledged_at: dt.datetime | None
    cause: str | None
    measures: str | None
    handled_by: str | None
    disposed_at: dt.datetime | None


_ALARMS = (
    "SELECT source, source_id, mine_code, point_code, rule, abnormal_type, classification, "
    "state, grade, started_at, ended_at, threshold, max_value, min_value, value_count, "
    "acknowledged_at, cause, measures, handled_by, disposed_at FROM federated_alarms "
    "WHERE (%(mine)s::text IS NULL OR mine_code = %(mine)s) "
    "AND (%(scope)s::text IS NULL OR mine_code LIKE %(scope)s || '%%') "
    "AND (%(since)s::timestamptz IS NULL OR started_at >= %(since)s) "
    "ORDER BY started_at DESC, source, source_id LIMIT %(limit)s"
)


@router.get("/federation/alarms", response_model=list[FederatedAlarm])
async def federated_alarms(
    pool: PoolDep, access: Annotated[Access, Depends(mine_filter())],
    since: Instant | None = None, limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[dict[str, object]]:  # fmt: skip
    """The alarm records of the caller's mines (or ``mine``) stored from the levels below in
    ``alarms`` mode, newest first (started at or after ``since``), with their disposal."""
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        params = {"mine": access.mine, "scope": access.scope, "since": since, "limit": limit}
        return await (await cur.execute(_ALARMS, params)).fetchall()
