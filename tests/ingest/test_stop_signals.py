"""The gateway process stops cleanly on SIGTERM and on SIGINT, whatever it inherited, and
promptly while its database is down, losing nothing."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiomqtt
import psycopg
import pytest

from minewatch.db import migrate
from minewatch.embedded import embedded_postgres, free_port
from minewatch.feeds import broker_address, safety_subscriptions
from minewatch.metadata import upsert_mine
from minewatch.settings import Settings
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from minewatch.simulators.mqtt_publisher import cycle_messages
from tests.helpers import eventually, scalar


def _start_gateway(database_url: str, mqtt_url: str, client_id: str) -> subprocess.Popen[str]:
    env = os.environ | {
        "MINEWATCH_DATABASE_URL": database_url, "MINEWATCH_MQTT_URL": mqtt_url,
        "MINEWATCH_GATEWAY__CLIENT_ID": client_id, "MINEWATCH_LOG_FORMAT": "json",
    }  # fmt: skip
    # As a shell starts a background job: SIGINT ignored (restored for the child by Popen
    # only if we ask; we do not), so Python installs no KeyboardInterrupt handler of its own.
    return subprocess.Popen(
        [sys.executable, "-m", "minewatch.cli", "gateway"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )  # fmt: skip


def _wait_connected(process: subprocess.Popen[str], limit_s: float = 60.0) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if "connected to" in line:
            return
        if not line and process.poll() is not None:
            break
    raise AssertionError("the gateway did not connect")


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_the_gateway_drains_and_exits_0_on_a_stop_signal(
    stop: signal.Signals, database_url: str, mqtt_url: str, unique_id: str
) -> None:
    process = _start_gateway(database_url, mqtt_url, f"stop-{unique_id}")
    try:
        _wait_connected(process)
        time.sleep(1.0)
        began = time.monotonic()
        process.send_signal(stop)
        assert process.wait(timeout=30) == 0
        assert time.monotonic() - began < 15
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()


async def _publish_cycles(
    mine: SimulatedMine, mqtt_url: str, cycles: int, start: dt.datetime, seqs: dict[str, int]
) -> int:
    host, port = broker_address(mqtt_url)
    published = 0
    async with aiomqtt.Client(host, port) as client:
        for _ in range(cycles):
            cycle = mine.next_cycle()
            for topic, payload in cycle_messages(mine, cycle, start, 1, seqs):
                await client.publish(topic, payload, qos=1)
            published += len(cycle.value)
    return published


def _gateway_in(
    directory: Path, database_url: str, mqtt_url: str, client_id: str, mine: str
) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "MINEWATCH_DATABASE_URL": database_url, "MINEWATCH_MQTT_URL": mqtt_url,
        "MINEWATCH_GATEWAY__CLIENT_ID": client_id, "MINEWATCH_LOG_FORMAT": "json",
        "MINEWATCH_GATEWAY__TOPICS": json.dumps(safety_subscriptions(mine)),
        "MINEWATCH_GATEWAY__BATCH_MAX_DELAY_MS": "20", "MINEWATCH_GATEWAY__STOP_FLUSH_S": "2",
    }  # fmt: skip
    with (directory / f"gateway-{time.monotonic_ns()}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "minewatch.cli", "gateway"], env=env, stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip


@pytest.mark.anyio
async def test_a_stop_signal_while_the_database_is_down_exits_0_promptly_and_loses_nothing(
    private_dir: Path, mqtt_url: str, unique_id: str
) -> None:
    """Issue 15: a gateway retrying a dead database kept retrying after SIGTERM. The last
    batch now gets MINEWATCH_GATEWAY__STOP_FLUSH_S, is left unacknowledged, and the next run
    stores it: every reading once."""
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    port = free_port()
    mine = SimulatedMine(load_mine_config(example_mine_path("small")))
    code = mine.definition.mine.code
    client_id = f"stopdb-{unique_id}"
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    seqs: dict[str, int] = {}
    with contextlib.ExitStack() as database:
        url = database.enter_context(
            embedded_postgres(private_dir / "pg", settings.pg_bin_dir, port)
        ).url()
        migrate(url)
        with psycopg.connect(url) as conn:
            upsert_mine(conn, mine.definition)
        gateway = _gateway_in(private_dir, url, mqtt_url, client_id, code)
        try:
            await eventually(
                lambda: scalar(url, "SELECT count(*) FROM source_watermarks") is not None
                and _subscribed(private_dir), limit_s=60,
            )  # fmt: skip
            published = await _publish_cycles(mine, mqtt_url, 5, start, seqs)
            await eventually(lambda: scalar(url, "SELECT count(*) FROM readings") == published)
            database.close()  # the database goes down; the gateway holds and retries
            published += await _publish_cycles(mine, mqtt_url, 5, start, seqs)
            await eventually(lambda: b"retrying" in _logs(private_dir), limit_s=30)
            began = time.monotonic()
            gateway.send_signal(signal.SIGTERM)
            assert gateway.wait(timeout=30) == 0
            assert time.monotonic() - began < 15
        finally:
            if gateway.poll() is None:
                gateway.kill()
                gateway.wait()
    assert b"not acknowledged" in _logs(private_dir)
    with contextlib.ExitStack() as database:
        database.enter_context(embedded_postgres(private_dir / "pg", settings.pg_bin_dir, port))
        gateway = _gateway_in(private_dir, url, mqtt_url, client_id, code)
        try:
            await eventually(
                lambda: scalar(url, "SELECT count(*) FROM readings") == published, limit_s=60
            )
        finally:
            gateway.send_signal(signal.SIGTERM)
            assert gateway.wait(timeout=30) == 0
        assert published == 10 * len(mine.codes)
        duplicates = "SELECT count(*) - count(DISTINCT (point_id, time)) FROM readings"
        assert scalar(url, duplicates) == 0


def _logs(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.glob("gateway-*.log")))


def _subscribed(directory: Path) -> bool:
    return b"connected to" in _logs(directory)
