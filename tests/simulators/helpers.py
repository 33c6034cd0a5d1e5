"""Shared helpers for the simulator tests: run a mine and keep every array."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulators.generator import generate_mine
from simulators.model import SimulatedMine


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
