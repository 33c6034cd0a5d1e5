"""Drop-folder source for the national networking TXT files (docs/national-files.md).

Folder layout under one root (created if missing)::

    inbox/      vendors (or their FTP/SFTP server) drop ``<mine>_<TYPE>_<time>.txt`` here
    done/       accepted files, byte for byte; ``done/.index`` lists them
    rejected/   refused files, each with ``<file>.reason.txt`` next to it

Rules, in the order :func:`judge` applies them:

1. a file larger than ``max_file_bytes`` is refused;
2. a file whose name is not ``<12 digits>_<TYPE>_<yyyyMMddHHmmss>.txt`` of a known type, or
   that does not end with ``||`` (incomplete), is left alone while younger than
   ``grace_period_s`` (by modification time: it may still be uploading or be renamed) and
   refused once older;
3. a file with the SHA-256 of an accepted file is a duplicate, whatever its name; a file with
   the name of an accepted file but other content is refused too (a correction must come
   under a new name, i.e. a new upload time);
4. the codec's refusals (header, mine code, encoding... see :mod:`minewatch.national`);
5. a header upload time older than ``max_age_s`` is stale, one later than
   ``now + max_future_skew_s`` is from the future: both refused;
6. more than ``max_bad_fraction`` of the records refused: the whole file is refused;
7. otherwise the file is accepted. Its refused records are listed in ``done/<file>.reason.txt``.

Nothing is ever deleted: files are only moved (``os.replace``, same file system), and a name
already taken in ``rejected/`` gets a ``.1``, ``.2``... suffix. Hidden files (``.name``) and
sub-folders of ``inbox/`` are ignored.

``done/.index`` holds one line ``<sha256 hex> <name>`` per accepted file, appended after the
file is moved. It is a cache of ``done/``: on start, files in ``done/`` missing from it (a crash
between the move and the append) are hashed and added, so duplicate detection by name and by
content survives restarts without a database. Files are taken in the order of their name's
time.

The judging is pure (:func:`judge`: bytes, age, clock and what was accepted before in; a
verdict out); :class:`Inbox` is the thin file-system adapter around it. :func:`cdss_messages`
and :func:`definition_update` turn accepted files into what the gateway consumes.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ingest.contract import SafetyMessage
from minewatch.metadata import (
    MineDefinition,
    MineInfo,
    PointDefinition,
    Relation,
    SubstationDefinition,
)
from minewatch.national import (
    CddyRecord,
    CdssRecord,
    FileName,
    FileRejection,
    FileType,
    FzdyRecord,
    ParsedFile,
    RecordProblem,
    parse_file,
    parse_file_name,
)
from minewatch.timeutil import datetime_to_us

log = logging.getLogger(__name__)

INDEX_NAME = ".index"
REASON_SUFFIX = ".reason.txt"


class InboxConfig(BaseModel):
    """How the drop folder is judged (times in seconds)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    grace_period_s: float = Field(
        600.0, ge=0, description="How long an incomplete or oddly named file may wait."
    )
    max_age_s: float = Field(
        86_400.0, gt=0, description="Files whose header time is older are refused as stale."
    )
    max_future_skew_s: float = Field(
        300.0, ge=0, description="Files whose header time is later than now + this are refused."
    )
    max_bad_fraction: float = Field(
        0.2, ge=0, le=1, description="A file with a larger share of bad records is refused."
    )
    max_file_bytes: int = Field(64 * 1024 * 1024, ge=1024)


class InboxReason(enum.StrEnum):
    """Why the inbox refused a file (besides the codec's :class:`~minewatch.national.Reason`)."""

    TOO_LARGE = "too_large"
    INCOMPLETE_TIMEOUT = "incomplete_timeout"
    BAD_NAME_TIMEOUT = "bad_name_timeout"
    DUPLICATE = "duplicate"  # same SHA-256 as an accepted file
    DUPLICATE_NAME = "duplicate_name"  # same name as an accepted file, other content
    STALE = "stale"
    FUTURE = "future"
    TOO_MANY_BAD_RECORDS = "too_many_bad_records"
    UNREADABLE = "unreadable"  # the file system refused to read it


# -- verdicts --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Accept:
    parsed: ParsedFile
    sha256: str


@dataclass(frozen=True, slots=True)
class Wait:
    detail: str


@dataclass(frozen=True, slots=True)
class Refuse:
    reason: str  # an InboxReason or a minewatch.national.Reason value
    detail: str
    problems: tuple[RecordProblem, ...] = ()


Verdict = Accept | Wait | Refuse


class Seen(Protocol):
    """What was accepted before (or is being processed now)."""

    def digest_of(self, name: str) -> str | None: ...
    def name_of(self, digest: str) -> str | None: ...


