"""Backoff: the delays grow by ``factor`` from ``initial_s`` up to ``max_s``, each drawn between
half its ceiling and the ceiling, and start over after ``reset``."""

from __future__ import annotations

import random

import pytest

from minewatch.backoff import Backoff


def _ceilings(backoff: Backoff, n: int) -> list[float]:
    return [min(backoff.max_s, backoff.initial_s * backoff.factor**i) for i in range(n)]


@pytest.mark.parametrize("seed", range(20))
def test_each_delay_lies_between_half_its_ceiling_and_the_ceiling(seed: int) -> None:
    backoff = Backoff(initial_s=0.2, factor=2.0, max_s=10.0, rng=random.Random(seed))
    for ceiling in _ceilings(backoff, 12):
        assert ceiling / 2 <= backoff.next_delay() <= ceiling


def test_the_ceiling_doubles_until_the_cap_then_stays() -> None:
    backoff = Backoff(initial_s=0.2, factor=2.0, max_s=10.0, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(12)]
    assert delays[0] <= 0.2 and delays[5] >= 3.2  # 0.2 * 2**5 / 2
    assert all(5.0 <= d <= 10.0 for d in delays[6:])  # capped at max_s


def test_reset_starts_again_from_the_initial_delay() -> None:
    backoff = Backoff(initial_s=1.0, factor=3.0, max_s=100.0, rng=random.Random(3))
    for _ in range(4):
        backoff.next_delay()
    backoff.reset()
    assert 0.5 <= backoff.next_delay() <= 1.0


def test_the_same_seed_gives_the_same_delays() -> None:
    def run() -> list[float]:
        backoff = Backoff(rng=random.Random(42))
        return [backoff.next_delay() for _ in range(8)]

    assert run() == run()
