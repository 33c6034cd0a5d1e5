"""Benchmark: the console overviews' "newest reading" on the console benchmark's data, before
and after ``point_latest`` (migration 0029), with the statistics that gave the bad plan.

Loads the data of ``bench.console_load`` (100 mines of 76 points, 60,000 alarms, one day of one
point's 1 s readings, loaded outside the gateway and so followed by ``refresh_point_latest()``
as after a bulk load), runs ``ANALYZE``, then prints ``EXPLAIN (ANALYZE, BUFFERS)`` of:

- the regulator's overview as it was before 0029 (a per-point probe of ``readings``: the SQL is
  kept here, as it was in ``api/report_repository.py``) and as it is now (the same text as
  ``mines_overview``, reading ``point_latest``);
- the dispatcher's board of the mine holding the point (``latest_readings``), before and after;
- ``refresh_point_latest()`` itself (the migration's backfill) on the analysed data.

    .venv/bin/python -m bench.overview_plan [--mines 100] [--old-timeout-s 900]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import psycopg

from bench.console_load import COUNTY, load_data
from minewatch.api import report_repository
from minewatch.db import migrate
from minewatch.embedded import stack_for
from minewatch.settings import Settings

_ALARM_COUNTS = (
    "count(a.id) FILTER (WHERE a.grade = 'red')::int AS red, "
    "count(a.id) FILTER (WHERE a.grade = 'orange')::int AS orange, "
    "count(a.id) FILTER (WHERE a.grade = 'yellow')::int AS yellow, "
    "count(a.id) FILTER (WHERE a.grade = 'blue')::int AS blue, "
    "(SELECT count(*) FROM personnel_presence pr WHERE pr.mine_code = m.code "
    "   AND pr.underground)::int AS underground, "
    "(SELECT count(*) FROM video_camera_status s WHERE s.mine_code = m.code "
    "   AND s.online)::int AS cameras_online "
    "FROM mines m LEFT JOIN alarms a ON a.mine_code = m.code AND a.ended_at IS NULL "
    "WHERE %(scope)s::text IS NULL OR starts_with(m.code, %(scope)s) "
    "GROUP BY m.code ORDER BY m.code"
)
OVERVIEW = {
    "before": "SELECT m.code, m.name, m.approved_capacity_t, "
    "(SELECT max(r.time) FROM points p CROSS JOIN LATERAL (SELECT time FROM readings "
    "   WHERE point_id = p.id ORDER BY time DESC LIMIT 1) r "
    " WHERE p.mine_code = m.code) AS last_data_at, " + _ALARM_COUNTS,
    "after": "SELECT m.code, m.name, m.approved_capacity_t, "
    "(SELECT max(l.time) FROM points p JOIN point_latest l ON l.point_id = p.id "
    " WHERE p.mine_code = m.code) AS last_data_at, " + _ALARM_COUNTS,
}
_BOARD_HEAD = (
    "SELECT p.id, p.code, p.sensor_type, p.value_type, p.unit, p.location, "
    "p.alarm_high, p.poweroff_high, p.restore_high, r.time, r.value, r.status, "
    "coalesce((SELECT array_agg(DISTINCT a.rule ORDER BY a.rule) FROM alarms a "
    "  WHERE a.point_id = p.id AND a.ended_at IS NULL), '{}') AS open_rules "
)
BOARD = {
    "before": _BOARD_HEAD + "FROM points p LEFT JOIN LATERAL (SELECT time, value, status "
    "FROM readings WHERE point_id = p.id ORDER BY time DESC LIMIT 1) r ON true "
    "WHERE p.mine_code = %(mine)s ORDER BY p.code",
    "after": _BOARD_HEAD + "FROM points p LEFT JOIN point_latest r ON r.point_id = p.id "
    "WHERE p.mine_code = %(mine)s ORDER BY p.code",
}


def explain(conn: psycopg.Connection, label: str, sql: str, params: dict[str, object]) -> float:
    started = time.monotonic()
    try:
        rows = conn.execute(b"EXPLAIN (ANALYZE, BUFFERS) " + sql.encode(), params).fetchall()
    except psycopg.errors.QueryCanceled:
        conn.rollback()
        print(f"== {label}: cancelled by statement_timeout", flush=True)
        return float("nan")
    elapsed = time.monotonic() - started
    print(f"== {label}: {elapsed * 1000:.1f} ms wall", flush=True)
    for (line,) in rows:
        print("   ", line)
    conn.rollback()
    return elapsed


async def _current(url: str, mine: str) -> None:
    """The repository's functions show the newest reading time of ``readings`` itself."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        overview = await report_repository.mines_overview(conn, COUNTY)
        board = await report_repository.latest_readings(conn, mine)
    with psycopg.connect(url) as conn:
        newest = dict(conn.execute(
            "SELECT p.mine_code, max(r.time) FROM readings r JOIN points p ON p.id = r.point_id "
            "GROUP BY 1").fetchall())  # fmt: skip
        per_point = dict(conn.execute(
            "SELECT point_id, max(time) FROM readings GROUP BY 1").fetchall())  # fmt: skip
    assert {r["code"]: r["last_data_at"] for r in overview} == {
        r["code"]: newest.get(r["code"]) for r in overview
    }
    assert {r["id"]: r["time"] for r in board} == {r["id"]: per_point.get(r["id"]) for r in board}
    print("== the repository's functions show the readings' newest times", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mines", type=int, default=100)
    parser.add_argument("--old-timeout-s", type=int, default=900)
    args = parser.parse_args()
    settings = Settings()
    if settings.database_url is None:
        var = Path(tempfile.mkdtemp(prefix="minewatch-bench-"))
        var.chmod(0o755)
        settings = settings.model_copy(update={"var_dir": var})
    with stack_for(settings) as stack:
        url = stack.database_url
        migrate(url)
        mine, _ = load_data(url, args.mines, 30, 20)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")
            conn.execute("DELETE FROM point_latest")
            started = time.monotonic()
            filled = conn.execute("SELECT refresh_point_latest()").fetchone()
            print(f"== refresh_point_latest() after ANALYZE: {filled} rows, "
                  f"{(time.monotonic() - started) * 1000:.1f} ms", flush=True)  # fmt: skip
            conn.execute("ANALYZE point_latest")
        with psycopg.connect(url) as conn:
            conn.execute(f"SET statement_timeout = '{args.old_timeout_s}s'")
            explain(conn, "refresh_point_latest()", "SELECT refresh_point_latest()", {})
            explain(conn, "board, after", BOARD["after"], {"mine": mine})
            explain(conn, "board, before", BOARD["before"], {"mine": mine})
            explain(conn, "overview, after", OVERVIEW["after"], {"scope": COUNTY})
            explain(conn, "overview, before", OVERVIEW["before"], {"scope": COUNTY})
        asyncio.run(_current(url, mine))


if __name__ == "__main__":
    main()
