"""The mine dispatcher's live view: active alarms, the server-sent event stream, and the
lifecycle steps (acknowledge, shelve, unshelve, dispose, amend) taken by the signed-in
dispatcher of the alarm's mine."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Header, HTTPException
from fastapi.responses import StreamingResponse
from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, Field

from minewatch.alarms import incident_store, lifecycle, prealarm_store
from minewatch.alarms.lifecycle import LifecycleError, Recorder
from minewatch.alarms.live import AlarmBroadcaster
from minewatch.api import repository
from minewatch.api.accounts import Role
from minewatch.api.audit import lifecycle_recorder
from minewatch.api.auth import Access, alarm_access, mine_filter
from minewatch.api.deps import BroadcasterDep, PoolDep
from minewatch.api.errors import CONFLICT, NOT_FOUND, SIGNED_IN_ERRORS
from minewatch.api.models import Alarm
from minewatch.api.params import AlarmId, Limit, Text

router = APIRouter(prefix="/api/v1/dispatch", tags=["dispatch"], responses=SIGNED_IN_ERRORS)

Dispatcher = Annotated[Access, Depends(alarm_access(Role.DISPATCHER))]
Reader = Annotated[Access, Depends(mine_filter())]
STEP_ERRORS = NOT_FOUND | CONFLICT


class Shelve(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[Text, Field(min_length=1, max_length=500)]
    minutes: float = Field(
        gt=0, le=24 * 60, allow_inf_nan=False,
        description="How long; the grade's rule may allow less (red: 60).",
    )  # fmt: skip


class Dispose(BaseModel):
    """The disposal record (报警处置): YCBJ 异常原因 and 处理措施; the handler (录入人) is the
    signed-in dispatcher."""

    model_config = ConfigDict(extra="forbid")

    cause: Annotated[Text, Field(min_length=1)]
    measures: Annotated[Text, Field(min_length=1)]
    open_reason: Annotated[Text, Field(min_length=1, max_length=500)] | None = Field(
        None, description="Needed when the alarm is still active: why dispose it now."
    )


class Amend(BaseModel):
    """A correction of a disposal: the new cause and measures, and why."""

    model_config = ConfigDict(extra="forbid")

    cause: Annotated[Text, Field(min_length=1)]
    measures: Annotated[Text, Field(min_length=1)]
    reason: Annotated[Text, Field(min_length=1, max_length=500)]


class LifecycleState(BaseModel):
    id: int
    mine_code: str
    rule: str
    state: str
    grade: str | None
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None
    shelved_by: str | None
    shelved_until: dt.datetime | None
    shelved_reason: str | None
    disposed_at: dt.datetime | None
    cause: str | None
    measures: str | None
    handled_by: str | None
    disposed_open_reason: str | None
    escalated_at: dt.datetime | None
    ended_at: dt.datetime | None


Step = Callable[[AsyncConnection, Recorder], Awaitable[dict[str, object]]]


async def _transition(pool: PoolDep, access: Access, step: Step) -> dict[str, object]:
    principal = access.principal
    record = lifecycle_recorder(principal.identity, principal.client_addr)
    async with pool.connection() as conn:
        try:
            return await step(conn, record)
        except LifecycleError as error:
            status = 404 if error.missing else 403 if error.forbidden else 409
            raise HTTPException(status, str(error)) from None


@router.post("/alarms/{alarm_id}/acknowledge", response_model=LifecycleState,
             responses=STEP_ERRORS)  # fmt: skip
async def acknowledge(alarm_id: AlarmId, access: Dispatcher, pool: PoolDep) -> dict[str, object]:
    """The signed-in dispatcher saw the alarm (once; 409 if already acknowledged or disposed)."""
    actor = access.principal.actor
    return await _transition(
        pool, access, lambda c, r: lifecycle.acknowledge(c, alarm_id, actor, r)
    )


@router.post("/alarms/{alarm_id}/shelve", response_model=LifecycleState, responses=STEP_ERRORS)
async def shelve(
    alarm_id: AlarmId, body: Shelve, access: Dispatcher, pool: PoolDep
) -> dict[str, object]:
    """Hide the alarm from the live view for a while, with a reason (e.g. a known repair),
    within its grade's rule (docs/api.md, "Alarm lifecycle rules"): a shelved alarm is not
    shelved again until unshelved or expired, and a shelved red alarm still escalates."""
    actor = access.principal.actor
    return await _transition(
        pool,
        access,
        lambda c, r: lifecycle.shelve(c, alarm_id, actor, body.reason, body.minutes, r),
    )


@router.post("/alarms/{alarm_id}/unshelve", response_model=LifecycleState, responses=STEP_ERRORS)
async def unshelve(alarm_id: AlarmId, access: Dispatcher, pool: PoolDep) -> dict[str, object]:
    """Back in the live view now (409 when not shelved)."""
    actor = access.principal.actor
    return await _transition(pool, access, lambda c, r: lifecycle.unshelve(c, alarm_id, actor, r))


@router.post("/alarms/{alarm_id}/dispose", response_model=LifecycleState, responses=STEP_ERRORS)
async def dispose(
    alarm_id: AlarmId, body: Dispose, access: Dispatcher, pool: PoolDep
) -> dict[str, object]:
    """Record cause and measures, the signed-in dispatcher as handler (处置): once, after an
    acknowledgement; while the alarm is still active only with ``open_reason``."""
    actor = access.principal.actor
    return await _transition(pool, access, lambda c, r: lifecycle.dispose(
        c, alarm_id, actor, body.cause, body.measures, body.open_reason, r))  # fmt: skip


@router.post("/alarms/{alarm_id}/amend", response_model=LifecycleState, responses=STEP_ERRORS)
async def amend(
    alarm_id: AlarmId, body: Amend, access: Dispatcher, pool: PoolDep
) -> dict[str, object]:
    """Correct a disposal's cause and measures, with a reason; the audit log keeps the
    earlier ones."""
    actor = access.principal.actor
    return await _transition(pool, access, lambda c, r: lifecycle.amend(
        c, alarm_id, actor, body.cause, body.measures, body.reason, r))  # fmt: skip


class IncidentState(BaseModel):
    id: int
    mine_code: str
    root_rule: str
    state: str
    grade: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None


async def _incident_step(
    pool: PoolDep, access: Access, alarm_id: int,
    step: Callable[[AsyncConnection, int, Recorder], Awaitable[dict[str, object]]],
) -> dict[str, object]:  # fmt: skip
    async def run(conn: AsyncConnection, record: Recorder) -> dict[str, object]:
        incident = await incident_store.incident_of(conn, alarm_id)
        if incident is None:
            raise LifecycleError(f"alarm {alarm_id} is in no incident", missing=True)
        return await step(conn, incident, record)

    return await _transition(pool, access, run)


@router.post("/alarms/{alarm_id}/incident/acknowledge", response_model=IncidentState,
             responses=STEP_ERRORS)  # fmt: skip
async def acknowledge_incident(
    alarm_id: AlarmId, access: Dispatcher, pool: PoolDep
) -> dict[str, object]:
    """Acknowledge the incident of this alarm and every member alarm not acknowledged yet
    (one audit record)."""
    actor = access.principal.actor

    async def step(c: AsyncConnection, i: int, r: Recorder) -> dict[str, object]:
        return await lifecycle.acknowledge_incident(c, i, actor, r)

    return await _incident_step(pool, access, alarm_id, step)


@router.post("/alarms/{alarm_id}/incident/dispose", response_model=IncidentState,
             responses=STEP_ERRORS)  # fmt: skip
async def dispose_incident(
    alarm_id: AlarmId, body: Dispose, access: Dispatcher, pool: PoolDep
) -> dict[str, object]:
    """One disposal for the incident of this alarm: every member alarm not disposed yet takes
    its cause and measures (one audit record)."""
    actor = access.principal.actor

    async def step(c: AsyncConnection, i: int, r: Recorder) -> dict[str, object]:
        return await lifecycle.dispose_incident(
            c, i, actor, body.cause, body.measures, body.open_reason, r
        )

    return await _incident_step(pool, access, alarm_id, step)


class IncidentMember(BaseModel):
    id: int
    point: str
    rule: str
    classification: str
    state: str
    grade: str | None
    started_at: dt.datetime
    ended_at: dt.datetime | None


class IncidentPrealarm(BaseModel):
    """A pre-alarm shown on an incident: its point's forecast reached the alarm level."""

    id: int
    point: str
    raised_at: dt.datetime
    cleared_at: dt.datetime | None
    level: float
    forecast: float
    predicted_at: dt.datetime | None
    horizon_s: float
    lead_s: float  # how long before the incident started it was raised (negative: after)


