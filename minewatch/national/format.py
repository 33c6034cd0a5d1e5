"""Layout of the national networking TXT files (42号文附件2 style): names, separators, times.

Domain reference §6.1 and §7. A file is UTF-8 (a BOM is tolerated), needs no line breaks, and
reads::

    <header fields joined by ;>~<record fields joined by ;>~...~||

Empty fields keep their ``;``; a full-width ``；`` is an error. The name is
``<12-digit mine code>_<TYPE>_<yyyyMMddHHmmss>.txt``. Times are China local time written as
``yyyy-MM-dd HH:mm:ss`` without an offset; they are read and written with a fixed +08:00
offset (China has no daylight saving time), never with the machine's local zone.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass

#: China Standard Time: the fixed offset every time in these files is written in.
CHINA_TZ = dt.timezone(dt.timedelta(hours=8), "CST")

FIELD_SEP = ";"
RECORD_END = "~"
FILE_END = "||"
FULLWIDTH_SEP = "；"
BOM = "\ufeff"
#: Characters a field value can never hold, because they delimit the layout.
RESERVED = frozenset(";~|；\r\n")

FILE_NAME_RE = re.compile(r"([0-9]{12})_([A-Z]+)_([0-9]{14})\.txt")
_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_NAME_TIME_RE = re.compile(r"[0-9]{14}")

#: §7.1: lengths of the positioning codes (all ASCII digits).
MINE_CODE_LEN = 12
CARD_CODE_LEN = 17  # mine code + 5 digits
AREA_CODE_LEN = 16  # mine code + 4 digits
STATION_CODE_LEN = 22  # area code + 6 digits


class FileType(enum.StrEnum):
    """The file types this codec reads and writes (§6.2 safety monitoring, §7.2 positioning)."""

    CDDY = "CDDY"  # 测点定义
    CDSS = "CDSS"  # 测点实时数据
    YCBJ = "YCBJ"  # 测点异常报警
    TJSJ = "TJSJ"  # 测点统计
    FZDY = "FZDY"  # 分站定义
    FZSS = "FZSS"  # 分站实时状态
    RYXX = "RYXX"  # 人员信息
    RYQY = "RYQY"  # 区域定义
    RYJZ = "RYJZ"  # 基站定义
    JZSS = "JZSS"  # 基站实时状态
    RYSS = "RYSS"  # 人员实时
    RYCS = "RYCS"  # 超时报警
    RYCY = "RYCY"  # 超员报警
    RYXZ = "RYXZ"  # 进入限制区域报警
    RYQJ = "RYQJ"  # 求救


class Reason(enum.StrEnum):
    """Why a whole file was refused, or why one record of it was."""

    # whole file
    BAD_FILE_NAME = "bad_file_name"
    UNKNOWN_FILE_TYPE = "unknown_file_type"
    INVALID_UTF8 = "invalid_utf8"
    INCOMPLETE = "incomplete"  # does not end with ||
    BAD_HEADER = "bad_header"
    MINE_CODE_MISMATCH = "mine_code_mismatch"  # header mine code differs from the name's
    # one record (or the header, reported as a file rejection)
    WRONG_FIELD_COUNT = "wrong_field_count"
    FULLWIDTH_SEPARATOR = "fullwidth_separator"
    RESERVED_CHARACTER = "reserved_character"
    MISSING_VALUE = "missing_value"
    INVALID_CODE = "invalid_code"  # wrong length or not digits
    UNKNOWN_CODE = "unknown_code"  # not in its code table
    INVALID_NUMBER = "invalid_number"
    INVALID_INTEGER = "invalid_integer"
    INVALID_TIME = "invalid_time"
    INVALID_FLAG = "invalid_flag"
    INVALID_RELATION = "invalid_relation"
    INVALID_TRACK = "invalid_track"


@dataclass(frozen=True, slots=True)
class FileName:
    """The parts of a file name; ``time`` is the name's stamp in China time."""

    mine_code: str
    file_type: FileType
    time: dt.datetime

    def __post_init__(self) -> None:
        check_digits(self.mine_code, MINE_CODE_LEN, "mine code")
        check_time(self.time)

    def __str__(self) -> str:
        return f"{self.mine_code}_{self.file_type}_{format_name_time(self.time)}.txt"

    @property
    def seq(self) -> int:
        """The name's time as the integer yyyyMMddHHmmss (monotonic in time)."""
        return int(format_name_time(self.time))


