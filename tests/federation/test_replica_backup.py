"""PostgreSQL's own engines for the read path and for backups (docs/operations.md): a streaming
replica made with ``pg_basebackup -R`` serves the API's reports and history
(MINEWATCH_API__REPLICA_URL), its lag in ``/health``; a base backup restored onto a fresh
cluster holds every reading and alarm."""

from __future__ import annotations

import datetime as dt
import os
import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from minewatch.db import migrate
from minewatch.embedded import PostgresServer, embedded_postgres
from minewatch.metadata import upsert_mine
from minewatch.settings import ApiSettings, Settings
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from tests.helpers import eventually, running_api

pytestmark = [pytest.mark.anyio, pytest.mark.slow]  # three clusters: about 40 s under load

READINGS = 5_000


def _basebackup(bin_dir: Path, source: PostgresServer, target: Path, *options: str) -> None:
    """``pg_basebackup`` as the cluster's own user (what an operator runs: docs/operations.md)."""
    owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None  # servers refuse root
    target.parent.mkdir(parents=True, exist_ok=True)
    if owner is not None:
        os.chown(target.parent, owner.pw_uid, owner.pw_gid)
    run_as = {} if owner is None else {"user": owner.pw_uid, "group": owner.pw_gid}
    subprocess.run(
        [str(bin_dir / "pg_basebackup"), "-h", source.host, "-p", str(source.port),
         "-U", "postgres", "-D", str(target), "-X", "stream", "-c", "fast", *options],
        check=True, capture_output=True, **run_as,  # type: ignore[call-overload]
    )  # fmt: skip


def _insert_alarm(url: str, point_id: int, mine: str, at: dt.datetime) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO alarms (mine_code, point_id, rule, abnormal_type, state, started_at, "
            "ended_at, start_value, max_value, max_at, min_value, min_at, value_sum, value_count) "
            "VALUES (%s, %s, 'upper_alarm', '001', 'cleared', %s, %s + interval '30 s', "
            "1.6, 1.6, %s, 1.6, %s, 1.6, 1)",
            (mine, point_id, at, at, at, at),
        )


def _scalar(url: str, query: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def primary(private_dir: Path, settings_defaults: Settings) -> Iterator[PostgresServer]:
    with embedded_postgres(private_dir / "primary", settings_defaults.pg_bin_dir) as server:
        migrate(server.url())
        yield server


async def test_reports_read_the_replica_and_a_base_backup_restores_everything(
    primary: PostgresServer, private_dir: Path, settings_defaults: Settings
) -> None:
    bin_dir = settings_defaults.pg_bin_dir
    url = primary.url()
    definition = SimulatedMine(load_mine_config(example_mine_path("small"))).definition
    mine = definition.mine.code
    with psycopg.connect(url) as conn:
        upsert_mine(conn, definition)
        point = conn.execute("SELECT min(id) FROM points").fetchone()
        assert point is not None
        conn.execute(
            "INSERT INTO readings (time, point_id, value) SELECT now() - make_interval("
            "secs => i), %s, 0.3 FROM generate_series(1, %s) AS i",
            (point[0], READINGS),
        )
    point_id = int(point[0])
    now = dt.datetime.now(dt.UTC)
    _insert_alarm(url, point_id, mine, now - dt.timedelta(minutes=5))

    # Backup: a base backup with the WAL it needs, restored onto a fresh cluster.
    _basebackup(bin_dir, primary, private_dir / "backup" / "data")
    _insert_alarm(url, point_id, mine, now - dt.timedelta(minutes=4))  # after the backup
    with embedded_postgres(private_dir / "backup" / "data", bin_dir) as restored:
        assert _scalar(restored.url(), "SELECT count(*) FROM readings") == READINGS
        assert _scalar(restored.url(), "SELECT count(*) FROM alarms") == 1
        assert _scalar(restored.url(), "SELECT count(*) FROM points") == len(definition.points)

    # Replica: streaming from the primary; the API's reports and history read there.
    _basebackup(bin_dir, primary, private_dir / "replica" / "data", "-R")
    with embedded_postgres(private_dir / "replica" / "data", bin_dir) as replica:
        assert _scalar(replica.url(), "SELECT pg_is_in_recovery()::int") == 1
        api = ApiSettings(replica_url=replica.url())
        async with running_api(url, api=api) as base, httpx.AsyncClient() as http:

            async def listed() -> int:
                answer = await http.get(f"{base}/api/v1/alarms", params={"mine": mine})
                assert answer.status_code == 200, answer.text
                return len(answer.json())

            assert await listed() == 2
            health = (await http.get(f"{base}/health")).json()
            assert health.get("replica_lag_s") is not None and health.get("replica_lag_s") < 60
            # Replay paused on the replica: what the primary stores now is not in the report
            # (it reads the replica), and the lag grows; resumed, it appears.
            with psycopg.connect(replica.url(), autocommit=True) as conn:
                conn.execute("SELECT pg_wal_replay_pause()")
                _insert_alarm(url, point_id, mine, now - dt.timedelta(minutes=3))
                await eventually(
                    lambda: _scalar(url, "SELECT count(*) FROM alarms") == 3, limit_s=10
                )
                assert await listed() == 2
                await eventually(lambda: _lagging(http, base), limit_s=10)
                conn.execute("SELECT pg_wal_replay_resume()")

            async def caught_up() -> bool:
                return await listed() == 3

            await eventually(caught_up, limit_s=30)


async def _lagging(http: httpx.AsyncClient, base: str) -> bool:
    health = (await http.get(f"{base}/health")).json()
    return bool(health.get("replica_lag_s") is not None and health.get("replica_lag_s") > 0)