class Incident(BaseModel):
    """One physical event (docs/alarms.md, "Incidents") with its member alarms."""

    id: int
    mine_code: str
    root_point: str
    root_rule: str
    category: str
    grade: str
    state: str
    started_at: dt.datetime
    raised_at: dt.datetime
    ended_at: dt.datetime | None
    peak_value: float | None
    peak_at: dt.datetime | None
    peak_point: str | None
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None
    members: list[IncidentMember]
    #: pre-alarms of its points before and during it (docs/alarms.md, "Pre-alarms")
    prealarms: list[IncidentPrealarm] = []


@router.get("/incidents/active", response_model=list[Incident], responses=NOT_FOUND)
async def active_incidents(
    pool: PoolDep, access: Reader, limit: Limit = 1000
) -> list[dict[str, object]]:
    """Incidents of the caller's mines (or of ``mine``) still open or not acknowledged, newest
    first, each with its member alarms: what the dispatcher's board shows."""
    async with pool.connection() as conn:
        return await incident_store.open_incidents(conn, access.scope, access.mine, limit)


class Prealarm(BaseModel):
    """A pre-alarm up now: the point's forecast reaches its alarm level within the horizon
    (never a regulatory alarm record; docs/alarms.md, "Pre-alarms")."""

    id: int
    mine_code: str
    point: str
    location: str | None
    raised_at: dt.datetime
    level: float
    forecast: float
    predicted_at: dt.datetime | None
    horizon_s: float
    #: how long after the raise the forecast reaches the level (None: no predicted moment)
    lead_s: float | None = None


