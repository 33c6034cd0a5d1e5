"""Pre-alarms in the database and on the dispatcher's board (issue 17): written and cleared in
the batch's transaction, restored after a restart, listed within the caller's scope and shown
on the incident of their point."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from minewatch.alarms.prealarm_store import load_prealarm_state, write_prealarms
from minewatch.alarms.prealarms import PrealarmChange, PrealarmOutcome, PrealarmState
from minewatch.api.accounts import Role
from minewatch.registry import load_registry_async
from minewatch.timeutil import now_us
from tests.api.test_incidents import _incident_of
from tests.api.two_mines import World, bearer, build_world
from tests.helpers import running_api

pytestmark = pytest.mark.anyio
S = 1_000_000


async def _write(url: str, changes: list[PrealarmChange]) -> None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        registry = await load_registry_async(conn)
        outcome = PrealarmOutcome(changes, PrealarmState.empty(0))
        async with conn.transaction(), conn.cursor() as cur:
            await write_prealarms(cur, outcome, registry)


async def test_pre_alarms_are_stored_restored_listed_in_scope_and_shown_on_the_incident(
    database_url: str,
) -> None:
    world: World = await build_world(database_url)
    incident = _incident_of(database_url, world.a.alarm_id)
    now = now_us()
    raised_a, raised_b = now - 200 * S, now - 100 * S
    await _write(database_url, [
        PrealarmChange(world.a.point_id, raised_a, None, 1.0, 1.12, now - 10 * S, 600.0),
        PrealarmChange(world.b.point_id, raised_b - 50 * S, None, 1.0, 1.1, None, 600.0),
        PrealarmChange(world.b.point_id, raised_b - 50 * S, raised_b - 20 * S, 1.0, 0.8, None,
                       600.0),  # raised and cleared in one batch
        PrealarmChange(world.b.point_id, raised_b, None, 1.0, 1.3, None, 600.0),
    ])  # fmt: skip
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        params, open_ = await load_prealarm_state(conn)
    assert params == {}
    assert sorted(open_) == sorted([(world.a.point_id, raised_a), (world.b.point_id, raised_b)])

    async with (
        running_api(database_url, signed_in=False) as base,
        httpx.AsyncClient(base_url=base, headers=bearer(world.keys[Role.DISPATCHER])) as client,
    ):
        active = (await client.get("/api/v1/dispatch/prealarms/active")).json()
        assert [(p["mine_code"], p["point"]) for p in active] == [
            (world.a.code, world.a.point_code)
        ]  # the dispatcher's own mine only; the other mine's are not shown
        assert active[0]["forecast"] == 1.12 and active[0]["horizon_s"] == 600.0
        assert active[0]["lead_s"] == pytest.approx(190.0)  # from the raise to the predicted moment
        board = (await client.get("/api/v1/dispatch/incidents/active")).json()
        (shown,) = [i for i in board if i["id"] == incident]
        (pre,) = shown["prealarms"]
        assert pre["point"] == world.a.point_code and pre["cleared_at"] is None
        assert 150 < pre["lead_s"] < 250  # raised 200 s before the alarm started (10 s ago)

    await _write(database_url, [
        PrealarmChange(world.a.point_id, raised_a, now, 1.0, 0.7, None, 600.0),
    ])  # fmt: skip
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT point_id, cleared_at IS NOT NULL FROM prealarms ORDER BY raised_at"
        ).fetchall()
    assert rows == [(world.a.point_id, True), (world.b.point_id, True), (world.b.point_id, False)]
