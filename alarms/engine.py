"""The alarm engine: evaluates a batch against every rule without mutating its state.

``evaluate`` returns an :class:`Evaluation` (flags for the batch, episode changes and the state
after it); the caller stores the batch and the changes in one transaction and only then calls
``commit``. A failed write can therefore be retried with the engine unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from alarms.episodes import EpisodeChange, episode_changes
from alarms.rules.latch import group_starts, latch, previous_state
from alarms.rules.thresholds import ThresholdRule, threshold_rules
from ingest.batch import ReadingBatch
from minewatch.codes import ReadingFlag
from minewatch.registry import PointRegistry

_NEVER = np.iinfo(np.int64).min


@dataclass(frozen=True, slots=True)
class Evaluation:
    flags: npt.NDArray[np.int16]  # per row of the evaluated batch, in its original order
    changes: list[EpisodeChange]
    active: dict[str, npt.NDArray[np.bool_]]
    last_time_us: npt.NDArray[np.int64]


@dataclass
class AlarmEngine:
    """Per-point alarm state, indexed by point id; one engine owns the points of its mines."""

    registry: PointRegistry
    rules: tuple[ThresholdRule, ...] = ()
    active: dict[str, npt.NDArray[np.bool_]] = field(default_factory=dict)
    last_time_us: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))

    def __post_init__(self) -> None:
        self.use_registry(self.registry)

    def use_registry(self, registry: PointRegistry) -> None:
        """Take new point metadata (thresholds may have changed); keep the state."""
        self.registry = registry
        self.rules = threshold_rules(registry)
        size = registry.size
        for rule in self.rules:
            self.active[rule.name] = _grown(self.active.get(rule.name), size, False)
        self.last_time_us = _grown(self.last_time_us, size, _NEVER)

    def restore(
        self, open_episodes: list[tuple[int, str]], last_times: list[tuple[int, int]]
    ) -> None:
        """Rebuild state from the database: open episodes and each point's latest reading."""
        for point_id, rule in open_episodes:
            if rule in self.active and point_id < len(self.active[rule]):
                self.active[rule][point_id] = True
        for point_id, time_us in last_times:
            if point_id < len(self.last_time_us):
                self.last_time_us[point_id] = time_us

    def evaluate(self, batch: ReadingBatch) -> Evaluation:
        late = late_rows(batch.point_id, batch.time_us, self.last_time_us)
        flags = batch.flags.copy()
        flags[late] |= ReadingFlag.LATE
        live_rows = np.flatnonzero(~late)
        # Live rows of a point arrive in time order (that is what "not late" means), so
        # sorting them by (point, time) keeps their arrival order.
        order = live_rows[np.lexsort((batch.time_us[live_rows], batch.point_id[live_rows]))]
        pid_live = batch.point_id[order]
        t_live = batch.time_us[order]
        v_live = batch.value[order]
        s_live = batch.status[order]
        starts_live = group_starts(pid_live)
        changes: list[EpisodeChange] = []
        active: dict[str, npt.NDArray[np.bool_]] = {}
        for rule in self.rules:
            set_rows, clear_rows = rule.masks(pid_live, v_live, s_live)
            initial = self.active[rule.name][pid_live]
            state = latch(starts_live, set_rows, clear_rows, initial)
            before = previous_state(starts_live, state, initial)
            changes.extend(
                episode_changes(
                    rule.name,
                    rule.abnormal_type.value,
                    pid_live,
                    t_live,
                    v_live,
                    starts_live,
                    state,
                    before,
                    rule.set_level,
                )
            )
            after = self.active[rule.name].copy()
            last_row = _last_rows(starts_live)
            after[pid_live[last_row]] = state[last_row]
            active[rule.name] = after
        last_time = self.last_time_us.copy()
        if len(pid_live):
            np.maximum.at(last_time, pid_live, t_live)
        return Evaluation(flags, changes, active, last_time)

    def commit(self, evaluation: Evaluation) -> None:
        """Adopt the state after a batch, once the batch and its changes are durable."""
        self.active = evaluation.active
        self.last_time_us = evaluation.last_time_us


def _grown(array: np.ndarray | None, size: int, fill: object) -> np.ndarray:
    dtype = np.bool_ if isinstance(fill, bool) else np.int64
    out = np.full(size, fill, dtype=dtype)
    if array is not None:
        keep = min(len(array), size)
        out[:keep] = array[:keep]
    return out


def _last_rows(starts: np.ndarray) -> np.ndarray:
    n = len(starts)
    if n == 0:
        return np.empty(0, np.intp)
    is_last = np.ones(n, bool)
    is_last[:-1] = starts[1:] != starts[:-1]
    return np.flatnonzero(is_last)


def late_rows(
    point_id: npt.NDArray[np.int32],
    time_us: npt.NDArray[np.int64],
    last_time_us: npt.NDArray[np.int64],
) -> npt.NDArray[np.bool_]:
    """Rows (in arrival order) not later than an earlier reading of their point: one already
    evaluated (``last_time_us``) or one that arrived before them in this batch.

    Event time decides the alarm state, so a backfilled reading must not replay history as if
    it were live. Per point, a running maximum of the times seen so far in arrival order: the
    points are grouped by a stable sort, and each group's dense time ranks are shifted by the
    group number times n, so one ``np.maximum.accumulate`` never carries across groups.
    """
    n = len(time_us)
    late = np.zeros(n, bool)
    if n == 0:
        return late
    order = np.argsort(point_id, kind="stable")
    pid = point_id[order]
    t = time_us[order]
    is_start = np.ones(n, bool)
    is_start[1:] = pid[1:] != pid[:-1]
    group = np.cumsum(is_start) - 1
    _, rank = np.unique(t, return_inverse=True)
    key = rank.astype(np.int64) + group.astype(np.int64) * n
    running = np.maximum.accumulate(key)
    before = np.empty(n, np.int64)
    before[0] = -1
    before[1:] = running[:-1]
    before[is_start] = -1
    late[order] = (key <= before) | (t <= last_time_us[pid])
    return late
