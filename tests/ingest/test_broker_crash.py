"""A broker killed (SIGKILL) while the gateway is away (issue 15, docs/operations.md "What a
broker crash can lose"): the embedded Mosquitto keeps what it acknowledged before its last
save (its window, ``AUTOSAVE_INTERVAL_S``, is bounded), and what it lost shows as sequence
gaps; NATS with JetStream (its MQTT sessions on its file store) keeps everything it
acknowledged, killed at once after the last acknowledgement."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from minewatch.broker_accounts import PID
from minewatch.embedded import AUTOSAVE_INTERVAL_S, embedded_mosquitto, free_port
from minewatch.feeds import safety_subscriptions
from minewatch.metadata import upsert_mine
from minewatch.settings import Settings
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from tests.helpers import eventually, running_api, running_gateway, scalar
from tests.ingest.test_faults import _duplicates, _publish_paced

pytestmark = pytest.mark.anyio

CYCLES = 30


def _mine(database_url: str) -> SimulatedMine:
    mine = SimulatedMine(load_mine_config(example_mine_path("small")))
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, mine.definition)
    return mine


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the broker exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise AssertionError(f"port {port} not open within {timeout}s")


@contextlib.contextmanager
def _nats(data_dir: Path, mqtt_port: int) -> Iterator[subprocess.Popen[bytes]]:
    """nats-server with JetStream (file store in ``data_dir``) speaking MQTT on ``mqtt_port``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    conf = data_dir / "nats.conf"
    conf.write_text(
        f'server_name: "minewatch_test"\nlisten: "127.0.0.1:{free_port()}"\n'
        f'jetstream {{ store_dir: "{data_dir / "js"}" }}\n'
        f'mqtt {{ listen: "127.0.0.1:{mqtt_port}" }}\n'
    )
    with open(data_dir / "nats.log", "ab") as log:
        process = subprocess.Popen(["nats-server", "-c", str(conf)], stdout=log, stderr=log)
    try:
        _wait_for_port(mqtt_port, process)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(30)


async def _session(database_url: str, url: str, client_id: str, code: str) -> None:
    """The gateway's persistent session, subscribed, then left: the gateway is away."""
    async with running_gateway(database_url, url, client_id, topics=safety_subscriptions(code)):
        pass


def _stored(database_url: str) -> int:
    return int(scalar(database_url, "SELECT count(*) FROM readings"))  # type: ignore[call-overload]


async def test_the_embedded_broker_killed_keeps_every_message_acknowledged_before_its_save_window(
    private_dir: Path, database_url: str, unique_id: str
) -> None:
    settings = Settings()
    port = free_port()
    mine = _mine(database_url)
    code = mine.definition.mine.code
    client_id = f"gw-{unique_id}"
    with embedded_mosquitto(private_dir / "mq", settings.mosquitto_bin, port) as server:
        await _session(database_url, server.url, client_id, code)
        published = await _publish_paced(mine, server.url, range(CYCLES), 0.0)
        # past the window: a save has run since the last acknowledgement (3 windows, and the
        # broker's loop may run late under load: the window is an upper bound, not a clock)
        await asyncio.sleep(3 * AUTOSAVE_INTERVAL_S + 2)
        os.kill(int((private_dir / "mq" / PID).read_text()), signal.SIGKILL)
    with embedded_mosquitto(private_dir / "mq", settings.mosquitto_bin, port) as server:
        async with running_gateway(
            database_url, server.url, client_id, topics=safety_subscriptions(code)
        ):
            await eventually(lambda: _stored(database_url) == published, limit_s=60)
    assert published == CYCLES * len(mine.codes)
    assert _duplicates(database_url) == 0


