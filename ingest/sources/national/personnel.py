"""National TXT files (RYSS, JZSS) as feed batches: a parsed file from
:func:`minewatch.national.parse_file` becomes the same :class:`FeedBatch` an MQTT message of
the personnel contract becomes, so the feed writer stores both the same way. Pure.

A file is a message of the source ``<mine>/personnel/national-<type>`` (e.g.
``national-ryss``) whose sequence number is the upload time in seconds (boot 0): a file
delivered twice is dropped as a duplicate, an RYSS file with a newer time but the same list
changes nothing (snapshot diff). Such a sequence is a clock, not a count: a jump in it is not
a missing message (:func:`~minewatch.ingest.feeds.contract.is_time_sequenced`; the feed writer
counts no gaps for it).
"""

from __future__ import annotations

import logging

import numpy as np
from pydantic import ValidationError

from minewatch.ingest.feeds.contract import (
    NO_TIME,
    TIME_SEQUENCED_SYSTEM,
    Area,
    FeedBatch,
    Person,
    PersonnelMeta,
    PersonnelMetaDocument,
    Station,
)
from minewatch.national import (
    FileType,
    JzssRecord,
    ParsedFile,
    RyjzRecord,
    RyqjRecord,
    RyqyRecord,
    RyssRecord,
    RyxxRecord,
)
from minewatch.timeutil import datetime_to_us

log = logging.getLogger(__name__)


def file_source(mine: str, file_type: str) -> str:
    """The feed source of a mine's national files of one type."""
    return f"{mine}/personnel/{TIME_SEQUENCED_SYSTEM}-{file_type.lower()}"


def _objects(values: list[object]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _times(values: list[object]) -> np.ndarray:
    return np.array(
        [NO_TIME if v is None else datetime_to_us(v) for v in values],  # type: ignore[arg-type]
        dtype=np.int64,
    ).reshape(len(values))


def _batch(parsed: ParsedFile, kind: str, columns: dict[str, np.ndarray]) -> FeedBatch:
    stamp = datetime_to_us(parsed.header.upload_time)
    columns.setdefault("time_us", np.full(len(next(iter(columns.values()))), stamp, np.int64))
    return FeedBatch(
        kind,  # type: ignore[arg-type]
        file_source(parsed.mine_code, parsed.file_type),
        parsed.mine_code, 0,
        stamp // 1_000_000, stamp, columns, str(parsed.name).encode(),
    )  # fmt: skip


def ryss_batch(parsed: ParsedFile) -> FeedBatch:
    """A parsed RYSS file (人员实时, the full list) as a ``snapshot`` batch."""
    if parsed.file_type != FileType.RYSS:
        raise ValueError(f"not an RYSS file: {parsed.name}")
    records = [r for r in parsed.records if isinstance(r, RyssRecord)]
    return _batch(parsed, "snapshot", {
        "cards": _objects([r.card_code for r in records]),
        "stations": _objects([r.station_code for r in records]),
        "areas": _objects([r.area_code for r in records]),
        "in_mine": np.array([int(r.shaft_flag) for r in records], np.int16),
        "distance_m": np.array(
            [np.nan if r.distance_m is None else float(r.distance_m) for r in records]
        ),
        "mine_entered_at": _times([r.in_time for r in records]),
        "mine_left_at": _times([r.out_time for r in records]),
        "area_since": _times([r.area_time for r in records]),
        "station_since": _times([r.station_time for r in records]),
    })  # fmt: skip


def jzss_batch(parsed: ParsedFile) -> FeedBatch:
    """A parsed JZSS file (基站实时状态) as a ``station_status`` batch (rows at their 数据时间)."""
    if parsed.file_type != FileType.JZSS:
        raise ValueError(f"not a JZSS file: {parsed.name}")
    records = [r for r in parsed.records if isinstance(r, JzssRecord)]
    return _batch(parsed, "station_status", {
        "stations": _objects([r.station_code for r in records]),
        "run_state": np.array([int(r.run_state) for r in records], np.int16),
        "power_state": np.array([int(r.power_state) for r in records], np.int16),
        "time_us": _times([r.data_time for r in records]),
    })  # fmt: skip


def ryqj_batch(parsed: ParsedFile) -> FeedBatch:
    """A parsed RYQJ file (求救) as a ``positions`` batch with the ``sos`` column: each call is
    a position with ``sos`` true at its 求救开始时间 and, if it ended, one with ``sos`` false at
    its 求救结束时间 (the card underground, in_mine 1)."""
    if parsed.file_type != FileType.RYQJ:
        raise ValueError(f"not an RYQJ file: {parsed.name}")
    rows: list[tuple[RyqjRecord, object, bool]] = []
    for r in parsed.records:
        if isinstance(r, RyqjRecord):
            rows.append((r, r.sos_start, True))
            if r.sos_end is not None:
                rows.append((r, r.sos_end, False))
    return _batch(parsed, "positions", {
        "cards": _objects([r.card_code for r, _, _ in rows]),
        "stations": _objects([r.station_code for r, _, _ in rows]),
        "areas": _objects([r.area_code for r, _, _ in rows]),
        "in_mine": np.ones(len(rows), np.int16),
        "distance_m": np.full(len(rows), np.nan),
        "mine_entered_at": _times([r.in_time for r, _, _ in rows]),
        "sos": np.array([int(c) for _, _, c in rows], np.int8).reshape(len(rows)),
        "time_us": _times([t for _, t, _ in rows]),
    })  # fmt: skip


_PARTS = {FileType.RYXX: "people", FileType.RYQY: "areas", FileType.RYJZ: "stations"}


def definition_part(parsed: ParsedFile) -> PersonnelMeta:
    """A parsed RYXX (people), RYQY (areas) or RYJZ (stations) file as a personnel definition
    complete for that one part. Entries the contract refuses are left out and logged."""
    part = _PARTS.get(parsed.file_type)
    if part is None:
        raise ValueError(f"not a personnel definition file: {parsed.name}")
    entries: list[Person | Area | Station] = []
    for record in parsed.records:
        try:
            entries.append(_entry(record))
        except (ValidationError, ValueError) as error:
            log.warning("%s: entry left out: %s", parsed.name, str(error).splitlines()[0])
    mine = parsed.mine_code
    document = PersonnelMetaDocument(
        v=1, mine=mine, mine_name=parsed.header.mine_name or None, ts=parsed.header.upload_time,
        complete_for=(part,), **{part: tuple(entries)},
    )  # fmt: skip
    source = file_source(mine, parsed.file_type)
    return PersonnelMeta(source, mine, datetime_to_us(parsed.header.upload_time), document)


def _entry(record: object) -> Person | Area | Station:
    match record:
        case RyxxRecord():
            return Person(
                card=record.card_code, name=record.name, job=record.job,
                title=record.position, team=record.team, leader=record.is_leader,
                special=record.is_special_worker,
            )  # fmt: skip
        case RyqyRecord():
            return Area(
                code=record.area_code, name=record.area_name, type=record.area_type,
                approved=record.rated_headcount,
            )  # fmt: skip
        case RyjzRecord():
            return Station(
                code=record.station_code, area=record.station_code[:16], name=record.name,
                x=_float(record.x), y=_float(record.y), z=_float(record.z),
            )  # fmt: skip
    raise ValueError(f"unexpected record {type(record).__name__}")


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]
