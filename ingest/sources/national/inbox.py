"""Drop-folder source for the national networking TXT files (docs/national-files.md).

Folder layout under one root (created if missing)::

    inbox/      vendors (or their FTP/SFTP server) drop ``<mine>_<TYPE>_<time>.txt`` here
    done/       accepted files, byte for byte; ``done/.index`` lists them
    rejected/   refused files, each with ``<file>.reason.txt`` next to it

Rules, in the order :func:`judge` applies them:

1. a file larger than ``max_file_bytes`` is refused, and so is, where files go up the
   hierarchy, one larger than ``max_sent_up_bytes`` (its message would not pass the brokers);
2. a file whose name is not ``<12 digits>_<TYPE>_<yyyyMMddHHmmss>.txt`` of a known type, or
   that does not end with ``||`` (incomplete), is left alone while younger than
   ``grace_period_s`` (by modification time: it may still be uploading or be renamed) and
   refused once older;
3. a file with the SHA-256 of an accepted file is a duplicate, whatever its name; a file with
   the name of an accepted file but other content is refused too (a correction must come
   under a new name, i.e. a new upload time);
4. the codec's refusals (header, mine code, encoding... see :mod:`minewatch.national`);
5. a header upload time later than ``now + max_future_skew_s`` is from the future: refused;
   one older than ``max_age_s`` is stale and refused, but only where an age limit is set
   (``MINEWATCH_GATEWAY__FILES_MAX_AGE_S``; none by default);
6. otherwise the file is accepted, whatever share of its records the codec refused: every good
   record is stored, each refused one goes to the quarantine table. ``done/<file>.reason.txt``
   tells what was special about an accepted file: a header time older than ``late_after_s``
   (``late_upload``), refused records (``accepted_with_problems``, or
   ``too_many_bad_records`` above ``max_bad_fraction``), readings that validation refused
   (``readings_refused``, e.g. an unknown point code), one line each.

Nothing is ever deleted: files are only moved (``os.replace``, same file system), and a name
already taken in ``rejected/`` gets a ``.1``, ``.2``... suffix. Hidden files (``.name``) and
sub-folders of ``inbox/`` are ignored.

``done/.index`` holds one line ``<sha256 hex> <name>`` per accepted file, appended after the
file is moved. It is a cache of ``done/``: on start, files in ``done/`` missing from it (a crash
between the move and the append) are hashed and added, so duplicate detection by name and by
content survives restarts without a database. Files are taken in the order of their name's
time.

The judging is pure (:func:`judge`: bytes, age, clock and what was accepted before in; a
verdict out); :class:`Inbox` is the thin file-system adapter around it. What accepted files
become is beside it: :mod:`.safety` (CDSS, CDDY, FZDY), :mod:`.reports` (FZSS, YCBJ, TJSJ,
RYCS, RYCY, RYXZ, RYQJ) and :mod:`.personnel` (the personnel files); :mod:`.adapter` wires
them.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from minewatch.national import (
    FileName,
    FileRejection,
    ParsedFile,
    RecordProblem,
    parse_file,
    parse_file_name,
)

log = logging.getLogger(__name__)

INDEX_NAME = ".index"
REASON_SUFFIX = ".reason.txt"


class InboxConfig(BaseModel):
    """How the drop folder is judged (times in seconds)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    grace_period_s: float = Field(
        600.0, ge=0, description="How long an incomplete or oddly named file may wait."
    )
    max_age_s: float | None = Field(
        None,
        gt=0,
        description="Files whose header time is older are refused as stale; None: no age limit.",
    )
    late_after_s: float = Field(
        86_400.0,
        gt=0,
        description="Files whose header time is older are stored and flagged late_upload.",
    )
    max_future_skew_s: float = Field(
        300.0, ge=0, description="Files whose header time is later than now + this are refused."
    )
    max_bad_fraction: float = Field(
        0.2,
        ge=0,
        le=1,
        description="A file with a larger share of bad records is flagged "
        "too_many_bad_records (its good records are stored all the same).",
    )
    max_file_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    max_sent_up_bytes: int | None = Field(
        None,
        ge=1024,
        description="Where accepted files go up the hierarchy: the largest that fits one "
        "message there; None: files do not go up.",
    )


class InboxReason(enum.StrEnum):
    """Why the inbox refused a file (besides the codec's :class:`~minewatch.national.Reason`)."""

    TOO_LARGE = "too_large"
    TOO_LARGE_TO_SEND_UP = "too_large_to_send_up"  # larger than one message up can carry
    INCOMPLETE_TIMEOUT = "incomplete_timeout"
    BAD_NAME_TIMEOUT = "bad_name_timeout"
    DUPLICATE = "duplicate"  # same SHA-256 as an accepted file
    DUPLICATE_NAME = "duplicate_name"  # same name as an accepted file, other content
    STALE = "stale"  # only with an age limit (max_age_s)
    FUTURE = "future"
    UNREADABLE = "unreadable"  # the file system refused to read it


