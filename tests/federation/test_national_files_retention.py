"""Retention of the national files (migration 0039, docs/operations.md "Retention and
statistics"): the maintenance round deletes the files older than their table's ``keep`` and
keeps the recent ones, at the mine never one its publisher has not sent up yet, and logs and
counts what it deleted."""

from __future__ import annotations

import datetime as dt
import hashlib

import psycopg
import pytest

from minewatch.doctor import Level
from minewatch.doctor.database import database_findings
from minewatch.ingest.maintenance import Maintenance, MaintenanceMetrics
from minewatch.settings import RetentionSettings
from tests.helpers import scalar

pytestmark = pytest.mark.anyio

MINE = "141024010091"
NOW = dt.datetime(2026, 12, 6, 12, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def _keep_at_mine(conn: psycopg.Connection, name: str, stored_at: dt.datetime) -> int:
    """A file kept at the mine (as the drop folder keeps it), arrived at ``stored_at``."""
    content = f"{MINE};测试煤矿;2026-01-01 00:00:00~{name}||".encode()
    row = conn.execute(
        "INSERT INTO national_files (mine_code, name, file_type, uploaded_at, sha256, content,"
        " stored_at) VALUES (%s, %s, 'FZSS', %s, %s, %s, %s) RETURNING seq",
        (MINE, name, stored_at, hashlib.sha256(content).hexdigest(), content, stored_at),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _received(conn: psycopg.Connection, seq: int, received_at: dt.datetime) -> None:
    """A file of a mine below, received at ``received_at``."""
    content = f"{MINE};测试煤矿;2026-01-01 00:00:00~{seq}||".encode()
    conn.execute(
        "INSERT INTO federated_national_files (source, seq, mine_code, name, file_type,"
        " uploaded_at, sha256, content, received_at)"
        " VALUES ('mine-a', %s, %s, %s, 'FZSS', %s, %s, %s, %s)",
        (seq, MINE, f"{MINE}_FZSS_{seq:014d}.txt", received_at,
         hashlib.sha256(content).hexdigest(), content, received_at),
    )  # fmt: skip


def _names(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM national_files")}


def _position(conn: psycopg.Connection, name: str, position: int) -> None:
    conn.execute(
        "INSERT INTO outbox_positions (name, position) VALUES (%s, %s)"
        " ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position",
        (name, position),
    )


async def test_old_national_files_go_recent_ones_stay_and_unsent_ones_are_never_dropped(
    database_url: str,
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        old = [_keep_at_mine(conn, f"old-{i}", NOW - 500 * DAY) for i in range(3)]
        recent = _keep_at_mine(conn, "recent", NOW - 10 * DAY)
        late_old = _keep_at_mine(conn, "old-but-unsent", NOW - 450 * DAY)
        assert [*old, recent, late_old] == [1, 2, 3, 4, 5]
        for seq in (1, 2):
            _received(conn, seq, NOW - 500 * DAY)
        _received(conn, 3, NOW - 10 * DAY)

    metrics = MaintenanceMetrics()
    maintenance = Maintenance(database_url, RetentionSettings(), metrics)

    # No publisher has run yet: nothing of the mine's own files has gone up, nothing goes.
    assert await maintenance.run_once(NOW)
    assert _names(database_url) == {"old-0", "old-1", "old-2", "recent", "old-but-unsent"}
    # What came from below goes by its age alone.
    assert scalar(database_url, "SELECT array_agg(seq ORDER BY seq) FROM "
                  "federated_national_files") == [3]  # fmt: skip

    # Two publishers (two client ids): the one behind decides. Files 1 and 2 were sent by
    # both, 3 and 5 not yet by the second: of the old ones only 1 and 2 go.
    with psycopg.connect(database_url, autocommit=True) as conn:
        _position(conn, "national-files:gw-a-files", 4)
        _position(conn, "national-files:gw-b-files", 2)
        _position(conn, "statistics:gw-a-statistics", 10**6)  # another outbox: not counted
    assert await maintenance.run_once(NOW)
    assert _names(database_url) == {"old-2", "recent", "old-but-unsent"}

    # Everything sent by both: every file older than 400 days goes, the recent one stays.
    with psycopg.connect(database_url, autocommit=True) as conn:
        _position(conn, "national-files:gw-a-files", 5)
        _position(conn, "national-files:gw-b-files", 5)
    assert await maintenance.run_once(NOW)
    assert _names(database_url) == {"recent"}

    # Logged, counted, and the policies are data: a shorter keep takes the recent one too.
    assert scalar(database_url, "SELECT sum(rows_deleted) FROM maintenance_log WHERE "
                  "job = 'retention' AND hypertable = 'national_files'") == 4  # fmt: skip
    assert scalar(database_url, "SELECT sum(rows_deleted) FROM maintenance_log WHERE "
                  "hypertable = 'federated_national_files'") == 2  # fmt: skip
    registry = metrics.registry
    deleted = "minewatch_retention_rows_deleted_total"
    assert registry.get_sample_value(deleted, {"table": "national_files"}) == 4
    assert registry.get_sample_value(deleted, {"table": "federated_national_files"}) == 2
    below = "minewatch_retention_below_floor"
    assert registry.get_sample_value(below, {"hypertable": "national_files"}) == 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE retention_policies SET keep = '7 days' "
                     "WHERE hypertable = 'national_files'")  # fmt: skip
    assert await maintenance.run_once(NOW)
    assert _names(database_url) == set()
    assert registry.get_sample_value(below, {"hypertable": "national_files"}) == 1


async def test_the_national_file_policies_default_to_a_year_and_more(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT hypertable, keep, floor, time_column, outbox FROM retention_policies"
            " WHERE hypertable LIKE '%national_files' ORDER BY 1"
        ).fetchall()
    assert rows == [
        ("federated_national_files", 400 * DAY, 365 * DAY, "received_at", None),
        ("national_files", 400 * DAY, 365 * DAY, "stored_at", "national-files"),
    ]


async def test_the_doctor_names_a_publisher_that_holds_old_files_back(database_url: str) -> None:
    """A publisher that no longer runs (its gateway's client id changed) keeps every file."""
    now = dt.datetime.now(dt.UTC)
    with psycopg.connect(database_url, autocommit=True) as conn:
        for i in range(2):
            _keep_at_mine(conn, f"old-{i}", now - 500 * DAY)
        _position(conn, "national-files:gw-new-files", 2)
        _position(conn, "national-files:gw-old-files", 0)
    await Maintenance(database_url, RetentionSettings()).run_once(now)
    assert _names(database_url) == {"old-0", "old-1"}
    found = [f.message for f in database_findings(database_url, now, 60)
             if f.check == "retention" and f.level is Level.WARN]  # fmt: skip
    assert len(found) == 1
    assert found[0].startswith("2 national file(s) older than 400 days are kept: the publisher "
                               "national-files:gw-old-files has not sent them up")  # fmt: skip
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM outbox_positions WHERE name = 'national-files:gw-old-files'")
    assert not [f for f in database_findings(database_url, now, 60) if f.level is Level.WARN
                and "national file" in f.message]  # fmt: skip
    await Maintenance(database_url, RetentionSettings()).run_once(now)
    assert _names(database_url) == set()
