"""The run machinery's values: evaluated rows, a rule's run state per point, the table of runs
a batch saw, a rule's outcome and its parameters, and the statistics they carry.

:mod:`alarms.rules.runs` computes them; every rule family reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from minewatch.alarms.small import some

NEVER = np.iinfo(np.int64).min
#: ``RunState.near`` for a run whose history is unknown (restored after a restart).
UNKNOWN_HISTORY = -(2**40)
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
#: (count, sum, max, max_at, min, min_at) per run.
Stats = tuple[IntArray, FloatArray, FloatArray, IntArray, FloatArray, IntArray]


@dataclass(frozen=True, slots=True)
class Rows:
    """Evaluated rows sorted by (point, time), with their per-point group structure."""

    pid: npt.NDArray[np.int32]
    t: IntArray
    v: FloatArray
    s: npt.NDArray[np.int16]
    gs: npt.NDArray[np.intp]  # first row of each row's point
    first: BoolArray  # row is its point's first in the batch
    last_rows: npt.NDArray[np.intp]  # last row of each point present
    single: bool = False  # every row is its point's only one (``gs`` and ``last_rows``: 0..n-1)

    @classmethod
    def of(
        cls,
        pid: npt.NDArray[np.int32],
        t: IntArray,
        v: FloatArray,
        s: npt.NDArray[np.int16] | None = None,
    ) -> Rows:
        n = len(pid)
        first = np.ones(n, bool)
        first[1:] = pid[1:] != pid[:-1]
        starts = first.nonzero()[0]  # (np.flatnonzero: slower on a small batch)
        gs = np.repeat(starts, np.diff(np.append(starts, n)))
        last = np.ones(n, bool)
        last[:-1] = first[1:]
        status = np.zeros(n, np.int16) if s is None else s
        return cls(pid, t, v, status, gs, first, last.nonzero()[0])

    @classmethod
    def distinct(
        cls, pid: npt.NDArray[np.int32], t: IntArray, v: FloatArray, s: npt.NDArray[np.int16]
    ) -> Rows:
        """Rows of distinct points in ascending order (one polling cycle): each its point's
        first and last row."""
        n = len(pid)
        index = np.arange(n)
        return cls(pid, t, v, s, index, ~np.zeros(n, bool), index, True)  # (np.ones: slower)

    def __len__(self) -> int:
        return len(self.pid)

    def take(self, mask: BoolArray) -> Rows:
        return Rows.of(self.pid[mask], self.t[mask], self.v[mask], self.s[mask])


@dataclass(frozen=True, slots=True)
class RunState:
    """Per point id: the open run (if any) of one rule."""

    raw: BoolArray  # hysteresis latch on: a run is open
    active: BoolArray  # the run has raised: an episode is open
    start_us: IntArray
    start_value: FloatArray
    eligible: IntArray  # eligible readings in the run so far
    count: IntArray  # readings in the run's statistics
    total: FloatArray
    vmax: FloatArray
    vmax_at: IntArray
    vmin: FloatArray
    vmin_at: IntArray
    near: IntArray  # readings at a standard-gas level (calibration shape)
    zero_us: IntArray  # latest zero-gas reading before the run began (NEVER: none)
    #: Start of the raw latch's current stretch (NEVER: off): ``start_us``, unless the run
    #: continued through an off-delay dip. The cut that 馈电 checks (alarms/rules/feed.py).
    latch_us: IntArray
    #: Off-delay: the raw latch cleared at this time and no set row has followed yet; the run
    #: (and its episode) stays open until a set row continues it or the off-delay has passed
    #: (NEVER: not pending). ``raw`` is False meanwhile.
    pending_clear_us: IntArray
    # Statistics of the readings since that clear (the dip): the run's only if it continues.
    pending_count: IntArray
    pending_total: FloatArray
    pending_max: FloatArray
    pending_max_at: IntArray
    pending_min: FloatArray
    pending_min_at: IntArray
    pending_near: IntArray

    @classmethod
    def empty(cls, size: int) -> RunState:
        return cls(
            raw=np.zeros(size, bool),
            active=np.zeros(size, bool),
            start_us=np.full(size, NEVER, np.int64),
            start_value=np.full(size, np.nan),
            eligible=np.zeros(size, np.int64),
            count=np.zeros(size, np.int64),
            total=np.zeros(size),
            vmax=np.full(size, -np.inf),
            vmax_at=np.zeros(size, np.int64),
            vmin=np.full(size, np.inf),
            vmin_at=np.zeros(size, np.int64),
            near=np.zeros(size, np.int64),
            zero_us=np.full(size, NEVER, np.int64),
            latch_us=np.full(size, NEVER, np.int64),
            pending_clear_us=np.full(size, NEVER, np.int64),
            pending_count=np.zeros(size, np.int64),
            pending_total=np.zeros(size),
            pending_max=np.full(size, -np.inf),
            pending_max_at=np.zeros(size, np.int64),
            pending_min=np.full(size, np.inf),
            pending_min_at=np.zeros(size, np.int64),
            pending_near=np.zeros(size, np.int64),
        )

    def grown(self, size: int) -> RunState:
        """The same state for ``size`` points (new points idle; extra points dropped)."""
        out = RunState.empty(size)
        keep = min(size, len(self.raw))
        for f in fields(self):
            getattr(out, f.name)[:keep] = getattr(self, f.name)[:keep]
        return out

    def copy(self) -> RunState:
        return RunState(*(getattr(self, f.name).copy() for f in fields(self)))

    def any_open(self) -> bool:
        """Some point has a run open (latched, or pending its clear)."""
        return some(self.raw) or some(self.pending_clear_us != NEVER)

    @property
    def open(self) -> BoolArray:
        """Per point id: a run is open (its raw latch is on, or it is pending its clear)."""
        if not some(self.raw) and not some(self.pending):
            return self.raw
        return self.raw | self.pending

    @property
    def pending(self) -> BoolArray:
        """Per point id: the run is pending its clear (off-delay)."""
        pending: BoolArray = self.pending_clear_us != NEVER
        return pending

    def pending_stats(self, points: npt.NDArray[np.integer[Any]], take: BoolArray) -> Stats:
        """The dip statistics of ``points`` where ``take`` (empty elsewhere)."""
        return (
            np.where(take, self.pending_count[points], 0),
            np.where(take, self.pending_total[points], 0.0),
            np.where(take, self.pending_max[points], -np.inf),
            np.where(take, self.pending_max_at[points], 0),
            np.where(take, self.pending_min[points], np.inf),
            np.where(take, self.pending_min_at[points], 0),
        )

    def restore_open(self, point_id: int, started_at_us: int) -> None:
        """Mark an episode open before a restart; its statistics so far are in the database."""
        if 0 <= point_id < len(self.raw):
            self.raw[point_id] = self.active[point_id] = True
            self.start_us[point_id] = self.latch_us[point_id] = started_at_us
            self.eligible[point_id] = 1
            self.near[point_id] = UNKNOWN_HISTORY


@dataclass(frozen=True, slots=True)
class RunTable:
    """One row per run seen in a batch (including runs that ended on the batch's first row).

    ``db_*`` statistics are what the episode row must add: everything since the run started
    when the episode opens in this batch, the batch's readings when it was open before.
    ``cum_*`` cover the whole run (for classification).
    """

    point: npt.NDArray[np.int64]
    head_row: npt.NDArray[np.int64]  # first row of the run in the batch, -1 if none
    start_us: IntArray
    start_value: FloatArray
    was_active: BoolArray  # episode open before the batch
    opened: BoolArray  # episode opens in this batch
    raised_at_us: IntArray  # NEVER unless opened
    ended: BoolArray
    end_row: npt.NDArray[np.int64]  # row that ended the run (-1 if still open)
    end_us: IntArray
    db_count: IntArray
    db_total: FloatArray
    db_max: FloatArray
    db_max_at: IntArray
    db_min: FloatArray
    db_min_at: IntArray
    cum_eligible: IntArray
    cum_count: IntArray
    cum_total: FloatArray
    cum_max: FloatArray
    cum_max_at: IntArray
    cum_min: FloatArray
    cum_min_at: IntArray
    cum_near: IntArray

    def __len__(self) -> int:
        return len(self.point)

    @classmethod
    def empty(cls) -> RunTable:
        """The table without runs (one shared instance: its arrays have no element to change)."""
        return _EMPTY_TABLE


def _empty_table() -> RunTable:
    i, f, b = np.empty(0, np.int64), np.empty(0), np.empty(0, bool)
    return RunTable(i, i, i, f, b, b, i, b, i, i, i, f, f, i, f, i, i, i, f, f, i, f, i, i)


_EMPTY_TABLE = _empty_table()


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """A rule's result over a batch. Per-row arrays are None when the rule had nothing to do
    (no run open or starting: all False / NEVER)."""

    state: RunState
    on: BoolArray | None  # per row: the raw latch after the row (the run, without off-delay)
    raised: BoolArray | None  # per row: the episode is open after the row
    start_us: IntArray | None  # per row: start of the row's raw latch stretch (where ``on``)
    runs: RunTable


@dataclass(frozen=True, slots=True)
class RunParams:
    """How one rule's runs raise and what they count: shared by the plain and the off-delay
    paths. ``need`` and ``delay_us`` are per point id, the rest per row."""

    need: IntArray  # eligible readings a run needs before it raises
    delay_us: IntArray | None  # on-delay (event time from the run's first reading)
    eligible: BoolArray  # rows that may raise and count towards ``need``
    counted: BoolArray  # rows that enter the statistics
    immediate: BoolArray | None  # a run starting at such a row needs one reading
    near: BoolArray | None  # rows at a standard-gas level (calibration shape)

    def take(self, sel: BoolArray) -> RunParams:
        """The same parameters for the rows ``sel``."""
        return RunParams(
            self.need, self.delay_us, self.eligible[sel], self.counted[sel],
            None if self.immediate is None else self.immediate[sel],
            None if self.near is None else self.near[sel],
        )  # fmt: skip

    def held(self, hold: BoolArray, pending: BoolArray) -> RunParams:
        """Rows of a held dip neither raise nor confirm; rows of a pending dip wait apart."""
        return RunParams(
            self.need, self.delay_us, self.eligible & ~hold, self.counted & ~pending,
            self.immediate, self.near,
        )  # fmt: skip


def quiet(state: RunState, n: int) -> RunOutcome:
    """The outcome of a batch in which a rule has nothing to do."""
    return RunOutcome(state, None, None, None, RunTable.empty())


def expand(part: RunOutcome, sel: BoolArray) -> RunOutcome:
    """An outcome computed on the rows ``sel``, for all rows."""
    if part.on is None:
        return part
    assert part.raised is not None and part.start_us is not None  # set together with ``on``
    where = np.flatnonzero(sel)
    on = np.zeros(len(sel), bool)
    raised = np.zeros(len(sel), bool)
    start = np.full(len(sel), NEVER, np.int64)
    on[where], raised[where], start[where] = part.on, part.raised, part.start_us
    runs = part.runs
    if len(runs):

        def full(rows: IntArray) -> IntArray:
            return np.where(rows >= 0, where[np.maximum(rows, 0)], -1) if len(where) else rows

        runs = RunTable(
            **{f.name: getattr(runs, f.name) for f in fields(runs)}
            | {"head_row": full(runs.head_row), "end_row": full(runs.end_row)}
        )
    return RunOutcome(part.state, on, raised, start, runs)


def stats_of(ids: IntArray, values: FloatArray, times: IntArray, runs: int) -> Stats:
    """(count, sum, max, max_at, min, min_at) per run id; first occurrence wins ties."""
    count = np.bincount(ids, minlength=runs).astype(np.int64)
    total = np.bincount(ids, weights=values, minlength=runs).astype(np.float64, copy=False)
    vmax: FloatArray = np.full(runs, -np.inf)
    vmin: FloatArray = np.full(runs, np.inf)
    vmax_at: IntArray = np.zeros(runs, np.int64)
    vmin_at: IntArray = np.zeros(runs, np.int64)
    if len(ids):
        for sign, out, out_at in ((-1.0, vmax, vmax_at), (1.0, vmin, vmin_at)):
            order = np.lexsort((sign * values, ids))
            first = np.ones(len(order), bool)
            first[1:] = ids[order][1:] != ids[order][:-1]
            pick = order[first]
            out[ids[pick]] = values[pick]
            out_at[ids[pick]] = times[pick]
    return count, total, vmax, vmax_at, vmin, vmin_at


def prior_stats(state: RunState, hp: npt.NDArray[np.int32], carried: BoolArray) -> Stats:
    """The carried run statistics per run (empty for runs that start in the batch)."""
    return (
        np.where(carried, state.count[hp], 0),
        np.where(carried, state.total[hp], 0.0),
        np.where(carried, state.vmax[hp], -np.inf),
        np.where(carried, state.vmax_at[hp], 0),
        np.where(carried, state.vmin[hp], np.inf),
        np.where(carried, state.vmin_at[hp], 0),
    )


def merge_stats(a: Stats, b: Stats) -> Stats:
    take_b_max = b[2] > a[2]
    take_b_min = b[4] < a[4]
    return (
        a[0] + b[0],
        a[1] + b[1],
        np.where(take_b_max, b[2], a[2]),
        np.where(take_b_max, b[3], a[3]),
        np.where(take_b_min, b[4], a[4]),
        np.where(take_b_min, b[5], a[5]),
    )


def ghost_runs(at: npt.NDArray[np.intp], end_us: IntArray, rows: Rows, state: RunState) -> RunTable:
    """Runs open before the batch that end at ``end_us`` without a row of their own: at their
    point's first row (``at``), or at a clear pending before the batch (``at``: the row after
    its off-delay)."""
    if not len(at):
        return RunTable.empty()
    return ended_runs(rows.pid[at].astype(np.int64), at.astype(np.int64), end_us, state)


def ended_runs(gp: IntArray, end_row: IntArray, end_us: IntArray, state: RunState) -> RunTable:
    """The open runs of ``state`` at the points ``gp``, ended at ``end_us`` with no row of
    their own (``end_row``: the row that ended them, -1: none)."""
    k = len(gp)
    empty_i, empty_f = np.zeros(k, np.int64), np.zeros(k)
    was_active = state.active[gp].copy()
    return RunTable(
        point=gp.astype(np.int64),
        head_row=np.full(k, -1, np.int64),
        start_us=state.start_us[gp],
        start_value=state.start_value[gp],
        was_active=was_active,
        opened=np.zeros(k, bool),
        raised_at_us=np.full(k, NEVER, np.int64),
        ended=np.ones(k, bool),
        end_row=end_row,
        end_us=end_us.astype(np.int64),
        db_count=np.where(was_active, empty_i, state.count[gp]),
        db_total=np.where(was_active, empty_f, state.total[gp]),
        db_max=np.where(was_active, -np.inf, state.vmax[gp]),
        db_max_at=np.where(was_active, 0, state.vmax_at[gp]),
        db_min=np.where(was_active, np.inf, state.vmin[gp]),
        db_min_at=np.where(was_active, 0, state.vmin_at[gp]),
        cum_eligible=state.eligible[gp],
        cum_count=state.count[gp],
        cum_total=state.total[gp],
        cum_max=state.vmax[gp],
        cum_max_at=state.vmax_at[gp],
        cum_min=state.vmin[gp],
        cum_min_at=state.vmin_at[gp],
        cum_near=state.near[gp],
    )


def concat_tables(table: RunTable, more: RunTable) -> RunTable:
    if not len(more):
        return table
    return RunTable(
        *(np.concatenate([getattr(table, f.name), getattr(more, f.name)]) for f in fields(table))
    )
