"""Alarm episodes: one record per alarm from raise to clear, with the YCBJ statistics.

An evaluation yields :class:`EpisodeChange` records: an episode opened in the batch (insert),
or more readings / the end of an episode opened earlier (update). Statistics come from the
runs of :mod:`alarms.rules.runs`, computed per run with numpy; this module only turns the few
runs that open, continue or end an episode into records. :class:`Episode` is an episode as the
store holds it, and :class:`EpisodeLog` folds records into episodes the way the store does (for
the reference, the differential tests, the benchmark and ``minewatch evaluate``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from minewatch.alarms.rules.run_state import RunTable


@dataclass(frozen=True, slots=True)
class EpisodeChange:
    point_id: int
    rule: str
    abnormal_type: str
    opened: bool  # True: the episode starts in this batch (insert); False: it continues
    started_at_us: int | None  # set when opened: event time of the excursion's first reading
    threshold: float | None  # set level that was crossed, when opened
    start_value: float | None
    ended_at_us: int | None  # set when the episode ends in this batch
    count: int  # readings of the episode added by this change
    value_sum: float
    max_value: float
    max_at_us: int
    min_value: float
    min_at_us: int
    classification: str | None = None  # set on open, and on end when it changes
    raised_at_us: int | None = None  # when the engine raised it (confirmation), when opened
    related_point_id: int | None = None  # e.g. the feed point of a 馈电异常


def changes_from_runs(
    rule: str,
    abnormal_type: str,
    runs: RunTable,
    threshold: npt.NDArray[np.float64] | None,
    classification: str | npt.NDArray[np.object_],
    final_classification: npt.NDArray[np.object_] | None = None,
    related: dict[int, int] | None = None,
) -> list[EpisodeChange]:
    """Records for the runs that open, continue or end an episode.

    ``classification`` is given when an episode opens (one value, or one per run);
    ``final_classification`` (per run, None = keep) replaces it when the episode ends, e.g. an
    exceedance recognised afterwards as an undeclared calibration. ``related`` maps a point to
    a related point (the feed of a 馈电异常).
    """
    if not len(runs):
        return []
    live = runs.opened | runs.was_active
    touched = live & (runs.opened | runs.ended | (runs.db_count > 0))
    out: list[EpisodeChange] = []
    for k in np.flatnonzero(touched).tolist():
        opened = bool(runs.opened[k])
        ended = bool(runs.ended[k])
        pid = int(runs.point[k])
        final = final_classification[k] if final_classification is not None else None
        at_open = classification if isinstance(classification, str) else classification[k]
        label = final if ended and final is not None else (at_open if opened else None)
        level = float(threshold[pid]) if opened and threshold is not None else None
        out.append(
            EpisodeChange(
                point_id=pid,
                rule=rule,
                abnormal_type=abnormal_type,
                opened=opened,
                started_at_us=int(runs.start_us[k]) if opened else None,
                threshold=level if level is None or np.isfinite(level) else None,
                start_value=float(runs.start_value[k]) if opened else None,
                ended_at_us=int(runs.end_us[k]) if ended else None,
                count=int(runs.db_count[k]),
                value_sum=float(runs.db_total[k]),
                max_value=float(runs.db_max[k]),
                max_at_us=int(runs.db_max_at[k]),
                min_value=float(runs.db_min[k]),
                min_at_us=int(runs.db_min_at[k]),
                classification=label,
                raised_at_us=int(runs.raised_at_us[k]) if opened else None,
                related_point_id=related.get(pid) if related and opened else None,
            )
        )
    return out


def closed_record(
    point_id: int,
    rule: str,
    abnormal_type: str,
    classification: str,
    start_us: int,
    end_us: int,
    value: float,
    threshold: float | None = None,
) -> EpisodeChange:
    """A record opened and ended at once (a spike, an interruption found to be a delay)."""
    return EpisodeChange(
        point_id=point_id,
        rule=rule,
        abnormal_type=abnormal_type,
        opened=True,
        started_at_us=start_us,
        threshold=threshold,
        start_value=value,
        ended_at_us=end_us,
        count=1,
        value_sum=value,
        max_value=value,
        max_at_us=start_us,
        min_value=value,
        min_at_us=start_us,
        classification=classification,
        raised_at_us=end_us,
    )


@dataclass(slots=True)
class Episode:
    """One alarm from start to end with its YCBJ statistics, as the store holds it."""

    point: int
    rule: str
    classification: str | None
    start_us: int
    raised_us: int | None
    start_value: float | None
    threshold: float | None
    related: int | None = None
    end_us: int | None = None
    count: int = 0
    total: float = 0.0
    vmax: float = -math.inf
    vmax_at: int = 0
    vmin: float = math.inf
    vmin_at: int = 0

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan


class EpisodeLog:
    """Episodes assembled from an engine's changes (updates before inserts, as the store).

    ``point_offset`` is added to each change's point id (``minewatch evaluate`` numbers the
    trace's points from 0, the registry from 1)."""

    def __init__(self, point_offset: int = 0) -> None:
        self.episodes: list[Episode] = []
        self._open: dict[tuple[int, str], Episode] = {}
        self._offset = point_offset

    def apply(self, changes: list[EpisodeChange]) -> None:
        for c in [c for c in changes if not c.opened] + [c for c in changes if c.opened]:
            key = (c.point_id + self._offset, c.rule)
            if c.opened:
                if key in self._open:
                    raise AssertionError(f"two open episodes of one rule: {c}")
                assert c.started_at_us is not None
                related = c.related_point_id
                episode = Episode(
                    key[0], c.rule, c.classification, c.started_at_us, c.raised_at_us,
                    c.start_value, c.threshold, None if related is None else related + self._offset,
                )  # fmt: skip
                self.episodes.append(episode)
                self._open[key] = episode
            else:
                if key not in self._open:
                    raise AssertionError(f"update of an episode that is not open: {c}")
                episode = self._open[key]
                if c.classification is not None:
                    episode.classification = c.classification
            episode.count += c.count
            episode.total += c.value_sum
            if c.max_value > episode.vmax:
                episode.vmax, episode.vmax_at = c.max_value, c.max_at_us
            if c.min_value < episode.vmin:
                episode.vmin, episode.vmin_at = c.min_value, c.min_at_us
            if c.ended_at_us is not None:
                episode.end_us = c.ended_at_us
                del self._open[key]
