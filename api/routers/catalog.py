"""Mines and points: the catalogue every user group starts from (within the caller's scope)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from minewatch.api import repository
from minewatch.api.auth import Access, mine_access, signed_in
from minewatch.api.deps import PoolDep
from minewatch.api.errors import NOT_FOUND, SIGNED_IN_ERRORS
from minewatch.api.models import Mine, Point

router = APIRouter(prefix="/api/v1", tags=["catalogue"], responses=SIGNED_IN_ERRORS)


@router.get("/mines", response_model=list[Mine])
async def mines(
    pool: PoolDep, access: Annotated[Access, Depends(signed_in())]
) -> list[dict[str, object]]:
    """The mines the caller sees, with their point counts."""
    async with pool.connection() as conn:
        return await repository.list_mines(conn, access.scope)


@router.get("/mines/{mine}/points", response_model=list[Point], responses=NOT_FOUND)
async def points(
    pool: PoolDep, access: Annotated[Access, Depends(mine_access())]
) -> list[dict[str, object]]:
    """A mine's points with their thresholds (CDDY fields)."""
    async with pool.connection() as conn:
        return await repository.list_points(conn, str(access.mine))
