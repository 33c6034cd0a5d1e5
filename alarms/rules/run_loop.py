"""The run machinery of :mod:`alarms.rules.runs` one row at a time, for the few hot rows of a
small batch.

A numpy call costs a microsecond or more whatever its length, and the vectorised machinery
makes about a hundred of them per rule with a run open: on a live batch (one polling cycle,
one reading per point) with one point in an excursion, that fixed cost was most of the
engine's time, and made it slower than the plain per-reading reference on a small mine.
Below :data:`SMALL` hot rows (rows of the points with a run open or starting), this loop
computes the same :class:`~alarms.rules.run_state.RunOutcome` directly, on the batch's own
rows (no subset to take and expand). Same results, bit for bit: the statistics are summed in
row order as ``np.bincount`` does, maxima and minima keep their first occurrence, NaN is
ordered as ``np.lexsort`` orders it, and time differences wrap like int64 arrays do
(``tests/alarms/test_run_loop.py`` compares both paths on random series and states).

The off-delay path stays vectorised (:func:`alarms.rules.runs._off_delayed`).
"""

from __future__ import annotations

import math
from dataclasses import fields, replace
from typing import Any

import numpy as np

from minewatch.alarms.rules.run_state import (
    NEVER,
    BoolArray,
    Rows,
    RunOutcome,
    RunParams,
    RunState,
    RunTable,
)

#: At most this many hot rows go through the loop; more take the vectorised path.
SMALL = 32
_FIELDS = tuple(f.name for f in fields(RunState))
_IDLE = {name: getattr(RunState.empty(1), name).item(0) for name in _FIELDS}
#: What a run sets in the state; a closed run sets them idle, with ``zero_us`` and the
#: off-delay's ``pending_*`` (when not idle already).
_RUN_FIELDS = ("raw", "active", "start_us", "start_value", "eligible", "count", "total", "vmax",
               "vmax_at", "vmin", "vmin_at", "near", "latch_us")  # fmt: skip
_PENDING_FIELDS = tuple(name for name in _FIELDS if name.startswith("pending_"))
#: One record per run: the table is built with one numpy call, its columns are views.
_TABLE = np.dtype([(f.name, getattr(RunTable.empty(), f.name).dtype) for f in fields(RunTable)])
Record = tuple[Any, ...]  # one run's row of the table, fields in RunTable's order
_INF = math.inf
_WRAP = 2**64
_TOP = 2**63


def _sub64(a: int, b: int) -> int:
    """``a - b`` as int64 arrays compute it (wrapping), for ``b`` = NEVER on a restored run."""
    d = a - b
    if d >= _TOP:
        d -= _WRAP
    elif d < -_TOP:
        d += _WRAP
    return d


def _gt(a: float, b: float) -> bool:
    """``a`` replaces the maximum ``b`` in ``np.lexsort`` order (NaN after every number)."""
    return a > b or (b != b and a == a)


def _lt(a: float, b: float) -> bool:
    return a < b or (b != b and a == a)


def loop_runs(
    rows: Rows,
    hot: list[int],
    cand: BoolArray,
    clear: BoolArray,
    state: RunState,
    params: RunParams,
) -> RunOutcome:
    """:func:`alarms.rules.runs.evaluate_runs` without off-delay, over the rows ``hot`` (row
    indices, ascending: every row of the points with a run open or starting)."""
    n = len(rows)
    pid_a, t_a, v_a = rows.pid, rows.t, rows.v
    need_a, delay_a = params.need, params.delay_us
    elig_a, counted_a, imm_a, near_a = (
        params.eligible, params.counted, params.immediate, params.near,
    )  # fmt: skip
    on_out = np.zeros(n, bool)
    raised_out = np.zeros(n, bool)
    start_out = np.full(n, NEVER, np.int64)
    # The state after: the columns a run sets are copied, the others shared until written.
    after = RunState(
        *(getattr(state, name).copy() if name in _RUN_FIELDS else getattr(state, name)
          for name in _FIELDS)
    )  # fmt: skip
    shared = set(_FIELDS).difference(_RUN_FIELDS)
    runs: list[Record] = []
    ghosts: list[Record] = []

    k, m = 0, len(hot)
    while k < m:
        p = pid_a.item(hot[k])
        end = k + 1
        while end < m and pid_a.item(hot[end]) == p:
            end += 1
        raw0 = bool(state.raw.item(p))
        on = raw0
        delay = None if delay_a is None else delay_a.item(p)
        run: _Run | None = None
        for r in hot[k:end]:
            now = True if cand.item(r) else (False if clear.item(r) else on)
            t = t_a.item(r)
            if now:
                v = v_a.item(r)
                if run is None:
                    need = need_a.item(p)
                    if imm_a is not None and not on and imm_a.item(r):
                        need = 1
                    run = _Run(state, p, r, t, v, on, need)
                run.add(
                    r, t, v, elig_a.item(r), counted_a.item(r),
                    near_a is not None and near_a.item(r), delay,
                )  # fmt: skip
                on_out[r] = True
                raised_out[r] = run.raised
                start_out[r] = run.start
            elif on:  # the latch drops here
                if run is None:  # a run open before the batch, ended at the point's first row
                    ghosts.append(_ghost(state, p, r, t))
                else:
                    runs.append(run.record(state, p, t_a, r, t))
                    run = None
            on = now
        if run is not None:
            row = run.record(state, p, t_a, -1, NEVER)
            runs.append(row)
            run.keep_open(after, p, row)
        else:
            for name in _RUN_FIELDS:
                getattr(after, name)[p] = _IDLE[name]
            reset = [] if after.zero_us.item(p) == NEVER else ["zero_us"]
            if after.pending_clear_us.item(p) != NEVER:
                reset += _PENDING_FIELDS
            for name in reset:
                if name in shared:
                    shared.discard(name)
                    after = replace(after, **{name: getattr(after, name).copy()})
                getattr(after, name)[p] = _IDLE[name]
        k = end

    records = runs + ghosts
    if not records:
        return RunOutcome(after, on_out, raised_out, start_out, RunTable.empty())
    block = np.array(records, _TABLE)
    table = RunTable(*(block[name] for name in _TABLE.names or ()))
    return RunOutcome(after, on_out, raised_out, start_out, table)


