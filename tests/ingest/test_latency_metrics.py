"""The gateway's latency metrics (issue 14, section 3), against a real broker and database:
``minewatch_receive_to_commit_seconds`` has one observation per safety message once its
readings are committed, and ``minewatch_commit_to_notify_seconds`` one per alarm change the
gateway published on the mine's alarm topic, once a screen subscribed there has it;
``minewatch_data_age_seconds`` shows how old the newest committed reading was."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt

import aiomqtt
import orjson
import psycopg
import pytest

from minewatch.feeds import alarm_topic, broker_address, safety_subscriptions, safety_topic
from minewatch.metadata import MineDefinition, upsert_mine
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from tests.helpers import eventually, running_gateway, scalar

pytestmark = pytest.mark.anyio

MINE = "141024034101"  # this test's own mine (the broker is shared by the suite)
#: methane of the point that rises: a slow rise past its 1.0 alarm level raises at once
RISE = (0.5, 0.7, 0.9, 1.05, 1.1, 1.2)


def _definition() -> MineDefinition:
    config = load_mine_config(example_mine_path("small"))
    mine = config.mine.model_copy(update={"code": MINE})
    return SimulatedMine(config.model_copy(update={"mine": mine})).definition


def _messages(definition: MineDefinition, age_s: float = 0.0) -> list[bytes]:
    """The rise, its last reading stamped ``age_s`` seconds before now."""
    points = [p for p in definition.points if p.substation == "001"]
    riser = next(i for i, p in enumerate(points) if p.sensor_type == "0001")
    start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=len(RISE) + age_s)
    out = []
    for seq, methane in enumerate(RISE, 1):
        values = [0.25] * len(points)
        values[riser] = methane
        out.append(orjson.dumps({
            "v": 1, "mine": MINE, "substation": "001", "boot": 1, "seq": seq,
            "ts": (start + dt.timedelta(seconds=seq)).isoformat(),
            "points": [p.code for p in points], "values": values, "status": [0] * len(points),
        }))  # fmt: skip
    return out


async def _screen(mqtt_url: str, heard: list[dict[str, object]], ready: asyncio.Event) -> None:
    host, port = broker_address(mqtt_url)
    async with aiomqtt.Client(host, port) as client:
        await client.subscribe(alarm_topic(MINE), qos=1)
        ready.set()
        async for message in client.messages:
            heard.append(orjson.loads(message.payload))  # type: ignore[arg-type]


async def test_receive_to_commit_and_commit_to_notify_are_observed(
    database_url: str, mqtt_url: str, unique_id: str
) -> None:
    definition = _definition()
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, definition)
    messages = _messages(definition)
    heard: list[dict[str, object]] = []
    ready = asyncio.Event()
    async with running_gateway(
        database_url, mqtt_url, f"gw-{unique_id}", topics=safety_subscriptions(MINE), tick_s=None
    ) as gateway:
        screen = asyncio.create_task(_screen(mqtt_url, heard, ready))
        try:
            await asyncio.wait_for(ready.wait(), 30)
            received = gateway.metrics.receive_to_commit
            notified = gateway.metrics.commit_to_notify
            assert _count(received) == 0 and _count(notified) == 0
            host, port = broker_address(mqtt_url)
            async with aiomqtt.Client(host, port) as client:
                for payload in messages:
                    await client.publish(safety_topic(MINE, "001"), payload, qos=1)
            await eventually(lambda: _count(received) == len(messages))
            stored = scalar(database_url, "SELECT count(*) FROM readings")
            assert stored == sum(len(orjson.loads(m)["points"]) for m in messages)
            assert _sum(received) > 0

            def raised() -> bool:
                return any(e.get("event") == "raised" and e.get("rule") == "upper_alarm"
                           for e in heard)  # fmt: skip

            await eventually(raised)

            def each_change_observed_once() -> bool:  # once the broker acknowledged it
                changes = scalar(database_url, "SELECT count(*) FROM alarm_changes")
                return len(heard) == changes == _count(notified)

            await eventually(each_change_observed_once)
            assert 0 <= _sum(notified) < 60 * _count(notified)
        finally:
            screen.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await screen


async def test_data_age_shows_readings_that_waited_before_the_gateway(
    database_url: str, mqtt_url: str, unique_id: str
) -> None:
    """Readings that reach the gateway 200 s after their time (a backlog in the broker or the
    link, which receive-to-commit does not see) show as a data age of about 200 s."""
    definition = _definition()
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, definition)
    messages = _messages(definition, age_s=200.0)
    async with running_gateway(
        database_url, mqtt_url, f"gw-{unique_id}", topics=safety_subscriptions(MINE), tick_s=None
    ) as gateway:
        received = gateway.metrics.receive_to_commit
        host, port = broker_address(mqtt_url)
        async with aiomqtt.Client(host, port) as client:
            for payload in messages:
                await client.publish(safety_topic(MINE, "001"), payload, qos=1)
        await eventually(lambda: _count(received) == len(messages))
        age = _gauge(gateway.metrics.data_age)
        assert 200 <= age < 260, age  # the newest reading's age at its commit
        assert _sum(received) < 60 * len(messages)  # while receipt-to-commit was short


def _gauge(gauge: object) -> float:
    return _sample(gauge, "")


def _count(histogram: object) -> float:
    return _sample(histogram, "_count")


def _sum(histogram: object) -> float:
    return _sample(histogram, "_sum")


def _sample(histogram: object, suffix: str) -> float:
    for metric in histogram.collect():  # type: ignore[attr-defined]
        for sample in metric.samples:
            if sample.name.endswith(suffix):
                return float(sample.value)
    raise AssertionError(f"no {suffix} sample")
