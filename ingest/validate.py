"""Validation of parsed readings against the point registry: accept columns, refuse rows.

Every reading leaves here either in the accepted batch or as a :class:`Rejection` with its
reason; the checks are vectorised masks over the message's columns.
"""

from __future__ import annotations

import numpy as np
import orjson

from minewatch.batch import ReadingBatch
from minewatch.codes import STATUS_MASK, PointStatus
from minewatch.ingest.contract import SafetyMessage
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.time_limits import TimeLimits
from minewatch.registry import PointRegistry


class PointResolver:
    """Point codes -> ids for one registry snapshot.

    A substation sends the same list of points every cycle, so each distinct list is resolved
    once and remembered (bounded); a new registry snapshot gets a new resolver. Long lists
    (replayed traces) change every time and are resolved without being remembered. A list is
    resolved through a dict of its mine's codes, built at the mine's first list: the
    registry's pandas lookup costs ~100 us a call whatever the list's length, and after each
    registry refresh every substation's list (a city: thousands, of 4-9 points) is new again
    (issue 14).
    """

    MAX_LISTS = 50_000
    MAX_REMEMBERED_LENGTH = 512

    def __init__(self, registry: PointRegistry) -> None:
        self.registry = registry
        self._lists: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}
        self._ids: dict[str, dict[str, int]] = {}  # mine -> its point codes -> ids

    def resolve(self, mine: str, codes: list[str]) -> np.ndarray:
        if len(codes) > self.MAX_REMEMBERED_LENGTH:
            return self._lookup(mine, codes)
        key = (mine, tuple(codes))
        ids = self._lists.get(key)
        if ids is None:
            if len(self._lists) >= self.MAX_LISTS:
                self._lists.clear()
            ids = self._lists[key] = self._lookup(mine, codes)
        return ids

    def _lookup(self, mine: str, codes: list[str]) -> np.ndarray:
        """What ``registry.lookup`` gives (-1 for a code the mine does not define)."""
        ids = self._ids.get(mine)
        if ids is None:
            index = self.registry.codes_by_mine.get(mine)
            if index is None:
                return np.full(len(codes), -1, np.int32)
            ids = dict(zip(index.tolist(), self.registry.ids_by_mine[mine].tolist(), strict=True))
            self._ids[mine] = ids
        return np.fromiter((ids.get(code, -1) for code in codes), np.int32, len(codes))


def validate(
    message: SafetyMessage, points: PointResolver, now_us: int, limits: TimeLimits
) -> tuple[ReadingBatch, list[Rejection]]:
    """Validate one message (see :func:`validate_messages`)."""
    return validate_messages([message], points, now_us, limits)


def validate_messages(
    messages: list[SafetyMessage], points: PointResolver, now_us: int, limits: TimeLimits
) -> tuple[ReadingBatch, list[Rejection]]:
    """Validate the readings of many messages at once: one pass of masks over the write
    batch's columns (numpy's cost per call is paid once per batch, not once per message)."""
    registry = points.registry
    sizes = [len(m) for m in messages]
    point_id = _concat([points.resolve(m.mine, m.codes) for m in messages], np.int32)
    value = _concat([m.value for m in messages], np.float64)
    value_ok = _concat([m.value_ok for m in messages], np.bool_)
    status = _concat([m.status for m in messages], np.int64)
    time_us = _concat([m.time_us for m in messages], np.int64)
    known = point_id >= 0
    safe_id = np.where(known, point_id, 0)
    # A value the device itself marks abnormal (over range, substation or sensor fault) is kept:
    # it is evidence for the fault classification, not bad input.
    flagged_abnormal = (
        status & (PointStatus.OVER_RANGE | PointStatus.SUBSTATION_FAULT | PointStatus.SENSOR_FAULT)
    ) != 0
    with np.errstate(invalid="ignore"):
        low = registry.range_low[safe_id] if registry.size else np.full(len(value), np.nan)
        high = registry.range_high[safe_id] if registry.size else np.full(len(value), np.nan)
        outside = (value < low) | (value > high)

    # Checked in order; a reading is refused for the first reason that applies.
    checks: list[tuple[QuarantineReason, np.ndarray, str]] = [
        (QuarantineReason.UNKNOWN_POINT, ~known, "point code not defined for this mine"),
        (QuarantineReason.WRONG_TYPE, ~value_ok, "value is not a JSON number"),
        (QuarantineReason.NOT_FINITE, ~np.isfinite(value), "value is NaN or infinite"),
        (QuarantineReason.INVALID_STATUS, (status < 0) | (status > STATUS_MASK),
         "status is not a combination of the 8 defined bits"),
        (QuarantineReason.OUT_OF_RANGE, outside & ~flagged_abnormal,
         "value outside the sensor's range and not flagged over-range or faulty"),
        *limits.checks(time_us, now_us),
    ]  # fmt: skip
    refused = np.zeros(len(value), bool)
    rejections: list[Rejection] = []
    if np.logical_or.reduce([mask for _, mask, _ in checks]).any():
        starts = np.cumsum([0, *sizes])
        for reason, mask, detail in checks:
            new = mask & ~refused
            if new.any():
                rows = np.flatnonzero(new)
                owner = np.searchsorted(starts, rows, side="right") - 1
                rejections.extend(
                    _reject_row(messages[m], int(r - starts[m]), reason, detail)
                    for r, m in zip(rows.tolist(), owner.tolist(), strict=True)
                )
                refused |= new
    accepted = ~refused
    batch = ReadingBatch(
        time_us=time_us[accepted],
        point_id=point_id[accepted],
        value=value[accepted],
        status=status[accepted].astype(np.int16),
        flags=np.zeros(int(accepted.sum()), np.int16),
    )
    return batch, rejections


def _concat(columns: list[np.ndarray], dtype: type) -> np.ndarray:
    if not columns:
        return np.empty(0, dtype)
    return np.concatenate(columns) if len(columns) > 1 else columns[0]


def _reject_row(message: SafetyMessage, i: int, reason: QuarantineReason, detail: str) -> Rejection:
    """A refused reading, kept verbatim with its message's identity (rare: no need for speed)."""
    return Rejection(
        source=message.source,
        reason=reason,
        detail=f"{detail} (point {message.codes[i]!s:.64})",
        payload=orjson.dumps(
            {
                "mine": message.mine,
                "substation": message.substation,
                "boot": message.boot,
                "seq": message.seq,
                "time_us": int(message.time_us[i]),
                "point": message.codes[i],
                "value": message.raw_values[i],
                "status": int(message.status[i]),
            }
        ),
    )
