"""End to end: the pysparkplug edge node -> Mosquitto -> SparkplugSource -> the gateway's own
write path -> TimescaleDB. Readings are stored under the substation's points, a metric that is
no point is quarantined, and the source's watermark is the (birth time, message count) pair;
data sent by alias after a gateway restart is mapped by the stored birth; a dead edge node is a
substation-fault alarm of its points until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from minewatch.ingest.gateway import Gateway
from minewatch.metadata import MineDefinition, PointDefinition, upsert_mine
from minewatch.settings import GatewaySettings
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from tests.helpers import eventually, running_gateway, scalar
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
        # 3 data messages + the birth with NOT_A_POINT; and pysparkplug's clean-disconnect
        # NDEATH, which carries the next bdSeq: ignored, but kept (stale_death)
        await eventually(lambda: scalar(database_url, "SELECT count(*) FROM quarantine") == 5)

    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT p.code, count(*), min(r.time), max(r.time), min(r.value), max(r.value) "
            "FROM readings r JOIN points p ON p.id = r.point_id GROUP BY p.code ORDER BY p.code"
        ).fetchall()
        reasons = conn.execute(
            "SELECT DISTINCT reason, source FROM quarantine ORDER BY reason"
        ).fetchall()
        marks = conn.execute("SELECT source, boot, seq FROM source_watermarks").fetchall()
    assert [row[0] for row in stored] == sorted(p.code for p in points)
    for code, count, first, last, low, high in stored:
        kind = next(p.sensor_type for p in points if p.code == code)
        value = float(_value(kind)[1])  # type: ignore[arg-type]
        assert count == 4 and low == high == pytest.approx(value, rel=1e-6)
        assert int(first.timestamp() * 1000) == now_ms - 30_000
        assert int(last.timestamp() * 1000) == now_ms - 18_000
    source = f"{mine}/sparkplug/{SUBSTATION}"
    assert reasons == [("stale_death", source), ("unknown_point", source)]
    ((source, boot, seq),) = marks
    assert (source, seq) == (f"{mine}/sparkplug/{SUBSTATION}", 3)
    assert now_ms - 5_000 < boot < now_ms + 60_000  # the NBIRTH's timestamp


def _plan(points: list[PointDefinition], birth_ms: int, data_ms: list[int]) -> dict[str, object]:
    metrics = [
        {"name": p.code, "datatype": _value(p.sensor_type)[0], "alias": i + 1,
         "value": _value(p.sensor_type)[1], "t_ms": birth_ms}
        for i, p in enumerate(points)
    ]  # fmt: skip
    data = [{"t_ms": t, "values": {m["name"]: m["value"] for m in metrics}} for t in data_ms]
    return {"metrics": metrics, "data": data}


async def test_data_by_alias_after_a_gateway_restart_is_mapped_by_the_stored_birth(
    database_url: str,
    mqtt_url: str,
    unique_id: str,
    peer_python: Path,
    definition: MineDefinition,
    private_dir: Path,
) -> None:
    mine = definition.mine.code
    points = [p for p in definition.points if p.substation == SUBSTATION]
    n = len(points)
    now_ms = int(time.time() * 1000)
    plan = _plan(points, now_ms - 30_000, [now_ms - 20_000 + 1000 * i for i in range(3)])
    go = private_dir / "go"
    settings = {"topics": [], "sparkplug_groups": [mine], "sparkplug_host_id": f"h-{unique_id}"}
    count = "SELECT count(*) FROM readings"
    # The first gateway subscribes before the node is born (an NBIRTH is not retained: a node
    # faster than the gateway would be born to nobody); the node outlives that gateway.
    first = contextlib.AsyncExitStack()
    await first.enter_async_context(
        running_gateway(database_url, mqtt_url, f"gw-{unique_id}", **settings)
    )
    async with edge_node(
        peer_python, mqtt_url, mine, SUBSTATION, plan,
        "--by-alias", "--wait-for", str(go), "--linger", "3",
    ) as node:  # fmt: skip
        try:
            await node.wait_for("waiting")
            await eventually(lambda: scalar(database_url, count) == n)  # the NBIRTH
        finally:
            await first.aclose()
        assert scalar(database_url, "SELECT count(*) FROM sparkplug_births") == 1
        # a new gateway process knows no births but the stored ones; the data comes now
        async with running_gateway(database_url, mqtt_url, f"gw-{unique_id}", **settings):
            go.touch()
            await node.wait_for("done", limit_s=20)
            # the rebirth this gateway asks for may come after the node's "done" (it lingers)
            await eventually(
                lambda: (
                    node.count("birth") >= 2
                    and scalar(database_url, count) == (node.count("birth") + 3) * n
                )
            )
            births = node.count("birth")
        await node.process.wait()
    assert node.count("rebirth_request") >= 1 and births == 2  # asked: its state was unknown
    assert scalar(database_url, count) == (births + 3) * n  # exactly: nothing refused, no more
    # nothing refused; pysparkplug's clean-disconnect NDEATH (the next bdSeq) is kept aside
    kept = "SELECT array_agg(reason) FROM quarantine"
    assert scalar(database_url, kept) in (None, ["stale_death"])
    with psycopg.connect(database_url) as conn:
        per_point = conn.execute(
            "SELECT p.code, count(*) FILTER (WHERE r.time >= %s AND r.time < %s) "
            "FROM readings r JOIN points p ON p.id = r.point_id GROUP BY p.code",
            (_at(now_ms - 20_000), _at(now_ms - 17_000)),
        ).fetchall()
    # the three NDATA messages (sent by alias only, after the restart) for every point, plus
    # the rebirth's copy of the last values (pysparkplug keeps their timestamps)
    assert sorted(per_point) == sorted((p.code, 3 + births - 1) for p in points)


async def test_a_dead_edge_node_is_a_substation_fault_alarm_until_it_is_back(
    database_url: str, mqtt_url: str, unique_id: str, peer_python: Path, definition: MineDefinition
) -> None:
    mine = definition.mine.code
    points = [p for p in definition.points if p.substation == SUBSTATION]
    codes = sorted(p.code for p in points)
    now_ms = int(time.time() * 1000)
    plan = _plan(points, now_ms - 30_000, [now_ms - 20_000 + 1000 * i for i in range(3)])
    faults = (
        "SELECT p.code, r.value, r.time FROM readings r JOIN points p ON p.id = r.point_id "
        "WHERE r.status = 16 ORDER BY p.code"
    )
    episodes = (
        "SELECT p.code, a.started_at, a.ended_at FROM alarms a JOIN points p ON p.id = a.point_id "
        "WHERE a.rule = 'substation_fault' ORDER BY p.code"
    )
    settings = {"topics": [], "sparkplug_groups": [mine], "sparkplug_host_id": f"h-{unique_id}"}
    async with running_gateway(database_url, mqtt_url, f"gw-{unique_id}", **settings):
        async with edge_node(
            peer_python, mqtt_url, mine, SUBSTATION, plan, "--die-after", "3"
        ) as node:
            await node.wait_for("dying")
            await node.process.wait()  # gone without DISCONNECT: the broker sends its NDEATH
        dead_ms = int(time.time() * 1000)
        await eventually(lambda: len(_rows(database_url, episodes)) == len(codes))
        stored = _rows(database_url, faults)
        open_episodes = _rows(database_url, episodes)
        # back: a new process, a new NBIRTH and data, stamped after the death
        back_ms = int(time.time() * 1000) + 1000
        again = _plan(points, back_ms, [back_ms + 1000])
        async with edge_node(
            peer_python, mqtt_url, mine, SUBSTATION, again, "--linger", "0.5"
        ) as node:
            await node.wait_for("done")
            await node.process.wait()
        await eventually(lambda: all(row[2] is not None for row in _rows(database_url, episodes)))
        closed = _rows(database_url, episodes)
    # exactly the node's points, once each: status 16, the 0.0 placeholder, when it was seen
    assert [row[0] for row in stored] == codes
    assert all(value == 0.0 for _, value, _ in stored)
    assert all(now_ms - 5_000 <= _ms(at) <= dead_ms for _, _, at in stored)
    assert [(code, ended) for code, _, ended in open_episodes] == [(c, None) for c in codes]
    assert [row[0] for row in closed] == codes  # the same episodes, now ended
    for (_, started, _), (_, started_again, ended) in zip(open_episodes, closed, strict=True):
        assert started_again == started and _ms(ended) >= back_ms


def _rows(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


def _at(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _ms(at: dt.datetime) -> int:
    return round(at.timestamp() * 1000)
