"""Which installation the records of each mine come from (docs/federation.md): at a city or a
province, every mine below with the installation serving it and the link that carries it up."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends
from psycopg.rows import dict_row
from pydantic import BaseModel

from minewatch.api.auth import Access, mine_filter
from minewatch.api.deps import PoolDep
from minewatch.api.errors import NOT_FOUND, SIGNED_IN_ERRORS

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
