"""The one batch type every source produces and every stage consumes: columns, not objects."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

#: Timestamps travel as int64 microseconds since the Unix epoch (UTC).
TimeArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class ReadingBatch:
    """Equal-length columns of validated readings, one row per reading.

    ``point_id`` is the database id of the point (``points.id``); ``status`` holds the
    测点状态 bits of the source; ``flags`` holds minewatch's own bits (:class:`ReadingFlag`).
    """

    time_us: TimeArray
    point_id: npt.NDArray[np.int32]
    value: npt.NDArray[np.float64]
    status: npt.NDArray[np.int16]
    flags: npt.NDArray[np.int16]

    def __post_init__(self) -> None:
        n = len(self.time_us)
        for name in ("point_id", "value", "status", "flags"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"column {name} has {len(getattr(self, name))} rows, expected {n}")

    def __len__(self) -> int:
        return len(self.time_us)

    @classmethod
    def empty(cls) -> ReadingBatch:
        return cls(
            np.empty(0, np.int64),
            np.empty(0, np.int32),
            np.empty(0, np.float64),
            np.empty(0, np.int16),
            np.empty(0, np.int16),
        )

    @classmethod
    def concat(cls, batches: list[ReadingBatch]) -> ReadingBatch:
        if not batches:
            return cls.empty()
        if len(batches) == 1:
            return batches[0]
        return cls(
            np.concatenate([b.time_us for b in batches]),
            np.concatenate([b.point_id for b in batches]),
            np.concatenate([b.value for b in batches]),
            np.concatenate([b.status for b in batches]),
            np.concatenate([b.flags for b in batches]),
        )

    def with_flags(self, flags: npt.NDArray[np.int16]) -> ReadingBatch:
        return ReadingBatch(self.time_us, self.point_id, self.value, self.status, flags)

    def take(self, index: npt.NDArray[np.intp] | npt.NDArray[np.bool_]) -> ReadingBatch:
        return ReadingBatch(
            self.time_us[index],
            self.point_id[index],
            self.value[index],
            self.status[index],
            self.flags[index],
        )
