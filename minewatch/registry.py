"""The point registry: point metadata as columns indexed by ``points.id``.

Ingest uses it to turn point codes into ids and to check ranges; the alarm engine reads
thresholds from it. Arrays are indexed directly by point id (ids are dense), so a lookup for a
whole batch is one fancy-indexing operation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pandas as pd
import psycopg
from psycopg.types.json import set_json_loads

_COLUMNS = (
    "id", "mine_code", "code", "sensor_type", "value_type", "range_low", "range_high",
    "alarm_high", "alarm_high_clear", "alarm_low", "alarm_low_clear", "poweroff_high",
    "restore_high", "poweroff_low", "restore_low",
    # alarm rule settings (migration 0003); NULL = the alarm engine's default
    "on_delay_s", "prewarn_high", "prewarn_high_clear", "prewarn_low", "prewarn_low_clear",
    "poll_cycle_s", "interruption_cycles", "control_time_s", "flatline_samples",
    "calibration_gas", "relations",
    # switch-state alarm and personnel area (migration 0010)
    "alarm_state", "area_code",
    # off-delay of the threshold rules (migration 0011); NULL = 0
    "off_delay_s",
    # airflow paths to the points downstream (migration 0016) and the substation: incidents
    "downstream", "substation_code",
    # CO classes and sensor cross-checks (migration 0017); NULL = the engine's default
    "co_puff_max_s", "co_fire_after_s", "cross_check_ratio", "cross_check_min", "cross_check_s",
    # the stuck sensor and the lone excursion (migration 0025); NULL = the engine's default
    "stuck_tolerance", "stuck_move", "stuck_s", "excursion_min", "excursion_ratio",
)  # fmt: skip
_OBJECT_COLUMNS = (
    "id", "mine_code", "code", "sensor_type", "value_type", "relations", "area_code",
    "downstream", "substation_code",
)  # fmt: skip
_QUERY = "SELECT " + ", ".join(_COLUMNS) + " FROM points ORDER BY id"
_CALIBRATIONS_QUERY = (
    "SELECT point_id, (EXTRACT(EPOCH FROM started_at) * 1000000)::bigint, "
    "(EXTRACT(EPOCH FROM ended_at) * 1000000)::bigint FROM calibrations "
    "ORDER BY point_id, started_at"
)

FloatArray = npt.NDArray[np.float64]
TimeArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class CalibrationWindows:
    """Declared calibration windows (table ``calibrations``), sorted by (point, start).

    A reading of ``point_id[k]`` at ``start_us[k] <= t < end_us[k]`` is declared test gas.
    """

    point_id: npt.NDArray[np.int32]
    start_us: TimeArray
    end_us: TimeArray

    @classmethod
    def empty(cls) -> CalibrationWindows:
        return cls(np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.int64))

    @classmethod
    def from_rows(cls, rows: list[tuple[int, int, int]]) -> CalibrationWindows:
        if not rows:
            return cls.empty()
        array = np.array(rows, np.int64).reshape(-1, 3)
        order = np.lexsort((array[:, 1], array[:, 0]))
        array = array[order]
        return cls(array[:, 0].astype(np.int32), array[:, 1].copy(), array[:, 2].copy())

    def __len__(self) -> int:
        return len(self.point_id)


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
    # Alarm rule settings (migration 0003): NaN = the engine's default.
    on_delay_s: FloatArray
    prewarn_high: FloatArray
    prewarn_high_clear: FloatArray
    prewarn_low: FloatArray
    prewarn_low_clear: FloatArray
    poll_cycle_s: FloatArray
    interruption_cycles: FloatArray
    control_time_s: FloatArray
    flatline_samples: FloatArray
    calibration_gas: FloatArray
    off_delay_s: FloatArray  # migration 0011: NaN = no off-delay
    relations: npt.NDArray[np.object_]  # list of {"kind", "target", "device"} per point, or None
    alarm_state: FloatArray  # switch points: the abnormal value (0/1); NaN = no state alarm
    area_code: npt.NDArray[np.object_]  # personnel area (RYQY) of the point, or None
    calibrations: CalibrationWindows = field(default_factory=CalibrationWindows.empty)
    #: migration 0016: list of {"target": point code, "delay_s"} per point (the points its air
    #: reaches, with the transport delay), or None
    downstream: npt.NDArray[np.object_] | None = None
    substation_code: npt.NDArray[np.object_] | None = None
    #: migration 0017 (alarms/rules/co.py, cross_check.py): NaN = no vehicles / the default
    co_puff_max_s: FloatArray = field(default_factory=lambda: np.zeros(0))
    co_fire_after_s: FloatArray = field(default_factory=lambda: np.zeros(0))
    cross_check_ratio: FloatArray = field(default_factory=lambda: np.zeros(0))
    cross_check_min: FloatArray = field(default_factory=lambda: np.zeros(0))
    cross_check_s: FloatArray = field(default_factory=lambda: np.zeros(0))
    #: migration 0025 (alarms/rules/neighbour_checks.py): NaN = the default
    stuck_tolerance: FloatArray = field(default_factory=lambda: np.zeros(0))
    stuck_move: FloatArray = field(default_factory=lambda: np.zeros(0))
    stuck_s: FloatArray = field(default_factory=lambda: np.zeros(0))
    excursion_min: FloatArray = field(default_factory=lambda: np.zeros(0))
    excursion_ratio: FloatArray = field(default_factory=lambda: np.zeros(0))

    @property
    def size(self) -> int:
        """Length of the id-indexed arrays (largest id + 1)."""
        return len(self.known)

    def lookup(self, mine_code: str, codes: list[str]) -> npt.NDArray[np.int32]:
        """Point ids for ``codes`` of one mine; -1 where the code is unknown."""
        index = self.codes_by_mine.get(mine_code)
        if index is None:
            return np.full(len(codes), -1, np.int32)
        pos = index.get_indexer(pd.Index(codes))
        ids = self.ids_by_mine[mine_code]
        return np.where(pos >= 0, ids[pos], -1).astype(np.int32)

    def point_id(self, mine_code: str, code: str) -> int:
        """The id of one point (-1 when unknown): a hash lookup, for the per-point loops
        that build the engine's tables from the registry (``lookup`` builds an index of its
        codes, tens of microseconds a call: seconds for a city's 30,000 air paths)."""
        index = self.codes_by_mine.get(mine_code)
        if index is None:
            return -1
        try:
            position = index.get_loc(code)
        except KeyError:
            return -1
        return int(self.ids_by_mine[mine_code][position])

    @classmethod
    def empty(cls) -> PointRegistry:
        return cls.from_frame(_frame([]))

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, calibrations: CalibrationWindows | None = None
    ) -> PointRegistry:
        """Columns missing from ``frame`` (older callers) are unset: NaN or None."""
        frame = frame.reindex(columns=[*frame.columns, *(c for c in _COLUMNS if c not in frame)])
        size = int(frame["id"].max()) + 1 if len(frame) else 0
        ids = frame["id"].to_numpy(np.int64)

        def column(name: str, dtype: type, fill: object) -> npt.NDArray[Any]:
            out: npt.NDArray[Any] = np.full(size, fill, dtype=dtype)
            if len(frame):
                out[ids] = frame[name].to_numpy(dtype=dtype, na_value=fill)
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
            if name not in _OBJECT_COLUMNS
        }
        return cls(
            codes_by_mine=codes_by_mine,
            ids_by_mine=ids_by_mine,
            known=known,
            mine_code=column("mine_code", object, None),
            code=column("code", object, None),
            sensor_type=column("sensor_type", object, None),
            value_type=column("value_type", object, None),
            relations=column("relations", object, None),
            area_code=column("area_code", object, None),
            downstream=column("downstream", object, None),
            substation_code=column("substation_code", object, None),
            calibrations=CalibrationWindows.empty() if calibrations is None else calibrations,
            **floats,
        )


