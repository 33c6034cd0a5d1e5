"""Directives down the hierarchy (docs/federation.md "Directives down"): a regulator writes an
inspection note or a required action for a mine at the level where he works; the gateway there
publishes it and the brokers' bridges carry it to the mine, whose console lists it and whose
dispatcher acknowledges having read it."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field

from minewatch.api import audit
from minewatch.api.accounts import Role
from minewatch.api.auth import Access, mine_access
from minewatch.api.deps import PoolDep
from minewatch.api.errors import NOT_FOUND, SIGNED_IN_ERRORS
from minewatch.api.params import Instant, Limit, ShortText

router = APIRouter(prefix="/api/v1", tags=["directives"], responses=SIGNED_IN_ERRORS | NOT_FOUND)


class NewDirective(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["note", "action"] = Field(description="检查意见 (note) or 整改要求 (action).")
    body: Annotated[str, Field(min_length=1, max_length=4000)]
    due_at: Instant | None = Field(None, description="An action's deadline.")
    point: ShortText | None = Field(None, description="The alarm it is about: its point code,")
    rule: ShortText | None = Field(None, description="its rule,")
    alarm_started_at: Instant | None = Field(None, description="and its start (the same at "
                                             "every level, unlike alarm ids).")  # fmt: skip


class DirectiveRecord(BaseModel):
    id: uuid.UUID
    mine_code: str
    kind: str
    body: str
    author: str
    due_at: dt.datetime | None
    point_code: str | None
    rule: str | None
    alarm_started_at: dt.datetime | None
    created_at: dt.datetime
    origin: str | None  # the installation that wrote it (None: here, not yet published)
    published_at: dt.datetime | None  # written here: when it went down
    received_at: dt.datetime | None  # written above: when it arrived here
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None


_COLUMNS = (
    "id, mine_code, kind, body, author, due_at, point_code, rule, alarm_started_at, created_at, "
    "origin, published_at, received_at, acknowledged_at, acknowledged_by"
)
_INSERT = (
    "INSERT INTO directives (id, mine_code, kind, body, author, due_at, point_code, rule, "
    "alarm_started_at) VALUES (%(id)s, %(mine)s, %(kind)s, %(body)s, %(author)s, %(due_at)s, "
    f"%(point)s, %(rule)s, %(alarm_started_at)s) RETURNING {_COLUMNS}"
)
_LIST = (
    f"SELECT {_COLUMNS} FROM directives WHERE mine_code = %(mine)s "
    "ORDER BY created_at DESC, id LIMIT %(limit)s"
)
_ACKNOWLEDGE = (
    "UPDATE directives SET acknowledged_at = coalesce(acknowledged_at, now()), "
    "acknowledged_by = coalesce(acknowledged_by, %(by)s) "
    f"WHERE id = %(id)s AND mine_code = %(mine)s RETURNING {_COLUMNS}"
)


@router.post("/mines/{mine}/directives", response_model=DirectiveRecord, status_code=201)
async def write(
    pool: PoolDep,
    access: Annotated[Access, Depends(mine_access(Role.REGULATOR, Role.ADMIN))],
    body: NewDirective,
) -> dict[str, object]:
    """A regulator's note or required action for the mine; the gateway of this installation
    publishes it down to the mine (``published_at`` once the broker has it)."""
    principal = access.principal
    row = {"id": uuid.uuid4(), "mine": access.mine, "author": principal.identity.actor,
           **body.model_dump()}  # fmt: skip
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        record = await (await cur.execute(_INSERT, row)).fetchone()
        detail: dict[str, object] = {"id": str(row["id"]), "kind": body.kind}
        await audit.record(conn, principal.identity, principal.client_addr, "directive",
                           access.mine, None, detail)  # fmt: skip
    assert record is not None
    return record


@router.get("/mines/{mine}/directives", response_model=list[DirectiveRecord])
async def listing(
    pool: PoolDep, access: Annotated[Access, Depends(mine_access())], limit: Limit = 100
) -> list[dict[str, object]]:
    """The mine's directives, newest first: those written here and those received from the
    levels above."""
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        return await (await cur.execute(_LIST, {"mine": access.mine, "limit": limit})).fetchall()


@router.post("/mines/{mine}/directives/{directive_id}/acknowledge",
             response_model=DirectiveRecord)  # fmt: skip
async def acknowledge(
    pool: PoolDep,
    access: Annotated[Access, Depends(mine_access(Role.DISPATCHER, Role.ADMIN))],
    directive_id: uuid.UUID,
) -> dict[str, object]:
    """The mine has read it (the first acknowledgement stays)."""
    principal = access.principal
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        params = {"id": directive_id, "mine": access.mine, "by": principal.identity.actor}
        record = await (await cur.execute(_ACKNOWLEDGE, params)).fetchone()
        if record is None:
            raise HTTPException(404, "directive not known (or not in your scope)")
        await audit.record(conn, principal.identity, principal.client_addr,
                           "directive acknowledged", access.mine, None,
                           {"id": str(directive_id)})  # fmt: skip
    return record
