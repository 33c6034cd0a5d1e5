"""The control room's pages (a regulator sees the same pages of their mines, read-only): the
live alarm board, an alarm's record, the mine overview and a point's curve. They call the same
repository functions as the JSON routes; the board's script listens to the alarm stream
(``/api/v1/dispatch/alarms/stream``) and takes the lifecycle steps through the dispatch API."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from minewatch.alarms import incident_store, prealarm_store
from minewatch.alarms.output_store import OUTPUT_SENSOR_TYPE
from minewatch.api import (
    inspection_repository,
    personnel_repository,
    report_repository,
    repository,
    video_repository,
)
from minewatch.api.accounts import Role
from minewatch.api.auth import Access, alarm_access, mine_access, point_access
from minewatch.api.console.render import Page, page_for
from minewatch.api.deps import PoolDep
from minewatch.api.params import AlarmId, MineCode, PointId
from minewatch.api.routers.console_session import RendererDep

router = APIRouter(prefix="/console", include_in_schema=False)

MineReader = Annotated[Access, Depends(mine_access())]
GRADES = ("red", "orange", "yellow", "blue")
BOARD_ROWS = 500
#: Buckets of a curve at most: the bucket width grows with the range.
CURVE_BUCKETS = 1500
#: Bands (episodes, calibrations, interruptions) drawn on a curve at most.
CURVE_BANDS = 500
#: Pre-alarms drawn on a curve at most.
CURVE_PREALARMS = 200


async def _page(request: Request, pool: PoolDep, access: Access) -> Page:
    return await page_for(request, pool, access.principal.identity)


def by_grade(alarms: list[dict[str, object]]) -> list[tuple[str, list[dict[str, object]]]]:
    """The open alarms per grade, red first (those without a grade last), each newest first
    as the query returns them."""
    groups = [(g, [a for a in alarms if a["grade"] == g]) for g in GRADES]
    return [*groups, ("none", [a for a in alarms if a["grade"] not in GRADES])]


@dataclass(frozen=True, slots=True)
class BoardRows:
    """What the board shows: the open alarms by grade, the incidents (one physical event
    each, with its member alarms) still open or not acknowledged, and the pre-alarms up now
    (issue 17: a methane forecast reaching the alarm level within the horizon)."""

    groups: list[tuple[str, list[dict[str, object]]]]
    total: int
    incidents: list[dict[str, object]]
    prealarms: list[dict[str, object]]
    now: dt.datetime


async def _board_rows(pool: PoolDep, access: Access) -> BoardRows:
    where = repository.AlarmFilter(
        mine=access.mine, scope=access.scope, active=True, hide_shelved=True, limit=BOARD_ROWS
    )
    async with pool.connection() as conn:
        alarms = await repository.list_alarms(conn, where)
        incidents = await incident_store.open_incidents(conn, access.scope, access.mine, BOARD_ROWS)
        prealarms = await prealarm_store.active_prealarms(
            conn, access.scope, access.mine, BOARD_ROWS
        )
    for incident in incidents:
        for member in incident["members"]:  # type: ignore[attr-defined]
            for key in ("started_at", "ended_at"):
                if isinstance(member[key], str):
                    member[key] = dt.datetime.fromisoformat(member[key])
        for pre in incident.get("prealarms") or []:  # type: ignore[attr-defined]
            for key in ("raised_at", "cleared_at", "predicted_at"):
                if isinstance(pre[key], str):
                    pre[key] = dt.datetime.fromisoformat(pre[key])
    now = dt.datetime.now(dt.UTC)
    return BoardRows(by_grade(alarms), len(alarms), incidents, prealarms, now)


@router.get("/mines/{mine}/board")
async def board(
    request: Request, mine: MineCode, access: MineReader, pool: PoolDep, pages: RendererDep
) -> HTMLResponse:
    """The live alarm board of a mine: pre-alarms up now, incidents, open alarms by grade,
    newest on top."""
    async with pool.connection() as conn:
        (info,) = await repository.list_mines(conn, mine)
    return pages.html(
        "board.html",
        await _page(request, pool, access),
        mine=info,
        board=await _board_rows(pool, access),
        writable=access.principal.role is Role.DISPATCHER,
    )


@router.get("/mines/{mine}/board/rows")
async def board_rows(
    request: Request, mine: MineCode, access: MineReader, pool: PoolDep, pages: RendererDep
) -> HTMLResponse:
    """The board's incidents and alarm tables alone: the board's script fetches them on each
    stream event."""
    return pages.html(
        "board_rows.html",
        await _page(request, pool, access),
        board=await _board_rows(pool, access),
        writable=access.principal.role is Role.DISPATCHER,
    )


@router.get("/alarms/{alarm_id}")
async def alarm_record(
    request: Request,
    alarm_id: AlarmId,
    pool: PoolDep,
    pages: RendererDep,
    access: Annotated[Access, Depends(alarm_access())],
) -> HTMLResponse:
    """One alarm's record: its values, who acknowledged, shelved and disposed it, and how."""
    where = repository.AlarmFilter(alarm_id=alarm_id, scope=access.scope, limit=1)
    async with pool.connection() as conn:
        (alarm,) = await repository.list_alarms(conn, where)
    return pages.html("alarm.html", await _page(request, pool, access), alarm=alarm)