@router.get("/prealarms/active", response_model=list[Prealarm], responses=NOT_FOUND)
async def active_prealarms(
    pool: PoolDep, access: Reader, limit: Limit = 1000
) -> list[dict[str, object]]:
    """Pre-alarms up now on the caller's mines (or on ``mine``), newest first."""
    async with pool.connection() as conn:
        return await prealarm_store.active_prealarms(conn, access.scope, access.mine, limit)


KEEPALIVE_S = 15.0


class Fusion(BaseModel):
    """What a fused alarm (docs/alarms.md, "Fusion across systems") brings together."""

    area_code: str
    fused_alarm_ids: list[int]  # the alarms it fuses: gas alarms, or the fan stop first
    head_count: int | None  # gas_people: people in the area now
    cards: list[str]  # gas_people: who they are
    cameras_offline: list[str]  # gas_camera_offline
    rising_points: list[str]  # fan_stop_gas_rise: methane points; co_fire_confirmed: smoke/temp


class DispatchAlarm(Alarm):
    fusion: Fusion | None = None


def _dispatch_row(row: dict[str, object]) -> dict[str, object]:
    if row.get("fused_alarm_ids") is None:
        return row
    cards = list(row["fusion_cards"] or [])  # type: ignore[call-overload]
    row["fusion"] = {
        "area_code": row["fusion_area"], "fused_alarm_ids": row["fused_alarm_ids"],
        "head_count": len(cards) if row["rule"] == "gas_people" else None, "cards": cards,
        "cameras_offline": row["fusion_cameras"] or [],
        "rising_points": row["fusion_points"] or [],
    }  # fmt: skip
    return row


@router.get("/alarms/active", response_model=list[DispatchAlarm], responses=NOT_FOUND)
async def active_alarms(
    pool: PoolDep, access: Reader, limit: Limit = 1000, include_shelved: bool = False
) -> list[dict[str, object]]:
    """Open alarms of the caller's mines (or of ``mine``), newest first; shelved ones only
    with ``include_shelved`` (until expiry). Each with its grade; fused alarms with what they
    fuse (``fusion``)."""
    where = repository.AlarmFilter(
        mine=access.mine, active=True, limit=limit, hide_shelved=not include_shelved,
        scope=access.scope,
    )  # fmt: skip
    async with pool.connection() as conn:
        return [_dispatch_row(r) for r in await repository.list_alarms(conn, where)]


#: Changes read from the database per round; a reconnecting screen catches up in rounds.
CATCH_UP_ROWS = 500
#: A gap in the numbering is a change not committed yet (two writers at once) or one rolled
#: back. The stream waits this long for it before it passes over it, polling meanwhile.
GAP_GRACE_S = 5.0
GAP_POLL_S = 0.2


_ALARM_KEYS = (
    "event", "id", "mine", "point_id", "point", "rule", "abnormal_type", "classification",
    "state", "grade", "started_at", "ended_at", "incident_id", "computed_late", "corrected_at",
)  # fmt: skip


def _sse(row: dict[str, object]) -> bytes:
    """An ``alarm`` event, or an ``incident`` event for a change of an incident (issue 13),
    or a ``prealarm`` event for a pre-alarm raised or cleared (issue 17)."""
    if row.get("changed_incident") is not None:
        return _incident_sse(row)
    if row.get("changed_prealarm") is not None:
        return _prealarm_sse(row)
    event = {k: row[k] for k in _ALARM_KEYS}
    event["time"] = {"raised": row["started_at"], "cleared": row["ended_at"]}.get(
        str(row["event"]), row["at"]
    )
    return b"id: %d\nevent: alarm\ndata: %s\n\n" % (row["seq"], orjson.dumps(event))  # type: ignore[str-format]


