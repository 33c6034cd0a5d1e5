"""Why input was refused: one enum of reasons, and the record kept for each refusal."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class QuarantineReason(enum.StrEnum):
    # whole message
    PAYLOAD_TOO_LARGE = "payload_too_large"
    INVALID_UTF8 = "invalid_utf8"
    MALFORMED_JSON = "malformed_json"
    SCHEMA_VIOLATION = "schema_violation"
    UNSUPPORTED_VERSION = "unsupported_version"
    TOPIC_MISMATCH = "topic_mismatch"
    UNKNOWN_TOPIC = "unknown_topic"
    INVALID_METADATA = "invalid_metadata"
    DATABASE_REJECTED = "database_rejected"
    # single reading
    UNKNOWN_POINT = "unknown_point"
    WRONG_TYPE = "wrong_type"
    NOT_FINITE = "not_finite"
    OUT_OF_RANGE = "out_of_range"
    INVALID_STATUS = "invalid_status"
    TIME_IN_FUTURE = "time_in_future"
    TIME_TOO_OLD = "time_too_old"
    # personnel / video feeds (ingest/feeds): one row of a columnar batch
    INVALID_CODE = "invalid_code"  # card/area/station code of the wrong length or another mine
    # national TXT files (ingest/sources/national): one record the file codec refused
    INVALID_RECORD = "invalid_record"
    # Sparkplug B (ingest/sources/sparkplug): a whole message, or one metric of it
    MALFORMED_PROTOBUF = "malformed_protobuf"  # not a decodable Sparkplug B payload
    SPARKPLUG_VIOLATION = "sparkplug_violation"  # decodable, but breaks the specification
    NO_BIRTH = "no_birth"  # data from an edge node or device whose birth is not known
    UNKNOWN_METRIC = "unknown_metric"  # alias or name not defined by the current birth
    UNMAPPED_METRIC = "unmapped_metric"  # defined, but not in its source's metric map
    STALE_DEATH = "stale_death"  # an NDEATH of an earlier session (bdSeq): ignored, kept


@dataclass(frozen=True, slots=True)
class Rejection:
    """Input kept aside: where it came from, why, and the exact bytes (or the one reading)."""

    source: str
    reason: QuarantineReason
    detail: str
    payload: bytes
    #: (sequence source, boot, seq) of a refused message that carried them: it arrived, so
    #: it is no gap in its source's sequence
    numbered: tuple[str, int, int] | None = None
