"""Alarm lifecycle over real HTTP, signed in: acknowledge, shelve, dispose, amend, with the
rules a control room needs; grading from data; escalation (also of shelved red alarms)."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from minewatch.alarms import lifecycle
from minewatch.api.accounts import Role
from minewatch.metadata import upsert_mine
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from tests.api.two_mines import PASSWORD, World, bearer, build_world
from tests.helpers import running_api, scalar

pytestmark = pytest.mark.anyio


def _insert_alarm(
    url: str, rule: str, age_s: float = 0.0, classification: str = "exceedance"
) -> int:
    definition = SimulatedMine(load_mine_config(example_mine_path("small"))).definition
    with psycopg.connect(url) as conn:
        upsert_mine(conn, definition)
        row = conn.execute(
            "INSERT INTO alarms (mine_code, point_id, rule, abnormal_type, classification, "
            "started_at, raised_at, start_value, max_value, max_at, min_value, min_at, "
            "value_sum, value_count) SELECT mine_code, id, %s, '001', %s, "
            "now() - make_interval(secs => %s), now() - make_interval(secs => %s), "
            "1.6, 1.6, now(), 1.6, now(), 1.6, 1 FROM points WHERE code = %s RETURNING id",
            (rule, classification, age_s, age_s, definition.points[2].code),
        ).fetchone()
    assert row is not None
    return int(row[0])


async def _signed_in(client: httpx.AsyncClient, world: World, role: Role) -> dict[str, str]:
    """Sign in as the person of ``role``; the headers a browser sends for a change."""
    response = await client.post(
        "/api/v1/auth/login", json={"username": world.usernames[role], "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"X-CSRF-Token": response.json()["csrf_token"]}


async def test_a_dispatcher_acknowledges_shelves_and_disposes_an_alarm(database_url: str) -> None:
    world = await build_world(database_url)
    alarm = world.a.alarm_id
    assert scalar(database_url, "SELECT grade FROM alarms WHERE id = %s", (alarm,)) == "red"
    async with (
        running_api(database_url, signed_in=False) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        csrf = await _signed_in(client, world, Role.DISPATCHER)
        path = f"/api/v1/dispatch/alarms/{alarm}"
        assert (await client.post(f"{path}/acknowledge")).status_code == 403  # no CSRF token
        acked = await client.post(f"{path}/acknowledge", headers=csrf)
        assert acked.status_code == 200, acked.text
        assert acked.json()["state"] == "acknowledged"
        assert acked.json()["acknowledged_by"] == "dispatcher1"  # the signed-in identity
        again = await client.post(f"{path}/acknowledge", headers=csrf)
        assert again.status_code == 409  # acknowledged once, by the first

        shelve = {"reason": "sensor being replaced", "minutes": 30}
        shelved = await client.post(f"{path}/shelve", json=shelve, headers=csrf)
        assert shelved.json()["shelved_reason"] == "sensor being replaced"
        assert shelved.json()["shelved_by"] == "dispatcher1"

        async def live_ids(**params: object) -> set[int]:
            got = await client.get("/api/v1/dispatch/alarms/active", params=params)
            return {a["id"] for a in got.json()}

        assert alarm not in await live_ids()  # hidden from the live view while shelved
        assert alarm in await live_ids(include_shelved=True)
        assert (await client.post(f"{path}/unshelve", headers=csrf)).json()["shelved_until"] is None
        assert alarm in await live_ids()

        missing = await client.post(f"{path}/dispose", json={"cause": "x"}, headers=csrf)
        assert missing.status_code == 422  # measures are required
        disposal = {"cause": "采空区瓦斯涌出", "measures": "加强通风，停电撤人"}
        still_open = await client.post(f"{path}/dispose", json=disposal, headers=csrf)
        assert still_open.status_code == 409  # active: only after clear, or with a reason
        disposed = await client.post(
            f"{path}/dispose", json=disposal | {"open_reason": "feed restored, cleared by hand"},
            headers=csrf,
        )  # fmt: skip
        assert disposed.json()["state"] == "disposed"
        assert disposed.json()["handled_by"] == "dispatcher1"
        twice = await client.post(f"{path}/dispose", json=disposal, headers=csrf)
        assert twice.status_code == 409
        amended = await client.post(
            f"{path}/amend", headers=csrf,
            json={"cause": "供电线路故障", "measures": "更换开关", "reason": "原因写错"},
        )  # fmt: skip
        assert amended.json()["cause"] == "供电线路故障"
        missing_alarm = await client.post("/api/v1/dispatch/alarms/999999/acknowledge",
                                          headers=csrf)  # fmt: skip
        assert missing_alarm.status_code == 404
    with psycopg.connect(database_url) as conn:
        audit = conn.execute(
            "SELECT action, actor, detail->>'previous_cause' FROM audit_log "
            "WHERE alarm_id = %s ORDER BY id", (alarm,)
        ).fetchall()  # fmt: skip
    assert audit == [
        ("acknowledged", "dispatcher1", None), ("shelved", "dispatcher1", None),
        ("unshelved", "dispatcher1", None), ("disposed", "dispatcher1", None),
        ("amended", "dispatcher1", "采空区瓦斯涌出"),
    ]  # fmt: skip


async def test_shelving_a_red_alarm_follows_its_rule_and_never_overwrites(
    database_url: str,
) -> None:
    world = await build_world(database_url)
    alarm = world.a.alarm_id
    path = f"/api/v1/dispatch/alarms/{alarm}"
    async with (
        running_api(database_url, signed_in=False) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        csrf = await _signed_in(client, world, Role.DISPATCHER)
        first = {"reason": "known repair", "minutes": 30}
        unacked = await client.post(f"{path}/shelve", json=first, headers=csrf)
        assert unacked.status_code == 409  # a red alarm is acknowledged before it is shelved
        await client.post(f"{path}/acknowledge", headers=csrf)
        too_long = await client.post(f"{path}/shelve", json=first | {"minutes": 24 * 60},
                                     headers=csrf)  # fmt: skip
        assert too_long.status_code == 409  # red: 60 minutes at most
        machine = await client.post(f"{path}/shelve", json=first,
                                    headers=bearer(world.keys[Role.DISPATCHER]))  # fmt: skip
        assert machine.status_code == 403  # a machine client does not shelve a red alarm
        assert (await client.post(f"{path}/shelve", json=first, headers=csrf)).status_code == 200
        again = await client.post(f"{path}/shelve", json={"reason": "hide", "minutes": 60},
                                  headers=csrf)  # fmt: skip
        assert again.status_code == 409  # no overwrite of the earlier shelving
        assert (await client.post(f"{path}/unshelve", headers=csrf)).status_code == 200
        assert (await client.post(f"{path}/shelve", json=first, headers=csrf)).status_code == 200
        await client.post(f"{path}/unshelve", headers=csrf)
        third = await client.post(f"{path}/shelve", json=first, headers=csrf)
        assert third.status_code == 409  # red: twice at most
    assert scalar(database_url, "SELECT count(*) FROM alarm_shelvings WHERE alarm_id = %s",
                  (alarm,)) == 2  # fmt: skip
    assert scalar(database_url, "SELECT min(reason) FROM alarm_shelvings") == "known repair"


async def test_grades_come_from_the_rules_table_and_follow_reclassification(
    database_url: str,
) -> None:
    alarm = _insert_alarm(database_url, "upper_alarm")
    assert scalar(database_url, "SELECT grade FROM alarms WHERE id = %s", (alarm,)) == "orange"
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE alarms SET classification = 'calibration_undeclared' WHERE id = %s", (alarm,)
        )
    assert scalar(database_url, "SELECT grade FROM alarms WHERE id = %s", (alarm,)) == "yellow"


async def test_a_red_alarm_not_acknowledged_in_time_is_escalated_once(database_url: str) -> None:
    late = _insert_alarm(database_url, "power_off", age_s=600)  # deadline 300 s
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE alarms SET ended_at = now() WHERE id = %s", (late,))
    fresh = _insert_alarm(database_url, "power_off", age_s=10)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        first = await lifecycle.escalate_due(conn)
        second = await lifecycle.escalate_due(conn)
    assert [row["id"] for row in first] == [late]
    assert second == []
    assert scalar(database_url, "SELECT escalated_at IS NULL FROM alarms WHERE id = %s", (fresh,))


async def test_shelving_does_not_stop_the_escalation_of_a_red_alarm(database_url: str) -> None:
    red = _insert_alarm(database_url, "power_off", age_s=600)
    with psycopg.connect(database_url) as conn:  # shelved (as before the rules, unacknowledged)
        conn.execute("UPDATE alarms SET shelved_until = now() + interval '1 day' WHERE id = %s",
                     (red,))  # fmt: skip
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        escalated = await lifecycle.escalate_due(conn)
    assert [row["id"] for row in escalated] == [red]


async def test_a_failed_audit_write_fails_the_step_and_changes_nothing(database_url: str) -> None:
    world = await build_world(database_url)
    async with (
        running_api(database_url, signed_in=False) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        csrf = await _signed_in(client, world, Role.DISPATCHER)
        with psycopg.connect(database_url) as conn:  # the audit table refuses every new row
            conn.execute("ALTER TABLE audit_log ADD CONSTRAINT broken CHECK (false) NOT VALID")
        response = await client.post(
            f"/api/v1/dispatch/alarms/{world.a.alarm_id}/acknowledge", headers=csrf
        )
        assert response.status_code >= 500
    assert scalar(database_url, "SELECT acknowledged_at FROM alarms WHERE id = %s",
                  (world.a.alarm_id,)) is None  # fmt: skip
