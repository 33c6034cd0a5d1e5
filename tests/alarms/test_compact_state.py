"""The engine's session-7 cheap paths (issue 14) give the bits of the paths they stand in for:
the pre-alarm trends kept per forecast point (compact columns) and read whole by a cycle that
covers them all, the columns across a registry change, the interruption tick with one clock,
and the small-array reductions."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from minewatch.alarms import forecast, small
from minewatch.alarms import prealarms as prealarms_module
from minewatch.alarms.forecast import NEVER as NO_TIME
from minewatch.alarms.prealarms import PrealarmOutcome, PrealarmParams, Prealarms
from minewatch.alarms.rules import interruption
from minewatch.alarms.rules.params import PointParams, RuleDefaults
from minewatch.alarms.rules.run_state import NEVER, Rows
from minewatch.registry import PointRegistry

from .helpers import MINE, T0, S, assert_same_prealarm_state, registry

POINTS = 16
QUICK = PrealarmParams(horizon_s=600.0, confirm=5, min_weight=20.0)


def _values(seed: int, cycles: int) -> np.ndarray:
    """values[cycle, point]: noise; half the points rise past the level in turn and fall back;
    a few spikes. No reading is missing: every cycle covers every forecast point."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.1, 0.5, POINTS) + 0.02 * rng.standard_normal((cycles, POINTS))
    for k, p in enumerate(rng.choice(POINTS, POINTS // 2, replace=False)):
        start, length = 50 + k * cycles // (POINTS // 2 + 1), int(rng.integers(150, 400))
        values[start:, p] += np.minimum(np.arange(cycles - start), length) * 0.004
        values[start + length :, p] -= np.arange(cycles - start - length) * 0.006
    values.reshape(-1)[rng.integers(0, values.size, 10)] += 2.0
    return np.clip(values, 0.0, 4.0)


def _step(
    pre: Prealarms, k: int, row: np.ndarray, ok: np.ndarray, late_us: int = 0
) -> PrealarmOutcome | None:
    pid = np.arange(1, len(row) + 1, dtype=np.int32)
    t = np.full(len(row), T0 + k * S + late_us, np.int64)
    rows = Rows.distinct(pid, t, row, np.zeros(len(row), np.int16))
    outcome = pre.evaluate(rows, ok)
    pre.commit(outcome)
    return outcome


@pytest.mark.parametrize("seed", [1, 2])
def test_a_cycle_of_every_column_gives_the_bits_of_the_gathered_path(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every forecast point in every cycle, one time stamp: the state read and written whole
    (``forecast.ew_pair_cycle``, ``line_reaches``) against the same cycles through the
    gathered columns (``ew_pair_single``, ``fit_line``): the same changes and states, each
    cycle, over quiet cycles and rises that raise and clear pre-alarms. Every seventh cycle
    misses a point: that one reads the others' columns only, and the next reads all again;
    the cycles are 1 s apart but every 50th (the carried sums' weights kept or found again)."""
    reg = registry(*({} for _ in range(POINTS)))
    whole, gathered = (Prealarms.of(reg, {MINE: QUICK}) for _ in range(2))
    taken: Counter[str] = Counter()
    cycle_path = forecast.ew_pair_cycle

    def spy(*args: object) -> tuple[np.ndarray, np.ndarray] | None:
        found = cycle_path(*args)  # type: ignore[arg-type]
        taken["whole" if found is not None else "declined"] += 1
        return found

    monkeypatch.setattr(prealarms_module, "ew_pair_cycle", spy)
    for k, row in enumerate(_values(seed, 1500)):
        ok = np.ones(POINTS, bool)
        if k % 7 == 3:
            ok[k % POINTS] = False
        late = (k // 50) * 100_000  # every 50th cycle 1.1 s after the one before, else 1 s
        a = _step(whole, k, row, ok, late)
        with monkeypatch.context() as m:  # the other one through the gathered columns
            m.setattr(prealarms_module, "ew_pair_cycle", lambda *_: None)
            b = _step(gathered, k, row, ok, late)
        assert a is not None and b is not None
        assert a.changes == b.changes
        taken["changes"] += len(a.changes)
        assert_same_prealarm_state(a.state, b.state)
    assert taken["whole"] > 1200 and taken["changes"] > 0


@pytest.mark.parametrize(("seed", "cycles", "quiet"), [(1, 10, True), (2, 7, True), (3, 3, False)])
def test_a_quiet_batch_of_several_cycles_gives_the_bits_of_the_general_path(
    seed: int, cycles: int, quiet: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of several cycles (``Rows.of``), a reading missing now and then: the quiet
    batch (``Prealarms._quiet_batch``: no fit, no latch) against the general path on the same
    batches (the shortcut refused): the same changes and states after every batch; batches
    of 3 cycles are short (the slow trend fitted at every row) and never take it. A pre-alarm
    restored at the start is cleared by the general path (a batch with one up is never quiet)."""
    reg = registry(*({} for _ in range(POINTS)))
    quick, general = (Prealarms.of(reg, {MINE: QUICK}) for _ in range(2))
    taken: Counter[str] = Counter()
    shortcut = Prealarms._quiet_batch

    def spy(self: Prealarms, *args: object) -> PrealarmOutcome | None:
        found = shortcut(self, *args)  # type: ignore[arg-type]
        taken["quiet" if found is not None else "full"] += 1
        return found

    monkeypatch.setattr(Prealarms, "_quiet_batch", spy)
    for pre in (quick, general):  # a pre-alarm open at a restart: it clears in a low batch
        pre.restore([(5, T0)])
    values = _values(seed, 1500)
    rng = np.random.default_rng(seed)
    for k in range(0, len(values), cycles):
        block = values[k : k + cycles]
        ok = rng.random(block.shape) > 0.02
        n = block.shape[0]
        pid = np.tile(np.arange(1, POINTS + 1, dtype=np.int32), n)
        t = T0 + np.repeat(np.arange(k, k + n), POINTS) * S
        order = np.lexsort((t, pid))
        rows = Rows.of(pid[order], t[order], block.ravel()[order])
        a = quick.evaluate(rows, ok.ravel()[order])
        with monkeypatch.context() as m:
            m.setattr(Prealarms, "_quiet_batch", lambda *_: None)
            b = general.evaluate(rows, ok.ravel()[order])
        assert a is not None and b is not None
        assert a.changes == b.changes
        taken["changes"] += len(a.changes)
        assert_same_prealarm_state(a.state, b.state)
        quick.commit(a)
        general.commit(b)
    assert taken["changes"] > 0 and taken["full"] > 0
    assert taken["quiet"] > 0 if quiet else taken["quiet"] == 0


def _registry(level_of_3: float) -> PointRegistry:
    return registry(*({} if i != 3 else {"alarm_high": level_of_3} for i in range(1, 9)))


def test_a_registry_change_keeps_each_points_trend() -> None:
    """Point 3 stops being forecast (no alarm level) for a while, then is forecast again: its
    trend goes on from where it stopped, as it did when the trends were kept per point id,
    i.e. as a forecaster that never lost it but got none of its readings meanwhile."""
    values = _values(4, 900)[:, :8]
    changed = Prealarms.of(_registry(1.0), {MINE: QUICK})
    kept = Prealarms.of(_registry(1.0), {MINE: QUICK})
    for k, row in enumerate(values):
        if k == 300:
            changed = Prealarms.of(_registry(np.nan), {MINE: QUICK}, changed.state)
            assert len(changed.state.ids) == 8  # the column stays
        if k == 600:
            changed = Prealarms.of(_registry(1.0), {MINE: QUICK}, changed.state)
        ok = np.ones(8, bool)
        if 300 <= k < 600:
            ok[2] = False  # point 3 is not forecast meanwhile
        a, b = _step(changed, k, row, np.ones(8, bool)), _step(kept, k, row, ok)
        assert a is not None and b is not None
        assert a.changes == b.changes
        assert_same_prealarm_state(a.state, b.state)
    np.testing.assert_array_equal(changed.state.ids, np.arange(1, 9))


def test_a_new_forecast_point_gets_an_empty_column() -> None:
    """A point forecast after a registry change starts from nothing, the others go on: as a
    forecaster of the new registry from the start that got none of the point's readings."""
    values = _values(5, 400)[:, :8]
    grown = Prealarms.of(_registry(np.nan), {MINE: QUICK})
    kept = Prealarms.of(_registry(1.0), {MINE: QUICK})
    assert 3 not in grown.state.ids.tolist()
    for k, row in enumerate(values):
        if k == 200:
            grown = Prealarms.of(_registry(1.0), {MINE: QUICK}, grown.state)
            assert grown.state.trend.t_us[grown.columns.slot[3]] == NO_TIME
        ok = np.ones(8, bool)
        ok[2] = k >= 200
        a, b = _step(grown, k, row, np.ones(8, bool)), _step(kept, k, row, ok)
        assert a is not None and b is not None
        assert a.changes == b.changes
        if k >= 200:  # (before, the grown one has no column for the point)
            assert_same_prealarm_state(a.state, b.state)
    assert grown.state.trend.t_us[grown.columns.slot[3]] == T0 + 399 * S


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_tick_with_one_clock_gives_what_the_per_point_clock_gives(seed: int) -> None:
    """``interruption.tick`` with one clock (its test in fewer calls) and with the same clock
    per point (the general test): the same episodes and state."""
    rng = np.random.default_rng(seed)
    size = 40
    reg = registry(*({"poll_cycle_s": float(rng.choice([1.0, 2.0, 30.0]))} for _ in range(39)))
    params = PointParams.of(reg, RuleDefaults())
    last = T0 - rng.integers(0, 200, size) * S
    last[rng.random(size) < 0.2] = NEVER
    state = interruption.InterruptionState.empty(size)
    state.active[rng.random(size) < 0.2] = True
    state.active[5:8] = False
    for now in (T0 - 150 * S, T0 - 60 * S, T0, T0 + 30 * S):
        last[5:8] = now - params.interruption_us[5:8]  # silent for the limit exactly: not yet
        one = interruption.tick(now, state, reg.known, last, np.full(size, 0.5), params)
        each = interruption.tick(np.full(size, now), state, reg.known, last,
                                 np.full(size, 0.5), params)  # fmt: skip
        assert one[0] == each[0]
        np.testing.assert_array_equal(one[1].active, each[1].active)
        np.testing.assert_array_equal(one[1].start_us, each[1].start_us)
    # every point heard just now but one, silent one microsecond past its limit
    now = T0 + 1000 * S
    fresh = np.full(size, now)
    fresh[9] = now - params.interruption_us[9] - 1
    quiet = interruption.InterruptionState.empty(size)
    changes, after = interruption.tick(now, quiet, reg.known, fresh, np.full(size, 0.5), params)
    assert [c.point_id for c in changes] == [9] and after.active[9]


def test_the_small_reductions_answer_as_numpy_does() -> None:
    rng = np.random.default_rng(7)
    for n in (1, 2, 13, 500):
        mask = rng.random(n) < 0.3
        floats = rng.standard_normal(n)
        floats[rng.random(n) < 0.1] = np.nan
        ints = rng.integers(-(2**62), 2**62, n)
        for a in (mask, ~mask, np.zeros(n, bool), floats, ints, np.zeros(n)):
            assert small.some(a) == bool(a.any())
            assert small.every(a) == bool(a.all())
        np.testing.assert_array_equal(small.where_set(mask), np.flatnonzero(mask))
        assert small.lowest(ints) == ints.min() and small.highest(ints) == ints.max()
    assert not small.some(np.zeros(0, bool)) and small.every(np.zeros(0, bool))
