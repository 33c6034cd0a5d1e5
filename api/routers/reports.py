"""Remote-inspection reports (远程监察报表) for regulators, and for a control room about its
own mine: each as JSON, CSV or XLSX (Chinese headers with units, the jurisdiction and the
period in the sheet). The report pages (/console/reports/...) render the same tables."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel

from minewatch.api.auth import Access, mine_filter
from minewatch.api.console.reports import REPORTS, ReportFilter
from minewatch.api.console.tables import to_csv, to_xlsx
from minewatch.api.deps import ReadPoolDep, Report
from minewatch.api.errors import NOT_FOUND, SIGNED_IN_ERRORS

router = APIRouter(prefix="/api/v1/reports", tags=["reports"], responses=SIGNED_IN_ERRORS)

ReportName = Literal[
    "alarms", "exceedance-ranking", "disposal-compliance", "data-integrity",
    "calibration-compliance",
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
