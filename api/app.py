"""The FastAPI application: pool, live-alarm listener and sign-in state owned by the lifespan;
every route with its scope decision (api/auth.py), checked when the application is built."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from importlib import resources

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

from minewatch import __version__
from minewatch.alarms.live import AlarmBroadcaster
from minewatch.api import console
from minewatch.api.accounts import Hasher
from minewatch.api.auth import AuthState, public, undecided_routes
from minewatch.api.deps import PoolDep, ReportSlots
from minewatch.api.errors import BodyLimit, ErrorDetail, install_error_handlers, unavailable
from minewatch.api.routers import (
    admin,
    audit,
    catalog,
    comms,
    console_dispatch,
    console_regulator,
    console_session,
    directives,
    dispatch,
    federation,
    inspection,
    national_files,
    personnel,
    production,
    reports,
    session,
    video,
)
from minewatch.settings import ApiSettings, AuthSettings

HEALTH_TIMEOUT_S = 3.0
# On a standby: how far behind the last replayed transaction is (0 when nothing is waiting).
_REPLICA_LAG = (
    "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
    "ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END"
)


class Health(BaseModel):
    status: str
    database: str
    #: seconds the replica's last replayed transaction is behind now (left out: no replica, or
    #: it does not answer); what the reports show is at most this old
    replica_lag_s: float | None = None


def _swagger_files() -> StaticFiles:
    return StaticFiles(directory=str(resources.files("minewatch.api") / "static" / "swagger-ui"))


def create_app(
    database_url: str, api: ApiSettings | None = None, auth: AuthSettings | None = None
) -> FastAPI:
    api = api or ApiSettings()
    auth = auth or AuthSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(
            database_url, min_size=1, max_size=api.pool_max_size,
            max_waiting=api.pool_max_waiting, timeout=api.pool_timeout_s, open=False,
            kwargs={"options": f"-c statement_timeout={api.statement_timeout_ms}"},
        )  # fmt: skip
        await pool.open(wait=True)
        async with contextlib.AsyncExitStack() as pools:
            await pools.enter_async_context(pool)
            app.state.read_pool = pool
            if api.replica_url is not None:  # reports and history read there
                replica = AsyncConnectionPool(
                    api.replica_url, min_size=1, max_size=api.pool_max_size,
                    max_waiting=api.pool_max_waiting, timeout=api.pool_timeout_s, open=False,
                    kwargs={"options": f"-c statement_timeout={api.statement_timeout_ms} "
                            "-c default_transaction_read_only=on"},
                )  # fmt: skip
                await replica.open(wait=False)
                app.state.read_pool = await pools.enter_async_context(replica)
            async with AlarmBroadcaster(database_url) as broadcaster:
                app.state.pool = pool
                app.state.broadcaster = broadcaster
                yield

    app = FastAPI(
        title="minewatch",
        version=__version__,
        description="Coal-mine safety monitoring: live alarms for dispatchers, "
        "remote inspection for regulators. Sign in (`/api/v1/auth/login`) or send an API key "
        "as `Authorization: Bearer mwk_...`; see docs/api.md for roles and scopes.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.auth = AuthState(auth, Hasher(auth.hash_time_cost, auth.hash_memory_kib))
    slots = api.report_slots or max(1, api.pool_max_size // 2)
    app.state.report_slots = ReportSlots(asyncio.Semaphore(slots), api.pool_timeout_s)
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=api.max_body_bytes)
    for router in (
        session, catalog, dispatch, inspection, personnel, production, video, audit, admin,
        reports, console_session, console_dispatch, console_regulator, comms, directives,
        federation, national_files,
    ):  # fmt: skip
        app.include_router(router.router)
    console.install(app)
    app.mount("/static/swagger-ui", _swagger_files(), name="swagger-ui")

    @app.get("/docs", include_in_schema=False, dependencies=[Depends(public)])
    async def docs() -> HTMLResponse:
        """Swagger UI from the files shipped with minewatch (no CDN: mine networks are closed)."""
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="minewatch API",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
        )  # fmt: skip

    @app.get(
        "/health", tags=["operations"], response_model=Health, dependencies=[Depends(public)],
        response_model_exclude_none=True,  # replica_lag_s only with a replica
        responses={503: {"model": ErrorDetail, "description": "The database does not answer."}},
    )  # fmt: skip
    async def health(pool: PoolDep) -> Health | JSONResponse:
        """ok only when the database answers (within 3 s)."""
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_S), pool.connection() as conn:
                await conn.execute("SELECT 1")
        except Exception:  # any failure to answer is unhealthy; the reason is in the log
            return unavailable("the database does not answer")
        return Health(status="ok", database="ok", replica_lag_s=await _replica_lag(app))

    async def _replica_lag(app: FastAPI) -> float | None:
        if api.replica_url is None:
            return None
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_S), app.state.read_pool.connection() as c:
                cur = await c.execute(_REPLICA_LAG)
                row = await cur.fetchone()
        except Exception:  # a replica that does not answer has no lag to tell
            return None
        return None if row is None or row[0] is None else float(row[0])

    undecided = undecided_routes(app)
    if undecided:
        raise RuntimeError(f"routes without a scope decision: {undecided}")
    return app
