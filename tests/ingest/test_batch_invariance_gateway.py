"""Batch invariance through the real parts (issue 18): two substations of one mine publish the
same readings over the broker, one substation first and then the other, in both orders; the
gateway (engine, clock, fusion task) writes identical alarms to the database.

Substation 001 holds a methane point that cuts a feed on substation 002 (馈电) and a local fan;
substation 002 the feed and a methane point in the fan's area. Each order runs on its own
mine (same points, other codes), so one gateway and one database serve both."""

from __future__ import annotations

import datetime as dt
import itertools

import aiomqtt
import orjson
import psycopg
import pytest

from minewatch.feeds import broker_address, safety_subscriptions, safety_topic
from minewatch.metadata import MineDefinition, upsert_mine
from minewatch.timeutil import datetime_to_us, now_us
from tests.helpers import eventually, running_gateway, scalar

pytestmark = pytest.mark.anyio

MINES = {"001-first": "141024019981", "002-first": "141024019982"}
AREA = "0007"
S = 1_000_000
CYCLES = 15
TICK_S = 0.2


def definition(mine: str) -> MineDefinition:
    methane = {"sensor_type": "0001", "unit": "%CH4", "range_low": 0.0, "range_high": 4.0,
               "alarm_high": 1.0, "alarm_high_clear": 1.0}  # fmt: skip
    return MineDefinition.model_validate({
        "mine": {"code": mine, "name": "批次测试矿"},
        "substations": [{"code": "001"}, {"code": "002"}],
        "points": [
            {"code": "CH4-CUT", "substation": "001", **methane, "poweroff_high": 1.5,
             "restore_high": 1.0, "control_time_s": 2.0,
             "relations": [{"kind": "D", "target": "FEED"}]},
            {"code": "FAN", "substation": "001", "sensor_type": "1001", "alarm_state": 0,
             "area_code": mine + AREA},
            {"code": "FEED", "substation": "002", "sensor_type": "1011"},
            {"code": "CH4-AREA", "substation": "002", **methane, "area_code": mine + AREA},
        ],
    })  # fmt: skip


def cycle(k: int) -> dict[str, dict[str, float]]:
    """The readings of cycle ``k`` per substation: a cut from 2 s to 10 s that the feed never
    follows (a power-off failure from 4 s, control time 2 s); the fan stopped from 1 s to 8 s
    while the area's methane rises 0.4 % (a fan-stop gas rise from 4 s)."""
    return {
        "001": {"CH4-CUT": 1.7 if 2 <= k < 10 else 0.3, "FAN": 0.0 if 1 <= k < 8 else 1.0},
        "002": {"FEED": 1.0, "CH4-AREA": 0.3 if k < 3 else (0.4 if k == 3 else 0.7)},
    }


class Substation:
    """One substation's messages, in order, on its own sequence."""

    def __init__(self, client: aiomqtt.Client, mine: str, code: str) -> None:
        self.client, self.mine, self.code = client, mine, code
        self.seq = itertools.count(1)
        self.boot = now_us() // 1000

    async def publish(self, t: int, values: dict[str, float]) -> None:
        ts = dt.datetime.fromtimestamp(t / 1e6, dt.UTC).isoformat()
        doc = {
            "v": 1, "mine": self.mine, "substation": self.code, "boot": self.boot,
            "seq": next(self.seq), "ts": ts, "points": list(values),
            "values": list(values.values()), "status": [0] * len(values),
        }  # fmt: skip
        await self.client.publish(safety_topic(self.mine, self.code), orjson.dumps(doc), qos=1)


def stored_readings(database_url: str, mine: str, substation: str) -> int:
    found = scalar(
        database_url,
        "SELECT count(*) FROM readings r JOIN points p ON p.id = r.point_id"
        " WHERE p.mine_code = %s AND p.substation_code = %s",
        (mine, substation),
    )
    return int(found)  # type: ignore[call-overload]


def alarms(database_url: str, mine: str, t0: int) -> list[tuple[object, ...]]:
    """The mine's alarms as the dispatcher would read them, times relative to ``t0`` (s)."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT a.rule, p.code, a.classification, a.started_at, a.ended_at, a.start_value,"
            " a.threshold, a.value_count, round(a.value_sum::numeric, 6), a.max_value,"
            " a.min_value FROM alarms a JOIN points p ON p.id = a.point_id"
            " WHERE a.mine_code = %s",
            (mine,),
        ).fetchall()

    def rel(t: object) -> float | None:
        return None if t is None else (datetime_to_us(t) - t0) / S  # type: ignore[arg-type]

    return sorted(
        (rule, code, cls, rel(start), rel(end), *rest)
        for rule, code, cls, start, end, *rest in rows
    )


def ended(database_url: str, mine: str, rule: str) -> bool:
    found = scalar(
        database_url,
        "SELECT count(*) FROM alarms WHERE mine_code = %s AND rule = %s AND ended_at IS NOT NULL",
        (mine, rule),
    )
    return found == 1


async def test_two_substations_in_either_order_give_the_same_alarms(
    database_url: str, mqtt_url: str, unique_id: str
) -> None:
    with psycopg.connect(database_url) as conn:
        for mine in MINES.values():
            upsert_mine(conn, definition(mine))
    t0 = now_us() - 30 * S  # fresh readings: within the allowed lateness of the clock
    topics = [topic for mine in MINES.values() for topic in safety_subscriptions(mine)]
    host, port = broker_address(mqtt_url)
    async with (
        running_gateway(database_url, mqtt_url, f"gw-{unique_id}", topics=topics,
                        tick_s=TICK_S) as gateway,
        aiomqtt.Client(host, port) as client,
    ):  # fmt: skip
        for order, mine in MINES.items():
            first, second = ("001", "002") if order == "001-first" else ("002", "001")
            for code in (first, second):  # the whole series of one, then of the other
                substation = Substation(client, mine, code)
                for k in range(CYCLES):
                    await substation.publish(t0 + k * S, cycle(k)[code])
                await eventually(lambda m=mine, c=code: stored_readings(database_url, m, c)
                                 == 2 * CYCLES)  # fmt: skip
                rounds = gateway.fusion.rounds  # type: ignore[union-attr]
                await eventually(lambda r=rounds: gateway.fusion.rounds > r + 2)  # type: ignore[union-attr]
        for mine in MINES.values():
            await eventually(lambda m=mine: ended(database_url, m, "feed_abnormal"))
            await eventually(lambda m=mine: ended(database_url, m, "fan_stop_gas_rise"))
        one, other = (alarms(database_url, mine, t0) for mine in MINES.values())

    assert one == other
    found = {(a[0], a[1]): (a[3], a[4]) for a in one}
    assert found[("feed_abnormal", "CH4-CUT")] == (4.0, 10.0)
    assert found[("fan_stop", "FAN")] == (1.0, 8.0)
    assert found[("fan_stop_gas_rise", "FAN")] == (4.0, 8.0)
