"""End to end: the pysparkplug edge node -> Mosquitto -> SparkplugSource -> the gateway's own
write path -> TimescaleDB. Readings are stored under the substation's points, a metric that is
no point is quarantined, and the source's watermark is the (birth time, message count) pair.

The gateway builds its JSON source itself; until it accepts other sources (docs/sparkplug.md,
"Wiring"), this test puts the Sparkplug source in its place before running it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from ingest.gateway import Gateway
from minewatch.metadata import MineDefinition, upsert_mine
from minewatch.settings import GatewaySettings
from simulators.config import example_mine_path, load_mine_config
from simulators.model import SimulatedMine
from tests.helpers import eventually, scalar
from tests.sparkplug.peer import edge_node

pytestmark = pytest.mark.anyio

SUBSTATION = "001"


@pytest.fixture
def definition(database_url: str) -> MineDefinition:
    definition = SimulatedMine(load_mine_config(example_mine_path("small"))).definition
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, definition)
    return definition


@contextlib.asynccontextmanager
async def sparkplug_gateway(
    database_url: str, mqtt_url: str, client_id: str, mine: str
) -> AsyncIterator[Gateway]:
    settings = GatewaySettings(  # type: ignore[call-arg]
        client_id=client_id, batch_max_delay_ms=20, topics=[], sparkplug_groups=[mine]
    )
    gateway = Gateway(settings, database_url, mqtt_url)  # the configured Sparkplug source
    task = asyncio.create_task(gateway.run(), name="gateway")
    try:
        ready = asyncio.create_task(gateway.ready.wait())
        await asyncio.wait({ready, task}, timeout=20, return_when="FIRST_COMPLETED")
        if task.done():
            task.result()
        assert ready.done(), "gateway not ready within 20 s"
        yield gateway
        assert not task.done(), "the gateway stopped"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _value(sensor_type: str) -> tuple[str, object]:
    """A plausible in-range value per sensor type, and the Sparkplug datatype to send it as."""
    return {
        "0001": ("DOUBLE", 0.31), "0002": ("FLOAT", 2.5), "0003": ("DOUBLE", 21.0),
        "0004": ("UINT16", 6), "1011": ("BOOLEAN", True),
    }.get(sensor_type, ("DOUBLE", 1.0))  # fmt: skip


async def test_sparkplug_readings_go_through_the_gateway_into_the_database(
    database_url: str, mqtt_url: str, unique_id: str, peer_python: Path, definition: MineDefinition
) -> None:
    mine = definition.mine.code
    points = [p for p in definition.points if p.substation == SUBSTATION]
    now_ms = int(time.time() * 1000)
    metrics = [
        {"name": p.code, "datatype": _value(p.sensor_type)[0], "alias": i + 1,
         "value": _value(p.sensor_type)[1], "t_ms": now_ms - 30_000}
        for i, p in enumerate(points)
    ] + [{"name": "NOT_A_POINT", "datatype": "DOUBLE", "alias": 99, "value": 1.0}]  # fmt: skip
    data = [
        {"t_ms": now_ms - 20_000 + 1000 * i, "values": {m["name"]: m["value"] for m in metrics}}
        for i in range(3)
    ]
    plan = {"metrics": metrics, "data": data}
    expected = 4 * len(points)  # the birth and three data messages
    async with sparkplug_gateway(database_url, mqtt_url, f"gw-{unique_id}", mine):
        async with edge_node(
            peer_python, mqtt_url, mine, SUBSTATION, plan, "--by-alias", "--linger", "0.5"
        ) as node:
            await node.wait_for("done")
            await node.process.wait()
        await eventually(lambda: scalar(database_url, "SELECT count(*) FROM readings") == expected)
        await eventually(lambda: scalar(database_url, "SELECT count(*) FROM quarantine") == 4)

    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT p.code, count(*), min(r.time), max(r.time), min(r.value), max(r.value) "
            "FROM readings r JOIN points p ON p.id = r.point_id GROUP BY p.code ORDER BY p.code"
        ).fetchall()
        reasons = conn.execute("SELECT DISTINCT reason, source FROM quarantine").fetchall()
        marks = conn.execute("SELECT source, boot, seq FROM source_watermarks").fetchall()
    assert [row[0] for row in stored] == sorted(p.code for p in points)
    for code, count, first, last, low, high in stored:
        kind = next(p.sensor_type for p in points if p.code == code)
        value = float(_value(kind)[1])  # type: ignore[arg-type]
        assert count == 4 and low == high == pytest.approx(value, rel=1e-6)
        assert int(first.timestamp() * 1000) == now_ms - 30_000
        assert int(last.timestamp() * 1000) == now_ms - 18_000
    assert reasons == [("unknown_point", f"{mine}/sparkplug/{SUBSTATION}")]
    ((source, boot, seq),) = marks
    assert (source, seq) == (f"{mine}/sparkplug/{SUBSTATION}", 3)
    assert now_ms - 5_000 < boot < now_ms + 60_000  # the NBIRTH's timestamp