# -- verdicts --------------------------------------------------------------------------------


class AcceptedFlag(enum.StrEnum):
    """What ``done/<file>.reason.txt`` says about an accepted file (never a refusal)."""

    LATE_UPLOAD = "late_upload"
    TOO_MANY_BAD_RECORDS = "too_many_bad_records"
    ACCEPTED_WITH_PROBLEMS = "accepted_with_problems"
    READINGS_REFUSED = "readings_refused"


@dataclass(frozen=True, slots=True)
class Accept:
    parsed: ParsedFile
    sha256: str
    late: str | None = None  # why the file is a late upload, if it is one


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
    if config.max_sent_up_bytes is not None and len(data) > config.max_sent_up_bytes:
        return Refuse(
            InboxReason.TOO_LARGE_TO_SEND_UP,
            f"{len(data)} bytes > {config.max_sent_up_bytes}, the largest file that goes up the "
            "hierarchy in one message (MINEWATCH_GATEWAY__FILES_UP_MESSAGE_BYTES): split it "
            "into smaller files, or raise the brokers' limit and that setting",
        )
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
    age_limit = config.max_age_s
    if age_limit is not None and upload < now - dt.timedelta(seconds=age_limit):
        return Refuse(InboxReason.STALE, f"header time {upload} is older than {age_limit} s")
    if upload > now + dt.timedelta(seconds=config.max_future_skew_s):
        return Refuse(InboxReason.FUTURE, f"header time {upload} is in the future (now {now})")
    late = None
    if upload < now - dt.timedelta(seconds=config.late_after_s):
        late = f"header time {upload} is older than {config.late_after_s:.0f} s (at {now})"
    return Accept(parsed, digest, late)


def reason_text(
    reason: str, detail: str, problems: Iterable[RecordProblem] = (), readings: Iterable[str] = ()
) -> str:
    """The content of a ``.reason.txt`` file: reason, detail, then one line per bad record and
    per refused reading."""
    lines = [f"reason: {reason}", f"detail: {detail}"]
    lines += [f"record {p.index}: {p.reason}: {p.detail} | {p.text}" for p in problems]
    lines += [f"reading {r}" for r in readings]
    return "\n".join(lines) + "\n"


def accepted_flags(
    accepted: AcceptedFile, config: InboxConfig, refused_readings: int = 0
) -> list[tuple[AcceptedFlag, str]]:
    """Why an accepted file gets a reason file in ``done/`` (none: nothing to say)."""
    flags: list[tuple[AcceptedFlag, str]] = []
    if accepted.late is not None:
        flags.append((AcceptedFlag.LATE_UPLOAD, accepted.late))
    parsed = accepted.parsed
    bad = len(parsed.problems)
    if bad:
        flag = AcceptedFlag.ACCEPTED_WITH_PROBLEMS
        if bad > config.max_bad_fraction * parsed.record_count:
            flag = AcceptedFlag.TOO_MANY_BAD_RECORDS
        flags.append((flag, f"{bad} of {parsed.record_count} records refused"))
    if refused_readings:
        flags.append(
            (AcceptedFlag.READINGS_REFUSED, f"{refused_readings} readings refused by validation")
        )
    return flags


# -- the file-system adapter -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AcceptedFile:
    """A file judged good, still in ``inbox/`` until :meth:`Inbox.commit`."""

    path: Path
    parsed: ParsedFile
    sha256: str
    late: str | None = None
    content: bytes = field(default=b"", repr=False)  # the bytes judged (what ``sha256`` hashes)


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
                case Accept(parsed, digest, late):
                    self._taken[path.name] = digest
                    self._taken_digests[digest] = path.name
                    result.accepted.append(AcceptedFile(path, parsed, digest, late, data))
                case Refuse(reason, detail, problems):
                    target = self._move_aside(path, reason_text(reason, detail, problems))
                    log.warning("refused %s: %s: %s", path.name, reason, detail)
                    result.rejected.append(RejectedFile(path.name, target, str(reason), detail))
                case Wait():
                    result.waiting.append(path.name)
        return result

    def commit(self, accepted: AcceptedFile, refused_readings: Sequence[str] = ()) -> Path:
        """Move an accepted file to ``done/`` (after its content is durable) and index it;
        ``refused_readings`` (one line each) are readings validation refused."""
        parsed = accepted.parsed
        target = self.done / accepted.path.name
        flags = accepted_flags(accepted, self.config, len(refused_readings))
        if flags:
            detail = "; ".join(f"{flag}: {why}" for flag, why in flags)
            text = reason_text(flags[0][0], detail, parsed.problems, refused_readings)
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
