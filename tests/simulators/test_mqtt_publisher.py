"""The MQTT publisher's stamps when one simulated mine is published in several calls, each
``start`` moved on by the cycles published before (the federation tests' publishers)."""

from __future__ import annotations

import asyncio
import datetime as dt

import aiomqtt
import orjson
import pytest

from minewatch.broker_auth import login_options
from minewatch.feeds import broker_address, safety_topic
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from minewatch.simulators.mqtt_publisher import publish_mine

pytestmark = pytest.mark.anyio


async def test_each_call_stamps_its_cycles_from_its_start(mqtt_url: str, unique_id: str) -> None:
    """Two calls of 3 cycles, the second from ``start + 3 cycles``: six consecutive stamps.
    The stamps used to run on from the mine's own offset as well, twice as fast as the
    caller's clock: the outage test's readings ran minutes into the future (issue 16)."""
    mine = SimulatedMine(load_mine_config(example_mine_path("small")))
    code, cycle_s = mine.definition.mine.code, mine.config.simulation.cycle_s
    start = dt.datetime(2026, 1, 1, 8, tzinfo=dt.UTC)
    host, port = broker_address(mqtt_url)
    stamps: set[str] = set()
    async with aiomqtt.Client(
        host, port, identifier=f"watch-{unique_id}", **login_options(mqtt_url)
    ) as watcher:
        await watcher.subscribe(safety_topic(code, "+"), qos=1)
        for call in range(2):
            at = start + dt.timedelta(seconds=3 * call * cycle_s)
            await publish_mine(mine, mqtt_url, cycles=3, realtime=False, start=at,
                               client_id=f"kj-{unique_id}")  # fmt: skip
        async with asyncio.timeout(30):
            async for message in watcher.messages:
                assert isinstance(message.payload, bytes)
                stamps.add(orjson.loads(message.payload)["ts"])
                if len(stamps) == 6:
                    break
    expected = {
        (start + dt.timedelta(seconds=k * cycle_s)).isoformat(timespec="milliseconds")
        for k in range(6)
    }
    assert stamps == expected
