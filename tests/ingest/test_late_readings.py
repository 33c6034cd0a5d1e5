"""Late readings are evaluated in their own time order (issue 15): readings that arrive after
newer readings of their point (a mine catching up after an outage) raise the alarms that
happened, stored as computed late, through the real broker, gateway and database; and the
API shows them, and the late readings, as such (issue 11: late readings marked)."""

from __future__ import annotations

import datetime as dt

import aiomqtt
import httpx
import orjson
import psycopg
import pytest

from minewatch.feeds import broker_address, safety_subscriptions, safety_topic
from minewatch.metadata import MineDefinition, upsert_mine
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from tests.helpers import eventually, running_api, running_gateway, scalar

pytestmark = pytest.mark.anyio

POINT = "14102401000101001A01"  # methane: alarm 1.0, power-off 1.5
T0 = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)


@pytest.fixture
def definition(database_url: str) -> MineDefinition:
    definition = SimulatedMine(load_mine_config(example_mine_path("small"))).definition
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, definition)
    return definition


class Publisher:
    """One substation's messages, numbered in publish order, stamped with any event time."""

    def __init__(self, definition: MineDefinition, mqtt_url: str) -> None:
        self.definition = definition
        self.mqtt_url = mqtt_url
        self.points = [p.code for p in definition.points if p.substation == "001"]
        self.seq = 0

    async def send(self, seconds: range, methane: dict[int, float] | None = None) -> None:
        host, port = broker_address(self.mqtt_url)
        topic = safety_topic(self.definition.mine.code, "001")
        async with aiomqtt.Client(host, port) as client:
            for s in seconds:
                self.seq += 1
                values = [(methane or {}).get(s, 0.3) if c == POINT else 0.3 for c in self.points]
                await client.publish(topic, orjson.dumps({
                    "v": 1, "mine": self.definition.mine.code, "substation": "001", "boot": 1,
                    "seq": self.seq, "ts": (T0 + dt.timedelta(seconds=s)).isoformat(),
                    "points": self.points, "values": values, "status": [0] * len(values),
                }), qos=1)  # fmt: skip


def _times(database_url: str) -> object:
    return scalar(database_url, "SELECT count(DISTINCT time) FROM readings")


def _alarms(database_url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT a.rule, a.started_at, a.ended_at, a.max_value, a.value_count, "
            "a.computed_late, a.state FROM alarms a JOIN points p ON p.id = a.point_id "
            "WHERE p.code = %s AND a.rule IN ('upper_alarm', 'power_off') "
            "ORDER BY a.rule, a.started_at",
            (POINT,),
        ).fetchall()


def _at(seconds: int) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


EXCEEDANCE = {s: 1.84 for s in range(30, 60)}  # a mine's own YCBJ record of 1.84 % CH4


async def test_a_backlog_that_arrives_after_newer_readings_raises_its_alarms_computed_late(
    database_url: str, mqtt_url: str, unique_id: str, definition: MineDefinition
) -> None:
    publisher = Publisher(definition, mqtt_url)
    topics = safety_subscriptions(definition.mine.code)
    async with running_gateway(database_url, mqtt_url, f"gw-{unique_id}", topics=topics):
        await publisher.send(range(10))
        await publisher.send(range(600, 601))  # the link came back: live data first
        await eventually(lambda: _times(database_url) == 11)
        await publisher.send(range(10, 100), EXCEEDANCE)  # then what the mine buffered
        await eventually(lambda: _times(database_url) == 101)
        await eventually(lambda: len(_alarms(database_url)) == 2)

    late = scalar(database_url, "SELECT count(*) FROM readings WHERE flags & 1 = 1")
    assert late == 90 * len(publisher.points)  # stored and flagged late, as before
    assert _alarms(database_url) == [
        ("power_off", _at(30), _at(60), 1.84, 30, True, "cleared"),
        ("upper_alarm", _at(30), _at(60), 1.84, 30, True, "cleared"),
    ]

    async with running_api(database_url) as base, httpx.AsyncClient(base_url=base) as client:
        alarms = (await client.get("/api/v1/alarms", params={
            "mine": definition.mine.code, "rule": "upper_alarm"})).json()  # fmt: skip
        assert [a["computed_late"] for a in alarms] == [True]
        point_id = alarms[0]["point_id"]
        buckets = (await client.get(f"/api/v1/points/{point_id}/readings", params={
            "start": _at(0).isoformat(), "end": _at(700).isoformat(), "bucket": "PT10M",
        })).json()  # fmt: skip
        assert sum(b["late"] for b in buckets) == 90
        assert sum(b["count"] for b in buckets) == 101


async def test_a_backlog_split_across_write_batches_gives_one_episode(
    database_url: str, mqtt_url: str, unique_id: str, definition: MineDefinition
) -> None:
    publisher = Publisher(definition, mqtt_url)
    topics = safety_subscriptions(definition.mine.code)
    async with running_gateway(database_url, mqtt_url, f"gw-{unique_id}", topics=topics):
        await publisher.send(range(10))
        await publisher.send(range(600, 601))
        await eventually(lambda: _times(database_url) == 11)
        await publisher.send(range(10, 45), EXCEEDANCE)  # the exceedance begins in one batch
        await eventually(lambda: _times(database_url) == 46)
        await eventually(lambda: len(_alarms(database_url)) == 2)
        await publisher.send(range(45, 100), EXCEEDANCE)  # and ends in the next
        await eventually(lambda: _times(database_url) == 101)
        await eventually(lambda: all(a[2] == _at(60) for a in _alarms(database_url)))

    assert _alarms(database_url) == [
        ("power_off", _at(30), _at(60), 1.84, 30, True, "cleared"),
        ("upper_alarm", _at(30), _at(60), 1.84, 30, True, "cleared"),
    ]


async def test_late_readings_inside_a_live_alarm_add_no_second_one(
    database_url: str, mqtt_url: str, unique_id: str, definition: MineDefinition
) -> None:
    publisher = Publisher(definition, mqtt_url)
    topics = safety_subscriptions(definition.mine.code)
    async with running_gateway(database_url, mqtt_url, f"gw-{unique_id}", topics=topics):
        await publisher.send(range(100), EXCEEDANCE)  # in order: a live alarm 30..60
        await eventually(lambda: _times(database_url) == 100)
        await eventually(lambda: len(_alarms(database_url)) == 2)
        await publisher.send(range(35, 50), EXCEEDANCE)  # the same readings again, late
        await eventually(
            lambda: (
                scalar(database_url, "SELECT count(*) FROM readings WHERE flags & 1 = 1")
                == 15 * len(publisher.points)
            )
        )
    assert _alarms(database_url) == [
        ("power_off", _at(30), _at(60), 1.84, 30, False, "cleared"),
        ("upper_alarm", _at(30), _at(60), 1.84, 30, False, "cleared"),
    ]
