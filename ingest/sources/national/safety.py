"""What accepted CDSS, CDDY and FZDY files become (docs/national-files.md, "What accepted files
become"): readings as a :class:`~ingest.contract.SafetyMessage` and the mine's definition as a
:class:`~minewatch.metadata.MineDefinition`. Pure functions of a parsed file.

The drop folder itself (judging, moving, indexing) is :mod:`.inbox`; the other types are
:mod:`.reports` (FZSS, YCBJ, TJSJ and the personnel alarm records) and :mod:`.personnel`
(RYSS, JZSS, RYQJ, RYXX, RYQY, RYJZ).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from pydantic import ValidationError

from minewatch.codes import DEFAULT_ALARM_STATE
from minewatch.ingest.contract import SafetyMessage
from minewatch.metadata import (
    MineDefinition,
    MineInfo,
    PointDefinition,
    Relation,
    SubstationDefinition,
)
from minewatch.national import CddyRecord, CdssRecord, FileType, FzdyRecord, ParsedFile
from minewatch.timeutil import datetime_to_us


def cdss_messages(parsed: ParsedFile) -> list[SafetyMessage]:
    """The readings of a CDSS file as one :class:`SafetyMessage` (none if it has no records).

    ``source`` is the file itself (``<mine>/files/<name without .txt>``) with ``boot`` 0 and
    ``seq`` 1: a redelivered file (after a crash between the commit and the move to done/) is
    recognised exactly, while a file older than one already stored (a mine uploading what it
    buffered) is still new. A high-water mark per mine would drop such files.
    An empty 测点值 gives ``value_ok`` False (quarantined as not a number).
    """
    if parsed.file_type != FileType.CDSS:
        raise ValueError(f"{parsed.name} is not a CDSS file")
    records = [r for r in parsed.records if isinstance(r, CdssRecord)]
    if not records:
        return []
    mine = parsed.mine_code
    value_ok = np.array([r.value is not None for r in records], dtype=bool)
    return [
        SafetyMessage(
            source=f"{mine}/files/{str(parsed.name).removesuffix('.txt')}",
            mine=mine,
            substation="files",
            boot=0,
            seq=1,
            time_us=np.array([datetime_to_us(r.data_time) for r in records], dtype=np.int64),
            codes=[r.point_code for r in records],
            value=np.array(
                [float(r.value) if r.value is not None else np.nan for r in records], np.float64
            ),
            value_ok=value_ok,
            status=np.array([r.status for r in records], dtype=np.int64),
            raw_values=[float(r.value) if r.value is not None else "" for r in records],
        )
    ]


@dataclass(frozen=True, slots=True)
class PointProblem:
    """A CDDY point (or an FZDY substation) left out of the definition, and why."""

    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class DefinitionUpdate:
    definition: MineDefinition
    problems: tuple[PointProblem, ...]


def definition_update(cddy: ParsedFile | None, fzdy: ParsedFile | None = None) -> DefinitionUpdate:
    """A :class:`MineDefinition` from a CDDY file and/or an FZDY file of one mine.

    Points come from CDDY (a point defined twice: the last wins), substations from FZDY plus
    every 分站编码 a point names. A point the model refuses (unknown sensor type, a clear
    level above its set level, a 数值类型 that contradicts the sensor type...) is left out and
    reported. Thresholds map as 上限报警门限 -> alarm_high, 上限解报门限 -> alarm_high_clear,
    下限报警/解报 -> alarm_low/alarm_low_clear, 上限断电/复电 -> poweroff_high/restore_high,
    下限断电/复电 -> poweroff_low/restore_low; relation groups are flattened.
    """
    files = [f for f in (cddy, fzdy) if f is not None]
    if not files:
        raise ValueError("give a CDDY file, an FZDY file or both")
    if cddy is not None and cddy.file_type != FileType.CDDY:
        raise ValueError(f"{cddy.name} is not a CDDY file")
    if fzdy is not None and fzdy.file_type != FileType.FZDY:
        raise ValueError(f"{fzdy.name} is not an FZDY file")
    mine_codes = {f.mine_code for f in files}
    if len(mine_codes) != 1:
        raise ValueError(f"files of different mines: {sorted(mine_codes)}")
    head = (cddy or files[0]).header
    stations: dict[str, SubstationDefinition] = {}
    problems: list[PointProblem] = []
    for station in fzdy.records if fzdy is not None else ():
        assert isinstance(station, FzdyRecord)
        try:
            stations[station.station_code] = SubstationDefinition(
                code=station.station_code, location=station.location
            )
        except ValidationError as error:
            problems.append(PointProblem(station.station_code, _short(error)))
    points: dict[str, PointDefinition] = {}
    for record in cddy.records if cddy is not None else ():
        assert isinstance(record, CddyRecord)
        point = _point(record)
        if isinstance(point, PointProblem):
            problems.append(point)
            continue
        points.pop(point.code, None)  # the last definition wins, in file order
        points[point.code] = point
        stations.setdefault(point.substation, SubstationDefinition(code=point.substation))
    definition = MineDefinition(
        mine=MineInfo(code=head.mine_code, name=head.mine_name),
        substations=tuple(stations.values()),
        points=tuple(points.values()),
    )
    return DefinitionUpdate(definition, tuple(problems))


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _short(error: ValidationError) -> str:
    return str(error).replace("\n", " ")[:500]


def _point(record: CddyRecord) -> PointDefinition | PointProblem:
    if len(record.station_code) > 32:
        return PointProblem(record.point_code, f"分站编码 {record.station_code!r} is too long")
    try:
        point = PointDefinition(
            code=record.point_code,
            substation=record.station_code,
            sensor_type=record.sensor_type,
            system_code=record.system_code.value,
            unit=record.unit,
            location=record.location,
            range_low=_number(record.range_low),
            range_high=_number(record.range_high),
            alarm_high=_number(record.alarm_high),
            alarm_high_clear=_number(record.alarm_high_clear),
            alarm_low=_number(record.alarm_low),
            alarm_low_clear=_number(record.alarm_low_clear),
            poweroff_high=_number(record.poweroff_high),
            restore_high=_number(record.restore_high),
            poweroff_low=_number(record.poweroff_low),
            restore_low=_number(record.restore_low),
            desc_on=record.desc_on,
            desc_off=record.desc_off,
            alarm_state=DEFAULT_ALARM_STATE.get(record.sensor_type),
            x=_number(record.x),
            y=_number(record.y),
            z=_number(record.z),
            relations=tuple(
                Relation(kind=r.kind, target=r.point, device=r.device)
                for group in record.relations
                for r in group
            ),
        )
    except ValidationError as error:
        return PointProblem(record.point_code, _short(error))
    # CDDY has no alarm-state field: the code table's value is for a new point only, not
    # carried over one a fuller definition (the MQTT one) already set (metadata.upsert_mine).
    point.model_fields_set.discard("alarm_state")
    if point.value_type != record.value_type:
        return PointProblem(
            record.point_code,
            f"数值类型 {record.value_type} contradicts sensor type {record.sensor_type} "
            f"({point.value_type})",
        )
    return point
