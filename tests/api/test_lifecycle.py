"""Alarm lifecycle over real HTTP: acknowledge, shelve, dispose; grading from data; escalation."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from minewatch.alarms import lifecycle
from minewatch.metadata import upsert_mine
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
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
            (rule, classification, age_s, age_s, definition.points[1].code),
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_a_dispatcher_acknowledges_shelves_and_disposes_an_alarm(database_url: str) -> None:
    alarm = _insert_alarm(database_url, "power_off")
    assert scalar(database_url, "SELECT grade FROM alarms WHERE id = %s", (alarm,)) == "red"
    async with running_api(database_url) as base, httpx.AsyncClient(base_url=base) as client:
        path = f"/api/v1/dispatch/alarms/{alarm}"
        acked = await client.post(f"{path}/acknowledge", json={"by": "调度员 王"})
        assert acked.status_code == 200, acked.text
        assert acked.json()["state"] == "acknowledged"
        assert acked.json()["acknowledged_by"] == "调度员 王"
        again = await client.post(f"{path}/acknowledge", json={"by": "someone"})
        assert again.status_code == 409  # acknowledged once, by the first

        shelved = await client.post(
            f"{path}/shelve", json={"by": "王", "reason": "sensor being replaced", "minutes": 30}
        )
        assert shelved.json()["shelved_reason"] == "sensor being replaced"

        async def live_ids(**params: object) -> set[int]:
            got = await client.get("/api/v1/dispatch/alarms/active", params=params)
            return {a["id"] for a in got.json()}

        assert alarm not in await live_ids()  # hidden from the live view while shelved
        assert alarm in await live_ids(include_shelved=True)
        assert (await client.post(f"{path}/unshelve")).json()["shelved_until"] is None
        assert alarm in await live_ids()

        missing = await client.post(f"{path}/dispose", json={"cause": "x", "by": "王"})
        assert missing.status_code == 422  # measures are required
        disposed = await client.post(
            f"{path}/dispose",
            json={"cause": "采空区瓦斯涌出", "measures": "加强通风，停电撤人", "by": "王"},
        )
        assert disposed.json()["state"] == "disposed"
        assert disposed.json()["measures"] == "加强通风，停电撤人"
        assert (await client.post(f"{path}/dispose", json=disposed.json() | {
            "cause": "a", "measures": "b", "by": "c"})).status_code == 409  # fmt: skip
        assert (await client.post("/api/v1/dispatch/alarms/999999/acknowledge",
                                  json={"by": "x"})).status_code == 404  # fmt: skip


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
