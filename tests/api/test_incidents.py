"""The dispatcher's board carries incidents (issue 13): listed with their members, acknowledged
and disposed in one step for every member, within the caller's scope."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from minewatch.api.accounts import Role
from tests.api.test_lifecycle import _signed_in
from tests.api.two_mines import World, bearer, build_world
from tests.helpers import running_api

pytestmark = pytest.mark.anyio


def _incident_of(url: str, alarm_id: int) -> int:
    """An incident rooted at ``alarm_id``, with a second alarm of the point as a member."""
    with psycopg.connect(url) as conn:
        second = conn.execute(
            "INSERT INTO alarms (mine_code, point_id, rule, abnormal_type, started_at, raised_at, "
            "start_value, max_value, max_at, min_value, min_at, value_sum, value_count) "
            "SELECT mine_code, point_id, 'upper_alarm', '001', started_at, raised_at, "
            "start_value, max_value, max_at, min_value, min_at, value_sum, value_count "
            "FROM alarms WHERE id = %s RETURNING id",
            (alarm_id,),
        ).fetchone()
        row = conn.execute(
            "INSERT INTO incidents (mine_code, root_point_id, root_rule, category, grade, "
            "started_at, raised_at) SELECT mine_code, point_id, rule, 'gas', 'red', started_at, "
            "raised_at FROM alarms WHERE id = %s RETURNING id",
            (alarm_id,),
        ).fetchone()
        assert row is not None and second is not None
        for member in (alarm_id, second[0]):
            conn.execute("INSERT INTO incident_members VALUES (%s, %s)", (row[0], member))
        return int(row[0])


async def test_a_dispatcher_sees_and_handles_an_incident_with_its_members(
    database_url: str,
) -> None:
    world: World = await build_world(database_url)
    incident = _incident_of(database_url, world.a.alarm_id)
    async with (
        running_api(database_url, signed_in=False) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        csrf = await _signed_in(client, world, Role.DISPATCHER)
        board = (await client.get("/api/v1/dispatch/incidents/active")).json()
        (shown,) = [i for i in board if i["id"] == incident]
        assert shown["grade"] == "red" and len(shown["members"]) == 2
        path = f"/api/v1/dispatch/alarms/{world.a.alarm_id}/incident"
        acked = await client.post(f"{path}/acknowledge", headers=csrf)
        assert acked.status_code == 200, acked.text
        assert acked.json()["state"] == "acknowledged"
        assert (await client.post(f"{path}/acknowledge", headers=csrf)).status_code == 409
        body = {"cause": "瓦斯涌出", "measures": "撤人, 加强通风", "open_reason": "still open"}
        disposed = await client.post(f"{path}/dispose", json=body, headers=csrf)
        assert disposed.status_code == 200, disposed.text
    with psycopg.connect(database_url) as conn:
        states = conn.execute(
            "SELECT a.state, a.acknowledged_by, a.cause FROM incident_members m "
            "JOIN alarms a ON a.id = m.alarm_id WHERE m.incident_id = %s",
            (incident,),
        ).fetchall()
        records = conn.execute(
            "SELECT action FROM audit_log WHERE action IN ('acknowledged', 'disposed') ORDER BY id"
        ).fetchall()
    assert states == [("disposed", "dispatcher1", "瓦斯涌出")] * 2
    assert records == [("acknowledged",), ("disposed",)]  # one record per step


async def test_an_incident_of_another_mine_is_not_found(database_url: str) -> None:
    world: World = await build_world(database_url)
    _incident_of(database_url, world.b.alarm_id)
    async with (
        running_api(database_url, signed_in=False) as base,
        httpx.AsyncClient(base_url=base, headers=bearer(world.keys[Role.DISPATCHER])) as client,
    ):
        path = f"/api/v1/dispatch/alarms/{world.b.alarm_id}/incident/acknowledge"
        assert (await client.post(path)).status_code == 404
        board = (await client.get("/api/v1/dispatch/incidents/active")).json()
        assert board == []
