"""How far from the clock a reading or a row may be stamped: one rule for every feed. Pure."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from minewatch.ingest.quarantine import QuarantineReason


@dataclass(frozen=True, slots=True)
class TimeLimits:
    """Times outside [now - max_past_age, now + max_future_skew] are refused."""

    max_future_skew_us: int
    max_past_age_us: int

    def checks(
        self, time_us: npt.NDArray[np.int64], now_us: int
    ) -> list[tuple[QuarantineReason, npt.NDArray[np.bool_], str]]:
        """The two refusals as (reason, mask of refused times, detail), future first."""
        return [
            (QuarantineReason.TIME_IN_FUTURE, time_us > now_us + self.max_future_skew_us,
             "timestamp too far in the future"),
            (QuarantineReason.TIME_TOO_OLD, time_us < now_us - self.max_past_age_us,
             "timestamp older than the accepted age"),
        ]  # fmt: skip
