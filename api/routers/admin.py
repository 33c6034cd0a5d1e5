"""Accounts and API keys, for admins: create, list, disable an account, revoke a key. Each
change is in the audit log. (The first admin comes from ``minewatch user add``.)"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, Field

from minewatch.api import accounts, audit
from minewatch.api.accounts import AccountError, Role
from minewatch.api.auth import Access, auth_state, signed_in
from minewatch.api.deps import PoolDep
from minewatch.api.errors import NOT_FOUND, SIGNED_IN_ERRORS, invalid
from minewatch.api.params import ShortText

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], responses=SIGNED_IN_ERRORS)

Admin = Annotated[Access, Depends(signed_in(Role.ADMIN))]


async def _audit_admin(
    conn: AsyncConnection, access: Access, action: str, detail: dict[str, object]
) -> None:
    """An administrator's change, in the audit log in the same transaction as the change."""
    await audit.record(
        conn, access.principal.identity, access.principal.client_addr, action, None, None, detail
    )


Username = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")]
KeyId = Annotated[str, Path(pattern=r"^[a-z0-9]{12}$")]
Scope = Annotated[str | None, Field(None, pattern=r"^[0-9]{2,12}$")]


class NewAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")]
    password: Annotated[str, Field(min_length=12, max_length=200)]
    role: Role
    scope: Scope = None
    display_name: ShortText | None = None


class Account(BaseModel):
    username: str
    display_name: str
    role: Role
    scope: str | None
    disabled: bool
    created_at: dt.datetime


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ShortText
    role: Role
    scope: Scope = None


class KeyInfo(BaseModel):
    id: str
    name: str
    role: Role
    scope: str | None
    created_at: dt.datetime
    revoked_at: dt.datetime | None


class CreatedKey(KeyInfo):
    key: str = Field(description="The key itself: shown this once, kept only as a hash.")


@router.get("/accounts", response_model=list[Account])
async def list_accounts(access: Admin, pool: PoolDep) -> list[dict[str, object]]:
    async with pool.connection() as conn:
        return await accounts.list_accounts(conn)


@router.post("/accounts", response_model=Account, status_code=201)
async def add_account(
    body: NewAccount, access: Admin, pool: PoolDep, request: Request
) -> dict[str, object]:
    """Create or reset an account (422 when the scope does not fit the role)."""
    state = auth_state(request)
    async with pool.connection() as conn:
        try:
            await accounts.add_account(
                conn,
                state.hasher,
                body.username,
                body.password,
                body.role,
                body.scope,
                body.display_name,
            )
        except AccountError as error:
            raise invalid(("body", "scope"), str(error)) from None
        await _audit_admin(
            conn,
            access,
            "account_added",
            {"username": body.username, "role": body.role.value, "scope": body.scope},
        )
        found = [a for a in await accounts.list_accounts(conn) if a["username"] == body.username]
    return found[0]


@router.post("/accounts/{username}/disable", response_model=Account, responses=NOT_FOUND)
async def disable_account(username: Username, access: Admin, pool: PoolDep) -> dict[str, object]:
    """The account can no longer sign in; its sessions end at once."""
    async with pool.connection() as conn:
        account = await accounts.disable_account(conn, username)
        if account is None:
            raise HTTPException(404, "account not known")
        await _audit_admin(conn, access, "account_disabled", {"username": username})
    return account


@router.get("/keys", response_model=list[KeyInfo])
async def list_keys(access: Admin, pool: PoolDep) -> list[dict[str, object]]:
    async with pool.connection() as conn:
        return await accounts.list_keys(conn)


@router.post("/keys", response_model=CreatedKey, status_code=201)
async def add_key(body: NewKey, access: Admin, pool: PoolDep, request: Request) -> CreatedKey:
    """A key for a machine client; the answer is the only time the key is shown."""
    state = auth_state(request)
    async with pool.connection() as conn:
        try:
            key = await accounts.add_key(conn, state.hasher, body.name, body.role, body.scope)
        except AccountError as error:
            raise invalid(("body", "scope"), str(error)) from None
        key_id = key.split("_")[1]
        await _audit_admin(
            conn, access, "key_added", {"key": key_id, "role": body.role.value, "scope": body.scope}
        )
        info = next(k for k in await accounts.list_keys(conn) if k["id"] == key_id)
    return CreatedKey(**info, key=key)


@router.post("/keys/{key_id}/revoke", response_model=KeyInfo, responses=NOT_FOUND)
async def revoke_key(key_id: KeyId, access: Admin, pool: PoolDep) -> dict[str, object]:
    """The key is refused from now on (every request looks its state up)."""
    async with pool.connection() as conn:
        info = await accounts.revoke_key(conn, key_id)
        if info is None:
            raise HTTPException(404, "key not known")
        await _audit_admin(conn, access, "key_revoked", {"key": key_id})
    return info