def is_complete(data: bytes) -> bool:
    """A file is complete when it ends with ``||`` (trailing whitespace aside)."""
    return data.rstrip().endswith(b"||")


def judge(
    name: str, data: bytes, age_s: float, now: dt.datetime, seen: Seen, config: InboxConfig
) -> Verdict:
    """The verdict on one inbox file (pure: no I/O). ``now`` must be aware."""
    if len(data) > config.max_file_bytes:
        return Refuse(InboxReason.TOO_LARGE, f"{len(data)} bytes > {config.max_file_bytes}")
    file_name = parse_file_name(name)
    if not isinstance(file_name, FileName):
        reason, detail = file_name
        if age_s < config.grace_period_s:
            return Wait(f"{reason}: {detail}")
        return Refuse(InboxReason.BAD_NAME_TIMEOUT, f"{reason}: {detail}")
    if not is_complete(data):
        if age_s < config.grace_period_s:
            return Wait("no || yet")
        return Refuse(
            InboxReason.INCOMPLETE_TIMEOUT,
            f"no || after {age_s:.0f} s (grace period {config.grace_period_s:.0f} s)",
        )
    digest = hashlib.sha256(data).hexdigest()
    if (first := seen.name_of(digest)) is not None:
        return Refuse(InboxReason.DUPLICATE, f"same content (SHA-256 {digest}) as {first}")
    if (other := seen.digest_of(name)) is not None:
        return Refuse(
            InboxReason.DUPLICATE_NAME, f"a file of this name was accepted with SHA-256 {other}"
        )
    parsed = parse_file(name, data)
    if isinstance(parsed, FileRejection):
        return Refuse(parsed.reason, parsed.detail)
    upload = parsed.header.upload_time
    if upload < now - dt.timedelta(seconds=config.max_age_s):
        return Refuse(InboxReason.STALE, f"header time {upload} is older than {config.max_age_s} s")
    if upload > now + dt.timedelta(seconds=config.max_future_skew_s):
        return Refuse(InboxReason.FUTURE, f"header time {upload} is in the future (now {now})")
    bad = len(parsed.problems)
    if bad and bad > config.max_bad_fraction * parsed.record_count:
        return Refuse(
            InboxReason.TOO_MANY_BAD_RECORDS,
            f"{bad} of {parsed.record_count} records refused (limit {config.max_bad_fraction:.0%})",
            parsed.problems,
        )
    return Accept(parsed, digest)


def reason_text(reason: str, detail: str, problems: Iterable[RecordProblem] = ()) -> str:
    """The content of a ``.reason.txt`` file: reason, detail, then one line per bad record."""
    lines = [f"reason: {reason}", f"detail: {detail}"]
    lines += [f"record {p.index}: {p.reason}: {p.detail} | {p.text}" for p in problems]
    return "\n".join(lines) + "\n"


# -- the file-system adapter -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AcceptedFile:
    """A file judged good, still in ``inbox/`` until :meth:`Inbox.commit`."""

    path: Path
    parsed: ParsedFile
    sha256: str


@dataclass(frozen=True, slots=True)
class RejectedFile:
    name: str
    path: Path  # where it now lies in rejected/
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class ScanResult:
    accepted: list[AcceptedFile]  # in the order of their names' times
    rejected: list[RejectedFile]
    waiting: list[str]


