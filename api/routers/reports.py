"""Remote-inspection reports (远程监察报表) for regulators, and for a control room about its
own mine: each as JSON, CSV or XLSX (Chinese headers with units, the jurisdiction and the
period in the sheet). The report pages (/console/reports/...) render the same tables."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel

from minewatch.api import repository
from minewatch.api.auth import Access, mine_filter
from minewatch.api.console.reports import REPORTS, ReportFilter
from minewatch.api.console.tables import to_csv, to_xlsx
from minewatch.api.console.ycbj import ycbj_file
from minewatch.api.deps import ReadPoolDep, Report
from minewatch.api.errors import NOT_FOUND, SIGNED_IN_ERRORS, invalid

router = APIRouter(prefix="/api/v1/reports", tags=["reports"], responses=SIGNED_IN_ERRORS)

ReportName = Literal[
    "alarms", "exceedance-ranking", "disposal-compliance", "data-integrity",
    "calibration-compliance", "threshold-conformance", "personnel", "output", "reconciliation",
    "six-systems",
]  # fmt: skip
Format = Literal["json", "csv", "xlsx"]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class ReportColumn(BaseModel):
    key: str
    header: str
    unit: str


class ReportTable(BaseModel):
    title: str
    jurisdiction: str
    period: str
    columns: list[ReportColumn]
    rows: list[dict[str, Any]]


_FORMATS: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            XLSX: {"schema": {"type": "string", "format": "binary"}},
        },
        "description": "The report: JSON, or with `format` a CSV or XLSX file.",
    },
}


async def _answer(
    name: str, pool: ReadPoolDep, access: Access, where: ReportFilter, format: Format
) -> ReportTable | Response:
    start, end = where.period()
    where = dataclasses.replace(where, start=start, end=end)
    async with pool.connection() as conn:
        table = await REPORTS[name](conn, access, where)
    stem = f"{name}_{start:%Y%m%d}-{end:%Y%m%d}"
    if format == "csv":
        return Response(
            to_csv(table),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{stem}.csv"'},
        )
    if format == "xlsx":
        return Response(
            to_xlsx(table),
            media_type=XLSX,
            headers={"Content-Disposition": f'attachment; filename="{stem}.xlsx"'},
        )
    columns = [ReportColumn(key=c.key, header=c.header("zh"), unit=c.unit) for c in table.columns]
    rows = [{c.key: row.get(c.key) for c in table.columns} for row in table.rows]
    return ReportTable(
        title=table.title_zh,
        jurisdiction=table.jurisdiction,
        period=table.period,
        columns=columns,
        rows=rows,
    )


_COMMON = """

Over ``[start, end)`` (default: the last 7 days, at most 400 days), of the caller's mines (or
of ``mine``); ``format``: JSON, or the same table as a CSV or XLSX file."""


#: A mine code has 12 digits: a scope that long is one mine (a dispatcher's).
MINE_CODE_LENGTH = 12


@router.get(
    "/alarms/ycbj", response_class=Response, dependencies=[Report],
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                     "description": "One YCBJ file (UTF-8), named as the national format names "
                     "it; `X-Record-Count`: its records."}, **NOT_FOUND},
)  # fmt: skip
async def alarms_ycbj(
    pool: ReadPoolDep,
    access: Annotated[Access, Depends(mine_filter())],
    where: Annotated[ReportFilter, Depends()],
) -> Response:
    """The computed point alarms of one mine (``mine``, or the caller's own) starting in
    ``[start, end)`` as a national YCBJ file (测点异常报警, the codec the national inbox reads):
    the records a regulator can hand on. Alarms with minewatch's own 异常类型 (maintenance,
    states, fusion) have no YCBJ form and are left out."""
    start, end = where.period()
    mine = access.mine
    if mine is None and access.scope is not None and len(access.scope) == MINE_CODE_LENGTH:
        mine = access.scope
    if mine is None:
        raise invalid(("query", "mine"), "a YCBJ file holds one mine's alarms: give mine")
    async with pool.connection() as conn:
        (info,) = await repository.list_mines(conn, mine)
        name, data, count = await ycbj_file(
            conn, mine, str(info["name"]), start, end, where.limit, dt.datetime.now(dt.UTC)
        )
    return Response(
        data,
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"',
                 "X-Record-Count": str(count)},
    )  # fmt: skip


def _add_route(name: str) -> None:
    async def endpoint(
        pool: ReadPoolDep,
        access: Annotated[Access, Depends(mine_filter())],
        where: Annotated[ReportFilter, Depends()],
        format: Annotated[Format, Query()] = "json",
    ) -> ReportTable | Response:
        return await _answer(name, pool, access, where, format)

    endpoint.__doc__ = (REPORTS[name].__doc__ or "") + _COMMON
    router.add_api_route(
        f"/{name}", endpoint, methods=["GET"], response_model=ReportTable,
        responses=_FORMATS | NOT_FOUND, dependencies=[Report], name=f"report_{name}",
        summary=f"Report: {name}",
    )  # fmt: skip


for _name in REPORTS:
    _add_route(_name)
