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

With an off-delay (``off_delay_us`` per point, :mod:`alarms.rules.off_delay`), a clear row ends
the run only if no set row follows within the off-delay; until that is known the run is
*pending* its clear (``RunState.pending_clear_us``), possibly across batches, until a later
reading or the clock (:func:`expire_pending`) resolves it. The per-row
``on`` and ``start_us`` of a :class:`RunOutcome` stay those of the raw latch (the cut that
:mod:`alarms.rules.feed` checks); the runs, episodes and ``raised`` follow the off-delay.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt
from minewatch.alarms.rules import off_delay
from minewatch.alarms.rules.latch import latch, previous_state

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

    @property
    def open(self) -> BoolArray:
        """Per point id: a run is open (its raw latch is on, or it is pending its clear)."""
        if not self.raw.any() and not self.pending.any():
            return self.raw
        return self.raw | self.pending

    @property
    def pending(self) -> BoolArray:
        """Per point id: the run is pending its clear (off-delay)."""
        return self.pending_clear_us != NEVER

    def pending_stats(self, points: IntArray, take: BoolArray) -> Stats:
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
    off_delay_us: IntArray | None = None,
) -> RunOutcome:
    """Runs of one rule over ``rows``; ``state`` is not modified.

    ``need``, ``delay_us`` and ``off_delay_us`` are per point id; ``eligible`` rows may raise
    and count towards ``need`` (default ``cand | clear``); ``counted`` rows enter the
    statistics (default ``eligible``); ``immediate`` marks rows whose run, if it starts there,
    needs one reading. A row both ``cand`` and ``clear`` sets (see :func:`latch`).
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
            near=None if near is None else near[sel], off_delay_us=off_delay_us,
        )  # fmt: skip
        return expand(part, sel)
    raw0 = state.raw[rows.pid]
    on = latch(rows.gs, cand, clear, raw0)
    if off_delay_us is not None and off_delay.applies(state, off_delay_us):
        return _off_delayed(
            rows, cand, clear, state, on, raw0, off_delay_us, need, delay_us, eligible,
            counted, immediate, near,
        )  # fmt: skip
    after, raised, row_start, table = _evaluate(
        rows, on, raw0, state, need, delay_us, eligible, counted, immediate, near
    )
    return RunOutcome(after, on, raised, row_start, table)


def _evaluate(
    rows: Rows,
    on: BoolArray,
    raw0: BoolArray,
    state: RunState,
    need: IntArray,
    delay_us: IntArray | None,
    eligible: BoolArray,
    counted: BoolArray,
    immediate: BoolArray | None,
    near: BoolArray | None,
    dip_into: BoolArray | None = None,
) -> tuple[RunState, BoolArray, IntArray, RunTable]:
    """(state after, raised per row, run start per row, run table) of the latch ``on``, whose
    value before each point's first row is ``raw0``. ``dip_into`` (per point id): a run
    carried into the batch takes the dip statistics of the state into its own."""
    n = len(rows)
    pid = rows.pid
    before = previous_state(rows.gs, on, raw0)
    head = on & (rows.first | ~before)
    heads = np.flatnonzero(head)
    run_id = np.where(on, np.cumsum(head) - 1, 0)
    if len(heads):
        table, raised, start_us, n_eligible = _runs(
            rows, state, on, before, heads, run_id, need, delay_us, eligible, counted,
            immediate, near, dip_into,
        )  # fmt: skip
    else:  # every open run ended on its point's first row
        table, raised = RunTable.empty(), np.zeros(n, bool)
        start_us, n_eligible = np.empty(0, np.int64), np.zeros(n, np.int64)
    at = np.flatnonzero(rows.first & raw0 & ~on)
    table = _concat(table, _ghost_runs(at, rows.t[at], rows, state))
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
    return after, raised, row_start, table


def _off_delayed(
    rows: Rows,
    cand: BoolArray,
    clear: BoolArray,
    state: RunState,
    on: BoolArray,
    raw0: BoolArray,
    off_delay_us: IntArray,
    need: IntArray,
    delay_us: IntArray | None,
    eligible: BoolArray,
    counted: BoolArray,
    immediate: BoolArray | None,
    near: BoolArray | None,
) -> RunOutcome:
    """:func:`evaluate_runs` with an off-delay: the runs of the raw latch ``on``, where a dip
    that a set row bridges within the off-delay (or that is still within it at the batch's
    end) holds the run: its clear rows neither clear nor confirm; a bridged dip's readings
    enter the run's statistics, a pending dip's wait in the state."""
    pid, t = rows.pid, rows.t
    pending_us = state.pending_clear_us[pid]
    dips = off_delay.dips(rows, on, raw0, pending_us, pending_us != NEVER, off_delay_us[pid])
    hold = dips.bridged | dips.pending
    held_open = raw0 | dips.resumed[rows.gs]  # a pending run continues or stays pending
    run_on = latch(rows.gs, cand, clear & ~hold, held_open)
    resumed_points = np.zeros(len(state.raw), bool)
    resumed_points[pid[dips.continued]] = True
    after, raised, _, table = _evaluate(
        rows, run_on, held_open, state, need, delay_us, eligible & ~hold,
        counted & ~dips.pending, immediate, near, resumed_points,
    )  # fmt: skip
    # Runs pending before the batch whose off-delay passed without a set row: they ended at
    # their pending clear; the dip's readings are not theirs.
    expired = dips.expired_rows
    if len(expired):
        ends = state.pending_clear_us[pid[expired]]
        table = _concat(table, _ghost_runs(expired, ends, rows, state))

    # The raw latch's stretches: their start per row, and the state of each point after it.
    before = previous_state(rows.gs, on, raw0)
    idx = np.arange(len(rows))
    head = np.maximum.accumulate(np.where(on & (rows.first | ~before), idx, 0))
    carried = rows.first[head] & before[head]
    raw_start = np.where(on, np.where(carried, state.latch_us[pid], t[head]), NEVER)
    last = rows.last_rows
    pts = pid[last]
    after.raw[pts] = on[last]
    after.latch_us[pts] = raw_start[last]
    pending = dips.pending[last]
    after.pending_clear_us[pts] = np.where(pending, dips.drop_us[last], NEVER)
    dip_rows = np.flatnonzero(dips.pending & counted)
    group = np.cumsum(rows.first) - 1
    b = _stats(group[dip_rows], rows.v[dip_rows], t[dip_rows], len(last))
    b_near = np.zeros(len(last), np.int64)
    if near is not None:
        b_near = np.bincount(group[dip_rows], weights=near[dip_rows], minlength=len(last))
    carried_dip = pending & dips.carried[last]
    dip = _merge(state.pending_stats(pts, carried_dip), b)
    idle = RunState.empty(1)
    for name, value in zip(("count", "total", "max", "max_at", "min", "min_at"), dip, strict=True):
        column = getattr(after, "pending_" + name)
        column[pts] = np.where(pending, value, getattr(idle, "pending_" + name)[0])
    dip_near = np.where(carried_dip, state.pending_near[pts], 0) + b_near.astype(np.int64)
    after.pending_near[pts] = np.where(pending, dip_near, 0)
    return RunOutcome(after, on, raised, raw_start, table)


def hot_rows(rows: Rows, cand: BoolArray, state: RunState) -> BoolArray | None:
    """Rows of the points with a run open or starting; None when there are none.

    Per point first (the registry is small), then one gather over the rows."""
    starting = np.flatnonzero(cand)
    is_open = state.open
    if not len(starting):
        if not is_open.any():
            return None
        open_rows = is_open[rows.pid]
        return open_rows if open_rows.any() else None
    hot = is_open.copy()
    hot[rows.pid[starting]] = True
    return hot[rows.pid]


def quiet(state: RunState, n: int) -> RunOutcome:
    """The outcome of a batch in which a rule has nothing to do."""
    return RunOutcome(state, None, None, None, RunTable.empty())


def expire_pending(state: RunState, off_delay_us: IntArray, bound_us: int) -> RunOutcome:
    """Runs pending their clear whose off-delay ended before ``bound_us`` (the clock less the
    allowed lateness: no reading that could continue them can still come in time): they end
    at their pending clear, the dip's readings are not theirs, as when the point's next
    reading resolves them. ``off_delay_us`` per point id."""
    with np.errstate(over="ignore"):
        expired = state.pending & (state.pending_clear_us + off_delay_us < bound_us)
    points = np.flatnonzero(expired).astype(np.int64)
    if not len(points):
        return quiet(state, 0)
    table = _ended_runs(
        points, np.full(len(points), -1, np.int64), state.pending_clear_us[points], state
    )
    after = state.copy()
    idle = RunState.empty(1)
    for f in fields(after):
        getattr(after, f.name)[points] = getattr(idle, f.name)[0]
    return RunOutcome(after, None, None, None, table)


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
    dip_into: BoolArray | None = None,
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
    if dip_into is not None:  # a run pending before the batch continues: its dip first
        take = carried & dip_into[hp]
        b = _merge(state.pending_stats(hp, take), b)
        b_near = b_near + np.where(take, state.pending_near[hp], 0)
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


def _ghost_runs(
    at: npt.NDArray[np.intp], end_us: IntArray, rows: Rows, state: RunState
) -> RunTable:
    """Runs open before the batch that end at ``end_us`` without a row of their own: at their
    point's first row (``at``), or at a clear pending before the batch (``at``: the row after
    its off-delay)."""
    if not len(at):
        return RunTable.empty()
    return _ended_runs(rows.pid[at].astype(np.int64), at.astype(np.int64), end_us, state)


def _ended_runs(gp: IntArray, end_row: IntArray, end_us: IntArray, state: RunState) -> RunTable:
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


def _concat(table: RunTable, more: RunTable) -> RunTable:
    if not len(more):
        return table
    return RunTable(
        *(np.concatenate([getattr(table, f.name), getattr(more, f.name)]) for f in fields(table))
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
    after.start_us[open_pts] = after.latch_us[open_pts] = start_us[run_id[open_rows]]
    after.eligible[open_pts] = n_eligible[open_rows]
    return after
