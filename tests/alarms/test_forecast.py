"""The pre-alarm forecaster's trend (alarms/forecast.py) on hand-made series."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from minewatch.alarms.forecast import (
    SEGMENT_TAUS,
    TrendState,
    ew_state_after,
    ew_trend,
    median3,
)

S = 1_000_000
T0 = 1_780_000_000_000_000


def run(
    pid: np.ndarray, t_s: np.ndarray, y: np.ndarray, *, cuts: list[int] | None = None,
    tau_s: float = 60.0, horizon_s: float = 300.0, size: int = 4,
) -> tuple[dict[str, np.ndarray], TrendState]:  # fmt: skip
    """The trend over rows (sorted by point, then time), fed in batches cut at ``cuts``
    (indices into the time-ordered rows of all points together)."""
    tau = np.full(size, tau_s)
    horizon = np.full(size, horizon_s)
    t_us = T0 + np.round(np.asarray(t_s) * S).astype(np.int64)
    order = np.lexsort((t_us, pid))  # as the engine sorts a batch: by point, then time
    time_order = np.argsort(t_us, kind="stable")
    bounds = [0, *(cuts or []), len(t_us)]
    state = TrendState.empty(size)
    out = {k: np.full(len(t_us), np.nan) for k in ("level", "slope", "forecast", "stderr")}
    for a, b in itertools.pairwise(bounds):
        rows = time_order[a:b]
        rows = rows[np.lexsort((t_us[rows], pid[rows]))]
        trend, state = ew_trend(pid[rows].astype(np.int32), t_us[rows], y[rows], state, tau,
                                horizon)  # fmt: skip
        for k in out:
            out[k][rows] = getattr(trend, k)
    del order
    return out, state


def test_a_clean_ramp_is_fitted_exactly_and_forecast_along_the_line() -> None:
    t = np.arange(600.0)
    y = 0.3 + 0.001 * t
    out, _ = run(np.ones(600, np.int32), t, y)
    assert out["slope"][-1] == pytest.approx(0.001, rel=1e-6)
    # the median of three lags a ramp by one reading
    assert out["level"][-1] == pytest.approx(y[-2], abs=1e-6)
    assert out["forecast"][-1] == pytest.approx(y[-2] + 0.001 * 300, abs=1e-6)
    assert out["stderr"][-1] == pytest.approx(0.0, abs=1e-6)


def test_the_weights_are_exponential_in_age_as_a_direct_weighted_fit_computes() -> None:
    rng = np.random.default_rng(3)
    t = np.cumsum(rng.uniform(0.5, 3.0, 400))  # irregular polling
    y = 0.3 + 0.0005 * t + rng.normal(0, 0.03, 400)
    out, _ = run(np.ones(400, np.int32), t, y, tau_s=45.0)
    for i in (50, 200, 399):
        # a point's second reading has one before it: the median of (y0, y0, y1) is y0
        filtered = np.array([np.median(y[j - 2 : j + 1]) if j >= 2 else y[0]
                             for j in range(i + 1)])  # fmt: skip
        w = np.exp(-(t[i] - t[: i + 1]) / 45.0)
        x = t[: i + 1] - t[i]
        slope, level = np.polyfit(x, filtered, 1, w=np.sqrt(w))
        assert out["slope"][i] == pytest.approx(slope, rel=1e-6, abs=1e-9)
        assert out["level"][i] == pytest.approx(level, rel=1e-6)


def test_a_single_reading_spike_is_removed_by_the_median_of_three() -> None:
    y = np.full(300, 0.3)
    y[250] = 3.5  # interference
    out, _ = run(np.ones(300, np.int32), np.arange(300.0), y)
    assert np.nanmax(np.abs(out["slope"])) == pytest.approx(0.0, abs=1e-12)
    assert np.nanmax(out["forecast"]) == pytest.approx(0.3, abs=1e-9)


def test_median_of_three_carries_the_last_two_readings_across_batches() -> None:
    state = TrendState.empty(2)
    state.prev1[1], state.prev2[1] = 0.5, 0.4
    pid = np.array([1, 1], np.int32)
    filtered, _, _ = median3(pid, np.array([3.0, 0.6]), np.array([0, 0]), state)
    assert filtered.tolist() == [0.5, 0.6]


def test_where_the_batches_are_cut_changes_no_forecast() -> None:
    rng = np.random.default_rng(8)
    n = 900
    t = np.concatenate([np.arange(n, dtype=float), np.arange(n, dtype=float) + 0.5])
    pid = np.repeat(np.array([1, 2], np.int32), n)
    y = np.concatenate([0.3 + 0.001 * np.arange(n), 0.5 - 0.0002 * np.arange(n)])
    y = y + rng.normal(0, 0.02, 2 * n)
    whole, state_whole = run(pid, t, y)
    cut, state_cut = run(pid, t, y, cuts=sorted(rng.choice(2 * n, 40, replace=False).tolist()))
    settled = np.tile(np.arange(n) >= 10, 2)  # a fit through 3 readings has no residual
    for k in whole:
        np.testing.assert_allclose(cut[k][settled], whole[k][settled], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(state_cut.s2, state_whole.s2, rtol=1e-7)


def test_a_batch_longer_than_the_safe_span_is_cut_into_segments_with_the_same_result() -> None:
    tau = 5.0
    n = int(SEGMENT_TAUS * tau * 6)  # six segments at 1 s
    t = np.arange(float(n))
    y = 0.3 + 0.3 * np.sin(t / 40.0)
    pid = np.ones(n, np.int32)
    one, _ = run(pid, t, y, tau_s=tau)
    many, _ = run(pid, t, y, tau_s=tau, cuts=list(range(10, n, 10)))
    for k in one:
        np.testing.assert_allclose(one[k], many[k], rtol=1e-6, atol=1e-9)
    assert np.isfinite(one["forecast"]).all()


def test_a_long_silence_forgets_the_old_trend() -> None:
    t = np.concatenate([np.arange(300.0), 10_000 + np.arange(300.0)])
    y = np.concatenate([0.3 + 0.002 * np.arange(300), np.full(300, 0.3)])
    out, _ = run(np.ones(600, np.int32), t, y)
    assert abs(out["slope"][-1]) < 1e-4  # the ramp before the silence rose 0.002 per second


def test_the_state_alone_is_the_state_of_the_full_trend() -> None:
    """``ew_state_after`` (a sum per point, no fit at every row) leaves the state
    ``ew_trend`` leaves, batch after batch, short and long batches alike."""
    rng = np.random.default_rng(9)
    tau = np.array([0.0, 60.0, 400.0])
    horizon = np.full(3, 600.0)
    full = alone = TrendState.empty(3)
    start = 0
    for size in (1, 7, 60, 300, 2000, 3):  # 2000 s: longer than SEGMENT_TAUS x 60 s
        t = np.arange(start, start + size, dtype=float)
        start += size
        pid = np.repeat(np.array([1, 2], np.int32), size)
        tt = (np.concatenate([t, t]) * 1e6).astype(np.int64)
        y = 0.3 + 0.001 * np.concatenate([t, t]) + rng.normal(0, 0.02, 2 * size)
        trend, full = ew_trend(pid, tt, y, full, tau, horizon)
        alone = ew_state_after(pid, tt, y, alone, tau, trend.filtered)
        for name in ("t_us", "s0", "s1", "s2", "sy", "sty", "syy", "prev1", "prev2"):
            np.testing.assert_allclose(getattr(alone, name), getattr(full, name), rtol=1e-9)
