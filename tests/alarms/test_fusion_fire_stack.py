"""A CO alarm confirmed as a fire by the smoke sensor of its area (``co_fire_confirmed``, F04)
with the real parts: a gateway (safety readings over the broker, the alarm engine, the fusion
task) on a real database, and the API for dispatchers."""

from __future__ import annotations

import httpx
import orjson
import psycopg
import pytest

from minewatch.feeds import safety_subscriptions, safety_topic
from minewatch.metadata import MineDefinition, upsert_mine
from minewatch.timeutil import datetime_to_us, now_us
from tests.alarms.test_fusion_stack import alarm, connect, fused, incident_of, iso, snapshot
from tests.helpers import eventually, running_api, running_gateway

pytestmark = pytest.mark.anyio

MINE = "141024019956"  # this test's own mine: definitions on the shared broker are per mine
BELT, HEADING, GOAF = f"{MINE}0007", f"{MINE}0004", f"{MINE}0006"
TICK_S = 0.2
CO = {
    "sensor_type": "0004", "unit": "ppm", "range_low": 0.0, "range_high": 1000.0,
    "alarm_high": 24.0, "alarm_high_clear": 24.0, "on_delay_s": 0.0,
}  # fmt: skip
DEFINITION = MineDefinition.model_validate({
    "mine": {"code": MINE, "name": "火灾融合测试矿"},
    "substations": [{"code": "001"}],
    "points": [
        {"code": "CO-BELT", "substation": "001", "area_code": BELT, **CO},
        {"code": "SMOKE-BELT", "substation": "001", "sensor_type": "1008", "area_code": BELT,
         "alarm_state": 1},
        {"code": "CO-HEAD", "substation": "001", "area_code": HEADING, **CO},
        {"code": "CO-GOAF", "substation": "001", "area_code": GOAF, **CO},
        {"code": "TEMP-GOAF", "substation": "001", "sensor_type": "0003", "unit": "°C",
         "range_low": 0.0, "range_high": 40.0, "alarm_high": 30.0, "area_code": GOAF},
    ],
})  # fmt: skip


@pytest.fixture
def database(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, DEFINITION)
    return database_url


async def test_co_with_smoke_in_its_area_is_a_red_confirmed_fire_that_ends_with_the_co(
    database: str, mqtt_url: str, unique_id: str
) -> None:
    t0 = now_us() - 20_000_000  # readings stay fresh: no data interruption
    s = 1_000_000
    async with (
        running_gateway(database, mqtt_url, f"gw-{unique_id}", topics=safety_subscriptions(MINE),
                        tick_s=TICK_S) as gateway,
        connect(mqtt_url) as client,
        running_api(database) as base,
    ):  # fmt: skip
        seq = iter(range(1, 100))
        boot = now_us() // 1000

        async def cycle(k: float, co_belt: float, smoke: float, co_head: float) -> None:
            values = {"CO-BELT": co_belt, "SMOKE-BELT": smoke, "CO-HEAD": co_head}
            doc = {
                "v": 1, "mine": MINE, "substation": "001", "boot": boot, "seq": next(seq),
                "ts": iso(t0 + round(k * s)), "points": list(values),
                "values": list(values.values()), "status": [0] * len(values),
            }  # fmt: skip
            await client.publish(safety_topic(MINE, "001"), orjson.dumps(doc), qos=1)

        await cycle(0, 5, 0, 5)
        await cycle(10, 40, 0, 40)  # CO in both areas; smoke only on the belt, later
        await cycle(11, 45, 0, 45)
        await eventually(lambda: len(alarm_ids(database, "upper_alarm")) == 2)
        rounds = gateway.fusion.rounds  # type: ignore[union-attr]
        await eventually(lambda: gateway.fusion.rounds > rounds + 2)  # type: ignore[union-attr]
        assert fused(database, "co_fire_confirmed") == []  # CO alone is not a confirmed fire
        await cycle(15, 50, 1, 50)
        await eventually(lambda: len(fused(database, "co_fire_confirmed")) == 1)
        (raised,) = fused(database, "co_fire_confirmed")
        co_id, co_start, _ = alarm(database, "upper_alarm", "CO-BELT")
        smoke_id, smoke_start, _ = alarm(database, "smoke", "SMOKE-BELT")
        incident = incident_of(database, co_id)
        async with httpx.AsyncClient(base_url=base) as api:
            active = (await api.get("/api/v1/dispatch/alarms/active", params={"mine": MINE})).json()
        shown = [a for a in active if a["rule"] == "co_fire_confirmed"]
        # evaluated again and again on the same facts: nothing written
        before = snapshot(database)
        rounds = gateway.fusion.rounds  # type: ignore[union-attr]
        await eventually(lambda: gateway.fusion.rounds > rounds + 2)  # type: ignore[union-attr]
        assert snapshot(database) == before

        await cycle(20, 50, 0, 50)  # the smoke clears: the fire stays confirmed
        await eventually(lambda: alarm(database, "smoke", "SMOKE-BELT")[2] is not None)
        rounds = gateway.fusion.rounds  # type: ignore[union-attr]
        await eventually(lambda: gateway.fusion.rounds > rounds + 2)  # type: ignore[union-attr]
        assert fused(database, "co_fire_confirmed")[0]["ended_at"] is None
        await cycle(30, 5, 0, 5)  # the CO clears: so does the fire
        await eventually(lambda: fused(database, "co_fire_confirmed")[0]["ended_at"] is not None)
        (ended,) = fused(database, "co_fire_confirmed")
        _, _, co_end = alarm(database, "upper_alarm", "CO-BELT")

    assert co_start == t0 + 10 * s and smoke_start == t0 + 15 * s
    assert raised["point"] == "CO-BELT" and raised["area_code"] == BELT  # not the heading
    assert raised["grade"] == "red" and raised["source_alarm_ids"] == [co_id, smoke_id]
    assert datetime_to_us(raised["started_at"]) == smoke_start  # type: ignore[arg-type]
    assert raised["start_value"] == 1 and raised["threshold"] == 2.0  # the default rise
    with psycopg.connect(database) as conn:
        (smoke_point,) = conn.execute(  # type: ignore[misc]
            "SELECT id FROM points WHERE code = 'SMOKE-BELT'"
        ).fetchone()
    assert raised["points"] == [smoke_point]
    (listed,) = shown  # the dispatcher sees it, red, with the alarms it fuses
    assert listed["grade"] == "red" and listed["fusion"]["fused_alarm_ids"] == [co_id, smoke_id]
    # it joined the CO alarm's incident, which became red
    assert raised["id"] in incident["members"] and co_id in incident["members"]
    assert incident["grade"] == "red"
    assert datetime_to_us(ended["ended_at"]) == co_end == t0 + 30 * s  # type: ignore[arg-type]