def _incident_sse(row: dict[str, object]) -> bytes:
    """``opened``, ``updated`` (members joined, a member's end, grade or peak), ``closed``,
    ``acknowledged`` or ``disposed``: the incident as it is now, with its member alarm ids."""
    event = {
        "event": row["event"], "id": row["changed_incident"], "mine": row["mine"],
        "root_point": row["root_point"], "root_rule": row["root_rule"],
        "category": row["category"], "grade": row["incident_grade"],
        "state": row["incident_state"], "started_at": row["incident_started_at"],
        "ended_at": row["incident_ended_at"], "peak": row["peak_value"],
        "members": row["members"], "time": row["at"],
        "computed_late": row["incident_computed_late"],
    }  # fmt: skip
    return b"id: %d\nevent: incident\ndata: %s\n\n" % (row["seq"], orjson.dumps(event))  # type: ignore[str-format]


def _prealarm_sse(row: dict[str, object]) -> bytes:
    """``raised`` or ``cleared``: the pre-alarm as it is now; ``lead_s`` is how long after the
    raise its forecast reaches the level (the same fields as on MQTT)."""
    event = {
        "event": row["event"], "id": row["changed_prealarm"], "mine": row["mine"],
        "point_id": row["prealarm_point_id"], "point": row["prealarm_point"],
        "raised_at": row["raised_at"], "cleared_at": row["cleared_at"], "level": row["level"],
        "forecast": row["forecast"], "predicted_at": row["predicted_at"],
        "horizon_s": row["horizon_s"], "lead_s": row["lead_s"],
    }  # fmt: skip
    event["time"] = row["raised_at"] if row["event"] == "raised" else row["cleared_at"]
    return b"id: %d\nevent: prealarm\ndata: %s\n\n" % (row["seq"], orjson.dumps(event))  # type: ignore[str-format]


@dataclass
class _Cursor:
    """Where a stream is in the numbered changes, and since when it waits at a gap."""

    last: int
    gap_since: float | None = None

    def take(self, rows: list[dict[str, object]]) -> list[dict[str, object]]:
        """The visible rows up to the first gap still within its grace; moves past them."""
        taken: list[dict[str, object]] = []
        for row in rows:
            seq = int(row["seq"])  # type: ignore[call-overload]
            if seq != self.last + 1:
                now = time.monotonic()
                self.gap_since = self.gap_since or now
                if now - self.gap_since < GAP_GRACE_S:
                    return taken
            self.gap_since = None
            self.last = seq
            if row["visible"]:
                taken.append(row)
        return taken


async def _events(
    pool: PoolDep, broadcaster: AlarmBroadcaster, access: Access, last_seen: int | None
) -> AsyncIterator[bytes]:
    """Each committed alarm change with its number as the event ``id``, in number order. The
    notification only wakes the stream; what it sends is read from ``alarm_changes``, so a
    screen that reconnects with ``Last-Event-ID`` gets everything after it first."""
    async with broadcaster.subscribe() as queue:
        if last_seen is None:
            async with pool.connection() as conn:
                last_seen = await repository.last_alarm_change(conn)
        cursor = _Cursor(last_seen)
        yield b": connected\n\n"
        while True:
            async with pool.connection() as conn:
                rows = await repository.alarm_changes_after(
                    conn, cursor.last, access.scope, access.mine, CATCH_UP_ROWS
                )
            taken = cursor.take(rows)
            if taken:  # one write for the batch, not one per change (a storm: thousands)
                yield b"".join(_sse(row) for row in taken)
            if len(rows) == CATCH_UP_ROWS and cursor.gap_since is None:
                continue
            wait_s = KEEPALIVE_S if cursor.gap_since is None else GAP_POLL_S
            try:
                event = await asyncio.wait_for(queue.get(), wait_s)
            except TimeoutError:
                if cursor.gap_since is None:
                    yield b": keepalive\n\n"
                continue
            if event.get("event") == "overflow":
                yield b"event: overflow\ndata: {}\n\n"  # reconnect with Last-Event-ID
                return


@router.get(
    "/alarms/stream", response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                     "description": "Server-sent events, each `id: <n>`, `event: alarm` "
                     "(or `incident`, `prealarm`), `data: <JSON>`; comments (`:`) as keep-alive."},
               **NOT_FOUND},
)  # fmt: skip
async def alarm_stream(
    broadcaster: BroadcasterDep, pool: PoolDep, access: Reader,
    last_event_id: Annotated[int | None, Header(ge=0, le=2**63 - 1)] = None,
) -> StreamingResponse:  # fmt: skip
    """Server-sent events of the caller's mines (or of ``mine``): one ``alarm`` event per
    change (raised, cleared, acknowledged, shelved, unshelved, disposed, amended, escalated,
    regraded) as it is committed, and one ``incident`` event per change of an incident
    (opened, updated, closed, acknowledged, disposed; with its member alarm ids), and one
    ``prealarm`` event per pre-alarm raised or cleared. Reconnect with ``Last-Event-ID`` to
    resume."""
    return StreamingResponse(
        _events(pool, broadcaster, access, last_event_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
