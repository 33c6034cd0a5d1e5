"""Retry delays: exponential with a cap, each drawn between half its ceiling and the ceiling
("equal jitter"), so that clients retrying after the same failure spread out. One small
class, tested in tests/minewatch/test_backoff.py; no scattered sleeps."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial_s: float = 0.2
    factor: float = 2.0
    max_s: float = 10.0
    rng: random.Random = field(default_factory=random.Random)
    _attempt: int = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; grows until :meth:`reset`."""
        ceiling = min(self.max_s, self.initial_s * self.factor**self._attempt)
        self._attempt += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self._attempt = 0
