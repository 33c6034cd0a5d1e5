"""Whole files: :func:`parse_file` (bytes to typed records, never raising on bad input) and
:func:`encode_file` (its byte-exact inverse). Pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from minewatch.national.fields import FieldError, Record, field_specs, read_record, write_record
from minewatch.national.format import (
    BOM,
    FIELD_SEP,
    FILE_END,
    FULLWIDTH_SEP,
    RECORD_END,
    FileName,
    FileType,
    Header,
    Reason,
    parse_file_name,
    parse_header,
)
from minewatch.national.personnel import (
    JzssRecord,
    RycsRecord,
    RycyRecord,
    RyjzRecord,
    RyqjRecord,
    RyqyRecord,
    RyssRecord,
    RyxxRecord,
    RyxzRecord,
)
from minewatch.national.safety import (
    CddyRecord,
    CdssRecord,
    FzdyRecord,
    FzssRecord,
    TjsjRecord,
    YcbjRecord,
)

#: The record class of each file type.
RECORD_TYPES: dict[FileType, type[Record]] = {
    cls.FILE_TYPE: cls
    for cls in (
        CddyRecord, CdssRecord, YcbjRecord, TjsjRecord, FzdyRecord, FzssRecord, RyxxRecord,
        RyqyRecord, RyjzRecord, JzssRecord, RyssRecord, RycsRecord, RycyRecord, RyxzRecord,
        RyqjRecord,
    )
}  # fmt: skip

#: Problems keep at most this much of the record's text.
_MAX_PROBLEM_TEXT = 1000


@dataclass(frozen=True, slots=True)
class FileRejection:
    """The whole file was refused."""

    name: str
    reason: Reason
    detail: str


@dataclass(frozen=True, slots=True)
class RecordProblem:
    """Record ``index`` (0-based, after the header) was refused; ``text`` is its segment."""

    index: int
    reason: Reason
    detail: str
    text: str


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """A file whose name and header are valid: its good records and its refused ones.

    ``record_count`` is the number of record segments; every one is either in ``records``
    (in file order) or in ``problems``.
    """

    name: FileName
    header: Header
    records: tuple[Record, ...]
    problems: tuple[RecordProblem, ...]
    record_count: int

    @property
    def file_type(self) -> FileType:
        return self.name.file_type

    @property
    def mine_code(self) -> str:
        return self.name.mine_code


def parse_file(name: str, data: bytes) -> ParsedFile | FileRejection:
    """Parse one national TXT file; never raises on bad input.

    The name must match the header (mine code) and the file must end with ``||``. A record
    that fails (field count, code length, time, number...) becomes a :class:`RecordProblem`;
    the others still parse. Fields are trimmed of surrounding whitespace, and blank space
    around records (line breaks some vendors add) is ignored.
    """
    file_name = parse_file_name(name)
    if not isinstance(file_name, FileName):
        return FileRejection(name, *file_name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return FileRejection(name, Reason.INVALID_UTF8, str(error))
    text = text.removeprefix(BOM).strip()
    if not text.endswith(FILE_END):
        return FileRejection(name, Reason.INCOMPLETE, "the file does not end with ||")
    segments = text.removesuffix(FILE_END).split(RECORD_END)
    if len(segments) > 1 and not segments[-1].strip():
        segments.pop()  # the ~ that ends the last record (or the header of an empty file)
    header = parse_header(file_name.file_type, segments[0].strip())
    if not isinstance(header, Header):
        return FileRejection(name, *header)
    if header.mine_code != file_name.mine_code:
        return FileRejection(
            name,
            Reason.MINE_CODE_MISMATCH,
            f"header mine code {header.mine_code} differs from the name's {file_name.mine_code}",
        )
    cls = RECORD_TYPES[file_name.file_type]
    width = len(field_specs(cls))
    records: list[Record] = []
    problems: list[RecordProblem] = []
    for index, segment in enumerate(segments[1:]):
        segment = segment.strip()
        parts = [part.strip() for part in segment.split(FIELD_SEP)]
        if len(parts) != width:
            reason = Reason.FULLWIDTH_SEPARATOR if FULLWIDTH_SEP in segment else None
            detail = f"{len(parts)} fields, a {file_name.file_type} record has {width}"
            problem = (reason or Reason.WRONG_FIELD_COUNT, detail)
        else:
            try:
                records.append(read_record(cls, parts))
                continue
            except FieldError as error:
                problem = (error.reason, error.detail)
        problems.append(RecordProblem(index, *problem, segment[:_MAX_PROBLEM_TEXT]))
    return ParsedFile(file_name, header, tuple(records), tuple(problems), len(segments) - 1)


def encode_file(header: Header, records: Sequence[Record]) -> tuple[str, bytes]:
    """The name and the bytes of a file (UTF-8, no BOM, no line breaks).

    The name's stamp is the header's upload time. Raises ValueError if a record is not of the
    header's file type.
    """
    cls = RECORD_TYPES[header.file_type]
    parts = [FIELD_SEP.join(header.fields()), RECORD_END]
    for record in records:
        if type(record) is not cls:
            raise ValueError(f"a {header.file_type} file cannot hold a {type(record).__name__}")
        parts.append(FIELD_SEP.join(write_record(record)))
        parts.append(RECORD_END)
    parts.append(FILE_END)
    return str(header.file_name), "".join(parts).encode("utf-8")
