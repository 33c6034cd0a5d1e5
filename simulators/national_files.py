"""National networking TXT files (42号文附件2 style) from the simulators, into a drop folder.

A :class:`NationalFileWriter` plays the upload side of a mine: its safety-monitoring system
(a :class:`~simulators.model.SimulatedMine`) and its personnel-positioning system (a
:class:`~simulators.personnel.PersonnelSimulator`), either or both, write the files a vendor
system pushes to the regulator, at the format's cadence (docs/simulator.md, "National files
from the simulator"):

- at the start: CDDY (every point with range, thresholds and its D relations), FZDY
  (substations), RYXX (people), RYQY (areas), RYJZ (stations);
- every ``upload_s`` (default 10 s): CDSS (every point's reading of that instant), FZSS (each
  substation's state) and, when a labelled event began or ended since the previous upload,
  YCBJ (one open record when it begins, one closed record with its statistics when it ends);
- every ``personnel_s`` (default 5 minutes, as vendors do): RYSS (the full list of people
  underground, plus those who came up since the previous RYSS, with 出井) and JZSS;
- with the mine's feeds (a :class:`~simulators.feeds.MineFeeds`, whose positioning system
  plays the personnel scenarios), on the ``alarm_s`` grid (default 30 s, the positioning
  cycle) when a labelled personnel alarm began or ended since: RYCS (超时), RYCY (区域/矿井超员),
  RYXZ (进入限制区域), RYQJ (求救), an open record when it begins and a closed one with its
  end when it ends, as YCBJ.

Every file is written under a hidden temporary name in the folder (``.<name>.tmp``, which the
inbox ignores), flushed and then renamed to ``<mine>_<TYPE>_<yyyyMMddHHmmss>.txt``: a reader
never sees a half file under its final name (and a complete file ends with ``||`` anyway).
Times are China time (+08:00) and whole seconds, so every instant is a whole second.

Simulated time runs from an explicit start: as fast as possible (tests, traces) or paced on
the wall clock (``realtime``). The files are pure functions of the simulators' state at each
instant, so the tests can compare what was written with the simulators' ground truth.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path

import numpy as np

from minewatch.codes import SENSOR_TYPES, AbnormalType, PointStatus, SystemCode, value_type_of
from minewatch.metadata import PointDefinition
from minewatch.national import (
    CHINA_TZ,
    CddyRecord,
    CdssRecord,
    FileType,
    FzdyRecord,
    FzssRecord,
    Header,
    JzssRecord,
    Record,
    Relation,
    RycsRecord,
    RycyRecord,
    RyjzRecord,
    RyqjRecord,
    RyqyRecord,
    RyssRecord,
    RyxxRecord,
    RyxzRecord,
    ShaftFlag,
    StationPowerState,
    StationRunState,
    TrackPoint,
    YcbjRecord,
    encode_file,
)
from minewatch.simulators.config import MineConfig, load_mine_config
from minewatch.simulators.feeds import MineFeeds
from minewatch.simulators.model import Block, SimulatedMine
from minewatch.simulators.personnel import US, PersonnelSimConfig, PersonnelSimulator
from minewatch.trace import FeedLabel, GroundTruth

SAFETY_TYPES = frozenset({FileType.CDDY, FileType.FZDY, FileType.CDSS, FileType.FZSS,
                          FileType.YCBJ})  # fmt: skip
PERSONNEL_TYPES = frozenset({FileType.RYXX, FileType.RYQY, FileType.RYJZ, FileType.RYSS,
                             FileType.JZSS})  # fmt: skip
#: Feed label kind -> the personnel alarm file a positioning system reports it in. Not
#: reported: ``leader_absent`` (no national file type for 带班空岗), video and output labels.
ALARM_FILES: dict[str, FileType] = {
    "overtime": FileType.RYCS,  # 超时报警 (root and the derived leader who stays)
    "area_overcrowding": FileType.RYCY,  # 区域超员
    "mine_overcrowding": FileType.RYCY,  # 矿井超员
    "restricted_area": FileType.RYXZ,  # 进入限制区域报警
    "sos": FileType.RYQJ,  # 求救
}
ALARM_TYPES = frozenset(ALARM_FILES.values())
ALL_TYPES = SAFETY_TYPES | PERSONNEL_TYPES | ALARM_TYPES
#: The types the gateway's drop-folder source ingests (ingest/sources/files.py): every type
#: the writer produces (FZSS, YCBJ and the personnel alarms go to the report tables).
INGESTED_TYPES = ALL_TYPES

#: Ground-truth label kind -> the 异常类型 a mine's own system reports for it (YCBJ).
#: ``power_off_failure`` is reported on its feed point (the label's ``related``).
YCBJ_KINDS: dict[str, AbnormalType] = {
    "methane_exceedance": AbnormalType.OVER_LIMIT,  # 001 超限报警 (root and derived labels)
    "power_off_failure": AbnormalType.FEED_ABNORMAL,  # 003 馈电异常, on the feed point
    "disconnection": AbnormalType.SENSOR_DISCONNECTED,  # 004 传感器断线
    "calibration": AbnormalType.CALIBRATION,  # 007 标校 (declared calibrations only)
    "over_range": AbnormalType.OVER_RANGE,  # 008 超量程 (root and derived labels)
}

#: RYQY 区域类型 of the personnel simulator's area types.
AREA_TYPE_NAMES = {"shaft": "井口区域", "key": "重点区域", "restricted": "限制区域",
                   "other": "其它区域"}  # fmt: skip
_TEAMS = ("零点班", "八点班", "四点班")


@dataclass(frozen=True, slots=True)
class DropFolderOptions:
    """What is written and how often (simulated seconds; whole seconds)."""

    upload_s: int = 10  # CDSS, FZSS, YCBJ: a multiple of the mine's polling cycle
    personnel_s: int = 300  # RYSS, JZSS: every 5 minutes, as vendors send them
    alarm_s: int = 30  # RYCS, RYCY, RYXZ, RYQJ: checked on this grid (the positioning cycle)
    types: frozenset[FileType] = ALL_TYPES
    system_model: str = "KJ-SIM"  # CDDY/RYXX header: 系统型号
    safety_system_name: str = "煤矿安全监控系统"
    personnel_system_name: str = "井下人员定位系统"
    manufacturer: str = "minewatch simulator"
    certificate_date: str = ""  # <date> of the CDDY/RYXX header (meaning unconfirmed)
    rated_headcount: str = ""  # <int> of the RYXX header (probably 核定下井人数)
    fsync: bool = True  # flush each file to disk before its rename

    def __post_init__(self) -> None:
        for name in ("upload_s", "personnel_s", "alarm_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number of seconds >= 1, not {value!r}")
        unknown = set(self.types) - ALL_TYPES
        if unknown:
            raise ValueError(f"the writer does not produce {sorted(unknown)}")


@dataclass
class WriteReport:
    """What a run wrote: file names in writing order, and the count per type."""

    files: list[str] = field(default_factory=list)
    counts: dict[FileType, int] = field(default_factory=dict)
    records: dict[FileType, int] = field(default_factory=dict)

    def note(self, file_type: FileType, name: str, records: int) -> None:
        self.files.append(name)
        self.counts[file_type] = self.counts.get(file_type, 0) + 1
        self.records[file_type] = self.records.get(file_type, 0) + records


def write_atomically(folder: Path, name: str, data: bytes, *, fsync: bool = True) -> Path:
    """Write ``data`` as ``folder/name``: to the hidden ``.<name>.tmp`` first, then renamed.

    The final name appears only with the whole content (``os.replace`` is atomic on one file
    system); hidden files are ignored by the inbox, so a crash leaves at most a stray
    temporary file, never a half file under a real name. Refuses to overwrite a file.
    """
    target = folder / name
    if target.exists():
        raise FileExistsError(f"{target} exists: two files of one type in one second?")
    temporary = folder / f".{name}.tmp"
    with open(temporary, "wb") as handle:
        handle.write(data)
        if fsync:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(temporary, target)
    return target


def mine_starting_at(config: MineConfig, start: dt.datetime) -> SimulatedMine:
    """A simulated mine whose offset 0 is ``start`` (the files carry absolute times).

    ``start`` is converted to China time: the model places the shifts by the clock hour of
    its start in the start's own zone, and the mine's shifts are China time.
    """
    simulation = config.simulation.model_copy(update={"start": start.astimezone(CHINA_TZ)})
    return SimulatedMine(config.model_copy(update={"simulation": simulation}))


def personnel_for(config: MineConfig, **overrides: object) -> PersonnelSimulator:
    """The personnel simulator of the same mine (code and name of ``config``)."""
    settings = {"mine_code": config.mine.code, "mine_name": config.mine.name, **overrides}
    # overrides are PersonnelSimConfig fields of several types; the dataclass takes them by name
    return PersonnelSimulator(PersonnelSimConfig(**settings))  # type: ignore[arg-type]


def feeds_starting_at(
    config: MineConfig, start: dt.datetime, gas_labels: list[GroundTruth] | None = None
) -> MineFeeds:
    """The mine's personnel, video and output systems with their scenarios, offset 0 at
    ``start`` (China time, as :func:`mine_starting_at`); ``gas_labels``: the mine's safety
    ground truth (camera_offline scenarios are placed in gas labels)."""
    simulation = config.simulation.model_copy(update={"start": start.astimezone(CHINA_TZ)})
    return MineFeeds(config.model_copy(update={"simulation": simulation}), gas_labels)


def to_time(start: dt.datetime, offset_s: float) -> dt.datetime:
    """The China-time instant ``offset_s`` after ``start``, truncated to whole seconds."""
    return (start + dt.timedelta(seconds=math.floor(offset_s + 1e-9))).astimezone(CHINA_TZ)


def _decimals(resolution: float) -> int:
    text = f"{resolution:.10f}".rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0


def _number(value: float, decimals: int) -> Decimal:
    """A reading as written: with the sensor resolution's decimals, exactly ``value``."""
    value = float(value) + 0.0  # no -0
    fixed = Decimal(f"{value:.{decimals}f}")
    return fixed if float(fixed) == value else Decimal(repr(value))


