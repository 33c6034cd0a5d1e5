"""The processes a benchmark runs against an embedded (or configured) stack: a fresh database
with some mines, gateways and the API as their own processes, and how to stop them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

import aiomqtt
import httpx
import psycopg

from minewatch.api.accounts import Hasher, Role, add_key
from minewatch.broker_auth import login_options
from minewatch.db import migrate
from minewatch.feeds import broker_address, meta_topic
from minewatch.metadata import MineDefinition, upsert_mine


def fresh_database(admin_url: str, name: str, definitions: Sequence[MineDefinition]) -> str:
    """Database ``name`` dropped and made again, migrated, holding ``definitions``; its URL."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    migrate(url)
    with psycopg.connect(url) as conn:
        for definition in definitions:
            upsert_mine(conn, definition)
    return url


def point_ids(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {str(c): int(i) for c, i in conn.execute("SELECT code, id FROM points").fetchall()}


def start_gateway(
    url: str,
    mqtt_url: str,
    client_id: str,
    metrics_port: int,
    topics: list[str],
    extra: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """``minewatch gateway`` as its own process, with its clock tick (real-time workloads)."""
    env = {
        **os.environ,
        "MINEWATCH_DATABASE_URL": url,
        "MINEWATCH_MQTT_URL": mqtt_url,
        "MINEWATCH_GATEWAY__CLIENT_ID": client_id,
        "MINEWATCH_GATEWAY__TOPICS": json.dumps(topics),
        "MINEWATCH_GATEWAY__METRICS_PORT": str(metrics_port),
        # retention and rollups are rounds of their own, not the write path under test
        "MINEWATCH_RETENTION__ENABLED": "false",
        **(extra or {}),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "minewatch.cli", "gateway"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def metric_value(port: int, name: str) -> float | None:
    """The value of one unlabelled sample (or the sum of a metric's labelled ones) on a
    gateway's /metrics; None when the endpoint does not answer."""
    try:
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics", timeout=5)).text
    except httpx.TransportError:
        return None
    total = None
    for line in text.splitlines():
        if line.startswith(name) and line[len(name)] in " {":
            total = (total or 0.0) + float(line.rsplit(" ", 1)[1])
    return total


async def wait_subscribed(
    publisher_url: str,
    definitions: Sequence[MineDefinition],
    port: int,
    process: subprocess.Popen[bytes],
    limit_s: float = 120,
) -> None:
    """Publish each mine's definition (retained) and wait until the gateway has taken them
    all: it is then subscribed, and what is published next reaches its session."""
    host, mqtt_port = broker_address(publisher_url)
    async with aiomqtt.Client(host, mqtt_port, **login_options(publisher_url)) as client:
        for definition in definitions:
            payload = definition.model_dump_json().encode()
            await client.publish(meta_topic(definition.mine.code), payload, qos=1, retain=True)
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the gateway exited with {process.returncode}")
        metas = await metric_value(port, 'minewatch_messages_total{kind="meta"}')
        if metas is not None and metas >= len(definitions):
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the gateway did not take the mines' definitions within {limit_s:.0f} s")


async def api_key(url: str) -> str:
    """An admin's API key (sees every mine); cheap hashing, as the tests do."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        return await add_key(conn, Hasher(1, 1024), "bench screen", Role.ADMIN, None)


def start_api(url: str, mqtt_url: str, port: int, limit_s: float = 120) -> subprocess.Popen[bytes]:
    """The API on ``port``, on the benchmark's database and broker (with no broker configured
    it would start an embedded one in its var dir, which a checkout under a private folder
    cannot serve to the broker's own user)."""
    env = {
        **os.environ,
        "MINEWATCH_DATABASE_URL": url,
        "MINEWATCH_MQTT_URL": mqtt_url,
        "MINEWATCH_API__PORT": str(port),
    }
    api = subprocess.Popen(
        [sys.executable, "-m", "minewatch.cli", "api"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if api.poll() is not None:
            raise RuntimeError(f"the API exited with {api.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return api
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    api.kill()
    raise RuntimeError("the API did not start")


def stop(process: subprocess.Popen[bytes], limit_s: float = 30) -> bool:
    """SIGINT, as an operator stops it; killed after ``limit_s``. True: it stopped by itself."""
    if process.poll() is not None:
        return True
    process.send_signal(signal.SIGINT)
    try:
        process.wait(limit_s)
        return True
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return False
