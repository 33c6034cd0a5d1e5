"""Alarm episodes: one record per alarm from raise to clear, with the YCBJ statistics.

An evaluation yields :class:`EpisodeChange` records: an episode opened in the batch (insert),
or more readings / the end of an episode opened earlier (update). Statistics are computed per
run of active rows, grouped with numpy; runs are few (alarms are rare), readings many.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class EpisodeChange:
    point_id: int
    rule: str
    abnormal_type: str
    opened: bool  # True: the episode starts in this batch (insert); False: it continues
    started_at_us: int | None  # set when opened
    threshold: float | None  # set level that was crossed, when opened
    start_value: float | None
    ended_at_us: int | None  # set when the episode ends in this batch
    count: int  # readings of the episode in this batch (0 for an end-only change)
    value_sum: float
    max_value: float
    max_at_us: int
    min_value: float
    min_at_us: int


def episode_changes(
    rule: str,
    abnormal_type: str,
    point_id: npt.NDArray[np.int32],
    time_us: npt.NDArray[np.int64],
    value: npt.NDArray[np.float64],
    group_start: npt.NDArray[np.intp],
    state: npt.NDArray[np.bool_],
    before: npt.NDArray[np.bool_],
    set_level: npt.NDArray[np.float64],
) -> list[EpisodeChange]:
    """Changes for one rule over rows sorted by (point, time)."""
    n = len(state)
    if n == 0 or not (state.any() or before.any()):
        return []
    idx = np.arange(n)
    run_start = state & ~before  # raise, or first row of a group continuing an open episode
    run_start |= state & (group_start == idx)
    run_first = np.flatnonzero(run_start)
    changes: list[EpisodeChange] = []
    if len(run_first):
        run_id = np.cumsum(run_start) - 1
        rows = np.flatnonzero(state)
        ids = run_id[rows]
        last = _last_per_run(ids, rows, len(run_first))
        values = value[rows]
        counts = np.bincount(ids, minlength=len(run_first))
        sums = np.bincount(ids, weights=values, minlength=len(run_first))
        argmax = _arg_extreme(ids, values, len(run_first), np.argmax)
        argmin = _arg_extreme(ids, values, len(run_first), np.argmin)
        for k, first in enumerate(run_first.tolist()):
            end = int(last[k]) + 1
            ended = end < n and group_start[end] == group_start[first]
            opened = not before[first]
            pid = int(point_id[first])
            changes.append(
                EpisodeChange(
                    point_id=pid,
                    rule=rule,
                    abnormal_type=abnormal_type,
                    opened=opened,
                    started_at_us=int(time_us[first]) if opened else None,
                    threshold=float(set_level[pid]) if opened else None,
                    start_value=float(value[first]) if opened else None,
                    ended_at_us=int(time_us[end]) if ended else None,
                    count=int(counts[k]),
                    value_sum=float(sums[k]),
                    max_value=float(value[rows[argmax[k]]]),
                    max_at_us=int(time_us[rows[argmax[k]]]),
                    min_value=float(value[rows[argmin[k]]]),
                    min_at_us=int(time_us[rows[argmin[k]]]),
                )
            )
    # Episodes open before the batch that end on the group's very first row.
    for row in np.flatnonzero(before & ~state & (group_start == idx)).tolist():
        changes.append(
            EpisodeChange(
                point_id=int(point_id[row]),
                rule=rule,
                abnormal_type=abnormal_type,
                opened=False,
                started_at_us=None,
                threshold=None,
                start_value=None,
                ended_at_us=int(time_us[row]),
                count=0,
                value_sum=0.0,
                max_value=float("-inf"),
                max_at_us=0,
                min_value=float("inf"),
                min_at_us=0,
            )
        )
    return changes


def _last_per_run(ids: np.ndarray, rows: np.ndarray, runs: int) -> np.ndarray:
    last = np.full(runs, -1, np.int64)
    np.maximum.at(last, ids, rows)
    return last


def _arg_extreme(ids: np.ndarray, values: np.ndarray, runs: int, pick: object) -> np.ndarray:
    """Position (within ``values``) of each run's maximum or minimum, first occurrence."""
    order = np.lexsort((-values if pick is np.argmax else values, ids))
    first_of_run = np.ones(len(order), bool)
    first_of_run[1:] = ids[order][1:] != ids[order][:-1]
    out = np.empty(runs, np.int64)
    out[ids[order][first_of_run]] = order[first_of_run]
    return out
