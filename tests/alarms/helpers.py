"""Hand-made points and series for the alarm rule tests (no database)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from minewatch.alarms.engine import AlarmEngine
from minewatch.alarms.episodes import EpisodeChange
from minewatch.alarms.prealarms import PrealarmState
from minewatch.batch import ReadingBatch
from minewatch.registry import CalibrationWindows, PointRegistry

MINE = "141024010001"
T0 = 1_780_000_000_000_000  # an arbitrary event time (2026), microseconds
S = 1_000_000

#: A face methane point (T1): alarm 1.0, power-off 1.5, restore 1.0, range 0-4 (§1 row 2).
METHANE = dict(
    sensor_type="0001", value_type="MN", range_low=0.0, range_high=4.0, alarm_high=1.0,
    alarm_high_clear=1.0, poweroff_high=1.5, restore_high=1.0,
)  # fmt: skip


def registry(
    *points: dict[str, object], calibrations: list[tuple[int, int, int]] | None = None
) -> PointRegistry:
    """Points numbered from 1 in order; each dict overrides METHANE's fields."""
    rows = []
    for i, extra in enumerate(points, start=1):
        row: dict[str, object] = {"id": i, "mine_code": MINE, "code": f"P{i}", **METHANE}
        row.update(extra)
        rows.append(row)
    windows = CalibrationWindows.from_rows(calibrations or [])
    return PointRegistry.from_frame(pd.DataFrame(rows), windows)


def series(
    point: int,
    values: list[float] | np.ndarray,
    *,
    start_s: float = 0.0,
    step_s: float = 1.0,
    status: list[int] | int = 0,
    times_s: list[float] | None = None,
) -> ReadingBatch:
    n = len(values)
    times = np.asarray(times_s if times_s is not None else start_s + step_s * np.arange(n))
    stat = np.broadcast_to(np.asarray(status, np.int16), (n,)).copy()
    return ReadingBatch(
        T0 + np.round(times * S).astype(np.int64),
        np.full(n, point, np.int32),
        np.asarray(values, np.float64),
        stat,
        np.zeros(n, np.int16),
    )


def at(seconds: float) -> int:
    return T0 + round(seconds * S)


@dataclass
class Episode:
    """An episode assembled from its changes, as the database would hold it."""

    point: int
    rule: str
    abnormal_type: str
    classification: str | None
    started_s: float
    raised_s: float | None
    ended_s: float | None = None
    count: int = 0
    total: float = 0.0
    max: float = -np.inf
    min: float = np.inf
    start_value: float | None = None
    threshold: float | None = None
    related: int | None = None
    changes: list[EpisodeChange] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return self.total / self.count


@dataclass
class Recorder:
    """Runs batches through an engine (evaluate, then commit) and keeps the episodes."""

    engine: AlarmEngine
    episodes: list[Episode] = field(default_factory=list)
    flags: list[np.ndarray] = field(default_factory=list)

    def feed(self, *batches: ReadingBatch) -> list[EpisodeChange]:
        evaluation = self.engine.evaluate(ReadingBatch.concat(list(batches)))
        self.engine.commit(evaluation)
        self.flags.append(evaluation.flags)
        self._apply(evaluation.changes)
        return evaluation.changes

    def tick(self, seconds: float, *, behind: bool = False) -> list[EpisodeChange]:
        evaluation = self.engine.tick(at(seconds), behind=behind)
        self.engine.commit(evaluation)
        self._apply(evaluation.changes)
        return evaluation.changes

    def _apply(self, changes: list[EpisodeChange]) -> None:
        opened = [c for c in changes if c.opened]
        for c in [c for c in changes if not c.opened] + opened:  # updates first, as the store
            if c.opened:
                assert c.started_at_us is not None
                episode = Episode(
                    c.point_id, c.rule, c.abnormal_type, c.classification,
                    (c.started_at_us - T0) / S,
                    None if c.raised_at_us is None else (c.raised_at_us - T0) / S,
                    start_value=c.start_value, threshold=c.threshold, related=c.related_point_id,
                )  # fmt: skip
                assert not self.open(c.point_id, c.rule), "two open episodes of one rule"
                self.episodes.append(episode)
            else:
                found = self.open(c.point_id, c.rule)
                assert found, f"update of an episode that is not open: {c}"
                episode = found[0]
                if c.classification is not None:
                    episode.classification = c.classification
            episode.changes.append(c)
            episode.count += c.count
            episode.total += c.value_sum
            episode.max = max(episode.max, c.max_value)
            episode.min = min(episode.min, c.min_value)
            if c.ended_at_us is not None:
                episode.ended_s = (c.ended_at_us - T0) / S

    def open(self, point: int, rule: str) -> list[Episode]:
        return [
            e for e in self.episodes if e.point == point and e.rule == rule and e.ended_s is None
        ]

    def rules(self, point: int | None = None) -> list[str]:
        return sorted(e.rule for e in self.episodes if point is None or e.point == point)

    def of(self, rule: str) -> list[Episode]:
        return [e for e in self.episodes if e.rule == rule]


def recorder(*points: dict[str, object], **kwargs: object) -> Recorder:
    return Recorder(AlarmEngine(registry(*points, **kwargs)))  # type: ignore[arg-type]


def assert_same_prealarm_state(a: PrealarmState, b: PrealarmState) -> None:
    """Two pre-alarm states hold the same bits: the latch and both trends."""
    for name in ("active", "run", "raised_us"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.since(), b.since())  # the clear hold's runs
    for trend in ("trend", "slow"):
        for f in dataclasses.fields(a.trend):
            np.testing.assert_array_equal(
                getattr(getattr(a, trend), f.name), getattr(getattr(b, trend), f.name)
            )
