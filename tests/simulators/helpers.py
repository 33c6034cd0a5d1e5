"""Shared helpers for the simulator tests: run a mine and keep every array."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from minewatch.simulators.config import MineConfig, example_mine_path, load_mine_config
from minewatch.simulators.generator import generate_mine
from minewatch.simulators.model import SimulatedMine


@dataclass(frozen=True)
class Run:
    t: npt.NDArray[np.float64]
    value: npt.NDArray[np.float64]
    status: npt.NDArray[np.int16]
    present: npt.NDArray[np.bool_]

    def rows(self, start_s: float, end_s: float) -> slice:
        return slice(int(np.searchsorted(self.t, start_s)), int(np.searchsorted(self.t, end_s)))


def run(mine: SimulatedMine, cycles: int) -> Run:
    blocks = []
    done = 0
    while done < cycles:
        block = mine.next_block(cycles - done)
        blocks.append(block)
        done += len(block)
    return Run(
        np.concatenate([b.offset_s for b in blocks]),
        np.vstack([b.value for b in blocks]),
        np.vstack([b.status for b in blocks]),
        np.vstack([b.present for b in blocks]),
    )


def showcase_mine(rate_per_hour: float = 0.0) -> SimulatedMine:
    """One district (76 points) with one scenario of every kind in its first ~2.5 hours."""
    return SimulatedMine(
        generate_mine("141024900001", 80, showcase=True, rate_per_hour=rate_per_hour)
    )


#: A day shift (8:00-16:00 from the small mine's start) with every personnel and video kind:
#: the overtime worker and the shift's leader who stays with him give two overtime labels.
FEED_DAY: list[dict[str, Any]] = [
    {"kind": "area_overcrowding", "working": "1201综采工作面", "start_s": 3600,
     "duration_s": 1200, "extra": 2},
    {"kind": "restricted_area", "start_s": 6000, "duration_s": 600},
    {"kind": "camera_offline", "working": "1201综采工作面", "start_s": 6120, "duration_s": 300},
    {"kind": "mine_overcrowding", "start_s": 9000, "duration_s": 900},
    {"kind": "sos", "start_s": 12000, "duration_s": 290, "person": 20},
    {"kind": "overtime", "start_s": 20000, "duration_s": 3600},
    {"kind": "leader_absent", "start_s": 30000, "duration_s": 60},
]  # fmt: skip


def feed_day_config() -> MineConfig:
    """The small example mine with :data:`FEED_DAY` as its feed scenarios."""
    data = load_mine_config(example_mine_path("small")).model_dump(mode="json")
    data["feed_scenarios"] = FEED_DAY
    return MineConfig.model_validate(data)
