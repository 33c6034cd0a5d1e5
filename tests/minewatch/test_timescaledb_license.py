"""No ERROR about the "apache" license in the PostgreSQL log at a start of the stack (issue 15):
TimescaleDB's job-history retention job, which needs the community licence, is unscheduled by
the migrations, and the server's log stays clean across a restart."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from minewatch.db import migrate
from minewatch.embedded import embedded_postgres, free_port
from minewatch.settings import Settings


def test_a_migrated_database_logs_no_license_error_at_start(private_dir: Path) -> None:
    settings, port = Settings(_env_file=None), free_port()  # type: ignore[call-arg]
    with embedded_postgres(private_dir / "pg", settings.pg_bin_dir, port) as pg:
        migrate(pg.url())
        with psycopg.connect(pg.url()) as conn:
            scheduled = conn.execute(
                "SELECT scheduled FROM _timescaledb_config.bgw_job "
                "WHERE proc_name = 'policy_job_stat_history_retention'"
            ).fetchall()
        assert scheduled in ([], [(False,)])
    log = private_dir / "pg.log"
    restarted_at = log.stat().st_size
    with embedded_postgres(private_dir / "pg", settings.pg_bin_dir, port):
        time.sleep(4)  # TimescaleDB's scheduler runs its jobs about 1-2 s after the start
        text = log.read_bytes()[restarted_at:].decode(errors="replace")
    assert "ready to accept connections" in text
    assert "license" not in text, text
