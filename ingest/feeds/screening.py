"""Row screening of the personnel/video batches: a row whose codes or time are invalid is
refused alone, the others are kept (columns stay aligned). Pure."""

from __future__ import annotations

import numpy as np
import orjson

from minewatch.ingest.feeds.contract import AREA_LENGTH, CARD_LENGTH, STATION_LENGTH, FeedBatch
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.time_limits import TimeLimits


def _code_ok(codes: np.ndarray, mine: str, length: int, nullable: bool = False) -> np.ndarray:
    return np.fromiter(
        (
            (c is None and nullable)
            or (isinstance(c, str) and len(c) == length and c.startswith(mine))
            for c in codes
        ),
        dtype=bool,
        count=len(codes),
    )


def screen(batch: FeedBatch, now_us: int, limits: TimeLimits) -> tuple[FeedBatch, list[Rejection]]:
    """Refuse the rows with invalid codes or times; keep the others (columns stay aligned)."""
    c = batch.columns
    code_ok = np.ones(len(batch), bool)
    if "cards" in c:
        code_ok &= _code_ok(c["cards"], batch.mine, CARD_LENGTH)
    if "stations" in c:
        code_ok &= _code_ok(c["stations"], batch.mine, STATION_LENGTH)
    if "areas" in c:
        code_ok &= _code_ok(c["areas"], batch.mine, AREA_LENGTH, nullable=batch.kind == "events")
    for name in ("cameras", "devices"):
        if name in c:
            code_ok &= np.fromiter((0 < len(x) <= 64 for x in c[name]), bool, len(batch))
    times = c["time_us"]
    checks = [
        (QuarantineReason.INVALID_CODE, ~code_ok,
         f"code of wrong length or not of mine {batch.mine}"),
        *limits.checks(times, now_us),
    ]  # fmt: skip
    refused = np.zeros(len(batch), bool)
    rejections = []
    for reason, mask, detail in checks:
        new = mask & ~refused
        for i in np.flatnonzero(new).tolist():
            row = {"mine": batch.mine, "kind": batch.kind, "boot": batch.boot, "seq": batch.seq}
            row.update(batch.row(i))
            rejections.append(Rejection(batch.source, reason, detail, orjson.dumps(row)))
        refused |= new
    return (batch.take(~refused) if refused.any() else batch), rejections