class Inbox:
    """The drop folder: scan, then commit (move to ``done/``) what was made durable."""

    def __init__(self, root: Path, config: InboxConfig | None = None) -> None:
        self.config = config or InboxConfig()
        self.inbox, self.done, self.rejected = root / "inbox", root / "done", root / "rejected"
        for folder in (self.inbox, self.done, self.rejected):
            folder.mkdir(parents=True, exist_ok=True)
        self._index = self.done / INDEX_NAME
        self._by_name: dict[str, str] = {}
        self._by_digest: dict[str, str] = {}
        self._taken: dict[str, str] = {}  # accepted by a scan, not yet committed: name -> sha
        self._taken_digests: dict[str, str] = {}
        self._load_index()

    # Seen
    def digest_of(self, name: str) -> str | None:
        return self._by_name.get(name) or self._taken.get(name)

    def name_of(self, digest: str) -> str | None:
        return self._by_digest.get(digest) or self._taken_digests.get(digest)

    def scan(self, now: dt.datetime) -> ScanResult:
        """Judge every file in ``inbox/`` not already taken; move refused ones aside."""
        result = ScanResult([], [], [])
        for path in self._candidates():
            try:
                stat = path.stat()
                age_s = now.timestamp() - stat.st_mtime
                too_large = stat.st_size > self.config.max_file_bytes
                data = b"" if too_large else path.read_bytes()
            except FileNotFoundError:
                continue  # moved away by its uploader meanwhile
            except OSError as error:
                log.warning("cannot read %s: %s", path, error)
                verdict: Verdict = Wait(f"{InboxReason.UNREADABLE}: {error}")
            else:
                if too_large:
                    limit = self.config.max_file_bytes
                    verdict = Refuse(InboxReason.TOO_LARGE, f"{stat.st_size} bytes > {limit}")
                else:
                    verdict = judge(path.name, data, age_s, now, self, self.config)
            match verdict:
                case Accept(parsed, digest):
                    self._taken[path.name] = digest
                    self._taken_digests[digest] = path.name
                    result.accepted.append(AcceptedFile(path, parsed, digest))
                case Refuse(reason, detail, problems):
                    target = self._move_aside(path, reason_text(reason, detail, problems))
                    log.warning("refused %s: %s: %s", path.name, reason, detail)
                    result.rejected.append(RejectedFile(path.name, target, str(reason), detail))
                case Wait():
                    result.waiting.append(path.name)
        return result

    def commit(self, accepted: AcceptedFile) -> Path:
        """Move an accepted file to ``done/`` (after its content is durable) and index it."""
        parsed = accepted.parsed
        target = self.done / accepted.path.name
        if parsed.problems:
            detail = f"{len(parsed.problems)} of {parsed.record_count} records refused"
            text = reason_text("accepted_with_problems", detail, parsed.problems)
            (self.done / (target.name + REASON_SUFFIX)).write_text(text, encoding="utf-8")
        os.replace(accepted.path, target)
        self._append_index(accepted.sha256, target.name)
        self._taken.pop(target.name, None)
        self._taken_digests.pop(accepted.sha256, None)
        return target

    def set_aside(self, accepted: AcceptedFile, reason: str) -> Path:
        """Move an accepted file to ``rejected/`` with ``reason`` (e.g. a type not ingested)."""
        self.release(accepted)
        return self._move_aside(accepted.path, reason)

    def release(self, accepted: AcceptedFile) -> None:
        """Give a taken file back (its processing failed): the next scan judges it again."""
        self._taken.pop(accepted.path.name, None)
        self._taken_digests.pop(accepted.sha256, None)

    # -- internals ------------------------------------------------------------------------

    def _candidates(self) -> list[Path]:
        paths = [
            p
            for p in self.inbox.iterdir()
            if not p.name.startswith(".") and p.name not in self._taken and p.is_file()
        ]

        def order(path: Path) -> tuple[str, str]:
            name = parse_file_name(path.name)
            return (str(name.seq) if isinstance(name, FileName) else "", path.name)

        return sorted(paths, key=order)

    def _move_aside(self, path: Path, reason: str) -> Path:
        target = self.rejected / path.name
        n = 0
        while target.exists() or (target.parent / (target.name + REASON_SUFFIX)).exists():
            n += 1
            target = self.rejected / f"{path.name}.{n}"
        # the reason first: a crash before the move leaves the file in inbox/ to be judged
        # again, and the same free name is chosen again
        (self.rejected / (target.name + REASON_SUFFIX)).write_text(reason, encoding="utf-8")
        os.replace(path, target)
        return target

    def _load_index(self) -> None:
        text = self._index.read_text(encoding="utf-8") if self._index.exists() else ""
        for line in text.splitlines():
            digest, _, name = line.partition(" ")
            if len(digest) == 64 and name:
                self._by_name[name] = digest
                self._by_digest.setdefault(digest, name)
        self._index_needs_newline = bool(text) and not text.endswith("\n")
        for path in sorted(self.done.iterdir()):
            name = path.name
            if name.startswith(".") or name.endswith(REASON_SUFFIX) or name in self._by_name:
                continue
            log.info("indexing %s, accepted but missing from %s", name, self._index)
            self._append_index(hashlib.sha256(path.read_bytes()).hexdigest(), name)

    def _append_index(self, digest: str, name: str) -> None:
        prefix = "\n" if self._index_needs_newline else ""
        with self._index.open("a", encoding="utf-8") as index:
            index.write(f"{prefix}{digest} {name}\n")
            index.flush()
            os.fsync(index.fileno())
        self._index_needs_newline = False
        self._by_name[name] = digest
        self._by_digest.setdefault(digest, name)


# -- what accepted files become --------------------------------------------------------------


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
    if point.value_type != record.value_type:
        return PointProblem(
            record.point_code,
            f"数值类型 {record.value_type} contradicts sensor type {record.sensor_type} "
            f"({point.value_type})",
        )
    return point
