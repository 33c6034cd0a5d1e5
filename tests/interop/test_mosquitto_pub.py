"""Interop with peers minewatch did not write (issue 15): Mosquitto's own command-line client.

The other outside peers have their own modules: a Sparkplug B edge node from the pysparkplug
library in its own environment (tests/sparkplug/test_peer.py) and Debian's ``mbpoll`` reading
the simulated Modbus server (tests/simulators/test_modbus_cli.py). Here ``mosquitto_pub`` (Debian
``mosquitto-clients``) publishes hand-written messages, as an integrator would try the contract
of docs/feeds.md before writing any code: a good one is stored reading for reading, a broken
one is quarantined byte for byte with its reason.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import orjson
import psycopg
import pytest

from minewatch.feeds import broker_address, safety_subscriptions, safety_topic
from minewatch.metadata import MineDefinition, upsert_mine
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from tests.helpers import eventually, running_gateway, scalar

pytestmark = pytest.mark.anyio

MOSQUITTO_PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"


@pytest.fixture
def definition(database_url: str) -> MineDefinition:
    definition = SimulatedMine(load_mine_config(example_mine_path("small"))).definition
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, definition)
    return definition


def mosquitto_pub(mqtt_url: str, topic: str, payload_file: Path) -> None:
    host, port = broker_address(mqtt_url)
    command = [MOSQUITTO_PUB, "-h", host, "-p", str(port), "-q", "1", "-t", topic]
    subprocess.run([*command, "-f", str(payload_file)], check=True, timeout=30, capture_output=True)


async def test_messages_from_mosquitto_pub_are_stored_or_quarantined_with_their_bytes(
    database_url: str, mqtt_url: str, unique_id: str, definition: MineDefinition,
    tmp_path: Path,
) -> None:  # fmt: skip
    mine = definition.mine.code
    points = [p.code for p in definition.points if p.substation == "001"]
    at = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=30)
    good = tmp_path / "good.json"
    local = at.astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat()
    codes, values = orjson.dumps(points).decode(), ", ".join(["0.21"] * len(points))
    statuses = ", ".join(["0"] * len(points))
    good.write_text(  # written by hand as docs/feeds.md shows it, with a local-time offset
        f'{{"v": 1, "mine": "{mine}", "substation": "001", "boot": 3, "seq": 1,\n'
        f' "ts": "{local}", "points": {codes},\n'
        f' "values": [{values}], "status": [{statuses}]}}\n'
    )
    broken = tmp_path / "broken.json"
    broken.write_bytes(b'{"v": 1, "mine": "%s", "substation": "001", "seq": 2,' % mine.encode())
    topic = safety_topic(mine, "001")
    async with running_gateway(
        database_url, mqtt_url, f"gw-{unique_id}", topics=safety_subscriptions(mine)
    ):
        mosquitto_pub(mqtt_url, topic, good)
        mosquitto_pub(mqtt_url, topic, broken)
        await eventually(lambda: scalar(database_url, "SELECT count(*) FROM quarantine") == 1)
        await eventually(
            lambda: scalar(database_url, "SELECT count(*) FROM readings") == len(points)
        )
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT DISTINCT time, value FROM readings").fetchall()
        reason, payload = conn.execute("SELECT reason, payload FROM quarantine").fetchone()  # type: ignore[misc]
    assert [(t, float(v)) for t, v in stored] == [(at, 0.21)]
    assert reason == "malformed_json"
    assert bytes(payload) == broken.read_bytes()
