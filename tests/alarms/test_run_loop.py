"""The run machinery one row at a time (alarms/rules/run_loop.py) gives the vectorised
machinery's outcome bit for bit: per-row latch, raise and start, the run table and the state
after, on random rows, parameters and states (runs open before the batch, active or not,
restored without a start time)."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from minewatch.alarms.rules import runs
from minewatch.alarms.rules.run_loop import loop_runs
from minewatch.alarms.rules.run_state import (
    NEVER,
    Rows,
    RunOutcome,
    RunParams,
    RunState,
    expand,
)

POINTS = 4


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))


def assert_same_outcome(loop: RunOutcome, vector: RunOutcome) -> None:
    assert loop.on is not None and vector.on is not None
    assert vector.raised is not None and vector.start_us is not None
    assert loop.raised is not None and loop.start_us is not None
    assert _equal(loop.on, vector.on)
    assert _equal(loop.raised, vector.raised)
    on = vector.on
    assert _equal(loop.start_us[on], vector.start_us[on])  # only read where the latch is on
    for f in fields(vector.runs):
        assert _equal(getattr(loop.runs, f.name), getattr(vector.runs, f.name)), f.name
    for f in fields(vector.state):
        assert _equal(getattr(loop.state, f.name), getattr(vector.state, f.name)), f.name


@st.composite
def cases(draw: st.DrawFn) -> tuple[Rows, np.ndarray, np.ndarray, RunState, RunParams]:
    state = RunState.empty(POINTS)
    for p in range(POINTS):
        if draw(st.booleans()):  # a run open before the batch
            state.raw[p] = True
            state.active[p] = draw(st.booleans())
            start = draw(st.sampled_from([NEVER, -5_000_000, -1_000_000, 0]))
            state.start_us[p] = state.latch_us[p] = start
            state.start_value[p] = draw(st.sampled_from([1.0, 1.2, np.nan]))
            state.eligible[p] = draw(st.integers(0, 3))
            count = draw(st.integers(0, 3))
            state.count[p] = count
            if count:
                state.total[p] = draw(st.sampled_from([1.1, 2.5, 3.3]))
                state.vmax[p] = draw(st.sampled_from([1.2, 1.6, np.nan]))
                state.vmax_at[p] = -2_000_000
                state.vmin[p] = draw(st.sampled_from([1.0, 1.2]))
                state.vmin_at[p] = -3_000_000
            state.near[p] = draw(st.sampled_from([0, 2, -(2**40)]))
            state.zero_us[p] = draw(st.sampled_from([NEVER, -9_000_000]))
    points = sorted(draw(st.lists(st.integers(0, POINTS - 1), min_size=1, max_size=POINTS,
                                  unique=True)))  # fmt: skip
    pid, t = [], []
    for p in points:
        k = draw(st.integers(1, 6))
        steps = draw(st.lists(st.sampled_from([1, 1, 2, 5]), min_size=k, max_size=k))
        pid += [p] * k
        t += np.cumsum(steps).tolist()
    n = len(pid)
    value = np.array(draw(st.lists(st.sampled_from([0.3, 1.0, 1.2, 1.2, 1.6, -0.0, 0.0, np.nan]),
                                   min_size=n, max_size=n)))  # fmt: skip
    rows = Rows.of(np.array(pid, np.int32), np.array(t, np.int64) * 1_000_000, value)
    flags = st.lists(st.booleans(), min_size=n, max_size=n)
    cand, clear = np.array(draw(flags), bool), np.array(draw(flags), bool)
    eligible = np.array(draw(flags), bool)
    counted = np.array(draw(flags), bool) if draw(st.booleans()) else eligible
    params = RunParams(
        need=np.array(draw(st.lists(st.integers(1, 3), min_size=POINTS, max_size=POINTS))),
        delay_us=(np.array([0, 2_000_000, 0, 3_000_000], np.int64)
                  if draw(st.booleans()) else None),
        eligible=eligible,
        counted=counted,
        immediate=np.array(draw(flags), bool) if draw(st.booleans()) else None,
        near=np.array(draw(flags), bool) if draw(st.booleans()) else None,
    )  # fmt: skip
    return rows, cand, clear, state, params


@settings(max_examples=400, deadline=None, derandomize=True)
@given(case=cases())
def test_the_loop_gives_the_vectorised_outcome(
    case: tuple[Rows, np.ndarray, np.ndarray, RunState, RunParams],
) -> None:
    rows, cand, clear, state, params = case
    before = state.copy()
    sel = runs.hot_rows(rows, cand, state)
    assume(sel is not None)
    assert sel is not None
    sub = runs._evaluate_hot(rows.take(sel), cand[sel], clear[sel], state, params.take(sel), None)
    vector = expand(sub, sel)
    loop = loop_runs(rows, np.flatnonzero(sel).tolist(), cand, clear, state, params)
    assert_same_outcome(loop, vector)
    for f in fields(state):  # neither path changed the state it was given
        assert _equal(getattr(state, f.name), getattr(before, f.name))
