"""The clear hold of a pre-alarm (``clear_hold_s``, issue 17): a forecast that dips below the
clear level for less than the hold and comes back keeps the same pre-alarm; a longer dip
clears it, the hold after the dip began; the same pre-alarms in any batching."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from minewatch.alarms.prealarms import PrealarmChange

from .helpers import T0, S
from .test_prealarms import PARAMS, feed, make, noise

HOLD_S = 300.0


def dip(flat_s: int) -> np.ndarray:
    """A rise to 0.7 (level 1.0) that stops for ``flat_s`` (the forecast falls below the
    clear level, 0.9), rises again, reaches the level and falls back to the baseline."""
    rise = 0.3 + 0.002 * np.arange(200)
    again = 0.7 + 0.001 * np.arange(250)
    fall = np.maximum(0.95 - 0.003 * np.arange(1200), 0.3)
    values = np.concatenate([np.full(300, 0.3), rise, np.full(flat_s, 0.7), again, fall])
    return values + noise(len(values), 5, sd=0.005)


def run(flat_s: int, hold_s: float, batch: int = 7) -> list[tuple[int, int | None]]:
    """(raised s, cleared s or None) of every change."""
    pre = make({}, params=dataclasses.replace(PARAMS, clear_hold_s=hold_s))
    changes: list[PrealarmChange] = feed(pre, 1, dip(flat_s), batch=batch)
    return [(round((c.raised_us - T0) / S),
             None if c.cleared_us is None else round((c.cleared_us - T0) / S))
            for c in changes]  # fmt: skip


def raises(changes: list[tuple[int, int | None]]) -> int:
    return sum(cleared is None for _, cleared in changes)


def test_a_dip_shorter_than_the_hold_is_one_pre_alarm() -> None:
    without = run(400, 0.0)
    assert raises(without) == 2  # without a hold: cleared in the dip, raised again after it
    held = run(400, HOLD_S)
    assert raises(held) == 1
    assert held[0] == without[0]  # raised at the same reading
    assert [c for c in held if c[1] is not None] == [(held[0][0], held[-1][1])]  # one clear
    assert held[-1][1] > without[-1][1]  # ... after the gas fell, the hold later


def test_a_dip_longer_than_the_hold_clears_the_pre_alarm_when_the_hold_is_over() -> None:
    without = run(600, 0.0)
    held = run(600, HOLD_S)
    assert raises(without) == raises(held) == 2
    first_clear = next(c for _, c in without if c is not None)
    assert next(c for _, c in held if c is not None) == first_clear + HOLD_S
    assert held[2][0] == without[2][0]  # the second pre-alarm raised at the same reading


@pytest.mark.parametrize("flat_s", [400, 600])
def test_the_hold_gives_the_same_pre_alarms_in_any_batching(flat_s: int) -> None:
    """Batches of 1, 7, 20 and 300 readings (a clear run cut by a batch's edge goes on)."""
    runs = [run(flat_s, HOLD_S, batch) for batch in (1, 7, 20, 300)]
    assert all(r == runs[0] for r in runs[1:])
    assert runs[0] != run(flat_s, 0.0, 1)  # the hold changed something here
