"""Storage cost of a reading (issue 14, section 4): bytes on disk per reading of ``readings``
with its indexes, against narrower layouts measured in scratch tables of the same database,
with the ingest rate and two queries of each, in one run.

    .venv/bin/python -m bench.storage [--points 2000] [--minutes 30] [--chunk 20000]

Layouts (each a hypertable of 1-day chunks with the default index on its time column, as
``create_hypertable`` makes it, and a (point_id, time DESC) index, as ``readings`` has):

- ``readings``: the production table (migration 0001: timestamptz, int4, float8, int2, int2),
  loaded through the production encoder (``minewatch.ingest.pgcopy``);
- ``narrow``: the same row with ``real`` (float4) values;
- ``minute``: one row per point and minute: ``value real[]``, the offsets in the minute
  (``offset_ms int4[]``), ``status``/``flags`` ``int2[]`` left NULL when all zero (what
  they are in nearly every minute), so a reading costs its 8 bytes plus the row's share.

Every layout is loaded by binary COPY in transactions of ``--chunk`` readings (the gateway's
batch size); the array layout is loaded with whole minutes (every point reports every second),
its best case: live, a minute's row is only complete once the minute is over. Sizes come from
``hypertable_detailed_size`` after ``VACUUM ANALYZE``. Queries: one point's readings over the
whole span (the curve of docs/api.md), and one minute of every point (what a rollup reads).
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psycopg
from rich.console import Console
from rich.table import Table

from bench import services
from bench.latency import machine
from minewatch.batch import ReadingBatch
from minewatch.embedded import stack_for
from minewatch.ingest.pgcopy import COPY_READINGS_SQL, encode_readings
from minewatch.metadata import MineDefinition, MineInfo, PointDefinition, SubstationDefinition
from minewatch.settings import Settings

console = Console(width=200)
MINE = "141024019997"
_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_TRAILER = (-1).to_bytes(2, "big", signed=True)
_PG_EPOCH_OFFSET_US = 946_684_800_000_000
_FLOAT4_OID, _INT4_OID = 700, 23

SCRATCH = """
CREATE TABLE narrow (
    time     timestamptz NOT NULL,
    point_id integer     NOT NULL,
    value    real        NOT NULL,
    status   smallint    NOT NULL DEFAULT 0,
    flags    smallint    NOT NULL DEFAULT 0
);
SELECT create_hypertable('narrow', by_range('time', INTERVAL '1 day'));
CREATE INDEX narrow_point_time_idx ON narrow (point_id, time DESC);
CREATE TABLE minute (
    bucket    timestamptz NOT NULL,
    point_id  integer     NOT NULL,
    offset_ms integer[]   NOT NULL,
    value     real[]      NOT NULL,
    status    smallint[],
    flags     smallint[]
);
SELECT create_hypertable('minute', by_range('bucket', INTERVAL '1 day'));
CREATE INDEX minute_point_bucket_idx ON minute (point_id, bucket DESC);
"""


def definition(points: int) -> MineDefinition:
    stations = [f"{i + 1:03d}" for i in range((points + 49) // 50)]
    return MineDefinition(
        mine=MineInfo(code=MINE, name="storage mine", gas_class="high"),
        substations=tuple(SubstationDefinition(code=s) for s in stations),
        points=tuple(
            PointDefinition(
                code=f"{MINE}01{stations[i // 50]}A{i:04d}",
                substation=stations[i // 50],
                sensor_type="0001",
                unit="%CH4",
                range_low=0.0,
                range_high=4.0,
                alarm_high=1.0,
                alarm_high_clear=1.0,
            )
            for i in range(points)
        ),
    )


def workload(ids: np.ndarray, minutes: int, seed: int = 1) -> ReadingBatch:
    """Every point once a second for ``minutes`` minutes from midnight (UTC) yesterday, in
    time order (as a gateway writes them); methane-like values to two decimals."""
    cycles = minutes * 60
    start = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start_us = int((start - dt.timedelta(days=1)).timestamp() * 1_000_000)
    times = start_us + np.arange(cycles, dtype=np.int64) * 1_000_000
    rng = np.random.default_rng(seed)
    values = np.round(0.3 + 0.05 * rng.standard_normal(cycles * len(ids)), 2).clip(0, 4)
    n = cycles * len(ids)
    return ReadingBatch(
        np.repeat(times, len(ids)),
        np.tile(ids, cycles),
        values,
        np.zeros(n, np.int16),
        np.zeros(n, np.int16),
    )


_NARROW_ROW = np.dtype(
    [
        ("nfields", ">i2"),
        ("time_len", ">i4"),
        ("time", ">i8"),
        ("point_len", ">i4"),
        ("point", ">i4"),
        ("value_len", ">i4"),
        ("value", ">f4"),
        ("status_len", ">i4"),
        ("status", ">i2"),
        ("flags_len", ">i4"),
        ("flags", ">i2"),
    ]
)


def encode_narrow(batch: ReadingBatch) -> bytes:
    rows = np.empty(len(batch), dtype=_NARROW_ROW)
    rows["nfields"] = 5
    rows["time_len"], rows["point_len"], rows["value_len"] = 8, 4, 4
    rows["status_len"], rows["flags_len"] = 2, 2
    rows["time"] = batch.time_us - _PG_EPOCH_OFFSET_US
    rows["point"] = batch.point_id
    rows["value"] = batch.value
    rows["status"] = batch.status
    rows["flags"] = batch.flags
    return _HEADER + rows.tobytes() + _TRAILER


def _array_dtype(kind: str, n: int) -> list[tuple[str, object]]:
    """A one-dimensional binary array of ``n`` non-null elements: its fields."""
    return [
        ("len", ">i4"),
        ("ndim", ">i4"),
        ("hasnull", ">i4"),
        ("oid", ">i4"),
        ("dim", ">i4"),
        ("lbound", ">i4"),
        ("items", [("len", ">i4"), ("v", kind)], (n,)),
    ]


def encode_minutes(batch: ReadingBatch, per_minute: int) -> bytes:
    """Rows of whole minutes: ``per_minute`` readings of each point in each minute (status and
    flags NULL: all zero in this workload, as in nearly every real minute)."""
    order = np.lexsort((batch.time_us, batch.point_id, batch.time_us // 60_000_000))
    time_us, point, value = batch.time_us[order], batch.point_id[order], batch.value[order]
    n = len(batch) // per_minute
    first = np.arange(n) * per_minute
    row = np.dtype(
        [
            ("nfields", ">i2"),
            ("bucket_len", ">i4"),
            ("bucket", ">i8"),
            ("point_len", ">i4"),
            ("point", ">i4"),
            ("offsets", _array_dtype(">i4", per_minute)),
            ("values", _array_dtype(">f4", per_minute)),
            ("status_len", ">i4"),
            ("flags_len", ">i4"),
        ]
    )
    rows = np.empty(n, dtype=row)
    bucket = time_us[first] // 60_000_000 * 60_000_000
    rows["nfields"] = 6
    rows["bucket_len"], rows["bucket"] = 8, bucket - _PG_EPOCH_OFFSET_US
    rows["point_len"], rows["point"] = 4, point[first]
    for name, oid, size, data in (
        ("offsets", _INT4_OID, 4, ((time_us - np.repeat(bucket, per_minute)) // 1000)),
        ("values", _FLOAT4_OID, 4, value),
    ):
        arr = rows[name]
        arr["len"] = 20 + per_minute * (4 + size)
        arr["ndim"], arr["hasnull"], arr["oid"] = 1, 0, oid
        arr["dim"], arr["lbound"] = per_minute, 1
        arr["items"]["len"] = size
        arr["items"]["v"] = data.reshape(n, per_minute)
    rows["status_len"], rows["flags_len"] = -1, -1  # NULL
    return _HEADER + rows.tobytes() + _TRAILER


def load(url: str, sql: str, parts: list[bytes], readings: int) -> float:
    """COPY each part in its own transaction; readings per second."""
    began = time.perf_counter()
    with psycopg.connect(url) as conn:
        for part in parts:
            with conn.transaction(), conn.cursor() as cur, cur.copy(sql) as copy:
                copy.write(part)
    return readings / (time.perf_counter() - began)


def sizes(url: str, table: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"VACUUM ANALYZE {table}")
        row = conn.execute(
            "SELECT table_bytes, index_bytes, toast_bytes, total_bytes "
            "FROM hypertable_detailed_size(%s)",
            (table,),
        ).fetchone()
        assert row is not None
        indexes = conn.execute(
            "SELECT indexname, hypertable_index_size(format('%%I.%%I', schemaname, indexname)"
            "::regclass) FROM pg_indexes WHERE tablename = %s",
            (table,),
        ).fetchall()
    out = dict(zip(("table", "index", "toast", "total"), (int(v or 0) for v in row), strict=True))
    for name, size in indexes:
        out[f"index {name}"] = int(size or 0)
    return out


def timed(url: str, sql: str, params: dict[str, object], repeat: int = 5) -> float:
    """Median milliseconds of ``sql`` (rows fetched) over ``repeat`` runs after one warm-up."""
    with psycopg.connect(url) as conn:
        conn.execute(sql, params).fetchall()
        runs = []
        for _ in range(repeat):
            began = time.perf_counter()
            conn.execute(sql, params).fetchall()
            runs.append(time.perf_counter() - began)
    return float(np.median(runs) * 1000)


QUERIES: dict[str, dict[str, str]] = {
    "readings": {
        "point": "SELECT time, value FROM readings WHERE point_id = %(p)s "
        "AND time >= %(t0)s AND time < %(t1)s ORDER BY time",
        "minute": "SELECT point_id, avg(value), max(value) FROM readings "
        "WHERE time >= %(m0)s AND time < %(m1)s GROUP BY point_id",
    },
    "narrow": {
        "point": "SELECT time, value FROM narrow WHERE point_id = %(p)s "
        "AND time >= %(t0)s AND time < %(t1)s ORDER BY time",
        "minute": "SELECT point_id, avg(value), max(value) FROM narrow "
        "WHERE time >= %(m0)s AND time < %(m1)s GROUP BY point_id",
    },
    "minute": {
        "point": "SELECT bucket + o * interval '1 ms' AS time, v FROM minute, "
        "unnest(offset_ms, value) AS u(o, v) WHERE point_id = %(p)s "
        "AND bucket >= %(t0)s AND bucket < %(t1)s ORDER BY time",
        "minute": "SELECT point_id, avg(v), max(v) FROM minute, unnest(value) AS v "
        "WHERE bucket >= %(m0)s AND bucket < %(m1)s GROUP BY point_id",
    },
}


def run(admin_url: str, points: int, minutes: int, chunk: int) -> dict[str, object]:
    url = services.fresh_database(admin_url, "bench_storage", [definition(points)])
    with psycopg.connect(url) as conn:
        conn.execute(SCRATCH)
        ids = np.array(
            [r[0] for r in conn.execute("SELECT id FROM points ORDER BY id").fetchall()],
            dtype=np.int32,
        )
    batch = workload(ids, minutes)
    n = len(batch)
    steps = [np.arange(lo, min(lo + chunk, n)) for lo in range(0, n, chunk)]
    # whole minutes of every point per transaction (the array rows are made of minutes)
    per_minute_rows = max(1, chunk // (points * 60)) * points * 60
    minute_steps = [
        np.arange(lo, min(lo + per_minute_rows, n)) for lo in range(0, n, per_minute_rows)
    ]
    encoders: dict[str, tuple[str, Callable[[ReadingBatch], bytes], list[np.ndarray]]] = {
        "readings": (COPY_READINGS_SQL, encode_readings, steps),
        "narrow": (
            "COPY narrow (time, point_id, value, status, flags) FROM STDIN (FORMAT binary)",
            encode_narrow,
            steps,
        ),
        "minute": (
            "COPY minute (bucket, point_id, offset_ms, value, status, flags) FROM STDIN "
            "(FORMAT binary)",
            lambda b: encode_minutes(b, 60),
            minute_steps,
        ),
    }
    t0 = dt.datetime.fromtimestamp(int(batch.time_us[0]) / 1e6, dt.UTC)
    t1 = t0 + dt.timedelta(minutes=minutes)
    m0 = t0 + dt.timedelta(minutes=minutes // 2)
    params = {
        "p": int(ids[len(ids) // 2]),
        "t0": t0,
        "t1": t1,
        "m0": m0,
        "m1": m0 + dt.timedelta(minutes=1),
    }
    out: dict[str, object] = {
        "machine": machine(),
        "points": points,
        "minutes": minutes,
        "readings": n,
        "chunk": chunk,
    }
    layouts: dict[str, dict[str, object]] = {}
    out["layouts"] = layouts
    for name, (sql, encode, parts) in encoders.items():
        began = time.perf_counter()
        payloads = [encode(batch.take(p)) for p in parts]
        encode_s = time.perf_counter() - began
        rate = load(url, sql, payloads, n)
        size = sizes(url, name)
        layouts[name] = {
            "copy_readings_s": rate,
            "encode_readings_s": n / encode_s,
            "bytes_per_reading": size["total"] / n,
            "table_bytes_per_reading": size["table"] / n,
            "index_bytes_per_reading": size["index"] / n,
            "sizes": size,
            "query_point_ms": timed(url, QUERIES[name]["point"], params),
            "query_minute_ms": timed(url, QUERIES[name]["minute"], params),
            "load_after": round(os.getloadavg()[0], 2),
        }
        console.print(name, json.dumps(layouts[name]))
    check_equal(url, params)
    return out


def check_equal(url: str, params: dict[str, object]) -> None:
    """The three layouts hold the same point series (values within float4's precision)."""
    with psycopg.connect(url) as conn:
        series = [
            np.array(conn.execute(QUERIES[t]["point"], params).fetchall(), dtype=object)
            for t in QUERIES
        ]
    base = series[0]
    for other in series[1:]:
        assert len(other) == len(base), "a layout lost or duplicated readings"
        assert all(a == b for a, b in zip(base[:, 0], other[:, 0], strict=True)), "times differ"
        diff = np.abs(base[:, 1].astype(float) - other[:, 1].astype(float))
        assert float(diff.max()) < 1e-6, "values differ beyond float4 precision"


def report(out: dict[str, object], city_points: int, province_points: int, cycle_s: float) -> None:
    table = Table(title=f"storage per reading — {out['machine']}, {out['readings']:,} readings")
    for column in (
        "layout",
        "B/reading",
        "table",
        "indexes",
        "COPY readings/s",
        "point's curve ms",
        "a minute of all ms",
        "city day",
        "province week",
    ):
        table.add_column(column, justify="right")
    per_day = 86_400 / cycle_s
    layouts = out["layouts"]
    assert isinstance(layouts, dict)
    for name in QUERIES:
        r = layouts[name]
        b = float(r["bytes_per_reading"])
        table.add_row(
            name,
            f"{b:.1f}",
            f"{r['table_bytes_per_reading']:.1f}",
            f"{r['index_bytes_per_reading']:.1f}",
            f"{r['copy_readings_s']:,.0f}",
            f"{r['query_point_ms']:.1f}",
            f"{r['query_minute_ms']:.1f}",
            f"{b * city_points * per_day / 1e9:,.0f} GB",
            f"{b * province_points * per_day * 7 / 1e12:,.1f} TB",
        )
    console.print(table)
    console.print(
        f"city: {city_points:,} points, province: {province_points:,} points, "
        f"one reading per point every {cycle_s:g} s"
    )
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--chunk", type=int, default=20_000)
    parser.add_argument("--city-points", type=int, default=100_000)
    parser.add_argument("--province-points", type=int, default=1_000_000)
    parser.add_argument(
        "--cycle-s",
        type=float,
        default=1.0,
        help="reading interval per point for the city/province figures",
    )
    args = parser.parse_args()
    settings = Settings()
    if settings.database_url is None:
        var = Path(tempfile.mkdtemp(prefix="minewatch-storage-"))  # removed at the end
        atexit.register(shutil.rmtree, var, True)
        var.chmod(0o755)
        settings = settings.model_copy(update={"var_dir": var})
    with stack_for(settings) as stack:
        admin = stack.database_url.rsplit("/", 1)[0] + "/postgres"
        out = run(admin, args.points, args.minutes, args.chunk)
    report(out, args.city_points, args.province_points, args.cycle_s)


if __name__ == "__main__":
    main()
