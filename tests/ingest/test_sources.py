"""The gateway's other sources, each through the whole write path into TimescaleDB: a real
Modbus TCP peer (simulated substations served by pymodbus) and the national TXT drop folder."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from minewatch.ingest.sources.modbus.adapter import ModbusPollerConfig, ModbusSource
from minewatch.ingest.sources.national.adapter import NationalFileSource
from minewatch.metadata import MineDefinition, upsert_mine
from minewatch.national import CdssRecord, FileType, Header, encode_file
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.modbus_server import ModbusMineServer
from minewatch.simulators.model import SimulatedMine
from tests.helpers import eventually, running_gateway, scalar

pytestmark = pytest.mark.anyio


@pytest.fixture
def mine(database_url: str) -> SimulatedMine:
    mine = SimulatedMine(load_mine_config(example_mine_path("small")))
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, mine.definition)
    return mine


async def test_modbus_devices_are_polled_into_the_database(
    database_url: str, mqtt_url: str, unique_id: str, mine: SimulatedMine
) -> None:
    async with ModbusMineServer(mine) as server:
        served = dict(zip(mine.codes, server.cycle.value.tolist(), strict=True))  # type: ignore[union-attr]
        source = ModbusSource(server.register_map, ModbusPollerConfig(cycle_s=0.2, timeout_s=0.15))
        async with running_gateway(database_url, mqtt_url, f"gw-{unique_id}", [source]):
            await eventually(
                lambda: (
                    (scalar(database_url, "SELECT count(*) FROM readings") or 0)
                    >= 3 * len(mine.codes)
                )
            )
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT p.code, r.value, r.status FROM readings r JOIN points p ON p.id = r.point_id"
        ).fetchall()
    assert {(code, value) for code, value, _ in rows} == set(served.items())
    assert {status for _, _, status in rows} == {0}
    assert scalar(database_url, "SELECT count(*) FROM quarantine") == 0


def _cdss_file(definition: MineDefinition, upload: dt.datetime) -> tuple[str, bytes]:
    points = [p for p in definition.points if p.substation == "001"]
    records = [
        CdssRecord(p.code, "", p.location, Decimal("0.42"), p.unit, 0, upload) for p in points
    ]
    return encode_file(Header(FileType.CDSS, definition.mine.code, "", upload), records)


async def test_cdss_files_in_the_drop_folder_are_stored_then_moved_to_done(
    database_url: str, mqtt_url: str, unique_id: str, mine: SimulatedMine, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    (tmp_path / "inbox").mkdir()
    files = [_cdss_file(mine.definition, now - dt.timedelta(minutes=m)) for m in (2, 1)]
    for name, data in files:
        (tmp_path / "inbox" / name).write_bytes(data)
    n = len([p for p in mine.definition.points if p.substation == "001"])
    source = NationalFileSource(tmp_path, scan_s=0.1)
    async with running_gateway(database_url, mqtt_url, f"gw-{unique_id}", [source]):
        await eventually(lambda: scalar(database_url, "SELECT count(*) FROM readings") == 2 * n)
        await eventually(lambda: sorted(p.name for p in (tmp_path / "done").glob("*.txt"))
                         == sorted(name for name, _ in files))  # fmt: skip
    assert list((tmp_path / "inbox").iterdir()) == []
    assert scalar(database_url, "SELECT count(DISTINCT value) FROM readings") == 1


@pytest.mark.slow
async def test_modbus_polling_goes_on_through_a_database_outage_via_the_spool(
    mqtt_url: str, unique_id: str, tmp_path: Path, private_dir: Path
) -> None:
    """Devices keep no history: what is polled while PostgreSQL is down waits in the spool."""
    from minewatch.db import migrate
    from minewatch.embedded import embedded_postgres, free_port
    from minewatch.settings import Settings

    private = private_dir
    bin_dir, port = Settings().pg_bin_dir, free_port()
    mine = SimulatedMine(load_mine_config(example_mine_path("small")))
    with contextlib.ExitStack() as servers:
        url = servers.enter_context(embedded_postgres(private / "pg", bin_dir, port)).url()
        migrate(url)
        with psycopg.connect(url) as conn:
            upsert_mine(conn, mine.definition)
        async with ModbusMineServer(mine) as server:
            config = ModbusPollerConfig(cycle_s=0.2, timeout_s=0.15)
            source = ModbusSource(server.register_map, config, spool_dir=tmp_path / "spool")
            async with running_gateway(url, mqtt_url, f"gw-{unique_id}", [source]) as gateway:
                await eventually(lambda: (scalar(url, "SELECT count(*) FROM readings") or 0) > 0)
                # The database goes away for a while. Stopped and started in a thread: the
                # event loop must go on polling meanwhile, as the gateway's would.
                await asyncio.to_thread(servers.close)
                await asyncio.sleep(2.0)
                depth = gateway.metrics.registry.get_sample_value(
                    "minewatch_spool_records", {"source": "ModbusSource-0"}
                )
                assert depth is not None and depth >= 5  # 2 s of 0.2 s cycles wait in the spool
                restarted = embedded_postgres(private / "pg", bin_dir, port)
                await asyncio.to_thread(servers.enter_context, restarted)
                await asyncio.sleep(1.0)
                polled_until = dt.datetime.now(dt.UTC)
                caught_up = polled_until - dt.timedelta(seconds=0.5)
                await eventually(
                    lambda: scalar(url, "SELECT max(time) FROM readings") >= caught_up,
                    limit_s=30,
                )
            gaps = scalar(
                url,
                "SELECT max(gap) FROM (SELECT extract(epoch FROM time - lag(time) OVER "
                "(PARTITION BY point_id ORDER BY time)) AS gap FROM readings) g",
            )
            duplicates = scalar(
                url, "SELECT count(*) - count(DISTINCT (point_id, time)) FROM readings"
            )
    assert duplicates == 0
    assert gaps is not None and float(gaps) < 1.0  # no hole where the database was down
