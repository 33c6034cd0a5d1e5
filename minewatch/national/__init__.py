"""The national networking TXT files (42号文附件2 style) as a pure codec.

Shared by simulators (which write files) and ingest (which reads them); see
docs/national-files.md. Everything here is free of I/O.
"""

from minewatch.national.codec import (
    RECORD_TYPES,
    FileRejection,
    ParsedFile,
    RecordProblem,
    encode_file,
    parse_file,
)
from minewatch.national.fields import Record
from minewatch.national.format import (
    CHINA_TZ,
    FileName,
    FileType,
    Header,
    Reason,
    format_time,
    parse_file_name,
    parse_time,
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
    ShaftFlag,
    TrackPoint,
)
from minewatch.national.relations import Relation, format_relations, parse_relations
from minewatch.national.safety import (
    CddyRecord,
    CdssRecord,
    FzdyRecord,
    FzssRecord,
    StationPowerState,
    StationRunState,
    TjsjRecord,
    YcbjRecord,
)

__all__ = [
    "CHINA_TZ",
    "RECORD_TYPES",
    "CddyRecord",
    "CdssRecord",
    "FileName",
    "FileRejection",
    "FileType",
    "FzdyRecord",
    "FzssRecord",
    "Header",
    "JzssRecord",
    "ParsedFile",
    "Reason",
    "Record",
    "RecordProblem",
    "Relation",
    "RycsRecord",
    "RycyRecord",
    "RyjzRecord",
    "RyqjRecord",
    "RyqyRecord",
    "RyssRecord",
    "RyxxRecord",
    "RyxzRecord",
    "ShaftFlag",
    "StationPowerState",
    "StationRunState",
    "TjsjRecord",
    "TrackPoint",
    "YcbjRecord",
    "encode_file",
    "format_relations",
    "format_time",
    "parse_file",
    "parse_file_name",
    "parse_relations",
    "parse_time",
]
