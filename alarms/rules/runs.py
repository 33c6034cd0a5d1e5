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
:mod:`alarms.rules.feed` checks); the runs, episodes and ``raised`` follow the off-delay. Both
paths take one :class:`~alarms.rules.run_state.RunParams`; the values the machinery works on are
in :mod:`alarms.rules.run_state`.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import numpy.typing as npt

from minewatch.alarms.rules import off_delay
from minewatch.alarms.rules.latch import latch, previous_state
from minewatch.alarms.rules.run_loop import SMALL, loop_runs
from minewatch.alarms.rules.run_state import (
    NEVER,
    BoolArray,
    IntArray,
    Rows,
    RunOutcome,
    RunParams,
    RunState,
    RunTable,
    concat_tables,
    ended_runs,
    expand,
    ghost_runs,
    merge_stats,
    prior_stats,
    quiet,
    stats_of,
)


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
    hot: BoolArray | None = None,
) -> RunOutcome:
    """Runs of one rule over ``rows``; ``state`` is not modified.

    ``need``, ``delay_us`` and ``off_delay_us`` are per point id; ``eligible`` rows may raise
    and count towards ``need`` (default ``cand | clear``); ``counted`` rows enter the
    statistics (default ``eligible``); ``immediate`` marks rows whose run, if it starts there,
    needs one reading. A row both ``cand`` and ``clear`` sets (see :func:`latch`). ``hot``:
    :func:`hot_rows`, when the caller has it.
    """
    n = len(rows)
    sel = hot_rows(rows, cand, state) if hot is None else hot
    if sel is None:  # nothing open, nothing starts: the common case
        return quiet(state, n)
    eligible = (cand | clear) if eligible is None else eligible
    params = RunParams(
        need, delay_us, eligible, eligible if counted is None else counted, immediate, near
    )
    if off_delay_us is None or not off_delay.applies(state, off_delay_us):
        where = np.flatnonzero(sel)
        if len(where) <= SMALL:  # a few rows: one at a time costs less than a hundred numpy calls
            return loop_runs(rows, where.tolist(), cand, clear, state, params)
    if np.count_nonzero(sel) < n // 2:  # work on the points that have something to do
        part = _evaluate_hot(rows.take(sel), cand[sel], clear[sel], state, params.take(sel),
                             off_delay_us)  # fmt: skip
        return expand(part, sel)
    return _evaluate_hot(rows, cand, clear, state, params, off_delay_us)


def _evaluate_hot(
    rows: Rows,
    cand: BoolArray,
    clear: BoolArray,
    state: RunState,
    params: RunParams,
    off_delay_us: IntArray | None,
) -> RunOutcome:
    """:func:`evaluate_runs` on rows of points with a run open or starting."""
    raw0 = state.raw[rows.pid]
    on = latch(rows.gs, cand, clear, raw0)
    if off_delay_us is not None and off_delay.applies(state, off_delay_us):
        return _off_delayed(rows, cand, clear, state, on, raw0, off_delay_us, params)
    after, raised, row_start, table = _evaluate(rows, on, raw0, state, params)
    return RunOutcome(after, on, raised, row_start, table)


def _evaluate(
    rows: Rows,
    on: BoolArray,
    raw0: BoolArray,
    state: RunState,
    params: RunParams,
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
            rows, state, on, before, heads, run_id, params, dip_into
        )
    else:  # every open run ended on its point's first row
        table, raised = RunTable.empty(), np.zeros(n, bool)
        start_us, n_eligible = np.empty(0, np.int64), np.zeros(n, np.int64)
    at = np.flatnonzero(rows.first & raw0 & ~on)
    table = concat_tables(table, ghost_runs(at, rows.t[at], rows, state))
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
    params: RunParams,
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
        rows, run_on, held_open, state, params.held(hold, dips.pending), resumed_points
    )
    # Runs pending before the batch whose off-delay passed without a set row: they ended at
    # their pending clear; the dip's readings are not theirs.
    expired = dips.expired_rows
    if len(expired):
        ends = state.pending_clear_us[pid[expired]]
        table = concat_tables(table, ghost_runs(expired, ends, rows, state))

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
    near = params.near
    dip_rows = np.flatnonzero(dips.pending & params.counted)
    group = np.cumsum(rows.first) - 1
    b = stats_of(group[dip_rows], rows.v[dip_rows], t[dip_rows], len(last))
    b_near = np.zeros(len(last), np.int64)
    if near is not None:
        b_near = np.bincount(group[dip_rows], weights=near[dip_rows], minlength=len(last))
    carried_dip = pending & dips.carried[last]
    dip = merge_stats(state.pending_stats(pts, carried_dip), b)
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
    table = ended_runs(
        points, np.full(len(points), -1, np.int64), state.pending_clear_us[points], state
    )
    after = state.copy()
    idle = RunState.empty(1)
    for f in fields(after):
        getattr(after, f.name)[points] = getattr(idle, f.name)[0]
    return RunOutcome(after, None, None, None, table)


def _runs(
    rows: Rows,
    state: RunState,
    on: BoolArray,
    before: BoolArray,
    heads: npt.NDArray[np.intp],
    run_id: IntArray,
    params: RunParams,
    dip_into: BoolArray | None = None,
) -> tuple[RunTable, BoolArray, IntArray, IntArray]:
    """(run table, raised per row, start per run, eligible count per row) for runs with rows.

    Works on the rows inside runs only (compressed), usually a small part of the batch.
    """
    n = len(rows)
    pid, t, v = rows.pid, rows.t, rows.v
    need, delay_us, immediate, near = params.need, params.delay_us, params.immediate, params.near
    eligible, counted = params.eligible, params.counted
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
    b = stats_of(run_id[rows_c], v[rows_c], t[rows_c], len(heads))
    b_near = np.zeros(len(heads), np.int64)
    if near is not None:
        b_near = np.bincount(run_id[rows_c], weights=near[rows_c], minlength=len(heads))
    if dip_into is not None:  # a run pending before the batch continues: its dip first
        take = carried & dip_into[hp]
        b = merge_stats(state.pending_stats(hp, take), b)
        b_near = b_near + np.where(take, state.pending_near[hp], 0)
    cum = merge_stats(prior_stats(state, hp, carried), b)
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
