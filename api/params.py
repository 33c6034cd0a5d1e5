"""Parameter types shared by the routers: bounded, so that no input reaches the database in a
form it cannot take (a NUL byte, a lone surrogate, an integer wider than the column, a time
PostgreSQL or Python cannot represent, an infinite duration).

Times must be ISO 8601 strings with an offset: a bare number is not a time, and a time without
an offset is ambiguous (422).
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass
from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator, BeforeValidator, Field, TypeAdapter

from minewatch.api.errors import invalid

INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1
#: Earliest and latest time any parameter may name: outside, shifting by a day or a shift
#: (shift grids, local-time periods) would leave the range Python and PostgreSQL share.
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
#: The longest duration any parameter may give (a bucket, a step, 持续时长): ten years.
MAX_DURATION = dt.timedelta(days=3653)
MAX_LIMIT = 10_000


def _clean_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


def _iso_instant(value: object) -> object:
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("must be an ISO 8601 date-time with an offset") from None
    else:
        raise ValueError("must be an ISO 8601 date-time string with an offset")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("needs a UTC offset (e.g. +08:00 or Z)")
    if not EARLIEST <= parsed <= LATEST:
        raise ValueError(f"must lie between {EARLIEST:%Y} and {LATEST:%Y}")
    return parsed


_CALENDAR = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?$")


def _no_calendar_units(value: object) -> object:
    """Months and years have no fixed length: "P1M" is not 30 days."""
    if isinstance(value, str) and re.search(r"^P[^T]*[YM]", value):
        raise ValueError("months and years vary in length: give days (e.g. P30D)")
    return value


def _bounded_duration(value: dt.timedelta) -> dt.timedelta:
    if value <= dt.timedelta(0) or value > MAX_DURATION:
        raise ValueError("must be positive and at most ten years")
    return value


def _known_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(_clean_text(value))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError("is not a known IANA time zone (e.g. Asia/Shanghai)") from None
    return value


#: Free text: no NUL, valid Unicode, bounded.
Text = Annotated[str, Field(max_length=2000), AfterValidator(_clean_text)]
ShortText = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_clean_text)]
#: A time: ISO 8601 with an offset, between 1970 and 2200.
Instant = Annotated[
    dt.datetime,
    BeforeValidator(_iso_instant),
    Field(json_schema_extra={"format": "date-time", "type": "string"}),
]
#: A positive duration of at most ten years (ISO 8601, e.g. PT1M).
Duration = Annotated[
    dt.timedelta, BeforeValidator(_no_calendar_units), AfterValidator(_bounded_duration)
]


@dataclass(frozen=True, slots=True)
class Bucket:
    """A bucket width: a fixed duration, or whole calendar months (P1M, P3M, P1Y), which
    TimescaleDB buckets by the calendar of the time zone."""

    iso: str  # as given, an ISO 8601 duration PostgreSQL reads as an interval
    shortest: dt.timedelta  # the shortest a bucket can be (a month: 28 days)


def parse_bucket(value: str) -> Bucket:
    calendar = _CALENDAR.match(value)
    if calendar and value != "P":
        months = 12 * int(calendar[1] or 0) + int(calendar[2] or 0)
        if not 0 < months <= 120:
            raise ValueError("give 1 to 120 months")
        return Bucket(value, dt.timedelta(days=28 * months))
    if re.search(r"^P[^T]*[YM]", value):
        raise ValueError("months or years cannot be mixed with days or hours")
    width = _bounded_duration(TypeAdapter(dt.timedelta).validate_python(value))
    return Bucket(value, width)


Zone = Annotated[str, Field(max_length=64), AfterValidator(_known_zone)]

MineCode = Annotated[
    str, Path(pattern=r"^[0-9]{12}$", description="12-digit mine code (矿井编码).")
]
MineFilter = Annotated[
    str | None, Query(pattern=r"^[0-9]{12}$", description="Only this mine (12 digits).")
]
PointId = Annotated[int, Path(ge=1, le=INT4_MAX)]
AlarmId = Annotated[int, Path(ge=1, le=INT8_MAX)]
CodeInPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows at most.")]
Start = Annotated[Instant, Query(description="Inclusive, ISO 8601 with offset.")]
End = Annotated[Instant, Query(description="Exclusive, ISO 8601 with offset; >= start.")]


def check_range(start: dt.datetime, end: dt.datetime) -> None:
    """[start, end) must not run backwards (an empty range is allowed and answers nothing)."""
    if end < start:
        raise invalid(("query", "end"), "end must not be before start")
