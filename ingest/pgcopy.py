"""PostgreSQL binary encodings built with numpy in one pass: the COPY of a :class:`ReadingBatch`
and numpy columns as array parameters (:class:`BinaryArray`).

The ``readings`` row is (time timestamptz, point_id int4, value float8, status int2, flags int2).
Each binary row is a field count followed by (length, big-endian value) per field, so a whole
batch is one structured numpy array written as bytes: no Python work per reading.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from psycopg import pq
from psycopg.abc import AdaptContext
from psycopg.adapt import Dumper

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


# -- numpy columns as binary array parameters ------------------------------------------------


@dataclass(frozen=True, slots=True)
class BinaryArray:
    """A 1-D numpy column sent as one PostgreSQL array parameter in binary form.

    psycopg dumps a Python list element by element in Python (its ``ListDumper``: 5 % of the
    gateway's event-loop samples in ``bench.ingest``, for ``point_latest``, twice the COPY's;
    issue 14); this is encoded like the COPY rows above, in one numpy pass. Use the subclass
    of the column's element type; a cursor that sends one needs :func:`register_array_dumpers`.
    """

    values: npt.NDArray[Any]


class Int2Array(BinaryArray):
    __slots__ = ()


class Int4Array(BinaryArray):
    __slots__ = ()


class Int8Array(BinaryArray):
    __slots__ = ()


class Float8Array(BinaryArray):
    __slots__ = ()


def encode_array(values: npt.NDArray[Any], element: np.dtype[Any], element_oid: int) -> bytes:
    """PostgreSQL's binary array format of a 1-D column without NULLs: a header (dimensions,
    no-null flag, element type, then the length and lower bound of the one dimension), then a
    (length, big-endian value) pair per element."""
    if not np.can_cast(values.dtype, element, "safe"):  # numpy would truncate 1.5 to 1
        raise TypeError(f"a {values.dtype} column is not an array of {element}")
    n = len(values)
    if n == 0:
        return _ARRAY_HEADER.pack(0, 0, element_oid)
    items = np.empty(n, dtype=[("len", ">i4"), ("value", element)])
    items["len"] = element.itemsize
    items["value"] = values
    return _ARRAY_HEADER.pack(1, 0, element_oid) + _DIMENSION.pack(n, 1) + items.tobytes()


_ARRAY_HEADER = struct.Struct(">iiI")
_DIMENSION = struct.Struct(">ii")


def _array_dumper(element: str, element_oid: int, array_oid: int) -> type[Dumper]:
    dtype = np.dtype(element)

    class ArrayDumper(Dumper):
        format = pq.Format.BINARY
        oid = array_oid

        def dump(self, obj: BinaryArray) -> bytes:
            return encode_array(obj.values, dtype, element_oid)

    return ArrayDumper


#: (wrapper, its dumper): element oids int2 21, int4 23, int8 20, float8 701; array oids 1005,
#: 1007, 1016, 1022 (fixed in PostgreSQL's catalogue, pg_type.dat)
_ARRAY_DUMPERS: tuple[tuple[type[BinaryArray], type[Dumper]], ...] = (
    (Int2Array, _array_dumper(">i2", 21, 1005)),
    (Int4Array, _array_dumper(">i4", 23, 1007)),
    (Int8Array, _array_dumper(">i8", 20, 1016)),
    (Float8Array, _array_dumper(">f8", 701, 1022)),
)


def register_array_dumpers(context: AdaptContext) -> None:
    """Let ``context`` (a connection or a cursor) send the :class:`BinaryArray` wrappers."""
    for wrapper, dumper in _ARRAY_DUMPERS:
        context.adapters.register_dumper(wrapper, dumper)