@pytest.mark.skipif(shutil.which("nats-server") is None, reason="nats-server not installed")
async def test_nats_jetstream_killed_at_once_keeps_every_message_it_acknowledged(
    private_dir: Path, database_url: str, unique_id: str
) -> None:
    port = free_port()
    mine = _mine(database_url)
    code = mine.definition.mine.code
    client_id = f"gw-{unique_id}"
    url = f"mqtt://127.0.0.1:{port}"
    with _nats(private_dir / "nats", port) as process:
        await _session(database_url, url, client_id, code)
        published = await _publish_paced(mine, url, range(CYCLES), 0.0)
        process.kill()  # at once, after the last acknowledgement
        process.wait(30)
    with _nats(private_dir / "nats", port):
        async with running_gateway(database_url, url, client_id, topics=safety_subscriptions(code)):
            await eventually(lambda: _stored(database_url) == published, limit_s=60)
    assert published == CYCLES * len(mine.codes)
    assert _duplicates(database_url) == 0


async def test_what_a_killed_broker_lost_is_recorded_as_sequence_gaps_exactly(
    private_dir: Path, database_url: str, unique_id: str
) -> None:
    settings = Settings()
    port = free_port()
    mine = _mine(database_url)
    code = mine.definition.mine.code
    client_id = f"gw-{unique_id}"
    with embedded_mosquitto(private_dir / "mq", settings.mosquitto_bin, port) as server:
        await _session(database_url, server.url, client_id, code)
        await asyncio.sleep(3 * AUTOSAVE_INTERVAL_S + 2)  # the session itself is saved
        await _publish_paced(mine, server.url, range(CYCLES), 0.0)
        os.kill(int((private_dir / "mq" / PID).read_text()), signal.SIGKILL)  # at once
    with embedded_mosquitto(private_dir / "mq", settings.mosquitto_bin, port) as server:
        async with running_gateway(
            database_url, server.url, client_id, topics=safety_subscriptions(code)
        ):
            # the publisher goes on after the broker's restart: the next message of each
            # substation shows what never arrived before it
            await _publish_paced(mine, server.url, range(CYCLES, CYCLES + 3), 0.0)
            stations = {p.substation for p in mine.definition.points}
            await eventually(
                lambda: _all_last(database_url, code, stations, CYCLES + 3), limit_s=60
            )
    received = _received(database_url, code)
    with psycopg.connect(database_url) as conn:
        missing = dict(conn.execute(
            "SELECT split_part(source, '/', 2), sum(missing - filled)::int FROM sequence_gaps "
            "GROUP BY 1"
        ).fetchall())  # fmt: skip
    for station, got in received.items():
        assert missing.get(station, 0) == CYCLES + 3 - got, station
    assert _duplicates(database_url) == 0
    # and a regulator sees it: the data-integrity report, per point of each substation
    async with running_api(database_url) as base, httpx.AsyncClient(base_url=base) as client:
        report = (await client.get("/api/v1/reports/data-integrity", params={"mine": code})).json()
    shown: dict[str, int] = {}
    for row in report["rows"]:
        station = next(p.substation for p in mine.definition.points if p.code == row["point_code"])
        shown[station] = shown.get(station, 0) + row["messages_missing"]
    points = {s: sum(p.substation == s for p in mine.definition.points) for s in received}
    assert {s: n // points[s] for s, n in shown.items()} == {s: missing.get(s, 0) for s in received}


def _received(database_url: str, code: str) -> dict[str, int]:
    """Messages stored per substation (each message is one event time of its points)."""
    with psycopg.connect(database_url) as conn:
        return dict(conn.execute(
            "SELECT p.substation_code, count(DISTINCT r.time)::int FROM readings r "
            "JOIN points p ON p.id = r.point_id WHERE p.mine_code = %s GROUP BY 1",
            (code,),
        ).fetchall())  # fmt: skip


def _all_last(database_url: str, code: str, stations: set[str], last_seq: int) -> bool:
    """Whether every substation's last message (``last_seq``) is stored."""
    return bool(scalar(
        database_url,
        "SELECT count(*) = %s FROM source_watermarks w WHERE w.source LIKE %s AND w.seq = %s",
        (len(stations), f"{code}/%", last_seq),
    ))  # fmt: skip
