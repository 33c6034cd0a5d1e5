"""Excursion runs: hysteresis, on-delay and confirmation over many points' series at once.

Every latched rule has the same shape. A *run* is a stretch of a point's readings during which
the raw hysteresis latch is on (set by a ``cand`` row, ended by a ``clear`` row; other rows
hold it). A run *raises* (opens an episode) at its first eligible row once

* it has at least ``need`` eligible readings (2 = confirmation by a second sample), and
* the row's event time is at least ``delay_us`` after the run's first reading (on-delay).

Both conditions only grow along a run, so "raised" is a suffix of the run: found with one
``np.maximum.accumulate``. A run carries over batches in :class:`RunState` (per point id):
its start, its count, and the statistics of readings not yet raised, so an episode raised
in a later batch still starts at the excursion's first reading (event time) with its
statistics complete. Rows are sorted by (point, time).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from alarms.rules.latch import latch, previous_state

NEVER = np.iinfo(np.int64).min
#: ``RunState.near`` for a run whose history is unknown (restored after a restart).
UNKNOWN_HISTORY = -(2**40)

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


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
        starts = np.flatnonzero(first)
        gs = np.repeat(starts, np.diff(np.append(starts, n)))
        last = np.ones(n, bool)
        last[:-1] = first[1:]
        status = np.zeros(n, np.int16) if s is None else s
        return cls(pid, t, v, status, gs, first, np.flatnonzero(last))

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

    def restore_open(self, point_id: int, started_at_us: int) -> None:
        """Mark an episode open before a restart; its statistics so far are in the database."""
        if 0 <= point_id < len(self.raw):
            self.raw[point_id] = self.active[point_id] = True
            self.start_us[point_id] = started_at_us
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
    on: BoolArray | None  # per row: the raw latch (run open) after the row
    raised: BoolArray | None  # per row: the episode is open after the row
    start_us: IntArray | None  # per row: start of the row's run (meaningful where ``on``)
    runs: RunTable


def evaluate_runs(
    rows: Rows,
    cand: BoolArray,
    clear: BoolArray,
    state: RunState,
    *,
    need: IntArray,
    delay_us: IntArray | None = None,
    eligible: BoolArray | None = None,
    counted: BoolArray | None = None,
    immediate: BoolArray | None = None,
    near: BoolArray | None = None,
) -> RunOutcome:
    """Runs of one rule over ``rows``; ``state`` is not modified.

    ``need`` and ``delay_us`` are per point id; ``eligible`` rows may raise and count towards
    ``need`` (default ``cand | clear``); ``counted`` rows enter the statistics (default
    ``eligible``); ``immediate`` marks rows whose run, if it starts there, needs one reading.
    A row both ``cand`` and ``clear`` sets (see :func:`latch`).
    """
    n = len(rows)
    sel = hot_rows(rows, cand, state)
    if sel is None:  # nothing open, nothing starts: the common case
        return quiet(state, n)
    eligible = (cand | clear) if eligible is None else eligible
    counted = eligible if counted is None else counted
    if np.count_nonzero(sel) < n // 2:  # work on the points that have something to do
        part = evaluate_runs(
            rows.take(sel), cand[sel], clear[sel], state, need=need, delay_us=delay_us,
            eligible=eligible[sel], counted=counted[sel],
            immediate=None if immediate is None else immediate[sel],
            near=None if near is None else near[sel],
        )  # fmt: skip
        return expand(part, sel)
    pid = rows.pid
    raw0 = state.raw[pid]
    on = latch(rows.gs, cand, clear, raw0)
    before = previous_state(rows.gs, on, raw0)
    head = on & (rows.first | ~before)
    heads = np.flatnonzero(head)
    run_id = np.where(on, np.cumsum(head) - 1, 0)
    if len(heads):
        table, raised, start_us, n_eligible = _runs(
            rows, state, on, before, heads, run_id, need, delay_us, eligible, counted,
            immediate, near,
        )  # fmt: skip
    else:  # every open run ended on its point's first row
        table, raised = RunTable.empty(), np.zeros(n, bool)
        start_us, n_eligible = np.empty(0, np.int64), np.zeros(n, np.int64)
    ghosts = _ghost_runs(rows, on, raw0, state)
    if len(ghosts):
        table = RunTable(
            *(
                np.concatenate([getattr(table, f.name), getattr(ghosts, f.name)])
                for f in fields(table)
            )
        )
    after = _state_after(rows, state, on, raised, run_id, start_us, n_eligible)
    if len(heads):
        last = rows.last_rows[on[rows.last_rows]]
        runs_open = run_id[last]
        pts = pid[last]
        after.start_value[pts] = table.start_value[runs_open]
        after.count[pts] = table.cum_count[runs_open]
        after.total[pts] = table.cum_total[runs_open]
        after.vmax[pts] = table.cum_max[runs_open]
        after.vmax_at[pts] = table.cum_max_at[runs_open]
        after.vmin[pts] = table.cum_min[runs_open]
        after.vmin_at[pts] = table.cum_min_at[runs_open]
        after.near[pts] = table.cum_near[runs_open]
    row_start = start_us[run_id] if len(heads) else np.full(n, NEVER, np.int64)
    return RunOutcome(after, on, raised, row_start, table)


def hot_rows(rows: Rows, cand: BoolArray, state: RunState) -> BoolArray | None:
    """Rows of the points with a run open or starting; None when there are none.

    Per point first (the registry is small), then one gather over the rows."""
    starting = np.flatnonzero(cand)
    if not len(starting):
        if not state.raw.any():
            return None
        open_rows = state.raw[rows.pid]
        return open_rows if open_rows.any() else None
    hot = state.raw.copy()
    hot[rows.pid[starting]] = True
    return hot[rows.pid]


def quiet(state: RunState, n: int) -> RunOutcome:
    """The outcome of a batch in which a rule has nothing to do."""
    return RunOutcome(state, None, None, None, RunTable.empty())


def expand(part: RunOutcome, sel: BoolArray) -> RunOutcome:
    """An outcome computed on the rows ``sel``, for all rows."""
    if part.on is None:
        return part
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


def _runs(
    rows: Rows,
    state: RunState,
    on: BoolArray,
    before: BoolArray,
    heads: npt.NDArray[np.intp],
    run_id: IntArray,
    need: IntArray,
    delay_us: IntArray | None,
    eligible: BoolArray,
    counted: BoolArray,
    immediate: BoolArray | None,
    near: BoolArray | None,
) -> tuple[RunTable, BoolArray, IntArray, IntArray]:
    """(run table, raised per row, start per run, eligible count per row) for runs with rows.

    Works on the rows inside runs only (compressed), usually a small part of the batch.
    """
    n = len(rows)
    pid, t, v = rows.pid, rows.t, rows.v
    onr = np.flatnonzero(on)
    m = len(onr)
    rid = run_id[onr]
    hpos = np.searchsorted(onr, heads)  # heads in compressed positions
    hp = pid[heads]
    carried = before[heads]  # the run was open before the batch
    was_active = carried & state.active[hp]
    start_us = np.where(carried, state.start_us[hp], t[heads])
    start_value = np.where(carried, state.start_value[hp], v[heads])
    prior_eligible = np.where(carried, state.eligible[hp], 0)

    e = eligible[onr]
    ce = np.cumsum(e)
    n_elig = ce - (ce[hpos] - e[hpos])[rid] + prior_eligible[rid]
    need_run = need[hp]
    if immediate is not None:
        need_run = np.where(~carried & immediate[heads], 1, need_run)
    cond = e & (n_elig >= need_run[rid])
    if delay_us is not None:
        cond &= t[onr] - start_us[rid] >= delay_us[pid[onr]]
    pos = np.arange(m)
    last_cond = np.maximum.accumulate(np.where(cond, pos, -1))
    raised_c = was_active[rid] | (last_cond >= hpos[rid])
    raised = np.zeros(n, bool)
    raised[onr] = raised_c
    n_eligible = np.zeros(n, np.int64)
    n_eligible[onr] = n_elig

    # Where each run ends: its last row, and the (clear) row after it in the same group.
    lasts = onr[np.append(hpos[1:], m) - 1]
    after = lasts + 1
    ended = after < n
    ended[ended] = ~rows.first[after[ended]]
    end_row = np.where(ended, after, -1)
    end_us = np.where(ended, t[np.minimum(after, n - 1)], NEVER)

    newly = onr[raised_c & ~was_active[rid]]
    raise_row = np.full(len(heads), -1, np.int64)
    ids, first_pos = np.unique(run_id[newly], return_index=True)
    raise_row[ids] = newly[first_pos]
    opened = raise_row >= 0
    raised_at = np.where(opened, t[np.maximum(raise_row, 0)], NEVER)

    # Statistics of the batch's counted rows per run, merged with the carried pending part.
    rows_c = onr[counted[onr]]
    b = _stats(run_id[rows_c], v[rows_c], t[rows_c], len(heads))
    b_near = np.zeros(len(heads), np.int64)
    if near is not None:
        b_near = np.bincount(run_id[rows_c], weights=near[rows_c], minlength=len(heads))
    cum = _merge(_prior(state, hp, carried), b)
    db = tuple(np.where(was_active, bv, cv) for bv, cv in zip(b, cum, strict=True))
    table = RunTable(
        point=hp.astype(np.int64),
        head_row=heads.astype(np.int64),
        start_us=start_us,
        start_value=start_value,
        was_active=was_active,
        opened=opened,
        raised_at_us=raised_at,
        ended=ended,
        end_row=end_row,
        end_us=end_us,
        db_count=db[0],
        db_total=db[1],
        db_max=db[2],
        db_max_at=db[3],
        db_min=db[4],
        db_min_at=db[5],
        cum_eligible=prior_eligible + np.bincount(rid[e], minlength=len(heads)),
        cum_count=cum[0],
        cum_total=cum[1],
        cum_max=cum[2],
        cum_max_at=cum[3],
        cum_min=cum[4],
        cum_min_at=cum[5],
        cum_near=np.where(carried, state.near[hp], 0) + b_near.astype(np.int64),
    )
    return table, raised, start_us, n_eligible


Stats = tuple[IntArray, FloatArray, FloatArray, IntArray, FloatArray, IntArray]


def _stats(ids: IntArray, values: FloatArray, times: IntArray, runs: int) -> Stats:
    """(count, sum, max, max_at, min, min_at) per run id; first occurrence wins ties."""
    count = np.bincount(ids, minlength=runs).astype(np.int64)
    total = np.bincount(ids, weights=values, minlength=runs)
    vmax, vmax_at = np.full(runs, -np.inf), np.zeros(runs, np.int64)
    vmin, vmin_at = np.full(runs, np.inf), np.zeros(runs, np.int64)
    if len(ids):
        for sign, out, out_at in ((-1.0, vmax, vmax_at), (1.0, vmin, vmin_at)):
            order = np.lexsort((sign * values, ids))
            first = np.ones(len(order), bool)
            first[1:] = ids[order][1:] != ids[order][:-1]
            pick = order[first]
            out[ids[pick]] = values[pick]
            out_at[ids[pick]] = times[pick]
    return count, total, vmax, vmax_at, vmin, vmin_at


def _prior(state: RunState, hp: npt.NDArray[np.int32], carried: BoolArray) -> Stats:
    """The carried run statistics per run (empty for runs that start in the batch)."""
    return (
        np.where(carried, state.count[hp], 0),
        np.where(carried, state.total[hp], 0.0),
        np.where(carried, state.vmax[hp], -np.inf),
        np.where(carried, state.vmax_at[hp], 0),
        np.where(carried, state.vmin[hp], np.inf),
        np.where(carried, state.vmin_at[hp], 0),
    )


def _merge(a: Stats, b: Stats) -> Stats:
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


def _ghost_runs(rows: Rows, on: BoolArray, raw0: BoolArray, state: RunState) -> RunTable:
    """Runs open before the batch that end on their point's first row (no row of their own)."""
    at = np.flatnonzero(rows.first & raw0 & ~on)
    if not len(at):
        return RunTable.empty()
    gp = rows.pid[at]
    k = len(at)
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
        end_row=at.astype(np.int64),
        end_us=rows.t[at],
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


def _state_after(
    rows: Rows,
    state: RunState,
    on: BoolArray,
    raised: BoolArray,
    run_id: IntArray,
    start_us: IntArray,
    n_eligible: IntArray,
) -> RunState:
    """The state after the batch: each present point's run as of its last row."""
    after = state.copy()
    last = rows.last_rows
    pts = rows.pid[last]
    closed = pts[~on[last]]
    idle = RunState.empty(1)
    for f in fields(after):
        getattr(after, f.name)[closed] = getattr(idle, f.name)[0]
    is_open = on[last]
    open_rows = last[is_open]
    open_pts = pts[is_open]
    after.raw[open_pts] = True
    after.active[open_pts] = raised[open_rows]
    after.start_us[open_pts] = start_us[run_id[open_rows]]
    after.eligible[open_pts] = n_eligible[open_rows]
    return after
