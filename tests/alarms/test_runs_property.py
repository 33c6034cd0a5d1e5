"""The vectorised runs agree with a plain per-reading loop, however the series is batched."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from minewatch.batch import ReadingBatch
from tests.alarms.helpers import recorder, series


def reference(
    times: list[float], values: list[float], level: float, clear: float, ramp: float, delay: float
) -> tuple[list[tuple[float, float, float | None, int, float, float]], list[float]]:
    """(start, raised, end, count, max, min) per episode, and spike start times: one loop."""
    episodes, spikes = [], []
    on = active = False
    start = raised = 0.0
    stats: list[float] = []
    prev = math.nan
    for t, v in zip(times, values, strict=True):
        if not on and v >= level:
            on, start, stats = True, t, [v]
            need = 1 if delay == 0 and prev >= ramp else 2
        elif on and v < clear:
            if active:
                episodes.append((start, raised, t, len(stats), max(stats), min(stats)))
            elif len(stats) == 1:
                spikes.append(start)
            on = active = False
        elif on:
            stats.append(v)
        if on and not active and len(stats) >= need and t - start >= delay:
            active, raised = True, t
        prev = v
    if active:
        episodes.append((start, raised, None, len(stats), max(stats), min(stats)))
    return episodes, spikes


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    steps=st.lists(st.sampled_from([1.0, 1.0, 1.0, 2.5, 30.0]), min_size=1, max_size=60),
    grid=st.data(),
    clear=st.sampled_from([1.0, 0.8]),
    ramp=st.sampled_from([math.nan, 0.8]),
    delay=st.sampled_from([0.0, 3.0]),
)
def test_engine_matches_the_loop_for_any_batching(
    steps: list[float], grid: st.DataObject, clear: float, ramp: float, delay: float
) -> None:
    n = len(steps)
    values = grid.draw(st.lists(st.sampled_from([0.3, 0.7, 0.9, 1.0, 1.2, 1.6]), min_size=n,
                                max_size=n))  # fmt: skip
    cuts = sorted(grid.draw(st.lists(st.integers(0, n), max_size=4)))
    times = np.cumsum(steps).tolist()
    point = {"alarm_high": 1.0, "alarm_high_clear": clear, "poweroff_high": None,
             "prewarn_high": ramp, "on_delay_s": delay, "flatline_samples": 0}  # fmt: skip
    rec = recorder(point)
    whole = series(1, values, times_s=times)
    for lo, hi in zip([0, *cuts], [*cuts, n], strict=True):
        if hi > lo:
            rec.feed(whole.take(np.arange(lo, hi)))
        else:
            rec.feed(ReadingBatch.empty())
    expected, spikes = reference(times, values, 1.0, clear, ramp, delay)
    got = [
        (e.started_s, e.raised_s, e.ended_s, e.count, e.max, e.min) for e in rec.of("upper_alarm")
    ]
    assert got == expected
    assert [e.started_s for e in rec.of("interference")] == spikes
