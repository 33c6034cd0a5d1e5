"""The engine's cheap paths for a one-cycle batch (issue 14) give the same bits as the general
paths they stand in for."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from minewatch.alarms import engine as engine_module
from minewatch.alarms.engine import AlarmEngine
from minewatch.alarms.episodes import EpisodeChange
from minewatch.alarms.evaluation.run import cycle_batches, registry_of
from minewatch.alarms.prealarms import PrealarmParams, Prealarms
from minewatch.alarms.rules.run_state import Rows
from minewatch.batch import ReadingBatch
from minewatch.registry import PointRegistry
from minewatch.simulators.model import SimulatedMine
from minewatch.simulators.trace import record
from minewatch.trace import Trace

from .helpers import MINE, T0, S, assert_same_prealarm_state, registry
from .test_evaluate_golden import CYCLES, small_trace_config

POINTS = 12


def _cycles(seed: int, cycles: int) -> np.ndarray:
    """values[cycle, point]: noise, slow rises past the level, falls back, spikes, gaps."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.1, 0.5, POINTS)
    values = base + 0.03 * rng.standard_normal((cycles, POINTS)).cumsum(axis=0) / 10
    for p in rng.choice(POINTS, POINTS // 2, replace=False):
        start, length = int(rng.integers(0, cycles // 2)), int(rng.integers(200, 900))
        ramp = np.minimum(np.arange(cycles - start), length) * rng.uniform(0.0005, 0.003)
        values[start:, p] += ramp
        values[start + length :, p] -= np.arange(cycles - start - length) * 0.004
    values.reshape(-1)[rng.integers(0, values.size, 20)] += 2.0
    values[rng.random(values.shape) < 0.02] = np.nan  # a point missing from a cycle
    return np.clip(values, 0.0, 4.0)


@pytest.mark.parametrize(("seed", "spread_us"), [(1, 0), (2, 1000), (3, 0)])
@pytest.mark.parametrize("slow_tau_s", [0.0, 400.0])
def test_the_single_row_forecaster_gives_the_bits_of_the_general_one(
    seed: int, spread_us: int, slow_tau_s: float
) -> None:
    """Every row of a cycle at one time (``spread_us`` 0: the zero terms are skipped) or a
    little apart; the trends' states and the pre-alarms equal, bit for bit but a zero's sign."""
    params = PrealarmParams(horizon_s=600.0, tau_s=60.0, slow_tau_s=slow_tau_s, confirm=5,
                            min_weight=20.0)  # fmt: skip
    reg = registry(*({} for _ in range(POINTS)))
    fast, general = (Prealarms.of(reg, {MINE: params}) for _ in range(2))
    values = _cycles(seed, 1500)
    changes = 0
    for k, row in enumerate(values):
        has = ~np.isnan(row)
        pid = (np.flatnonzero(has) + 1).astype(np.int32)
        t = np.full(len(pid), T0 + k * S, np.int64)
        t += np.arange(len(pid)) * spread_us
        v, s = row[has], np.zeros(len(pid), np.int16)
        single = Rows.distinct(pid, t, v, s)
        assert single.single
        ok = np.ones(len(pid), bool)
        a, b = fast.evaluate(single, ok), general.evaluate(Rows.of(pid, t, v, s), ok)
        assert (a is None) == (b is None)
        if a is None or b is None:
            continue
        assert a.changes == b.changes
        changes += len(a.changes)
        assert_same_prealarm_state(a.state, b.state)
        fast.commit(a)
        general.commit(b)
    assert changes > 0  # the series raise and clear pre-alarms: the latch was exercised


@pytest.fixture(scope="module")
def scenario_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The golden evaluation's small mine with every scenario kind (faults, calibrations, CO,
    feed, fan stop, silences, drift), 45 minutes."""
    path = tmp_path_factory.mktemp("quiet") / "small.trace"
    record(SimulatedMine(small_trace_config()), path, CYCLES)
    return path


def _run(
    registry: PointRegistry, trace: Trace, cycles: int, gate: bool, ahead_us: int = 0
) -> list[object]:
    """Per batch and clock tick (``ahead_us`` after the batch's last reading): the episode
    changes, the pre-alarm changes, the flags."""
    engine = AlarmEngine(registry, quiet_gate=gate)
    out: list[object] = []
    start, reloaded = None, False
    for chunk, _ in cycle_batches(trace, cycles):
        start = int(chunk.time_us[0]) if start is None else start
        if not reloaded and chunk.time_us[0] - start >= 2110 * S:  # in a low cross-check
            engine.use_registry(registry)  # the gateway reloads its points: what it kept first
            reloaded = True
        zeros = np.zeros(len(chunk), np.int16)
        batch = ReadingBatch(chunk.time_us, chunk.point + 1, chunk.value, chunk.status, zeros)
        for evaluation in (engine.evaluate(batch), None):
            if evaluation is None:
                evaluation = engine.tick(int(chunk.time_us[-1]) + ahead_us)
            engine.commit(evaluation)
            pre = evaluation.prealarm.changes if evaluation.prealarm is not None else []
            out.append(([_rounded(c) for c in evaluation.changes], pre,
                        evaluation.flags.tolist()))  # fmt: skip
    return out


def _rounded(change: EpisodeChange) -> EpisodeChange:
    """The change with its sum to 9 decimals: a deferred family (the cross-check) adds a
    window's readings in larger groups, which moves the last bits of a float sum as any other
    cut of the batches does."""
    return dataclasses.replace(change, value_sum=round(change.value_sum, 9))


@pytest.mark.parametrize(
    ("cycles", "ahead_s", "cap"), [(1, 0, 0), (7, 0, 0), (1, 3, 0), (1, 0, 300)]
)
def test_the_quiet_gate_changes_nothing_the_engine_raises(
    scenario_trace: Path, cycles: int, ahead_s: int, cap: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every change of every batch and tick is the same with the gate and the deferral as with
    every family run on every batch (the trace sets every family off, and is quiet in
    between); a float sum only to its last bits. ``cap``: a low bound on the readings kept."""
    if cap:  # the readings a deferred family keeps, evaluated whenever they pass the cap
        monkeypatch.setattr(engine_module, "DEFER_MAX_READINGS", cap)
    trace = Trace(scenario_trace)
    registry = registry_of(trace)
    gated, full = (_run(registry, trace, cycles, gate, ahead_s * S) for gate in (True, False))
    assert gated == full
    rules = {c.rule for changes, _, _ in full for c in changes}  # type: ignore[attr-defined]
    assert {"upper_alarm", "disconnection", "flatline", "co_fire_candidate", "fan_stop",
            "calibration", "data_interruption", "cross_check",
            "feed_abnormal"} <= rules  # fmt: skip
