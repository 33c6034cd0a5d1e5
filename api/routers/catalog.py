"""Mines and points: the catalogue every user group starts from."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from minewatch.api import repository
from minewatch.api.deps import PoolDep
from minewatch.api.models import Mine, Point

router = APIRouter(prefix="/api/v1", tags=["catalogue"])


@router.get("/mines", response_model=list[Mine])
async def mines(pool: PoolDep) -> list[dict[str, object]]:
    async with pool.connection() as conn:
        return await repository.list_mines(conn)


@router.get("/mines/{mine_code}/points", response_model=list[Point])
async def points(mine_code: str, pool: PoolDep) -> list[dict[str, object]]:
    async with pool.connection() as conn:
        if not await repository.mine_exists(conn, mine_code):
            raise HTTPException(404, f"mine {mine_code} is not known")
        return await repository.list_points(conn, mine_code)
