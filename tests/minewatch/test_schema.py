"""The schema is applied by the migrations, with TimescaleDB really loaded."""

import datetime as dt

import psycopg

from minewatch.db import migrate


def test_timescaledb_extension_is_loaded(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        version = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone()
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()
    assert version is not None and version[0].startswith("2.")
    assert preload is not None and "timescaledb" in preload[0]


def test_readings_is_a_hypertable_and_inserts_create_chunks(database_url: str) -> None:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with psycopg.connect(database_url) as conn:
        hypertables = conn.execute(
            "SELECT hypertable_name FROM timescaledb_information.hypertables"
        ).fetchall()
        assert ("readings",) in hypertables
        conn.execute(
            "INSERT INTO readings (time, point_id, value) "
            "SELECT %s + make_interval(days => d), 1, d FROM generate_series(0, 2) d",
            (start,),
        )
        chunks = conn.execute(
            "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'readings'"
        ).fetchone()
    assert chunks == (3,)  # one-day chunks: three days, three chunks


def test_migrations_are_idempotent(database_url: str) -> None:
    assert migrate(database_url) == []


def test_one_open_alarm_per_point_and_rule_is_enforced_by_the_database(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO mines (code, name) VALUES ('141024010001', 'm')")
        conn.execute("INSERT INTO substations (mine_code, code) VALUES ('141024010001', '001')")
        (pid,) = conn.execute(
            "INSERT INTO points (mine_code, code, substation_code, sensor_type, value_type) "
            "VALUES ('141024010001', 'P1', '001', '0001', 'MN') RETURNING id"
        ).fetchone()  # type: ignore[misc]
        insert = (
            "INSERT INTO alarms (mine_code, point_id, rule, abnormal_type, started_at, "
            "start_value, max_value, max_at, min_value, min_at, value_sum, value_count) "
            "VALUES ('141024010001', %s, 'upper_alarm', '001', now(), 1, 1, now(), 1, now(), 1, 1)"
        )
        conn.execute(insert, (pid,))
        try:
            conn.execute(insert, (pid,))
        except psycopg.errors.UniqueViolation:
            pass
        else:
            raise AssertionError("a second open episode was accepted")
