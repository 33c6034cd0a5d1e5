"""The pre-alarms' one-cycle path with both trends in one array (``TrendPair``), its quiet
cycle and its fit of the few rising rows (issues 14 and 17) give the bits of the general
path, on hand-made series and on the golden evaluation's simulated mine."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from minewatch.alarms import prealarms as prealarms_module
from minewatch.alarms.evaluation.run import cycle_batches, registry_of
from minewatch.alarms.forecast import Trend
from minewatch.alarms.prealarms import PrealarmParams, Prealarms
from minewatch.alarms.rules.run_state import Rows
from minewatch.registry import PointRegistry
from minewatch.simulators.model import SimulatedMine
from minewatch.simulators.trace import record
from minewatch.trace import Trace

from .helpers import MINE, T0, S, assert_same_prealarm_state, registry
from .test_evaluate_golden import CYCLES, small_trace_config

Cycle = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # pid, t, value, ok


def _series(seed: int, points: int, cycles: int, together: bool) -> np.ndarray:
    """values[cycle, point]: noise around a baseline; a quarter of the points rise past the
    level one after the other and fall back; spikes; missing readings; ``together``: one
    rise of every point at once too (no row left out of the fit)."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.1, 0.5, points) + 0.02 * rng.standard_normal((cycles, points))
    for k, p in enumerate(rng.choice(points, points // 4, replace=False)):
        start, length = 100 + k * cycles // (points // 4 + 1), int(rng.integers(200, 600))
        ramp = np.minimum(np.arange(cycles - start), length) * rng.uniform(0.001, 0.004)
        values[start:, p] += ramp
        values[start + length :, p] -= np.arange(cycles - start - length) * 0.006
    if together:
        start = cycles // 2
        values[start : start + 300] += np.arange(300)[:, None] * 0.003
        values[start + 300 :] += 0.9 - 0.005 * np.arange(cycles - start - 300)[:, None]
    values.reshape(-1)[rng.integers(0, values.size, 30)] += 2.0
    values[rng.random(values.shape) < 0.02] = np.nan  # a point missing from a cycle
    return np.clip(values, 0.0, 4.0)


def _cycles(values: np.ndarray, spread_us: int) -> Iterator[Cycle]:
    for k, row in enumerate(values):
        has = ~np.isnan(row)
        pid = (np.flatnonzero(has) + 1).astype(np.int32)
        t = np.full(len(pid), T0 + k * S, np.int64) + np.arange(len(pid)) * spread_us
        yield pid, t, row[has], np.ones(len(pid), bool)


def _compare(
    reg: PointRegistry,
    params: dict[str, PrealarmParams],
    cycles: Iterator[Cycle],
    monkeypatch: pytest.MonkeyPatch,
) -> Counter[str]:
    """Each cycle through the one-cycle path and the general one (``Rows.of``): changes and
    states equal bit for bit; commit both. Returns the changes and the path's branches
    taken: ``quiet`` (no fit), ``few`` (some rows fitted), ``all`` (every row fitted)."""
    seen: Counter[str] = Counter()
    fit_trend = prealarms_module.fit_trend
    rows_now = [0]

    def spy(sums: np.ndarray, horizon_s: np.ndarray, filtered: np.ndarray) -> Trend:
        seen["all" if sums.shape[-1] == rows_now[0] else "few"] += 1
        return fit_trend(sums, horizon_s, filtered)

    monkeypatch.setattr(prealarms_module, "fit_trend", spy)
    fast, general = (Prealarms.of(reg, params) for _ in range(2))
    for pid, t, v, ok in cycles:
        s = np.zeros(len(pid), np.int16)
        single = Rows.distinct(pid, t, v, s)
        assert single.single
        rows_now[0] = int(np.count_nonzero(ok & fast.points.target[pid]))
        fits = seen["all"] + seen["few"]
        a = fast.evaluate(single, ok)
        seen["quiet"] += a is not None and seen["all"] + seen["few"] == fits
        b = general.evaluate(Rows.of(pid, t, v, s), ok)
        assert (a is None) == (b is None)
        if a is None or b is None:
            continue
        assert a.changes == b.changes
        seen["changes"] += len(a.changes)
        assert_same_prealarm_state(a.state, b.state)
        fast.commit(a)
        general.commit(b)
    return seen


@pytest.mark.parametrize(
    ("seed", "spread_us", "together", "tuned", "hold_s"),
    [(1, 0, False, True, 0.0), (2, 0, True, True, 0.0), (3, 1000, False, True, 0.0),
     (4, 0, True, False, 0.0), (5, 0, True, True, 60.0), (6, 1000, False, True, 20.0)],
)  # fmt: skip
def test_the_pair_path_gives_the_bits_of_the_general_one(
    seed: int,
    spread_us: int,
    together: bool,
    tuned: bool,
    hold_s: float,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """40 points over 2,400 cycles: quiet cycles, cycles where a few points rise, and (with
    ``together``) where every point does; the default parameters (``tuned`` False) or
    quicker ones that raise more often; a clear hold of ``hold_s``."""
    points = 40
    params = (
        PrealarmParams(horizon_s=600.0, confirm=5, min_weight=20.0) if tuned else PrealarmParams()
    )
    params = dataclasses.replace(params, clear_hold_s=hold_s)
    reg = registry(*({} for _ in range(points)))
    values = _series(seed, points, 2400, together)
    seen = _compare(reg, {MINE: params}, _cycles(values, spread_us), monkeypatch)
    assert seen["changes"] > 0  # pre-alarms raised and cleared
    assert seen["quiet"] > 0 and seen["few"] > 0  # both shortcuts were taken
    if together:
        assert seen["all"] > 0


@pytest.fixture(scope="module")
def scenario_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The golden evaluation's small mine with every scenario kind, 45 minutes."""
    path = tmp_path_factory.mktemp("pair") / "small.trace"
    record(SimulatedMine(small_trace_config()), path, CYCLES)
    return path


def test_the_pair_path_on_the_golden_mine(
    scenario_trace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The golden every-scenario trace, one polling cycle per batch, readings with a status
    bit left out as the engine does: the same pre-alarms and states as the general path."""
    trace = Trace(scenario_trace)
    reg = registry_of(trace)

    def cycles() -> Iterator[Cycle]:
        for chunk, _ in cycle_batches(trace, 1):
            order = np.argsort(chunk.point, kind="stable")
            pid = (chunk.point[order] + 1).astype(np.int32)
            yield pid, chunk.time_us[order], chunk.value[order], chunk.status[order] == 0

    seen = _compare(reg, {}, cycles(), monkeypatch)
    assert seen["quiet"] > 0 and seen["few"] + seen["all"] > 0