def _frame(rows: list[tuple[object, ...]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(_COLUMNS))


def load_registry(conn: psycopg.Connection) -> PointRegistry:
    calibrations = CalibrationWindows.from_rows(conn.execute(_CALIBRATIONS_QUERY).fetchall())
    cur = conn.cursor()
    set_json_loads(orjson.loads, cur)  # two JSON columns a point: the standard library's
    return PointRegistry.from_frame(_frame(cur.execute(_QUERY).fetchall()), calibrations)


async def registry_version_async(conn: psycopg.AsyncConnection) -> int:
    """The number every change of ``points`` or ``calibrations`` moves (migration 0034): read
    it before loading the registry, and compare later to know whether to load it again."""
    cur = await conn.execute("SELECT version FROM registry_version")
    row = await cur.fetchone()
    return int(row[0]) if row else -1


async def load_registry_async(conn: psycopg.AsyncConnection) -> PointRegistry:
    cur = await conn.execute(_CALIBRATIONS_QUERY)
    calibrations = CalibrationWindows.from_rows(await cur.fetchall())
    points = conn.cursor()
    # Two JSON columns a point (relations, downstream): with the standard library's decoder
    # they were more than half of a city's reload (2 of 3.5 s for 36,700 points, loaded box).
    set_json_loads(orjson.loads, points)
    await points.execute(_QUERY)
    return PointRegistry.from_frame(_frame(await points.fetchall()), calibrations)
