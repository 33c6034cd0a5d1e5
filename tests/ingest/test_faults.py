"""Fault tests: the gateway killed with SIGKILL mid-ingest, a PostgreSQL restart and a broker
restart during ingest. Afterwards every published reading is stored exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiomqtt
import pytest

from minewatch.db import migrate
from minewatch.embedded import embedded_mosquitto, embedded_postgres, free_port
from minewatch.feeds import broker_address, meta_topic, safety_subscriptions
from minewatch.settings import Settings
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from minewatch.simulators.mqtt_publisher import cycle_messages
from tests.helpers import eventually, running_gateway, scalar

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CYCLES = 240


async def _publish_definition(mine: SimulatedMine, mqtt_url: str) -> None:
    host, port = broker_address(mqtt_url)
    async with aiomqtt.Client(host, port) as client:
        await client.publish(
            meta_topic(mine.definition.mine.code),
            mine.definition.model_dump_json().encode(),
            qos=1,
            retain=True,
        )


async def _publish_paced(
    mine: SimulatedMine, mqtt_url: str, cycles: range, pause_s: float, boot: int = 1
) -> int:
    """Publish the given cycles (at QoS 1, in order) with a pause between cycles."""
    host, port = broker_address(mqtt_url)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=CYCLES)
    seqs: dict[str, int] = {}
    published = 0
    await _publish_definition(mine, mqtt_url)
    async with aiomqtt.Client(host, port, max_inflight_messages=500) as client:
        for k in range(cycles.stop):
            cycle = mine.next_cycle()
            messages = cycle_messages(mine, cycle, start, boot, seqs)
            if k < cycles.start:
                continue  # already published by an earlier call: keep seq and values aligned
            await asyncio.gather(*(client.publish(t, p, qos=1) for t, p in messages))
            published += len(cycle.value)
            await asyncio.sleep(pause_s)
    return published


def _duplicates(url: str) -> object:
    return scalar(url, "SELECT count(*) - count(DISTINCT (point_id, time)) FROM readings")


def _gateway_process(
    database_url: str, mqtt_url: str, client_id: str, mine: str
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MINEWATCH_DATABASE_URL": database_url,
        "MINEWATCH_MQTT_URL": mqtt_url,
        "MINEWATCH_GATEWAY__CLIENT_ID": client_id,
        "MINEWATCH_GATEWAY__TOPICS": json.dumps(safety_subscriptions(mine)),
        "MINEWATCH_GATEWAY__BATCH_MAX_DELAY_MS": "20",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "minewatch.cli", "gateway"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def test_gateway_killed_three_times_mid_ingest_loses_and_duplicates_nothing(
    database_url: str, mqtt_url: str, unique_id: str
) -> None:
    mine = SimulatedMine(load_mine_config(example_mine_path("small")))
    code = mine.definition.mine.code
    client_id = f"gw-{unique_id}"
    gateway = _gateway_process(database_url, mqtt_url, client_id, code)
    # The gateway's persistent session must exist before data is published: once it does, the
    # broker keeps everything for it across the kills below.
    await _publish_definition(mine, mqtt_url)
    await eventually(lambda: scalar(database_url, "SELECT count(*) FROM points") == len(mine.codes))
    publisher = asyncio.create_task(_publish_paced(mine, mqtt_url, range(CYCLES), 0.01))
    kills = 0
    try:
        for _ in range(3):
            await eventually(
                lambda at_least=(kills + 1) * 1000: (
                    (scalar(database_url, "SELECT count(*) FROM readings") or 0) > at_least
                ),
                limit_s=60,
            )
            gateway.send_signal(signal.SIGKILL)
            gateway.wait()
            kills += 1
            gateway = _gateway_process(database_url, mqtt_url, client_id, code)
        published = await publisher
        await eventually(
            lambda: scalar(database_url, "SELECT count(*) FROM readings") == published, limit_s=60
        )
    finally:
        gateway.send_signal(signal.SIGINT)
        gateway.wait(30)
    assert kills == 3
    assert published == CYCLES * len(mine.codes)
    assert _duplicates(database_url) == 0
    per_point = scalar(
        database_url,
        "SELECT count(DISTINCT n) FROM (SELECT count(*) n FROM readings GROUP BY point_id) c",
    )
    assert per_point == 1  # every point has exactly CYCLES readings
    assert (
        scalar(
            database_url, "SELECT min(n) FROM (SELECT count(*) n FROM readings GROUP BY point_id) c"
        )
        == CYCLES
    )


async def test_postgresql_restart_during_ingest(
    private_dir: Path, mqtt_url: str, unique_id: str
) -> None:
    settings = Settings()
    port = free_port()
    mine = SimulatedMine(load_mine_config(example_mine_path("small")))
    code = mine.definition.mine.code
    with contextlib.ExitStack() as stack:
        pg = stack.enter_context(embedded_postgres(private_dir / "pg", settings.pg_bin_dir, port))
        url = pg.url()
        migrate(url)
        async with running_gateway(
            url, mqtt_url, f"gw-{unique_id}", topics=safety_subscriptions(code)
        ) as gw:
            publisher = asyncio.create_task(_publish_paced(mine, mqtt_url, range(CYCLES), 0.01))
            await eventually(lambda: (scalar(url, "SELECT count(*) FROM readings") or 0) > 2000)
            stack.close()  # fast shutdown of the database, mid-ingest
            await asyncio.sleep(1.5)
            stack.enter_context(embedded_postgres(private_dir / "pg", settings.pg_bin_dir, port))
            published = await publisher
            await eventually(
                lambda: scalar(url, "SELECT count(*) FROM readings") == published, limit_s=60
            )
            assert gw.metrics.write_retries._value.get() >= 1
        assert _duplicates(url) == 0
        assert published == CYCLES * len(mine.codes)


async def test_broker_restart_during_ingest(
    private_dir: Path, database_url: str, unique_id: str
) -> None:
    settings = Settings()
    port = free_port()
    mine = SimulatedMine(load_mine_config(example_mine_path("small")))
    code = mine.definition.mine.code
    broker = embedded_mosquitto(private_dir / "mq", settings.mosquitto_bin, port)
    server = broker.__enter__()
    try:
        async with running_gateway(
            database_url, server.url, f"gw-{unique_id}", topics=safety_subscriptions(code),
            batch_max_delay_ms=200,
        ):  # fmt: skip
            first = await _publish_paced(mine, server.url, range(CYCLES // 2), 0.0)
            broker.__exit__(None, None, None)  # stop while messages are queued and in flight
            broker = embedded_mosquitto(private_dir / "mq", settings.mosquitto_bin, port)
            server = broker.__enter__()
            second_mine = SimulatedMine(load_mine_config(example_mine_path("small")))
            second = await _publish_paced(second_mine, server.url, range(CYCLES // 2, CYCLES), 0.0)
            await eventually(
                lambda: scalar(database_url, "SELECT count(*) FROM readings") == first + second,
                limit_s=60,
            )
    finally:
        broker.__exit__(None, None, None)
    assert first + second == CYCLES * len(mine.codes)
    assert _duplicates(database_url) == 0
