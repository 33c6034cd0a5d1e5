"""The point registry: point metadata as columns indexed by ``points.id``.

Ingest uses it to turn point codes into ids and to check ranges; the alarm engine reads
thresholds from it. Arrays are indexed directly by point id (ids are dense), so a lookup for a
whole batch is one fancy-indexing operation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import psycopg

_COLUMNS = (
    "id", "mine_code", "code", "sensor_type", "value_type", "range_low", "range_high",
    "alarm_high", "alarm_high_clear", "alarm_low", "alarm_low_clear", "poweroff_high",
    "restore_high", "poweroff_low", "restore_low",
)  # fmt: skip
_QUERY = "SELECT " + ", ".join(_COLUMNS) + " FROM points ORDER BY id"

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class PointRegistry:
    """Immutable snapshot of all points; reload to see changes."""

    codes_by_mine: dict[str, pd.Index]  # point code -> position in ids_by_mine
    ids_by_mine: dict[str, npt.NDArray[np.int32]]
    known: npt.NDArray[np.bool_]
    mine_code: npt.NDArray[np.object_]
    code: npt.NDArray[np.object_]
    sensor_type: npt.NDArray[np.object_]
    value_type: npt.NDArray[np.object_]
    range_low: FloatArray
    range_high: FloatArray
    alarm_high: FloatArray
    alarm_high_clear: FloatArray
    alarm_low: FloatArray
    alarm_low_clear: FloatArray
    poweroff_high: FloatArray
    restore_high: FloatArray
    poweroff_low: FloatArray
    restore_low: FloatArray

    @property
    def size(self) -> int:
        """Length of the id-indexed arrays (largest id + 1)."""
        return len(self.known)

    def lookup(self, mine_code: str, codes: list[str]) -> npt.NDArray[np.int32]:
        """Point ids for ``codes`` of one mine; -1 where the code is unknown."""
        index = self.codes_by_mine.get(mine_code)
        if index is None:
            return np.full(len(codes), -1, np.int32)
        pos = index.get_indexer(codes)
        ids = self.ids_by_mine[mine_code]
        return np.where(pos >= 0, ids[pos], -1).astype(np.int32)

    @classmethod
    def empty(cls) -> PointRegistry:
        return cls.from_frame(_frame([]))

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> PointRegistry:
        size = int(frame["id"].max()) + 1 if len(frame) else 0
        ids = frame["id"].to_numpy(np.int64)

        def column(name: str, dtype: type, fill: object) -> np.ndarray:
            out = np.full(size, fill, dtype=dtype)
            out[ids] = frame[name].to_numpy(dtype=dtype, na_value=fill) if len(frame) else []
            return out

        known = np.zeros(size, bool)
        known[ids] = True
        codes_by_mine: dict[str, pd.Index] = {}
        ids_by_mine: dict[str, npt.NDArray[np.int32]] = {}
        for mine, group in frame.groupby("mine_code", sort=False):
            codes_by_mine[str(mine)] = pd.Index(group["code"].to_numpy(object))
            ids_by_mine[str(mine)] = group["id"].to_numpy(np.int32)
        floats = {
            name: column(name, np.float64, np.nan)
            for name in _COLUMNS
            if name not in ("id", "mine_code", "code", "sensor_type", "value_type")
        }
        return cls(
            codes_by_mine=codes_by_mine,
            ids_by_mine=ids_by_mine,
            known=known,
            mine_code=column("mine_code", object, None),
            code=column("code", object, None),
            sensor_type=column("sensor_type", object, None),
            value_type=column("value_type", object, None),
            **floats,
        )


def _frame(rows: list[tuple[object, ...]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(_COLUMNS))


def load_registry(conn: psycopg.Connection) -> PointRegistry:
    return PointRegistry.from_frame(_frame(conn.execute(_QUERY).fetchall()))


async def load_registry_async(conn: psycopg.AsyncConnection) -> PointRegistry:
    cur = await conn.execute(_QUERY)
    return PointRegistry.from_frame(_frame(await cur.fetchall()))
