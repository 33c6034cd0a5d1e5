"""Conversions between the int64 microseconds that travel in batches and datetimes."""

from __future__ import annotations

import datetime as dt

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def us_to_datetime(us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=us)


def datetime_to_us(stamp: dt.datetime) -> int:
    if stamp.tzinfo is None:
        raise ValueError("naive datetime: a UTC offset is required")
    delta = stamp - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def now_us() -> int:
    return datetime_to_us(dt.datetime.now(dt.UTC))
