"""A gateway draining a backlog does not take its queued readings for silence (the city soak's
flood of data interruptions, docs/alarms.md "data interruption"): through the real broker,
gateway and database. The gateway's persistent session holds the cycles published while it
was stopped; it then drains them with a clock that ticks between its write batches."""

from __future__ import annotations

import datetime as dt

import aiomqtt
import orjson
import psycopg
import pytest

from minewatch.feeds import broker_address, safety_subscriptions, safety_topic
from minewatch.metadata import MineDefinition, upsert_mine
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from tests.helpers import eventually, running_gateway, scalar

pytestmark = pytest.mark.anyio

MINE = "141024010031"
CYCLES = 400  # 0.5 s apart: 200 s of readings, the interruption time is 1 s


def _definition(database_url: str) -> MineDefinition:
    config = load_mine_config(example_mine_path("small"))
    mine = SimulatedMine(
        config.model_copy(update={"mine": config.mine.model_copy(update={"code": MINE})})
    )
    fast = mine.definition.model_copy(
        update={
            "points": tuple(
                p.model_copy(update={"poll_cycle_s": 0.5, "interruption_cycles": 2})
                for p in mine.definition.points
            )
        }
    )
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, fast)
    return fast


async def _publish_backlog(mqtt_url: str, points: list[str], silent: str | None) -> int:
    """CYCLES messages of substation 001, event times from 100 s ago to 100 s ahead (so that
    once caught up, the wall clock finds no point silent); ``silent`` stops after 10 cycles.
    Returns the number of readings published."""
    host, port = broker_address(mqtt_url)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=100)
    readings = 0
    async with aiomqtt.Client(host, port) as client:
        for k in range(CYCLES):
            codes = [c for c in points if k < 10 or c != silent]
            readings += len(codes)
            await client.publish(safety_topic(MINE, "001"), orjson.dumps({
                "v": 1, "mine": MINE, "substation": "001", "boot": 1, "seq": k + 1,
                "ts": (start + dt.timedelta(seconds=k / 2)).isoformat(),
                "points": codes, "values": [0.3] * len(codes), "status": [0] * len(codes),
            }), qos=1)  # fmt: skip
    return readings


def _interrupted(database_url: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT p.code FROM alarms a JOIN points p ON p.id = a.point_id "
            "WHERE a.rule = 'data_interruption' ORDER BY p.code"
        ).fetchall()
    return [r[0] for r in rows]


#: one message per write batch (a tick between every two), or the default batches: each one
#: takes all that is queued, so right after its flush the queue is often empty while the
#: broker still holds most of the backlog (an empty queue alone does not mean caught up)
BATCHES = {"one_message": {"max_inflight_messages": 10}, "default": {}}


async def _drain_backlog(
    database_url: str, mqtt_url: str, client_id: str, silent: str | None, batches: str
) -> list[str]:
    definition = _definition(database_url)
    points = [p.code for p in definition.points if p.substation == "001"]
    topics = safety_subscriptions(MINE)
    async with running_gateway(database_url, mqtt_url, client_id, topics=topics):
        pass  # the persistent session exists: the broker keeps what follows for it
    published = await _publish_backlog(mqtt_url, points, silent)
    settings = dict(BATCHES[batches])
    if batches == "one_message":
        settings["batch_max_readings"] = len(points)
    async with running_gateway(
        database_url, mqtt_url, client_id, topics=topics, tick_s=0.02, **settings
    ):  # fmt: skip
        await eventually(
            lambda: scalar(database_url, "SELECT count(*) FROM readings") == published,
            limit_s=120,
        )
        if silent is not None:  # decided by a tick, which may come after the last write
            await eventually(lambda: silent in _interrupted(database_url))
    return points


@pytest.mark.parametrize("batches", list(BATCHES))
async def test_a_backlog_drained_is_not_taken_for_data_interruptions(
    database_url: str, mqtt_url: str, unique_id: str, batches: str
) -> None:
    await _drain_backlog(database_url, mqtt_url, f"gw-{unique_id}", None, batches)
    assert _interrupted(database_url) == []


@pytest.mark.parametrize("batches", list(BATCHES))
async def test_a_point_silent_while_its_mine_publishes_is_flagged_during_a_backlog(
    database_url: str, mqtt_url: str, unique_id: str, batches: str
) -> None:
    definition = _definition(database_url)
    silent = next(p.code for p in definition.points if p.substation == "001")
    await _drain_backlog(database_url, mqtt_url, f"gw-{unique_id}", silent, batches)
    assert _interrupted(database_url) == [silent]
