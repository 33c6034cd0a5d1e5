"""PostgreSQL binary COPY encoding of a :class:`ReadingBatch`, built with numpy in one pass.

The ``readings`` row is (time timestamptz, point_id int4, value float8, status int2, flags int2).
Each binary row is a field count followed by (length, big-endian value) per field, so a whole
batch is one structured numpy array written as bytes: no Python work per reading.
"""

from __future__ import annotations

import numpy as np

from minewatch.batch import ReadingBatch

COPY_READINGS_SQL = (
    "COPY readings (time, point_id, value, status, flags) FROM STDIN (FORMAT binary)"
)

_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_TRAILER = (-1).to_bytes(2, "big", signed=True)
#: Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01).
_PG_EPOCH_OFFSET_US = 946_684_800_000_000

_ROW = np.dtype([
    ("nfields", ">i2"),
    ("time_len", ">i4"), ("time", ">i8"),
    ("point_len", ">i4"), ("point", ">i4"),
    ("value_len", ">i4"), ("value", ">f8"),
    ("status_len", ">i4"), ("status", ">i2"),
    ("flags_len", ">i4"), ("flags", ">i2"),
])  # fmt: skip


def encode_readings(batch: ReadingBatch) -> bytes:
    """The complete binary COPY stream (header, rows, trailer) for ``batch``."""
    rows = np.empty(len(batch), dtype=_ROW)
    rows["nfields"] = 5
    rows["time_len"] = 8
    rows["time"] = batch.time_us - _PG_EPOCH_OFFSET_US
    rows["point_len"] = 4
    rows["point"] = batch.point_id
    rows["value_len"] = 8
    rows["value"] = batch.value
    rows["status_len"] = 2
    rows["status"] = batch.status
    rows["flags_len"] = 2
    rows["flags"] = batch.flags
    return _HEADER + rows.tobytes() + _TRAILER