async def test_co_with_the_temperature_of_its_area_rising_past_the_mines_delta_is_a_fire(
    database: str, mqtt_url: str, unique_id: str
) -> None:
    with psycopg.connect(database) as conn:  # the mine's own rise, data
        conn.execute("UPDATE mines SET co_fire_temperature_rise = 1.5 WHERE code = %s", (MINE,))
    t0 = now_us() - 20_000_000  # readings stay fresh: no data interruption
    s = 1_000_000
    async with (
        running_gateway(database, mqtt_url, f"gw-{unique_id}", topics=safety_subscriptions(MINE),
                        tick_s=TICK_S),
        connect(mqtt_url) as client,
    ):  # fmt: skip
        seq = iter(range(1, 100))
        boot = now_us() // 1000

        async def cycle(k: float, co: float, temperature: float) -> None:
            doc = {
                "v": 1, "mine": MINE, "substation": "001", "boot": boot, "seq": next(seq),
                "ts": iso(t0 + round(k * s)), "points": ["CO-GOAF", "TEMP-GOAF"],
                "values": [co, temperature], "status": [0, 0],
            }  # fmt: skip
            await client.publish(safety_topic(MINE, "001"), orjson.dumps(doc), qos=1)

        for k, (co, temperature) in enumerate([(5, 24.0), (40, 24.2), (45, 25.0), (50, 25.5),
                                               (55, 26.0)]):  # fmt: skip
            await cycle(5 * k, co, temperature)
        await eventually(lambda: len(fused(database, "co_fire_confirmed")) == 1)
        await cycle(30, 5, 26.0)
        await eventually(lambda: fused(database, "co_fire_confirmed")[0]["ended_at"] is not None)
        (episode,) = fused(database, "co_fire_confirmed")
        co_id, co_start, co_end = alarm(database, "upper_alarm", "CO-GOAF")
        with psycopg.connect(database) as conn:
            (temp_point,) = conn.execute(  # type: ignore[misc]
                "SELECT id FROM points WHERE code = 'TEMP-GOAF'"
            ).fetchone()

    assert co_start == t0 + 5 * s and co_end == t0 + 30 * s
    assert episode["point"] == "CO-GOAF" and episode["grade"] == "red"
    assert episode["source_alarm_ids"] == [co_id] and episode["points"] == [temp_point]
    # 24.2 at the CO's start (5 s); +0.8 and +1.3 are not more than 1.5; +1.8 at 20 s is
    assert datetime_to_us(episode["started_at"]) == t0 + 20 * s  # type: ignore[arg-type]
    assert episode["threshold"] == 1.5
    assert datetime_to_us(episode["ended_at"]) == co_end  # type: ignore[arg-type]


def alarm_ids(database_url: str, rule: str) -> list[int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT a.id FROM alarms a JOIN points p ON p.id = a.point_id"
            " WHERE a.rule = %s AND p.mine_code = %s",
            (rule, MINE),
        ).fetchall()
    return [int(r[0]) for r in rows]
