"""Backups with PostgreSQL's own engines (docs/operations.md "Backups"): a base backup and the
WAL archive restore, onto a fresh cluster, everything written before and after the backup."""

from __future__ import annotations

import datetime as dt
import os
import pwd
import shutil
from pathlib import Path

import psycopg
import pytest

from minewatch.db import migrate
from minewatch.embedded import embedded_postgres
from minewatch.metadata import upsert_mine
from minewatch.settings import Settings
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from tests.federation.test_replica_backup import READINGS, _basebackup, _insert_alarm, _scalar
from tests.helpers import eventually

pytestmark = pytest.mark.anyio  # two clusters one after the other: about 15-25 s under load


def _archived(url: str) -> str | None:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()
    return None if row is None else row[0]


async def test_a_base_backup_and_the_wal_archive_restore_everything_written_after_the_backup(
    private_dir: Path, settings_defaults: Settings
) -> None:
    """docs/operations.md "Backups": WAL archiving to a directory (``archive_command``), a base
    backup without WAL of its own (``-X none``: the archive must provide it), readings and an
    alarm written after it, the primary lost; a fresh cluster restored from the backup with
    ``restore_command`` recovers to the end of the archive and holds every reading and alarm."""
    bin_dir = settings_defaults.pg_bin_dir
    owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    archive = private_dir / "archive"
    archive.mkdir(mode=0o700)
    if owner is not None:
        os.chown(archive, owner.pw_uid, owner.pw_gid)
    data = private_dir / "primary-archived"
    with (
        embedded_postgres(data, bin_dir) as server,  # archiving applies at the next start
        psycopg.connect(server.url("postgres"), autocommit=True) as conn,
    ):
        conn.execute("ALTER SYSTEM SET archive_mode = 'on'")
        conn.execute(f"ALTER SYSTEM SET archive_command = "
                     f"'test ! -f {archive}/%f && cp %p {archive}/%f'")  # fmt: skip
    definition = SimulatedMine(load_mine_config(example_mine_path("small"))).definition
    mine = definition.mine.code
    with embedded_postgres(data, bin_dir) as primary:
        url = primary.url()
        migrate(url)
        with psycopg.connect(url) as conn:
            upsert_mine(conn, definition)
            point = conn.execute("SELECT min(id) FROM points").fetchone()
            assert point is not None
        point_id = int(point[0])
        insert = (
            "INSERT INTO readings (time, point_id, value) SELECT now() - make_interval("
            "secs => i + %s), %s, 0.3 FROM generate_series(1, %s) AS i"
        )
        now = dt.datetime.now(dt.UTC)
        with psycopg.connect(url) as conn:
            conn.execute(insert, (0, point_id, READINGS))
        _insert_alarm(url, point_id, mine, now - dt.timedelta(minutes=5))
        _basebackup(bin_dir, primary, private_dir / "wal-backup" / "data", "-X", "none")
        # after the base backup: only the archive holds these
        with psycopg.connect(url) as conn:
            conn.execute(insert, (READINGS, point_id, READINGS))
        _insert_alarm(url, point_id, mine, now - dt.timedelta(minutes=4))
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()
            assert row is not None
            conn.execute("SELECT pg_switch_wal()")
        await eventually(lambda: (_archived(url) or "") >= row[0], limit_s=60)
    # the primary is gone; restore onto a fresh cluster from the backup and the archive
    restored_dir = private_dir / "restored" / "data"
    shutil.copytree(private_dir / "wal-backup" / "data", restored_dir)
    with open(restored_dir / "postgresql.auto.conf", "a") as conf:
        conf.write(f"restore_command = 'cp {archive}/%f %p'\n")
        conf.write("archive_mode = 'off'\n")
    (restored_dir / "recovery.signal").touch()
    with embedded_postgres(restored_dir, bin_dir) as restored:
        await eventually(lambda: _scalar(restored.url(), "SELECT pg_is_in_recovery()::int") == 0,
                         limit_s=120)  # fmt: skip
        assert _scalar(restored.url(), "SELECT count(*) FROM readings") == 2 * READINGS
        assert _scalar(restored.url(), "SELECT count(*) FROM alarms") == 2
        assert _scalar(restored.url(), "SELECT count(*) FROM points") == len(definition.points)
