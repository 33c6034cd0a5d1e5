"""Sparkplug B as real edge nodes send it (issue 15), through Mosquitto, the gateway and
TimescaleDB: metrics named their own way mapped to points by a map file (the unmapped ones
quarantined under their own reason), float32 values stored as the shortest decimal, a refused
birth logged at WARNING and counted, a death of an earlier session kept and logged, and a birth
and data of the same millisecond not late."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import psycopg
import pytest

from minewatch.feeds import broker_address
from minewatch.ingest.gateway import Gateway
from minewatch.ingest.sources.sparkplug import DataType
from minewatch.ingest.sources.sparkplug.metric_map import UNMAPPED, MetricMap
from minewatch.metadata import MineDefinition, upsert_mine
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from tests.helpers import eventually, running_gateway, scalar
from tests.sparkplug.builders import EDGE, MINE, M, bd_seq, encode, nbirth, ndeath, topic

pytestmark = pytest.mark.anyio

CH4 = "14102401000101001A01"
CORNER = "14102401000101001A03"
MAP = f"""
["{MINE}/{EDGE}"]
"CH4_T0" = "{CH4}"
"Methane/UpperCorner" = "{CORNER}"
"""


@pytest.fixture
def definition(database_url: str) -> MineDefinition:
    definition = SimulatedMine(load_mine_config(example_mine_path("small"))).definition
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, definition)
    return definition


@contextlib.asynccontextmanager
async def gateway(
    database_url: str, mqtt_url: str, unique_id: str, **extra: object
) -> AsyncIterator[Gateway]:
    settings = {"topics": [], "sparkplug_groups": [MINE], "sparkplug_host_id": f"h-{unique_id}"}
    async with running_gateway(
        database_url, mqtt_url, f"gw-{unique_id}", **settings, **extra
    ) as running:
        yield running


async def _publish(mqtt_url: str, items: list[tuple[str, bytes]]) -> None:
    host, port = broker_address(mqtt_url)
    async with aiomqtt.Client(host, port) as client:
        for name, payload in items:
            await client.publish(name, payload, qos=1)


def _now_ms() -> int:
    return int(time.time() * 1000) - 60_000


def _values(database_url: str, code: str) -> list[tuple[float, int]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT r.value, r.flags FROM readings r JOIN points p ON p.id = r.point_id "
            "WHERE p.code = %s ORDER BY r.time, r.flags",
            (code,),
        ).fetchall()
    return [(float(v), int(f)) for v, f in rows]


def _reasons(database_url: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        return [r for (r,) in conn.execute("SELECT reason FROM quarantine ORDER BY id")]


def test_the_metric_map_reads_tables_per_edge_node_and_device() -> None:
    mapping = MetricMap.parse(MAP + f'\n["{MINE}/{EDGE}/bus-1"]\n"T" = "X"\n')
    assert mapping.point_of(MINE, EDGE, None, "CH4_T0") == CH4
    assert mapping.point_of(MINE, EDGE, None, "Other") is UNMAPPED
    assert mapping.point_of(MINE, EDGE, "bus-1", "T") == "X"
    assert mapping.point_of(MINE, "002", None, CH4) == CH4  # no table: the name is the code
    for bad in ('["only-one-level"]\n"a" = "b"', f'["{MINE}/{EDGE}"]\n"a" = 1', "x = ["):
        with pytest.raises(ValueError, match="metric map"):
            MetricMap.parse(bad)


async def test_metrics_named_their_own_way_are_mapped_and_the_unmapped_ones_quarantined(
    database_url: str, mqtt_url: str, unique_id: str, definition: MineDefinition,
    private_dir: Path,
) -> None:  # fmt: skip
    (private_dir / "map.toml").write_text(MAP, encoding="utf-8")
    t = _now_ms()
    birth = nbirth([
        M("CH4_T0", 1.3, DataType.FLOAT, alias=1),  # float32 on the wire: 1.2999999523162842
        M("Methane/UpperCorner", 0.42, DataType.DOUBLE, alias=2),
        M("Extra", 7.0, DataType.DOUBLE, alias=3),  # the map does not list it
    ], timestamp=t)  # fmt: skip
    data = encode([M(alias=1, value=0.7, datatype=DataType.FLOAT), M(alias=3, value=8.0)],
                  timestamp=t + 1000, seq=1)  # fmt: skip
    async with gateway(
        database_url, mqtt_url, unique_id, sparkplug_map_file=private_dir / "map.toml"
    ):
        await _publish(mqtt_url, [(topic("NBIRTH"), birth), (topic("NDATA"), data)])
        await eventually(lambda: len(_values(database_url, CH4)) == 2)
        await eventually(lambda: len(_reasons(database_url)) == 2)
    assert _values(database_url, CH4) == [(1.3, 0), (0.7, 0)]  # the shortest decimal
    assert _values(database_url, CORNER) == [(0.42, 0)]
    assert _reasons(database_url) == ["unmapped_metric", "unmapped_metric"]
    assert scalar(database_url, "SELECT count(*) FROM readings") == 3


async def test_a_refused_birth_is_logged_at_warning_and_counted(
    database_url: str, mqtt_url: str, unique_id: str, definition: MineDefinition,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    # Tahu's own helper adds bdSeq, and so did its caller: bdSeq twice
    twice = encode([M(CH4, 0.3, DataType.DOUBLE), bd_seq(0), bd_seq(0)], timestamp=_now_ms())
    with caplog.at_level(logging.WARNING, logger="minewatch.ingest.sources.sparkplug.adapter"):
        async with gateway(database_url, mqtt_url, unique_id) as running:
            await _publish(mqtt_url, [(topic("NBIRTH"), twice)])
            await eventually(lambda: _reasons(database_url) == ["sparkplug_violation"])
            counted = running.metrics.registry.get_sample_value(
                "minewatch_sparkplug_refusals_total",
                {"source": "SparkplugSource-0", "kind": "NBIRTH"},
            )
    assert counted == 1.0
    (record,) = [r for r in caplog.records if "NBIRTH" in r.getMessage()]
    assert record.levelno == logging.WARNING and "born twice" in record.getMessage()


async def test_a_death_of_an_earlier_session_is_kept_and_logged_and_the_node_lives_on(
    database_url: str, mqtt_url: str, unique_id: str, definition: MineDefinition,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    t = _now_ms()
    birth = nbirth([M(CH4, 0.3, DataType.DOUBLE, alias=1)], bd=4, timestamp=t)
    data = encode([M(alias=1, value=0.4, datatype=DataType.DOUBLE)], timestamp=t + 2000, seq=1)
    with caplog.at_level(logging.INFO, logger="minewatch.ingest.sources.sparkplug.adapter"):
        async with gateway(database_url, mqtt_url, unique_id):
            await _publish(mqtt_url, [
                (topic("NBIRTH"), birth), (topic("NDEATH"), ndeath(3, t + 1000)),
                (topic("NDATA"), data),
            ])  # fmt: skip
            await eventually(lambda: len(_values(database_url, CH4)) == 2)
    assert _reasons(database_url) == ["stale_death"]
    assert _values(database_url, CH4) == [(0.3, 0), (0.4, 0)]  # no substation fault between
    assert any("bdSeq 3" in r.getMessage() for r in caplog.records)


async def test_a_birth_and_data_of_the_same_millisecond_are_not_late(
    database_url: str, mqtt_url: str, unique_id: str, definition: MineDefinition
) -> None:
    t = _now_ms()
    birth = nbirth([M(CH4, 0.3, DataType.DOUBLE, alias=1)], timestamp=t)
    data = encode([M(alias=1, value=0.3, datatype=DataType.DOUBLE)], timestamp=t, seq=1)
    async with gateway(database_url, mqtt_url, unique_id):
        await _publish(mqtt_url, [(topic("NBIRTH"), birth), (topic("NDATA"), data)])
        await eventually(lambda: len(_values(database_url, CH4)) == 2)
        await asyncio.sleep(0)
    assert scalar(database_url, "SELECT count(*) FROM readings WHERE flags & 1 = 1") == 0
    assert _values(database_url, CH4) == [(0.3, 0), (0.3, 2)]  # the second: a repeat
