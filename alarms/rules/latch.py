"""Vectorised set/clear latches (hysteresis) over many points' series at once.

Rows are sorted by (point, time); ``group_start[i]`` is the first row of row i's point. The
state after row i is "the last set row of the group is at or after the last clear row", or the
point's state from before the batch when neither occurred yet: two ``np.maximum.accumulate``
passes instead of a Python loop per reading.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

BoolArray = npt.NDArray[np.bool_]
IndexArray = npt.NDArray[np.intp]


def group_starts(sorted_keys: npt.NDArray[np.integer]) -> IndexArray:
    """For each row of a key-sorted column, the index of the first row with the same key."""
    n = len(sorted_keys)
    idx = np.arange(n)
    is_start = np.ones(n, bool)
    is_start[1:] = sorted_keys[1:] != sorted_keys[:-1]
    return np.maximum.accumulate(np.where(is_start, idx, 0))


def latch(
    group_start: IndexArray, set_rows: BoolArray, clear_rows: BoolArray, initial: BoolArray
) -> BoolArray:
    """State after each row. A row that both sets and clears (inconsistent thresholds) sets:
    a missed alarm is worse than a spurious one."""
    idx = np.arange(len(set_rows))
    last_set = np.maximum.accumulate(np.where(set_rows, idx, -1)) if len(idx) else idx
    last_clear = np.maximum.accumulate(np.where(clear_rows, idx, -1)) if len(idx) else idx
    set_in_group = last_set >= group_start
    clear_in_group = last_clear >= group_start
    return np.where(
        set_in_group, last_set >= last_clear, np.where(clear_in_group, False, initial)
    ).astype(bool)


def previous_state(group_start: IndexArray, state: BoolArray, initial: BoolArray) -> BoolArray:
    """The state before each row: the previous row's state, or ``initial`` at a group's start."""
    before = np.empty_like(state)
    if len(state):
        before[0] = initial[0]
        before[1:] = state[:-1]
        at_start = group_start == np.arange(len(state))
        before[at_start] = initial[at_start]
    return before
