"""The FastAPI application: pool and live-alarm listener owned by the lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from minewatch import __version__
from minewatch.alarms.live import AlarmBroadcaster
from minewatch.api.routers import catalog, dispatch, inspection, personnel, production, video


def create_app(database_url: str) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(
            database_url, min_size=1, max_size=10, max_waiting=100, open=False
        )
        await pool.open(wait=True)
        async with pool, AlarmBroadcaster(database_url) as broadcaster:
            app.state.pool = pool
            app.state.broadcaster = broadcaster
            yield

    app = FastAPI(
        title="minewatch",
        version=__version__,
        description="Coal-mine safety monitoring: live alarms for dispatchers, "
        "remote inspection for regulators.",
        lifespan=lifespan,
    )
    app.include_router(catalog.router)
    app.include_router(dispatch.router)
    app.include_router(inspection.router)
    app.include_router(personnel.router)
    app.include_router(production.router)
    app.include_router(video.router)

    @app.get("/health", tags=["operations"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
