"""Scaling out: two gateway processes on one broker split the mines between them."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from minewatch.embedded import free_port
from minewatch.feeds import safety_subscriptions
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from minewatch.simulators.mqtt_publisher import publish_mine
from tests.helpers import eventually, scalar

pytestmark = pytest.mark.anyio


def _mine(code: str) -> SimulatedMine:
    config = load_mine_config(example_mine_path("small"))
    return SimulatedMine(
        config.model_copy(update={"mine": config.mine.model_copy(update={"code": code})})
    )


def _gateway(database_url: str, mqtt_url: str, client_id: str, mine: str, port: int
             ) -> subprocess.Popen[bytes]:  # fmt: skip
    env = os.environ | {
        "MINEWATCH_DATABASE_URL": database_url, "MINEWATCH_MQTT_URL": mqtt_url,
        "MINEWATCH_GATEWAY__CLIENT_ID": client_id,
        "MINEWATCH_GATEWAY__TOPICS": json.dumps(safety_subscriptions(mine)),
        "MINEWATCH_GATEWAY__METRICS_PORT": str(port), "MINEWATCH_LOG_FORMAT": "json",
    }  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "minewatch.cli", "gateway"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def _metrics(port: int) -> str:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"http://127.0.0.1:{port}/metrics")).text


async def test_two_gateway_processes_each_store_exactly_their_own_mine(
    database_url: str, mqtt_url: str, unique_id: str
) -> None:
    codes = ["141024010031", "141024010032"]
    ports = [free_port(), free_port()]
    processes = [
        _gateway(database_url, mqtt_url, f"p{i}-{unique_id}", code, port)
        for i, (code, port) in enumerate(zip(codes, ports, strict=True))
    ]
    try:

        async def serving() -> bool:
            try:
                return all(["minewatch_messages_total" in await _metrics(p) for p in ports])
            except httpx.HTTPError:
                return False

        await eventually(serving, limit_s=60)
        await asyncio.sleep(1.0)  # subscribed once connected; the metrics come up first
        start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        reports = [
            await publish_mine(_mine(code), mqtt_url, cycles=20, realtime=False, start=start,
                               client_id=f"sim{i}-{unique_id}")
            for i, code in enumerate(codes)
        ]  # fmt: skip
        total = sum(r.readings for r in reports)
        await eventually(
            lambda: scalar(database_url, "SELECT count(*) FROM readings") == total, limit_s=60
        )
        texts = [await _metrics(p) for p in ports]
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        codes_out = [
            process.wait(timeout=max(1.0, deadline - time.monotonic())) for process in processes
        ]
    assert codes_out == [0, 0]
    for i, text in enumerate(texts):
        own, other = codes[i], codes[1 - i]
        assert f'minewatch_readings_in_total{{mine="{own}"}} {float(reports[i].readings)}' in text
        assert f'mine="{other}"' not in text  # the other process's mine never reached this one
    assert scalar(database_url, "SELECT count(DISTINCT (point_id, time)) FROM readings") == total
