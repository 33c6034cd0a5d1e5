"""The regulator's pages (a county, city or province; admins see every mine): the overview of
the jurisdiction's mines and the remote-inspection reports, built by the same code as the
report API (api/console/reports.py) with links to its CSV and XLSX exports."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from minewatch.api import inspection_repository, report_repository
from minewatch.api.accounts import Role
from minewatch.api.auth import Access, mine_filter, signed_in
from minewatch.api.console.render import page_for
from minewatch.api.console.reports import MONTH_LIMIT_SHARE, REPORTS, ReportFilter
from minewatch.api.deps import PoolDep, Report
from minewatch.api.routers.console_session import RendererDep
from minewatch.api.routers.reports import MINE_CODE_LENGTH, ReportName

router = APIRouter(prefix="/console", include_in_schema=False)

Regulator = Annotated[Access, Depends(signed_in(Role.REGULATOR, Role.ADMIN))]
#: A mine whose newest reading is older than this stands out as silent (数据中断).
SILENT_AFTER = dt.timedelta(minutes=10)


def is_silent(last_data_at: object, now: dt.datetime) -> bool:
    return not isinstance(last_data_at, dt.datetime) or now - last_data_at > SILENT_AFTER


@router.get("/regulator")
async def regulator_overview(
    request: Request, access: Regulator, pool: PoolDep, pages: RendererDep
) -> HTMLResponse:
    """The jurisdiction's mines: open alarms per grade, last data time (silent ones marked),
    people underground, cameras online, this month's output against the monthly limit; each
    links to its read-only board; the same mines as a grid by county, coloured by state."""
    now = dt.datetime.now(dt.UTC)
    async with pool.connection() as conn:
        mines = await report_repository.mines_overview(conn, access.scope)
        output = {}
        for m in await inspection_repository.mines_with_output(conn, access.scope):
            code, tz = str(m["code"]), str(m["timezone"])
            output[code] = await inspection_repository.output_so_far(conn, code, "month", tz, now)
    for mine in mines:
        mine["silent"] = is_silent(mine["last_data_at"], now)
        mine["state"] = tile_state(mine)
        mine["output_month"] = output.get(str(mine["code"]))
        capacity = mine["approved_capacity_t"]
        mine["month_limit"] = None if capacity is None else MONTH_LIMIT_SHARE * float(capacity)  # type: ignore[arg-type]
    page = await page_for(request, pool, access.principal.identity)
    return pages.html(
        "regulator.html", page, mines=mines, scope=access.scope or "全部", reports=REPORT_TITLES,
        divisions=by_division(mines),
    )  # fmt: skip


#: A mine code begins with its division: province (2 digits), city (2), county (2).
COUNTY_DIGITS = 6


def tile_state(mine: dict[str, object]) -> str:
    """The colour of a mine's tile in the grid: silent first, then its worst open grade."""
    if mine["silent"]:
        return "silent"
    for grade in ("red", "orange", "yellow", "blue"):
        if int(mine[grade]):  # type: ignore[call-overload]
            return grade
    return "ok"


def by_division(mines: list[dict[str, object]]) -> list[tuple[str, list[dict[str, object]]]]:
    """The mines grouped by county (the first six digits of their code), in code order: the
    map-like grid of the overview."""
    groups: dict[str, list[dict[str, object]]] = {}
    for mine in mines:
        groups.setdefault(str(mine["code"])[:COUNTY_DIGITS], []).append(mine)
    return sorted(groups.items())


#: The report pages' names and titles (Chinese, English), in the order of the issue.
REPORT_TITLES = (
    ("alarms", "报警明细", "Alarms"),
    ("exceedance-ranking", "超限排名", "Exceedance ranking"),
    ("disposal-compliance", "处置及时性", "Disposal compliance"),
    ("data-integrity", "数据完整性", "Data integrity"),
    ("calibration-compliance", "标校合规", "Calibration compliance"),
    ("threshold-conformance", "门限合规", "Threshold conformance"),
    ("personnel", "人员定位", "Personnel"),
    ("output", "产量核查", "Output"),
    ("reconciliation", "报警核对", "Reconciliation"),
    ("six-systems", "六大系统督查", "Six-system check"),
)


@router.get("/reports/{name}", dependencies=[Report])
async def report_page(
    request: Request,
    name: ReportName,
    pool: PoolDep,
    pages: RendererDep,
    access: Annotated[Access, Depends(mine_filter())],
    where: Annotated[ReportFilter, Depends()],
) -> HTMLResponse:
    """A report as a table with its filters, and links to the same report as CSV and XLSX."""
    start, end = where.period()
    where = dataclasses.replace(where, start=start, end=end)  # one "now" for page and export
    async with pool.connection() as conn:
        table = await REPORTS[name](conn, access, where)
    # The export covers the very period shown (a default "last 7 days" is pinned here).
    query = {k: v for k, v in request.query_params.items() if k != "format"}
    query |= {"start": start.isoformat(), "end": end.isoformat()}
    exports = {
        f: f"/api/v1/reports/{name}?{urlencode({**query, 'format': f})}" for f in ("csv", "xlsx")
    }
    one_mine = access.mine or (
        access.scope if len(access.scope or "") == MINE_CODE_LENGTH else None
    )
    if name == "alarms" and one_mine is not None:  # the alarms of one mine as a YCBJ file
        ycbj = {"mine": one_mine, "start": start.isoformat(), "end": end.isoformat()}
        exports["ycbj"] = f"/api/v1/reports/alarms/ycbj?{urlencode(ycbj)}"
    page = await page_for(request, pool, access.principal.identity)
    return pages.html(
        "report.html",
        page,
        table=table,
        exports=exports,
        reports=REPORT_TITLES,
        where=where,
        mine=access.mine or "",
        start=start,
        end=end,
    )
