"""Retention and statistics: with raw data kept 2 days and a 4-day trace replayed through the
gateway, raw chunks older than 2 days are gone and the 1- and 5-minute statistics of all 4
days remain, equal to what the raw data gave; late and replayed readings are taken in."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import re
import signal
import subprocess
import sys

import httpx
import numpy as np
import psycopg
import pytest

from minewatch.embedded import free_port
from minewatch.ingest.gateway import Gateway
from minewatch.ingest.maintenance import Maintenance
from minewatch.ingest.sources.replay.adapter import TraceReplaySource
from minewatch.settings import GatewaySettings, RetentionSettings
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from minewatch.simulators.trace import record
from minewatch.trace import Trace
from tests.helpers import eventually, scalar

pytestmark = pytest.mark.anyio

DAY = dt.timedelta(days=1)
US = 1_000_000


@pytest.fixture(scope="module")
def four_days(tmp_path_factory: pytest.TempPathFactory) -> Trace:
    """The small example mine for 4 days, one reading per point every 30 s (530k readings)."""
    config = load_mine_config(example_mine_path("small"))
    config = config.model_copy(
        update={"simulation": config.simulation.model_copy(update={"cycle_s": 30.0})}
    )
    path = tmp_path_factory.mktemp("trace") / "four-days.trace"
    record(SimulatedMine(config), path, cycles=4 * 86400 // 30)
    return Trace(path)


async def _replay(database_url: str, mqtt_url: str, trace: Trace, start: dt.datetime) -> None:
    settings = GatewaySettings(
        client_id="retention-replay", topics=[], max_past_age_s=1e10, tick_s=None,
        publish_alarms=False,
    )  # fmt: skip
    source = TraceReplaySource(
        trace, speed=None, rebase_to_us=int(start.timestamp() * US), message_readings=5000
    )
    gateway = Gateway(settings, database_url, mqtt_url, sources=[source])
    runner = asyncio.create_task(gateway.run())
    try:
        await asyncio.wait_for(source.finished.wait(), 240)
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


def _raw(database_url: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(point_id, time in µs, value) of every stored reading, by point and time."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT point_id, (extract(epoch FROM time) * 1000000)::bigint, value FROM readings"
            " ORDER BY point_id, time"
        ).fetchall()
    data = np.array(rows, dtype=object)
    return data[:, 0].astype(np.int64), data[:, 1].astype(np.int64), data[:, 2].astype(float)


def _expected(raw: tuple[np.ndarray, np.ndarray, np.ndarray], width_s: int) -> dict:
    """{(point, bucket µs): (n, min, max, mean, last)} computed with numpy from raw rows."""
    points, times, values = raw
    buckets = times // (width_s * US) * (width_s * US)
    keys = np.stack([points, buckets], axis=1)
    # rows are sorted by point and time: each group is a run, its last row the latest reading
    starts = np.flatnonzero(np.r_[True, np.any(keys[1:] != keys[:-1], axis=1)])
    ends = np.r_[starts[1:], len(points)]
    out = {}
    for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
        chunk = values[lo:hi]
        out[(int(points[lo]), int(buckets[lo]))] = (
            hi - lo, chunk.min(), chunk.max(), chunk.mean(), chunk[-1]
        )  # fmt: skip
    return out


def _stored(database_url: str, table: str) -> dict:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT point_id, (extract(epoch FROM bucket) * 1000000)::bigint, n, min, max, mean,"
            f" last FROM {table}"
        ).fetchall()
    return {(p, b): (n, lo, hi, mean, last) for p, b, n, lo, hi, mean, last in rows}


def _assert_equal(stored: dict, expected: dict) -> None:
    assert stored.keys() == expected.keys()
    for key, (n, lo, hi, mean, last) in expected.items():
        s = stored[key]
        assert (s[0], s[1], s[2], s[4]) == (n, lo, hi, last), key
        assert s[3] == pytest.approx(mean, rel=1e-12, abs=1e-12), key


@pytest.mark.slow  # about 35 s: 530,000 readings through the gateway
async def test_raw_older_than_two_days_is_dropped_and_four_days_of_statistics_remain(
    database_url: str, mqtt_url: str, four_days: Trace
) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    await _replay(database_url, mqtt_url, four_days, now - 4 * DAY)
    total = scalar(database_url, "SELECT count(*) FROM readings")
    assert total == four_days.manifest["readings"]
    raw = _raw(database_url)
    expected_1m, expected_5m = _expected(raw, 60), _expected(raw, 300)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE retention_policies SET keep = '2 days' WHERE hypertable = 'readings'")

    maintenance = Maintenance(database_url, RetentionSettings())
    assert await maintenance.run_once(now)

    cutoff = now - 2 * DAY
    with psycopg.connect(database_url) as conn:
        ends = [row[0] for row in conn.execute(
            "SELECT range_end FROM timescaledb_information.chunks"
            " WHERE hypertable_name = 'readings'"
        )]  # fmt: skip
        oldest = conn.execute("SELECT min(time) FROM readings").fetchone()
        logged = conn.execute(
            "SELECT chunks FROM maintenance_log WHERE job = 'retention' AND hypertable = 'readings'"
        ).fetchall()
    assert ends and all(end > cutoff for end in ends)  # no raw chunk older than 2 days is left
    assert oldest is not None and oldest[0] > cutoff - DAY  # chunks are one day long
    dropped = int(scalar(database_url, "SELECT count(*) FROM readings")) - total  # type: ignore[arg-type]
    assert dropped < 0
    assert logged and logged[0][0] >= 1
    metric = maintenance.metrics.chunks_dropped.labels("readings")._value.get()
    assert metric == logged[0][0]
    assert maintenance.metrics.below_floor.labels("readings")._value.get() == 1  # 2 d < 7 d

    # Every bucket of the 4 days is there and holds what the raw data gave.
    _assert_equal(_stored(database_url, "readings_1m"), expected_1m)
    _assert_equal(_stored(database_url, "readings_5m"), expected_5m)
    # ...including the days whose raw data is gone
    assert min(b for _, b in _stored(database_url, "readings_1m")) < (cutoff - DAY).timestamp() * US


async def test_late_and_replayed_readings_are_taken_into_the_statistics(
    database_url: str,
) -> None:
    now = dt.datetime(2030, 1, 10, 12, 0, tzinfo=dt.UTC)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO mines (code, name) VALUES ('141024010061', 'late mine');"
            "INSERT INTO points (mine_code, code, sensor_type, value_type)"
            " VALUES ('141024010061', 'P1', '0001', 'MN')"
        )
    point = int(scalar(database_url, "SELECT id FROM points WHERE code = 'P1'"))  # type: ignore[arg-type]
    old = now - 3 * DAY  # a chunk that is closed by now
    recent = now - dt.timedelta(minutes=10)

    def insert(rows: list[tuple[dt.datetime, float]]) -> None:
        with psycopg.connect(database_url) as conn:
            conn.cursor().executemany(
                "INSERT INTO readings (time, point_id, value) VALUES (%s, %s, %s)",
                [(t, point, v) for t, v in rows],
            )

    def bucket(table: str, at: dt.datetime) -> tuple[object, ...] | None:
        with psycopg.connect(database_url) as conn:
            return conn.execute(
                f"SELECT n, min, max, last FROM {table} WHERE point_id = %s AND bucket = %s",
                (point, at),
            ).fetchone()

    maintenance = Maintenance(database_url, RetentionSettings(rollup_lookback_s=1800))
    insert([(old, 1.0), (old + dt.timedelta(seconds=30), 2.0), (recent, 5.0)])
    await maintenance.run_once(now)
    assert bucket("readings_1m", old) == (2, 1.0, 2.0, 2.0)
    assert bucket("readings_1m", recent) == (1, 5.0, 5.0, 5.0)

    # Late: one more reading into the closed chunk, and one into the recent window.
    insert([(old + dt.timedelta(seconds=45), 0.5), (recent + dt.timedelta(seconds=5), 7.0)])
    await _stats_flushed(database_url)
    await maintenance.run_once(now)
    assert bucket("readings_1m", old) == (3, 0.5, 2.0, 0.5)
    assert bucket("readings_5m", old) == (3, 0.5, 2.0, 0.5)
    assert bucket("readings_1m", recent) == (2, 5.0, 7.0, 7.0)

    # Late into the current chunk but before the recent window (2 h back, the window is 30 min):
    # more inserts than the window gained.
    earlier = now - dt.timedelta(hours=2)
    insert([(earlier, 3.0)])
    await _stats_flushed(database_url)
    await maintenance.run_once(now)
    assert bucket("readings_1m", earlier) == (1, 3.0, 3.0, 3.0)
    insert([(recent + dt.timedelta(seconds=10), 9.0)])  # and only in the window: found too
    await _stats_flushed(database_url)
    await maintenance.run_once(now)
    assert bucket("readings_1m", recent) == (3, 5.0, 9.0, 9.0)

    # Replayed: the same day again (as a replay without watermarks would store it).
    insert([(old, 1.0), (old + dt.timedelta(seconds=30), 2.0)])
    await _stats_flushed(database_url)
    await maintenance.run_once(now)
    assert bucket("readings_1m", old) == (5, 0.5, 2.0, 0.5)


async def _stats_flushed(database_url: str) -> None:
    """PostgreSQL publishes a session's table statistics when it goes idle (at most once a
    second); the inserting sessions have ended, so ask for a fresh snapshot until it shows."""
    await asyncio.sleep(1.1)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")


def _gateway_process(
    database_url: str, mqtt_url: str, client_id: str, port: int
) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "MINEWATCH_DATABASE_URL": database_url, "MINEWATCH_MQTT_URL": mqtt_url,
        "MINEWATCH_GATEWAY__CLIENT_ID": client_id,
        "MINEWATCH_GATEWAY__METRICS_PORT": str(port), "MINEWATCH_RETENTION__INTERVAL_S": "0.2",
    }  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "minewatch.cli", "gateway"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def test_the_gateway_runs_maintenance_and_exposes_it_as_metrics(
    database_url: str, mqtt_url: str, unique_id: str
) -> None:
    port = free_port()
    process = _gateway_process(database_url, mqtt_url, f"gw-{unique_id}", port)
    try:

        async def two_rounds() -> bool:
            try:
                async with httpx.AsyncClient() as client:
                    text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            except httpx.HTTPError:
                return False
            match = re.search(r'minewatch_maintenance_rounds_total\{outcome="done"\} (\S+)', text)
            return match is not None and float(match.group(1)) >= 2

        await eventually(two_rounds, limit_s=30)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0


def test_one_maintenance_round_from_the_command_line(database_url: str, mqtt_url: str) -> None:
    """What minewatch-maintenance.timer runs: a reading older than the 30 days kept goes, its
    statistics stay."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO mines (code, name) VALUES ('141024010062', 'old mine');"
            "INSERT INTO points (mine_code, code, sensor_type, value_type)"
            " VALUES ('141024010062', 'P1', '0001', 'MN');"
            "INSERT INTO readings (time, point_id, value)"
            " SELECT now() - INTERVAL '40 days', id, 0.5 FROM points"
        )
    env = os.environ | {"MINEWATCH_DATABASE_URL": database_url, "MINEWATCH_MQTT_URL": mqtt_url}
    result = subprocess.run(
        [sys.executable, "-m", "minewatch.cli", "maintenance", "--once"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "maintenance round done" in result.stderr
    assert scalar(database_url, "SELECT count(*) FROM readings") == 0
    assert scalar(database_url, "SELECT sum(n) FROM readings_1m") == 1