def parse_file_name(name: str) -> FileName | tuple[Reason, str]:
    """The parts of ``name``, or the reason and detail why it is not a valid file name."""
    match = FILE_NAME_RE.fullmatch(name)
    if match is None:
        return Reason.BAD_FILE_NAME, f"{name!r} does not match {FILE_NAME_RE.pattern}"
    mine, kind, stamp = match.groups()
    try:
        file_type = FileType(kind)
    except ValueError:
        return Reason.UNKNOWN_FILE_TYPE, f"file type {kind!r} is not supported"
    time = parse_name_time(stamp)
    if time is None:
        return Reason.BAD_FILE_NAME, f"{stamp!r} is not a valid yyyyMMddHHmmss time"
    return FileName(mine, file_type, time)


def parse_time(text: str) -> dt.datetime | None:
    """``yyyy-MM-dd HH:mm:ss`` China time as an aware datetime (+08:00), or None if invalid."""
    if not _TIME_RE.fullmatch(text):
        return None
    try:
        stamp = dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA_TZ)
    except ValueError:
        return None
    return stamp if stamp.year >= 1000 else None


def format_time(stamp: dt.datetime) -> str:
    """An aware datetime as ``yyyy-MM-dd HH:mm:ss`` in China time."""
    return stamp.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")


def parse_name_time(text: str) -> dt.datetime | None:
    """``yyyyMMddHHmmss`` China time (the file-name stamp), or None if invalid."""
    if not _NAME_TIME_RE.fullmatch(text):
        return None
    try:
        stamp = dt.datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=CHINA_TZ)
    except ValueError:
        return None
    return stamp if stamp.year >= 1000 else None


def format_name_time(stamp: dt.datetime) -> str:
    return stamp.astimezone(CHINA_TZ).strftime("%Y%m%d%H%M%S")


def check_time(stamp: object) -> None:
    """Raise ValueError unless ``stamp`` is an aware datetime with whole seconds (the files
    carry no fractions) and a year that the four-digit layout can hold."""
    if not isinstance(stamp, dt.datetime):
        raise ValueError(f"{stamp!r} is not a datetime")
    if stamp.tzinfo is None or stamp.utcoffset() is None:
        raise ValueError(f"{stamp!r} is naive: give it an offset (China time is +08:00)")
    if stamp.microsecond:
        raise ValueError(f"{stamp!r} has a fraction of a second; the files carry none")
    try:
        year = stamp.astimezone(CHINA_TZ).year
    except OverflowError:
        year = 0
    if not 1000 <= year <= 9999:
        raise ValueError(f"{stamp!r} is outside the years 1000-9999 in China time")


def is_digits(code: str, length: int) -> bool:
    return len(code) == length and code.isascii() and code.isdigit()


def check_digits(code: object, length: int, what: str) -> None:
    if not isinstance(code, str) or not is_digits(code, length):
        raise ValueError(f"{what} {code!r} is not {length} digits")


def check_text(value: object, what: str) -> None:
    """Raise ValueError unless ``value`` can be written as one field and read back equal."""
    if not isinstance(value, str):
        raise ValueError(f"{what} {value!r} is not a string")
    if RESERVED.intersection(value):
        raise ValueError(f"{what} {value!r} holds a reserved character (one of ; ~ | ； CR LF)")
    if value != value.strip():
        raise ValueError(f"{what} {value!r} has surrounding whitespace, which readers trim")


#: Number of header fields per file type; every type not listed has the 3-field header.
HEADER_FIELD_COUNTS: dict[FileType, int] = {FileType.CDDY: 7, FileType.RYXX: 8}