class _Run:
    """A run in progress over the batch's rows."""

    __slots__ = ("carried", "count", "elig", "head", "max", "max_at", "min", "min_at", "near",
                 "need", "prior", "raise_row", "raised", "start", "start_value", "total",
                 "was_active")  # fmt: skip

    def __init__(
        self, state: RunState, p: int, r: int, t: int, v: float, carried: bool, need: int
    ) -> None:
        self.head, self.carried, self.need = r, carried, need
        if carried:  # the latch was on before the run's first row: the point's first row
            self.was_active = bool(state.active.item(p))
            self.start, self.start_value = state.start_us.item(p), state.start_value.item(p)
            self.prior = state.eligible.item(p)
        else:
            self.was_active, self.start, self.start_value, self.prior = False, t, v, 0
        self.elig, self.raised, self.raise_row = self.prior, self.was_active, -1
        self.count, self.total, self.near = 0, 0.0, 0
        self.max, self.max_at, self.min, self.min_at = -_INF, 0, _INF, 0

    def add(self, r: int, t: int, v: float, eligible: bool, counted: bool, near: bool,
            delay: int | None) -> None:  # fmt: skip
        """Row ``r`` inside the run: eligibility, raising, statistics."""
        if eligible:
            self.elig += 1
            if (
                not self.raised
                and self.elig >= self.need
                and (delay is None or _sub64(t, self.start) >= delay)
            ):
                self.raised, self.raise_row = True, r
        if counted:
            self.count += 1
            self.total += v
            if self.count == 1 or _gt(v, self.max):
                self.max, self.max_at = v, t
            if self.count == 1 or _lt(v, self.min):
                self.min, self.min_at = v, t
            if near:
                self.near += 1

    def record(self, state: RunState, p: int, t_a: np.ndarray, end_row: int,
               end_us: int) -> Record:  # fmt: skip
        """The run's row of the :class:`RunTable` (fields in its order)."""
        if self.carried:
            prior = (state.count.item(p), state.total.item(p), state.vmax.item(p),
                     state.vmax_at.item(p), state.vmin.item(p), state.vmin_at.item(p))  # fmt: skip
            near = state.near.item(p) + self.near
        else:
            prior, near = (0, 0.0, -_INF, 0, _INF, 0), self.near
        take_max, take_min = self.max > prior[2], self.min < prior[4]
        cum = (
            prior[0] + self.count, prior[1] + self.total,
            self.max if take_max else prior[2], self.max_at if take_max else prior[3],
            self.min if take_min else prior[4], self.min_at if take_min else prior[5],
        )  # fmt: skip
        batch = (self.count, self.total, self.max, self.max_at, self.min, self.min_at)
        db = batch if self.was_active else cum
        opened = self.raise_row >= 0
        return (
            p, self.head, self.start, self.start_value, self.was_active, opened,
            t_a.item(self.raise_row) if opened else NEVER, end_row >= 0, end_row, end_us,
            *db, self.elig, *cum, near,
        )  # fmt: skip

    def keep_open(self, after: RunState, p: int, record: Record) -> None:
        """The point's state after the batch, its run still open (``record``: its row)."""
        after.raw[p] = True
        after.active[p] = self.raised
        after.start_us[p] = after.latch_us[p] = self.start
        after.eligible[p] = self.elig
        after.start_value[p] = self.start_value
        cum = record[17:24]
        (after.count[p], after.total[p], after.vmax[p], after.vmax_at[p], after.vmin[p],
         after.vmin_at[p], after.near[p]) = cum  # fmt: skip


def _ghost(state: RunState, p: int, r: int, t: int) -> Record:
    """A run open before the batch that ended at the point's first row (no row of its own):
    :func:`alarms.rules.run_state.ended_runs`."""
    was_active = bool(state.active.item(p))
    cum = (state.count.item(p), state.total.item(p), state.vmax.item(p), state.vmax_at.item(p),
           state.vmin.item(p), state.vmin_at.item(p))  # fmt: skip
    db = (0, 0.0, -_INF, 0, _INF, 0) if was_active else cum
    return (
        p, -1, state.start_us.item(p), state.start_value.item(p), was_active, False, NEVER,
        True, r, t, *db, state.eligible.item(p), *cum, state.near.item(p),
    )  # fmt: skip
