"""Mine metadata: the definition of a mine, its substations and points (the CDDY content).

The same model is published by simulators on ``minewatch/v1/<mine>/meta``, loaded from files by
``minewatch mine load`` and written to the database by :func:`upsert_mine`.
"""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
import psycopg
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from minewatch.codes import SENSOR_TYPES, RelationKind, ValueType, value_type_of

MineCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{12}$")]
SensorTypeCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")]


class Relation(BaseModel):
    """One 测点关联关系 entry, e.g. a D (断电) relation to the feed point it cuts."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: RelationKind
    target: str = Field(min_length=1, description="Code of the related point.")
    device: str = ""


class AirPath(BaseModel):
    """A point downstream on the same airflow path (minewatch's own, not a 表B.7 relation):
    the air of this point reaches ``target`` ``delay_s`` later (incidents, docs/alarms.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    target: str = Field(min_length=1, description="Code of the downstream point.")
    delay_s: float = Field(0.0, ge=0, description="Transport delay of the air, seconds.")


class PointDefinition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(min_length=1, max_length=64)
    substation: str
    sensor_type: SensorTypeCode
    system_code: str = "01"
    unit: str = ""
    location: str = ""
    tag: str = ""
    range_low: float | None = None
    range_high: float | None = None
    alarm_high: float | None = None
    alarm_high_clear: float | None = None
    alarm_low: float | None = None
    alarm_low_clear: float | None = None
    poweroff_high: float | None = None
    restore_high: float | None = None
    poweroff_low: float | None = None
    restore_low: float | None = None
    desc_on: str = ""
    desc_off: str = ""
    # Alarm-rule settings per point (migration 0003); None: the engine's default.
    on_delay_s: float | None = Field(None, ge=0)
    prewarn_high: float | None = None
    prewarn_high_clear: float | None = None
    prewarn_low: float | None = None
    prewarn_low_clear: float | None = None
    poll_cycle_s: float | None = Field(None, gt=0, le=30)
    interruption_cycles: int | None = Field(None, ge=1)
    control_time_s: float | None = Field(None, ge=0)
    flatline_samples: int | None = Field(None, ge=0)
    calibration_gas: float | None = Field(None, gt=0)
    # Off-delay of the threshold rules (migration 0011, docs/alarms.md "Off-delay"): an alarm
    # returns to normal only once clear this long (event time); None or 0: at the first clear.
    off_delay_s: float | None = Field(None, ge=0)
    # Switch-state alarm and personnel area (migration 0010, docs/alarms.md "Switch states").
    alarm_state: Literal[0, 1] | None = Field(
        None, description="Switch points: the value (0/1) that is abnormal; None: no alarm."
    )
    area_code: str | None = Field(
        None,
        pattern=r"^[0-9]{16}$",
        description="The personnel-positioning area (RYQY 区域编码) the point sits in.",
    )
    x: float | None = None
    y: float | None = None
    z: float | None = None
    relations: tuple[Relation, ...] = ()
    downstream: tuple[AirPath, ...] = ()
    # CO classes and sensor cross-checks (migration 0017, docs/alarms.md); None: the default.
    co_puff_max_s: float | None = Field(
        None, gt=0, description="CO points where vehicles pass: a CO alarm ending within this "
        "is a suspected exhaust puff (co_vehicle_suspected); None: no vehicles here.",
    )  # fmt: skip
    co_fire_after_s: float | None = Field(
        None, gt=0, description="CO at the alarm level this long is a fire candidate."
    )
    cross_check_ratio: float | None = Field(None, gt=0, lt=1)
    cross_check_min: float | None = Field(None, ge=0)
    cross_check_s: float | None = Field(None, gt=0)
    # a stuck sensor, an excursion no neighbour sees (migration 0025); None: the default
    stuck_tolerance: float | None = Field(None, ge=0)
    stuck_move: float | None = Field(None, gt=0)
    stuck_s: float | None = Field(None, gt=0)
    excursion_min: float | None = Field(None, gt=0)
    excursion_ratio: float | None = Field(None, gt=0, lt=1)

    @model_validator(mode="before")
    @classmethod
    def _no_empty_range(cls, data: object) -> object:
        """Switch points are often defined with a 0/0 range: that means "no range"."""
        if isinstance(data, dict):
            low, high = data.get("range_low"), data.get("range_high")
            if low is not None and low == high:
                data = {**data, "range_low": None, "range_high": None}
        return data

    @model_validator(mode="after")
    def _check(self) -> PointDefinition:
        if self.sensor_type not in SENSOR_TYPES:
            raise ValueError(f"unknown sensor type {self.sensor_type}")
        if self.alarm_state is not None and self.value_type is not ValueType.SWITCH:
            raise ValueError(f"point {self.code}: alarm_state is for switch (KG) points")
        if (
            self.range_low is not None
            and self.range_high is not None
            and self.range_low >= self.range_high
        ):
            raise ValueError(f"point {self.code}: range_low must be below range_high")
        for high, clear, what in (
            (self.alarm_high, self.alarm_high_clear, "alarm_high_clear"),
            (self.poweroff_high, self.restore_high, "restore_high"),
        ):
            if high is not None and clear is not None and clear > high:
                raise ValueError(f"point {self.code}: {what} must not exceed its set level")
        for low, clear, what in (
            (self.alarm_low, self.alarm_low_clear, "alarm_low_clear"),
            (self.poweroff_low, self.restore_low, "restore_low"),
        ):
            if low is not None and clear is not None and clear < low:
                raise ValueError(f"point {self.code}: {what} must not be below its set level")
        return self

    @property
    def value_type(self) -> ValueType:
        return value_type_of(self.sensor_type)


class SubstationDefinition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    code: str = Field(min_length=1, max_length=32)
    location: str = ""


class MineInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    code: MineCode
    name: str
    gas_class: Literal["low", "high", "outburst"] | None = None
    approved_capacity_t: float | None = Field(None, ge=0)


class MineDefinition(BaseModel):
    """Everything the platform needs to know about a mine before its readings arrive."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    v: Literal[1] = 1
    mine: MineInfo
    substations: tuple[SubstationDefinition, ...]
    points: tuple[PointDefinition, ...]

    @model_validator(mode="after")
    def _check(self) -> MineDefinition:
        stations = {s.code for s in self.substations}
        codes: set[str] = set()
        for point in self.points:
            if point.substation not in stations:
                raise ValueError(f"point {point.code}: unknown substation {point.substation}")
            if point.code in codes:
                raise ValueError(f"point {point.code} defined twice")
            if point.area_code is not None and not point.area_code.startswith(self.mine.code):
                raise ValueError(f"point {point.code}: area {point.area_code} of another mine")
            codes.add(point.code)
        for point in self.points:
            for path in point.downstream:
                if path.target not in codes or path.target == point.code:
                    raise ValueError(f"point {point.code}: downstream {path.target} unknown")
        return self


_POINT_COLUMNS = (
    "system_code", "substation_code", "sensor_type", "value_type", "unit", "range_low",
    "range_high", "alarm_high", "alarm_high_clear", "alarm_low", "alarm_low_clear",
    "poweroff_high", "restore_high", "poweroff_low", "restore_low", "desc_on", "desc_off",
    "location", "tag", "x", "y", "z", "relations", "on_delay_s", "prewarn_high",
    "prewarn_high_clear", "prewarn_low", "prewarn_low_clear", "poll_cycle_s",
    "interruption_cycles", "control_time_s", "flatline_samples", "calibration_gas",
    "alarm_state", "area_code", "off_delay_s", "downstream",
    "co_puff_max_s", "co_fire_after_s", "cross_check_ratio", "cross_check_min", "cross_check_s",
    "stuck_tolerance", "stuck_move", "stuck_s", "excursion_min", "excursion_ratio",
)  # fmt: skip


def _upsert(
    table: str, key: tuple[str, ...], columns: tuple[str, ...], carried: frozenset[str]
) -> str:
    """INSERT every column; on conflict update only the ``carried`` ones (a definition updates
    the fields it carries and leaves the others, whichever source wrote them)."""
    names = key + columns
    update = [f"{c} = EXCLUDED.{c}" for c in columns if c in carried]
    return (
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ("
        + ", ".join(f"%({c})s" for c in names)
        + f") ON CONFLICT ({', '.join(key)}) DO UPDATE SET "
        + ", ".join([*update, "updated_at = now()"])
    )


#: a point field -> the column(s) it sets (the others have the field's name)
_POINT_FIELD_COLUMNS = {
    "substation": ("substation_code",),
    "sensor_type": ("sensor_type", "value_type"),
}


def _carried_columns(point: PointDefinition) -> frozenset[str]:
    """The columns of ``point`` its source gave (pydantic's ``model_fields_set``)."""
    return frozenset(
        column
        for name in point.model_fields_set
        for column in _POINT_FIELD_COLUMNS.get(name, (name,))
    )


def _point_row(mine_code: str, point: PointDefinition) -> dict[str, object]:
    row = point.model_dump(exclude={"substation", "relations", "downstream"})
    row.update(
        mine_code=mine_code,
        substation_code=point.substation,
        value_type=point.value_type.value,
        relations=orjson.dumps([r.model_dump(mode="json") for r in point.relations]).decode(),
        downstream=orjson.dumps([d.model_dump(mode="json") for d in point.downstream]).decode(),
    )
    return row


_MINE_COLUMNS = ("name", "gas_class", "approved_capacity_t")


def _upsert_statements(definition: MineDefinition) -> list[tuple[str, list[object]]]:
    """The statements (each with its parameter rows) that store ``definition``.

    Each row updates only the fields its definition carries: a national CDDY file (no gas
    class, no capacity, no per-point rule settings) leaves what the MQTT definition set.
    A field given as null is carried, and clears the stored value.
    """
    mine = definition.mine
    statements: list[tuple[str, list[object]]] = [
        (_upsert("mines", ("code",), _MINE_COLUMNS, frozenset(mine.model_fields_set)),
         [mine.model_dump()]),
    ]  # fmt: skip
    for station in definition.substations:
        carried = frozenset(station.model_fields_set)
        statements.append((
            _upsert("substations", ("mine_code", "code"), ("location",), carried),
            [{"mine_code": mine.code, "code": station.code, "location": station.location}],
        ))  # fmt: skip
    by_shape: dict[frozenset[str], list[object]] = {}
    for point in definition.points:
        by_shape.setdefault(_carried_columns(point), []).append(_point_row(mine.code, point))
    for carried, rows in by_shape.items():
        statements.append((_upsert("points", ("mine_code", "code"), _POINT_COLUMNS, carried), rows))
    return statements


def upsert_mine(conn: psycopg.Connection, definition: MineDefinition) -> None:
    """Insert or update a mine with its substations and points (in the caller's transaction)."""
    with conn.cursor() as cur:
        for sql, rows in _upsert_statements(definition):
            cur.executemany(sql, rows)  # type: ignore[arg-type]


async def upsert_mine_async(conn: psycopg.AsyncConnection, definition: MineDefinition) -> None:
    """:func:`upsert_mine` on an async connection."""
    async with conn.cursor() as cur:
        for sql, rows in _upsert_statements(definition):
            await cur.executemany(sql, rows)  # type: ignore[arg-type]