def level_state(point: dict[str, object]) -> str:
    """The latest value against the point's levels: no_data, power_off, alarm or normal."""
    value = point["value"]
    if not isinstance(value, float | int):
        return "no_data"
    poweroff, alarm = point["poweroff_high"], point["alarm_high"]
    if isinstance(poweroff, float | int) and value >= poweroff:
        return "power_off"
    if isinstance(alarm, float | int) and value >= alarm:
        return "alarm"
    return "normal"


@router.get("/mines/{mine}/overview")
async def overview(
    request: Request, mine: MineCode, access: MineReader, pool: PoolDep, pages: RendererDep
) -> HTMLResponse:
    """Every point's latest value, unit and state; substations' communication state; people
    underground per area; today's output (the mine's local day); cameras."""
    async with pool.connection() as conn:
        (info,) = await repository.list_mines(conn, mine)
        points = await report_repository.latest_readings(conn, mine)
        areas = await personnel_repository.headcount_now(conn, mine)
        cameras = await video_repository.cameras(conn, mine)
        substations = await report_repository.substation_states(conn, mine)
        has_output = any(p["sensor_type"] == OUTPUT_SENSOR_TYPE for p in points)
        timezone = str(info.get("timezone") or "Asia/Shanghai")
        now = dt.datetime.now(dt.UTC)
        output_today = (
            await inspection_repository.output_so_far(conn, mine, "day", timezone, now)
            if has_output
            else None
        )
    for point in points:
        point["level_state"] = level_state(point)
    online = sum(1 for c in cameras if c["status"] == "online")
    return pages.html(
        "overview.html",
        await _page(request, pool, access),
        mine=info,
        points=points,
        areas=areas,
        cameras=cameras,
        substations=substations,
        cameras_online=online,
        output_today=output_today,
    )


def curve_bucket_s(hours: float) -> int:
    """Whole seconds per bucket, so that the range holds at most CURVE_BUCKETS buckets."""
    return max(1, math.ceil(hours * 3600 / CURVE_BUCKETS))


@router.get("/points/{point_id}/curve")
async def curve(
    request: Request,
    point_id: PointId,
    pool: PoolDep,
    pages: RendererDep,
    access: Annotated[Access, Depends(point_access())],
    hours: Annotated[float, Query(gt=0, le=24 * 31, allow_inf_nan=False)] = 1.0,
) -> HTMLResponse:
    """A point's values over the last ``hours`` (fetched by the page from
    ``/api/v1/points/{id}/readings``), with its alarm, power-off and restore levels as lines,
    its alarm episodes, calibrations, data interruptions and pre-alarms as bands, and the
    forecast of a pre-alarm up now as a line into the future."""
    assert access.mine is not None
    async with pool.connection() as conn:
        points = await repository.list_points(conn, access.mine)
    point = next(p for p in points if p["id"] == point_id)
    end = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1)
    start = end - dt.timedelta(hours=hours)
    async with pool.connection() as conn:
        bands = await report_repository.point_bands(conn, point_id, start, end, CURVE_BANDS)
        prealarms = await prealarm_store.point_prealarms(
            conn, point_id, start, end, CURVE_PREALARMS
        )
    return pages.html(
        "curve.html",
        await _page(request, pool, access),
        point=point,
        hours=hours,
        start=start.isoformat(),
        end=end.isoformat(),
        bucket=f"PT{curve_bucket_s(hours)}S",
        bands=bands,
        bands_json=[_band_json(b) for b in bands] + [_prealarm_band(p) for p in prealarms],
        prealarms=prealarms,
        forecasts_json=[
            {"points": prealarm_store.forecast_line(p), "level": p["level"]}
            for p in prealarms
            if p["cleared_at"] is None
        ],
    )


def _band_json(band: dict[str, object]) -> dict[str, object]:
    """A band for the chart's script: kind, label and its span in epoch seconds (an open
    one: null, drawn to the right edge)."""
    started, ended = band["started_at"], band["ended_at"]
    assert isinstance(started, dt.datetime)
    return {
        "kind": band["kind"],
        "label": band["rule"] or band["classification"],
        "grade": band["grade"],
        "from": started.timestamp(),
        "to": ended.timestamp() if isinstance(ended, dt.datetime) else None,
    }


def _prealarm_band(prealarm: dict[str, object]) -> dict[str, object]:
    """A pre-alarm as a band of the chart (an open one: drawn to the right edge)."""
    raised, cleared = prealarm["raised_at"], prealarm["cleared_at"]
    assert isinstance(raised, dt.datetime)
    return {
        "kind": "prealarm",
        "label": "prealarm",
        "grade": None,
        "from": raised.timestamp(),
        "to": cleared.timestamp() if isinstance(cleared, dt.datetime) else None,
    }