def _optional(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(repr(float(value)))


def cddy_record(point: PointDefinition, at: dt.datetime) -> CddyRecord:
    """One CDDY record of a point; each relation is one group (``D-<feed point>``)."""
    groups = tuple((Relation(r.kind, r.target, r.device),) for r in point.relations)
    return CddyRecord(
        point.code, SystemCode(point.system_code), point.substation, point.sensor_type,
        value_type_of(point.sensor_type), point.unit, _optional(point.range_high),
        _optional(point.range_low), _optional(point.alarm_high),
        _optional(point.alarm_high_clear), _optional(point.alarm_low),
        _optional(point.alarm_low_clear), _optional(point.poweroff_high),
        _optional(point.restore_high), _optional(point.poweroff_low),
        _optional(point.restore_low), point.desc_on, point.desc_off, point.location,
        _optional(point.x), _optional(point.y), _optional(point.z), groups, at,
    )  # fmt: skip


# -- the safety side -------------------------------------------------------------------------


@dataclass
class _Episode:
    """A labelled event as a YCBJ episode, with running statistics of its point's readings."""

    label: GroundTruth
    abnormal: AbnormalType
    point: int
    start_s: float
    end_s: float
    count: int = 0
    total: float = 0.0
    max_value: float = -math.inf
    max_s: float = 0.0
    min_value: float = math.inf
    min_s: float = 0.0
    opened: bool = False
    closed: bool = False

    def add(self, offsets: np.ndarray, values: np.ndarray) -> None:
        inside = (offsets >= self.start_s) & (offsets < self.end_s)
        if not inside.any():
            return
        t, v = offsets[inside], values[inside]
        self.count += len(v)
        self.total += float(v.sum())
        i, j = int(np.argmax(v)), int(np.argmin(v))
        if v[i] > self.max_value:
            self.max_value, self.max_s = float(v[i]), float(t[i])
        if v[j] < self.min_value:
            self.min_value, self.min_s = float(v[j]), float(t[j])


def ycbj_episodes(mine: SimulatedMine) -> list[_Episode]:
    """The labels a mine's own system would report, as episodes (see :data:`YCBJ_KINDS`)."""
    index = {code: i for i, code in enumerate(mine.codes)}
    out = []
    for label in mine.ground_truth:
        abnormal = YCBJ_KINDS.get(label.kind)
        code = label.related if label.kind == "power_off_failure" else label.point
        if abnormal is None or code not in index:
            continue
        out.append(_Episode(label, abnormal, index[code], label.start_s, label.end_s))
    return out


class _SafetySide:
    def __init__(self, mine: SimulatedMine, start: dt.datetime) -> None:
        self.mine = mine
        self.start = start
        self.points = mine.definition.points
        self.cycle_s = mine.config.simulation.cycle_s
        templates = mine.config.templates
        names = [name for s in mine.config.substations for name in s.sensors]
        self.decimals = [_decimals(templates[name].resolution) for name in names]
        self.episodes = ycbj_episodes(mine)
        self.stations = [s.code for s in mine.definition.substations]
        self._station_points = [
            np.flatnonzero(mine.substation_of == code) for code in self.stations
        ]
        self._next = 0  # index of the next cycle to consume

    def cycle_at(self, offset_s: int) -> tuple[np.ndarray, np.ndarray]:
        """Values and statuses of the cycle at ``offset_s`` (consuming the cycles up to it)."""
        wanted = round(offset_s / self.cycle_s)
        if wanted < self._next:
            raise ValueError("instants must increase")
        last: Block | None = None
        while self._next <= wanted:
            block = self.mine.next_block(wanted - self._next + 1)
            self._next += len(block)
            for episode in self.episodes:
                if episode.start_s <= block.offset_s[-1] and episode.end_s > block.offset_s[0]:
                    episode.add(block.offset_s, block.value[:, episode.point])
            last = block
        assert last is not None
        return last.value[-1], last.status[-1].astype(np.int64)

    def definitions(self, at: dt.datetime) -> tuple[list[Record], list[Record]]:
        cddy: list[Record] = [cddy_record(p, at) for p in self.points]
        fzdy: list[Record] = [
            FzdyRecord(s.code, s.location, None, None, None, at)
            for s in self.mine.definition.substations
        ]
        return cddy, fzdy

    def cdss(self, at: dt.datetime, value: np.ndarray, status: np.ndarray) -> list[Record]:
        return [
            CdssRecord(
                p.code,
                SENSOR_TYPES[p.sensor_type],
                p.location,
                _number(float(value[i]), self.decimals[i]),
                p.unit,
                int(status[i]),
                at,
            )
            for i, p in enumerate(self.points)
        ]

    def fzss(self, at: dt.datetime, status: np.ndarray) -> list[Record]:
        """通信中断 while every point of the substation carries 分站故障, else 通信正常."""
        out: list[Record] = []
        for code, points in zip(self.stations, self._station_points, strict=True):
            down = len(points) > 0 and bool(
                np.all(status[points] & int(PointStatus.SUBSTATION_FAULT))
            )
            state = StationRunState.INTERRUPTED if down else StationRunState.OK
            out.append(FzssRecord(code, state, StationPowerState.AC, at))
        return out

    def ycbj(self, at: dt.datetime, offset_s: int) -> list[Record]:
        """Episodes that began (open record) or ended (closed record) up to ``offset_s``."""
        out: list[Record] = []
        for e in self.episodes:
            if e.closed or e.start_s > offset_s:
                continue
            ended = e.end_s <= offset_s
            if e.opened and not ended:
                continue
            e.opened = True
            e.closed = ended
            out.append(self._ycbj_record(e, at, ended))
        return out

    def _ycbj_record(self, e: _Episode, at: dt.datetime, ended: bool) -> YcbjRecord:
        p = self.points[e.point]
        d = self.decimals[e.point]
        some = e.count > 0
        return YcbjRecord(
            p.code, SENSOR_TYPES[p.sensor_type], p.location, p.unit, e.abnormal,
            to_time(self.start, e.start_s),
            to_time(self.start, math.ceil(e.end_s - 1e-9)) if ended else None,
            _number(e.max_value, d) if some else None,
            to_time(self.start, e.max_s) if some else None,
            _number(e.min_value, d) if some else None,
            to_time(self.start, e.min_s) if some else None,
            Decimal(f"{e.total / e.count:.{d + 2}f}") if some else None,
            e.label.kind, "", None, "", at,
        )  # fmt: skip


# -- the personnel side ----------------------------------------------------------------------


class _PersonnelSide:
    def __init__(self, sim: PersonnelSimulator) -> None:
        self.sim = sim
        self.previous: int | None = None  # µs of the previous RYSS

    def _at(self, t: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(t // US, CHINA_TZ)

    def definitions(self) -> tuple[list[Record], list[Record], list[Record]]:
        sim, c = self.sim, self.sim.config
        title = {True: "带班矿领导", False: ""}

        def team(shift: int) -> str:
            return _TEAMS[shift] if shift >= 0 else "支援队"  # visitors (support crews): -1

        ryxx: list[Record] = [
            RyxxRecord(
                p.card, p.name, p.job, title[p.leader], team(p.shift), "", "", p.leader, p.special
            )
            for p in sim.people
        ]
        ryqy: list[Record] = [
            RyqyRecord(AREA_TYPE_NAMES[a.type], sim.area_codes[i], a.approved, a.name)
            for i, a in enumerate(c.areas)
        ]
        ryjz: list[Record] = [
            RyjzRecord(code, f"{c.areas[a].name}{k}号基站", None, None, None, "")
            for k, (code, a) in enumerate(sim.stations)
        ]
        return ryxx, ryqy, ryjz

    def ryss(self, t: int) -> list[Record]:
        """Everyone underground at ``t`` (入井), then those who came up since the previous
        RYSS (出井, at the shaft station they left by, with their 出井时刻), by card."""
        sim, at = self.sim, self._at
        people = {p.card: p for p in sim.people}
        tracks = {
            person.card: plan for person, plan in sim.plans_around(t)
            if plan.entry <= t < plan.exit
        }  # fmt: skip
        out: list[Record] = []
        for card, place in sorted(sim.places(t).items()):
            person = people[card]
            track = tuple(
                TrackPoint(sim.stations[s][0], at(start))
                for start, s in tracks[card].stages
                if start <= t
            )
            out.append(RyssRecord(
                card, person.name, ShaftFlag.IN, at(place.entered_at), None, place.area,
                at(place.area_since), place.station, at(place.station_since), "三八制",
                Decimal(repr(place.distance_m)), "正常", person.leader, person.special, track,
            ))  # fmt: skip
        if self.previous is not None:
            gone = sorted(sim.exits_between(self.previous, t), key=lambda x: x[0].card)
            for person, plan in gone:
                code, area = sim.stations[plan.stages[-1][1]]
                track = tuple(TrackPoint(sim.stations[s][0], at(start))
                              for start, s in plan.stages)  # fmt: skip
                out.append(RyssRecord(
                    person.card, person.name, ShaftFlag.OUT, at(plan.entry), at(plan.exit),
                    sim.area_codes[area], at(plan.exit), code, at(plan.exit), "三八制",
                    Decimal("0.0"), "正常", person.leader, person.special, track,
                ))  # fmt: skip
        self.previous = t
        return out

    def jzss(self, t: int) -> list[Record]:
        at = self._at(t)
        return [
            JzssRecord(code, StationRunState.OK, StationPowerState.AC, at)
            for code, _ in self.sim.stations
        ]


@dataclass
class _Alarm:
    """A labelled personnel situation as the alarm episode the positioning system reports."""

    label: FeedLabel
    file_type: FileType
    opened: bool = False
    closed: bool = False


class _PersonnelAlarms:
    """RYCS, RYCY, RYXZ and RYQJ records from the feed labels (start and end) and the
    positioning system's state (who, where, how many)."""

    def __init__(self, feeds: MineFeeds, start: dt.datetime) -> None:
        self.feeds = feeds
        self.sim = feeds.personnel
        self.start = start
        self.alarms = [_Alarm(g, ALARM_FILES[g.kind]) for g in feeds.labels
                       if g.kind in ALARM_FILES]  # fmt: skip
        self.names = {p.card: p.name for p in self.sim.people}
        areas = zip(self.sim.area_codes, self.sim.config.areas, strict=True)
        self.area_names = {code: a.name for code, a in areas}

    def instants(self, seconds: float, every_s: int) -> set[int]:
        """Offsets on the ``every_s`` grid at which an alarm is first seen open or closed."""
        out = set()
        for a in self.alarms:
            for t in (a.label.start_s, a.label.end_s):
                k = math.ceil(t / every_s - 1e-9) * every_s
                if 0 <= k < seconds:
                    out.add(k)
        return out

    def records(self, at: dt.datetime, offset_s: int) -> dict[FileType, list[Record]]:
        """Alarms that began (open record) or ended (closed record) up to ``offset_s``."""
        out: dict[FileType, list[Record]] = {}
        for a in self.alarms:
            if a.closed or a.label.start_s > offset_s:
                continue
            ended = a.label.end_s <= offset_s
            if a.opened and not ended:
                continue
            a.opened, a.closed = True, ended
            out.setdefault(a.file_type, []).append(self._record(a, at, ended))
        return out

    def _us(self, offset_s: float) -> int:
        return self.feeds.start_us + round(offset_s * US)

    def _at(self, t: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(t // US, CHINA_TZ)

    def _record(self, a: _Alarm, at: dt.datetime, ended: bool) -> Record:
        g = a.label
        begin = to_time(self.start, g.start_s)
        end = to_time(self.start, math.ceil(g.end_s - 1e-9)) if ended else None
        if a.file_type == FileType.RYCY:
            return self._rycy(g, at, begin, end)
        # A person's alarm: where the card was when it began (RYXZ: the restricted area).
        place = self.sim.places(self._us(g.start_s)).get(g.subject)
        if place is None:
            raise AssertionError(f"{g.kind} of {g.subject}: not underground at its start")
        entered, area_since = self._at(place.entered_at), self._at(place.area_since)
        station_since = self._at(place.station_since)
        name = self.names[g.subject]
        if a.file_type == FileType.RYCS:
            return RycsRecord(g.subject, name, entered, begin, end, place.area, area_since,
                              place.station, station_since, at)  # fmt: skip
        record = RyxzRecord if a.file_type == FileType.RYXZ else RyqjRecord
        return record(g.subject, name, begin, end, entered, place.area, area_since,
                      place.station, station_since, at)  # fmt: skip

    def _rycy(
        self, g: FeedLabel, at: dt.datetime, begin: dt.datetime, end: dt.datetime | None
    ) -> RycyRecord:
        """当前总人数 and 区域人员集合 (cards joined by ``,``) at the record's time, taken
        inside the alarm: at the last positioning instant of it once it has ended."""
        cycle = self.sim.cycle_us
        first = self._us(g.start_s)
        last = (self._us(g.end_s) - 1) // cycle * cycle
        t = min(max(int(at.timestamp()) * US, first), last)
        places = self.sim.places(t).values()
        area = g.subject if g.kind == "area_overcrowding" else ""
        cards = sorted(p.card for p in places if not area or p.area == area)
        return RycyRecord(
            "区域超员" if area else "矿井超员", round(g.limit or 0), len(cards), area,
            self.area_names.get(area, ""), begin, end, ",".join(cards), at,
        )  # fmt: skip


# -- the writer ------------------------------------------------------------------------------


class NationalFileWriter:
    """Writes the national files of a simulated mine into ``folder`` (see the module doc).

    ``start`` is the China-time instant of the first files (whole seconds); a ``mine`` and
    ``feeds`` must have it as their ``simulation.start`` (:func:`mine_starting_at`,
    :func:`feeds_starting_at`). ``feeds`` gives the positioning system that plays the
    personnel scenarios (instead of ``personnel``) and its labels, which become the alarm
    files. Call :meth:`run` once per writer: the simulators' state moves on.
    """

    def __init__(
        self,
        folder: Path,
        start: dt.datetime,
        *,
        mine: SimulatedMine | None = None,
        personnel: PersonnelSimulator | None = None,
        feeds: MineFeeds | None = None,
        options: DropFolderOptions | None = None,
    ) -> None:
        if feeds is not None:
            if personnel is not None and personnel is not feeds.personnel:
                raise ValueError("give feeds or a personnel simulator, not both")
            if feeds.config.simulation.start != start:
                raise ValueError("the feeds' simulation.start must be the writer's start")
            personnel = feeds.personnel
        if mine is None and personnel is None:
            raise ValueError("give a mine, a personnel simulator or both")
        if start.tzinfo is None or start.microsecond:
            raise ValueError("start must be aware and whole seconds")
        self.folder = folder
        self.start = start.astimezone(CHINA_TZ)
        self.options = options or DropFolderOptions()
        self.safety: _SafetySide | None = None
        self.people: _PersonnelSide | None = None
        self.alarms = _PersonnelAlarms(feeds, self.start) if feeds is not None else None
        if mine is not None:
            if mine.config.simulation.start != start:
                raise ValueError("the mine's simulation.start must be the writer's start")
            cycles = self.options.upload_s / mine.config.simulation.cycle_s
            if abs(cycles - round(cycles)) > 1e-9:
                raise ValueError("upload_s must be a multiple of the mine's polling cycle")
            self.safety = _SafetySide(mine, self.start)
        if personnel is not None:
            if mine is not None and personnel.config.mine_code != mine.definition.mine.code:
                raise ValueError("the mine and the personnel system have different mine codes")
            self.people = _PersonnelSide(personnel)
        code_name = (
            (mine.definition.mine.code, mine.definition.mine.name)
            if mine is not None
            # the constructor refuses a mine and personnel both None, above
            else (personnel.config.mine_code, personnel.config.mine_name)  # type: ignore[union-attr]
        )
        self.mine_code, self.mine_name = code_name
        if feeds is not None and not self.options.rated_headcount:  # the RYXX header's <int>
            self.options = replace(self.options, rated_headcount=str(feeds.max_people))
        self.report = WriteReport()

    # -- schedule --------------------------------------------------------------------------

    def instants(self, seconds: float) -> list[int]:
        """Offsets (whole seconds) in [0, seconds) at which files are written: the start, the
        cadences of the types written, and the instants an alarm is first seen open or
        closed."""
        o = self.options
        out: set[int] = {0}
        if self.safety is not None and o.types & {FileType.CDSS, FileType.FZSS, FileType.YCBJ}:
            out.update(range(0, math.ceil(seconds), o.upload_s))
        if self.people is not None and o.types & {FileType.RYSS, FileType.JZSS}:
            out.update(range(0, math.ceil(seconds), o.personnel_s))
        if self.alarms is not None and o.types & ALARM_TYPES:
            out.update(self.alarms.instants(seconds, o.alarm_s))
        return sorted(s for s in out if s < seconds)

    def run(
        self,
        seconds: float,
        *,
        realtime: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> WriteReport:
        """Write the files of ``seconds`` simulated seconds from the start. ``realtime``
        writes each instant's files when that much wall-clock time has passed."""
        self.folder.mkdir(parents=True, exist_ok=True)
        wall0 = clock()
        for offset in self.instants(seconds):
            if realtime:
                delay = wall0 + offset - clock()
                if delay > 0:
                    sleep(delay)
            self.write_instant(offset)
        return self.report

    def write_instant(self, offset: int) -> None:
        """The files of one instant (``offset`` seconds after the start), in a fixed order:
        definitions (at 0), CDSS, FZSS, YCBJ, RYSS, JZSS, RYCS, RYCY, RYXZ, RYQJ."""
        o = self.options
        at = self.start + dt.timedelta(seconds=offset)
        t_us = int(at.timestamp()) * US
        safety, people = self.safety, self.people
        if offset == 0:
            if safety is not None:
                cddy, fzdy = safety.definitions(at)
                self._write(FileType.CDDY, at, cddy, o.safety_system_name)
                self._write(FileType.FZDY, at, fzdy)
            if people is not None:
                ryxx, ryqy, ryjz = people.definitions()
                self._write(FileType.RYXX, at, ryxx, o.personnel_system_name)
                self._write(FileType.RYQY, at, ryqy)
                self._write(FileType.RYJZ, at, ryjz)
        if safety is not None and offset % o.upload_s == 0:
            value, status = safety.cycle_at(offset)
            self._write(FileType.CDSS, at, safety.cdss(at, value, status))
            self._write(FileType.FZSS, at, safety.fzss(at, status))
            events = safety.ycbj(at, offset)
            if events:
                self._write(FileType.YCBJ, at, events)
        if people is not None and offset % o.personnel_s == 0:
            if FileType.RYSS in o.types:
                self._write(FileType.RYSS, at, people.ryss(t_us))
            if FileType.JZSS in o.types:
                self._write(FileType.JZSS, at, people.jzss(t_us))
        if self.alarms is not None and offset % o.alarm_s == 0:
            alarms = self.alarms.records(at, offset)
            for file_type in (FileType.RYCS, FileType.RYCY, FileType.RYXZ, FileType.RYQJ):
                if alarms.get(file_type):
                    self._write(file_type, at, alarms[file_type])

    def _write(
        self, file_type: FileType, at: dt.datetime, records: Sequence[Record], system: str = ""
    ) -> None:
        o = self.options
        if file_type not in o.types:
            return
        long = file_type in (FileType.CDDY, FileType.RYXX)
        header = Header(
            file_type, self.mine_code, self.mine_name, at,
            o.system_model if long else "", system, o.manufacturer if long else "",
            o.certificate_date if long else "",
            o.rated_headcount if file_type == FileType.RYXX else "",
        )  # fmt: skip
        name, data = encode_file(header, records)
        write_atomically(self.folder, name, data, fsync=o.fsync)
        self.report.note(file_type, name, len(records))


def write_drop_folder(
    config_path: Path | str | None,
    out_dir: Path | str,
    *,
    minutes: float,
    start: dt.datetime | None = None,
    realtime: bool = False,
    upload_s: int = 10,
    personnel_s: int = 300,
    alarm_s: int = 30,
    types: Iterable[FileType] | None = None,
) -> WriteReport:
    """The CLI entry: the mine of ``config_path`` (None: the small example mine) and its
    personnel system (with the config's personnel scenarios and their alarm files) write
    ``minutes`` of national files into ``out_dir``.

    ``start`` defaults to now (whole seconds); with ``realtime`` the files are paced on the
    wall clock, otherwise written as fast as possible with their simulated times.
    """
    from minewatch.simulators.config import example_mine_path

    path = Path(config_path) if config_path is not None else example_mine_path()
    config = load_mine_config(path)
    if start is None:
        start = dt.datetime.now(CHINA_TZ).replace(microsecond=0)
    mine = mine_starting_at(config, start)
    options = DropFolderOptions(
        upload_s=upload_s,
        personnel_s=personnel_s,
        alarm_s=alarm_s,
        types=frozenset(types) if types is not None else ALL_TYPES,
    )
    feeds = MineFeeds(mine.config, mine.ground_truth)
    writer = NationalFileWriter(Path(out_dir), start, mine=mine, feeds=feeds, options=options)
    return writer.run(minutes * 60, realtime=realtime)
