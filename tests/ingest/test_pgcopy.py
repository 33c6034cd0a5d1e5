"""The binary encodings of ``ingest/pgcopy.py`` read back by PostgreSQL exactly: the COPY of a
batch and numpy columns sent as array parameters (``BinaryArray``)."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from minewatch.batch import ReadingBatch
from minewatch.ingest.pgcopy import (
    COPY_READINGS_SQL,
    Float8Array,
    Int2Array,
    Int4Array,
    Int8Array,
    encode_readings,
    register_array_dumpers,
)


def _columns(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(14)
    return {
        "int2": rng.integers(-(2**15), 2**15, n).astype(np.int16),
        "int4": rng.integers(-(2**31), 2**31, n).astype(np.int32),
        "int8": rng.integers(-(2**62), 2**62, n, dtype=np.int64),
        "float8": np.concatenate([rng.normal(0, 1e6, max(n - 3, 0)), [-0.0, 5e-324, 1.5]])[:n],
    }


@pytest.mark.parametrize("n", [0, 1, 1000])
def test_binary_arrays_read_back_as_the_same_values(database_url: str, n: int) -> None:
    columns = _columns(n)
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        register_array_dumpers(cur)
        cur.execute(
            "SELECT %(a)s::int2[], %(b)s::int4[], %(c)s::int8[], %(d)s::float8[], "
            "cardinality(%(b)s::int4[])",
            {
                "a": Int2Array(columns["int2"]), "b": Int4Array(columns["int4"]),
                "c": Int8Array(columns["int8"]), "d": Float8Array(columns["float8"]),
            },
        )  # fmt: skip
        row = cur.fetchone()
    assert row is not None
    for got, name in zip(row[:4], ["int2", "int4", "int8", "float8"], strict=True):
        expected = columns[name].tolist()
        assert got == expected, name
        if name == "float8":  # -0.0 == 0.0: the sign must survive too
            assert [np.signbit(x) for x in got] == np.signbit(columns[name]).tolist()
    assert row[4] == n


def test_an_array_parameter_of_the_wrong_element_type_is_refused(database_url: str) -> None:
    """The wrapper names the element type: a float column sent as int4 is an error, not a
    silent reinterpretation of its bytes."""
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        register_array_dumpers(cur)
        with pytest.raises(TypeError):
            cur.execute("SELECT %s::int4[]", (Int4Array(np.array([1.5, 2.5])),))


def test_copy_rows_read_back_exactly(database_url: str) -> None:
    n = 500
    columns = _columns(n)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "CREATE TEMP TABLE copied (time timestamptz, point_id int4, value float8, "
            "status int2, flags int2)"
        )
        batch = ReadingBatch(
            1_765_000_000_000_000 + np.arange(n, dtype=np.int64) * 1_000,
            columns["int4"], columns["float8"], columns["int2"], columns["int2"][::-1].copy(),
        )  # fmt: skip
        with conn.cursor() as cur:
            sql = COPY_READINGS_SQL.replace("COPY readings", "COPY copied")
            with cur.copy(sql) as copy:
                copy.write(encode_readings(batch))
            cur.execute(
                "SELECT (extract(epoch FROM time) * 1e6)::int8, point_id, value, status, flags "
                "FROM copied"
            )
            rows = cur.fetchall()
    assert [r[0] for r in rows] == batch.time_us.tolist()
    assert [r[1] for r in rows] == batch.point_id.tolist()
    assert [r[2] for r in rows] == batch.value.tolist()
    assert [r[3] for r in rows] == batch.status.tolist()
    assert [r[4] for r in rows] == batch.flags.tolist()
