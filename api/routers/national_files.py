"""The national networking files of a mine (docs/federation.md "National files up"), byte for
byte, for remote inspection: those this installation's drop folder accepted and kept (an
installation with a name) and those that arrived from the levels below."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import Response
from psycopg.rows import dict_row
from pydantic import BaseModel

from minewatch.api.auth import Access, national_files_access
from minewatch.api.deps import PoolDep
from minewatch.api.errors import NOT_FOUND, SIGNED_IN_ERRORS
from minewatch.api.params import Instant, Limit

router = APIRouter(
    prefix="/api/v1", tags=["national files"], responses=SIGNED_IN_ERRORS | NOT_FOUND
)

FileName = Annotated[str, Path(pattern=r"^[0-9]{12}_[A-Z]+_[0-9]{14}\.txt$")]


class NationalFileEntry(BaseModel):
    name: str  # <mine>_<TYPE>_<yyyyMMddHHmmss>.txt, as the mine uploaded it
    mine_code: str
    file_type: str
    uploaded_at: dt.datetime  # the header's 数据上传时间
    size: int  # bytes
    sha256: str
    source: str | None  # the installation below that sent it up (None: this one's drop folder)
    seq: int  # its number at that installation (here: in national_files)
    received_at: dt.datetime  # when it was stored here


_BOTH = (
    "SELECT name, mine_code, file_type, uploaded_at, {content} AS content, sha256, "
    "NULL::text AS source, seq, stored_at AS received_at FROM national_files "
    "WHERE mine_code = %(mine)s {where} "
    "UNION ALL "
    "SELECT name, mine_code, file_type, uploaded_at, {content}, sha256, source, seq, "
    "received_at FROM federated_national_files WHERE mine_code = %(mine)s {where}"
)
_LIST = (
    _BOTH.format(
        content="octet_length(content)",
        where="AND (%(type)s::text IS NULL OR file_type = %(type)s) "
        "AND (%(since)s::timestamptz IS NULL OR uploaded_at >= %(since)s) "
        "AND (%(until)s::timestamptz IS NULL OR uploaded_at < %(until)s)",
    )
    + " ORDER BY uploaded_at DESC, name LIMIT %(limit)s"
)
_ONE = _BOTH.format(content="content", where="AND name = %(name)s") + " LIMIT 1"


@router.get("/mines/{mine}/national-files", response_model=list[NationalFileEntry])
async def listing(
    pool: PoolDep,
    access: Annotated[Access, Depends(national_files_access())],
    file_type: Annotated[str | None, Query(alias="type", pattern=r"^[A-Z]+$")] = None,
    since: Instant | None = None,
    until: Instant | None = None,
    limit: Limit = 100,
) -> list[dict[str, object]]:
    """The mine's national files stored here, newest upload first (of ``type``, uploaded in
    [``since``, ``until``)), without their content (``.../national-files/{name}``)."""
    params = {"mine": access.mine, "type": file_type, "since": since, "until": until,
              "limit": limit}  # fmt: skip
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        rows = await (await cur.execute(_LIST, params)).fetchall()
    for row in rows:
        row["size"] = row.pop("content")
    return rows


@router.get(
    "/mines/{mine}/national-files/{name}",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "The file, byte for byte."}},
)
async def download(
    pool: PoolDep, access: Annotated[Access, Depends(national_files_access())], name: FileName
) -> Response:
    """One national file of the mine, byte for byte as the mine uploaded it (UTF-8 text; its
    SHA-256 in ``ETag``), to save under its name or to drop into another system's inbox."""
    async with pool.connection() as conn:
        cur = await conn.execute(_ONE, {"mine": access.mine, "name": name})
        row = await cur.fetchone()
    if row is None:
        raise HTTPException(404, "no such file of this mine here")
    content, sha256 = bytes(row[4]), row[5]
    return Response(
        content, media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "ETag": f'"{sha256}"'},
    )  # fmt: skip