@dataclass(frozen=True, slots=True)
class Header:
    """The first segment of a file.

    Most types have ``煤矿编码;煤矿名称;数据上传时间``. CDDY adds the system and its maker:
    ``煤矿编码;煤矿名称;系统型号;系统名称;生产厂家;<date>;数据上传时间``; RYXX has
    ``煤矿编码;煤矿名称;<int>;系统型号;系统名称;生产厂家;<date>;数据上传时间``. The meaning of
    ``<date>`` (probably the 安标/检验 validity) and ``<int>`` (probably 核定下井人数) is not
    confirmed (§12.3), so both stay text. The extra fields must be empty for the other types.
    """

    file_type: FileType
    mine_code: str
    mine_name: str
    upload_time: dt.datetime
    system_model: str = ""
    system_name: str = ""
    manufacturer: str = ""
    certificate_date: str = ""  # CDDY, RYXX: <date, likely 安标/检验有效期>
    rated_headcount: str = ""  # RYXX only: <int, e.g. 500, probably 核定下井人数>

    def __post_init__(self) -> None:
        if not isinstance(self.file_type, FileType):
            raise ValueError(f"{self.file_type!r} is not a FileType")
        check_digits(self.mine_code, MINE_CODE_LEN, "mine code")
        check_time(self.upload_time)
        for name in (
            "mine_name", "system_model", "system_name", "manufacturer", "certificate_date",
            "rated_headcount",
        ):  # fmt: skip
            check_text(getattr(self, name), name)
        long = self.file_type in HEADER_FIELD_COUNTS
        if not long and (self.system_model or self.system_name or self.manufacturer):
            raise ValueError(f"a {self.file_type} header has no system fields")
        if not long and self.certificate_date:
            raise ValueError(f"a {self.file_type} header has no certificate date")
        if self.file_type != FileType.RYXX and self.rated_headcount:
            raise ValueError("only an RYXX header has a rated headcount")

    @property
    def file_name(self) -> FileName:
        """The name a file with this header gets: its stamp is the upload time."""
        return FileName(self.mine_code, self.file_type, self.upload_time)

    def fields(self) -> list[str]:
        """The header's fields in file order."""
        time = format_time(self.upload_time)
        system = [self.system_model, self.system_name, self.manufacturer, self.certificate_date]
        match self.file_type:
            case FileType.CDDY:
                return [self.mine_code, self.mine_name, *system, time]
            case FileType.RYXX:
                return [self.mine_code, self.mine_name, self.rated_headcount, *system, time]
        return [self.mine_code, self.mine_name, time]


def parse_header(file_type: FileType, segment: str) -> Header | tuple[Reason, str]:
    """The header of a ``file_type`` file from its first segment (without the ``~``)."""
    if FULLWIDTH_SEP in segment:
        return Reason.BAD_HEADER, "the header holds a full-width ；"
    parts = [part.strip() for part in segment.split(FIELD_SEP)]
    expected = HEADER_FIELD_COUNTS.get(file_type, 3)
    if len(parts) != expected:
        return Reason.BAD_HEADER, f"a {file_type} header has {expected} fields, not {len(parts)}"
    if RESERVED.intersection(segment.strip().replace(FIELD_SEP, "")):
        return Reason.BAD_HEADER, "the header holds a reserved character (| CR LF)"
    mine, name, *extra, time_text = parts
    if not is_digits(mine, MINE_CODE_LEN):
        return Reason.MINE_CODE_MISMATCH, f"header mine code {mine!r} is not 12 digits"
    upload_time = parse_time(time_text)
    if upload_time is None:
        return Reason.BAD_HEADER, f"upload time {time_text!r} is not yyyy-MM-dd HH:mm:ss"
    headcount = extra.pop(0) if file_type == FileType.RYXX else ""
    model, system, maker, certificate = extra if extra else ("", "", "", "")
    return Header(file_type, mine, name, upload_time, model, system, maker, certificate, headcount)
