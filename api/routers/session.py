"""Signing in and out: a session for the browser (cookie) and for scripts (bearer token).

A wrong username or password answers the same 401 either way, after the same work (a hash is
verified even for an unknown username). Repeated failures, per username and per client
address, slow the answers down (doubling delays) and finally answer 429 with Retry-After.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from minewatch.api import accounts, audit
from minewatch.api.accounts import Role
from minewatch.api.auth import (
    CSRF_HEADER,
    SESSION_COOKIE,
    Access,
    AuthState,
    auth_state,
    client_addr,
    public,
    signed_in,
)
from minewatch.api.deps import PoolDep
from minewatch.api.errors import SIGNED_IN_ERRORS, ErrorDetail
from minewatch.api.params import ShortText
from minewatch.settings import AuthSettings

router = APIRouter(prefix="/api/v1/auth", tags=["sign-in"])


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: ShortText
    password: Annotated[str, Field(min_length=1, max_length=200)]


class SessionInfo(BaseModel):
    token: str = Field(description="Bearer token for scripts; browsers use the cookie.")
    csrf_token: str = Field(description=f"Send as {CSRF_HEADER} with changes made by cookie.")
    expires_at: dt.datetime
    username: str
    role: Role
    scope: str | None


class Me(BaseModel):
    actor: str
    name: str
    role: Role
    scope: str | None
    is_person: bool


def login_delay_s(settings: AuthSettings, failures: int) -> float:
    """How long to wait before answering, after ``failures`` recent failures."""
    over = failures - settings.login_free_failures
    if over < 0:
        return 0.0
    return min(settings.login_delay_max_s, settings.login_delay_base_s * 2.0**over)


async def _throttle(state: AuthState, failures: int) -> None:
    if failures >= state.settings.login_lockout_failures:
        raise HTTPException(
            429, "too many failed sign-ins; try again later",
            headers={"Retry-After": str(int(state.settings.login_window_s))},
        )  # fmt: skip
    await asyncio.sleep(login_delay_s(state.settings, failures))


@router.post(
    "/login", response_model=SessionInfo, dependencies=[Depends(public)],
    responses={401: {"model": ErrorDetail}, 429: {"model": ErrorDetail},
               **{k: v for k, v in SIGNED_IN_ERRORS.items() if k in (400, 413, 422, 503)}},
)  # fmt: skip
async def login(
    body: Credentials, request: Request, response: Response, pool: PoolDep
) -> SessionInfo:
    """Sign in with a username and password: sets the session cookie and returns the same
    session as a bearer token, with the CSRF token for changes made with the cookie."""
    state, addr = auth_state(request), client_addr(request)
    window = dt.timedelta(seconds=state.settings.login_window_s)
    async with pool.connection() as conn:
        failures = await accounts.recent_failures(conn, body.username, addr, window)
    await _throttle(state, failures)
    async with pool.connection() as conn:
        found = await accounts.password_hash(conn, body.username)
        stored = None if found is None else found[1]
        verified = await asyncio.to_thread(state.hasher.verify, stored, body.password)
        if found is None or not verified:
            await accounts.record_failure(conn, body.username, addr, window)  # committed on leaving
    if found is None or not verified:
        raise HTTPException(401, "wrong username or password")
    account_id, _, identity = found
    lifetime = dt.timedelta(hours=state.settings.session_hours)
    async with pool.connection() as conn:
        await accounts.clear_failures(conn, body.username)
        token, csrf = await accounts.open_session(conn, account_id, lifetime)
        await audit.record(conn, identity, addr, "signed_in", None, None, {})
    response.set_cookie(
        SESSION_COOKIE, token, max_age=int(lifetime.total_seconds()), httponly=True,
        secure=state.settings.cookie_secure, samesite="strict", path="/",
    )  # fmt: skip
    return SessionInfo(
        token=token, csrf_token=csrf, expires_at=dt.datetime.now(dt.UTC) + lifetime,
        username=identity.actor, role=identity.role, scope=identity.scope,
    )  # fmt: skip


@router.post("/logout", status_code=204, responses=SIGNED_IN_ERRORS)
async def logout(
    request: Request, response: Response, pool: PoolDep,
    access: Annotated[Access, Depends(signed_in())],
) -> None:  # fmt: skip
    """End the session of the cookie or the bearer token (an API key is revoked by an admin)."""
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    token = token or request.cookies.get(SESSION_COOKIE)
    async with pool.connection() as conn:
        if token and not token.startswith(accounts.KEY_PREFIX + "_"):
            await accounts.close_session(conn, token)
        await audit.record(conn, access.principal.identity, access.principal.client_addr,
                           "signed_out", None, None, {})  # fmt: skip
    response.delete_cookie(SESSION_COOKIE, path="/")


@router.get("/me", response_model=Me, responses=SIGNED_IN_ERRORS)
async def me(access: Annotated[Access, Depends(signed_in())]) -> Me:
    """Who the credentials belong to, with the role and scope."""
    identity = access.principal.identity
    return Me(actor=identity.actor, name=identity.name, role=identity.role,
              scope=identity.scope, is_person=identity.is_person)  # fmt: skip
