"""Two more sensor cross-checks on the airflow path (issue 13, item 3): a stuck sensor whose
neighbours move, and an excursion no neighbour sees.

Both are maintenance findings, never gas alarms: they add records, and change nothing of
what the threshold rules raise (a real local gas release seen by one sensor keeps its gas
alarm; the excursion record only says that no neighbour saw it). They run inside the
``cross_check`` family (:mod:`alarms.rules.cross_check`) on its aligned windows (count, sum,
first, max, min of each point's readings that measure the gas), decided in window order once
the event-time watermark has passed, so the same readings in any batching give the same
decisions. They apply to methane points (``minewatch.codes.METHANE_SENSOR_TYPES``) with a
methane neighbour (the mine definition's ``points.downstream``, both ways). A window's
*mean* is its readings' mean; its *range* is max - min.

* **sensor_stuck** (a latched rule, M07): in a window the point's range is at most
  ``stuck_tolerance`` (it reads a constant) while a neighbour upstream of it (whose air
  reaches it) moved clearly: its mean changed by at least ``stuck_move`` from the window
  before. The run starts at such a window, holds through windows where the point stays
  constant and nothing upstream moves (nothing to compare), is raised once it has lasted
  ``stuck_s``, and ends at the first window where the point's own range exceeds the
  tolerance. The existing ``flatline`` rule needs hundreds of identical readings and no
  neighbour; this one needs a neighbour's movement that the point should have followed.
* **local_excursion** (a record, M08): the point's window mean (without the window's single
  highest reading, so one spike does not make it) rose by at least ``excursion_min`` over its
  baseline, the lower mean of its two windows before (a rise split across two windows counts
  whole in the second), and no neighbour within one window's transport delay
  (``AirPath.delay_s`` at most the window) saw it: the spread of the neighbour's window means
  over the two windows before, the window and the window after stays below
  ``excursion_ratio`` times that rise for a neighbour downstream (the air's dilution on the
  way there: a per-point setting, from the mine's ventilation), below
  ``RuleDefaults.excursion_upstream_ratio`` (0.5) times it for one upstream (gas that came
  from there was at least as high there). A neighbour without readings there says nothing:
  at least one must have them. Decided when the window after is; one record per excursion (a point
  flagged in the window before is not flagged again). The record spans the window and holds
  its readings' statistics; ``threshold`` is the baseline plus ``excursion_min``. A calibration
  the mine did not declare or a local sensor fault reads like that; so may a real gas release
  at a single sensor, whose gas alarm is raised as always.

Settings are data per point (``points.stuck_tolerance``, ``stuck_move``, ``stuck_s``,
``excursion_min``, ``excursion_ratio``, migration 0025; NULL: :class:`RuleDefaults`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from minewatch.alarms.codes import RULES, Classification
from minewatch.alarms.episodes import EpisodeChange
from minewatch.alarms.rules.params import RuleDefaults
from minewatch.codes import METHANE_SENSOR_TYPES, ValueType
from minewatch.registry import PointRegistry

if TYPE_CHECKING:
    from minewatch.alarms.rules.cross_check import Window

STUCK = "sensor_stuck"
EXCURSION = "local_excursion"
STUCK_LABEL = Classification.SENSOR_STUCK.value
EXCURSION_LABEL = Classification.LOCAL_EXCURSION.value
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
_US = 1_000_000


@dataclass(frozen=True, slots=True)
class NeighbourPoints:
    """Pairs per check and settings per point id."""

    up_src: IntArray  # ``up_src[k]``'s air comes from ``up_dst[k]`` (its upstream neighbour)
    up_dst: IntArray
    near_src: IntArray  # neighbours within one window's transport delay, both ways
    near_dst: IntArray
    near_down: BoolArray  # ``near_dst[k]`` is downstream of ``near_src[k]`` (else upstream)
    stuck_checked: BoolArray
    excursion_checked: BoolArray
    tolerance: FloatArray
    move: FloatArray
    stuck_hold_us: IntArray
    excursion_min: FloatArray
    excursion_ratio: FloatArray  # a neighbour downstream: per point (the air's dilution)
    upstream_ratio: float  # a neighbour upstream: gas from there was at least as high there

    @classmethod
    def of(cls, registry: PointRegistry, defaults: RuleDefaults) -> NeighbourPoints:
        size = registry.size
        window_us = round(defaults.cross_check_window_s * _US)
        methane = np.isin(registry.sensor_type, list(METHANE_SENSOR_TYPES)) & (
            registry.value_type == ValueType.ANALOG.value
        )
        up: set[tuple[int, int]] = set()
        near: dict[tuple[int, int], bool] = {}  # (point, neighbour) -> neighbour downstream
        downstream = registry.downstream
        sources: list[int] = (
            np.flatnonzero(registry.known & methane).tolist() if downstream is not None else []
        )
        for i in sources:
            for path in downstream[i] or ():  # type: ignore[index]
                j = registry.point_id(str(registry.mine_code[i]), str(path["target"]))
                if j < 0 or j == i or not methane[j]:
                    continue
                up.add((j, i))
                if round(float(path.get("delay_s") or 0.0) * _US) <= window_us:
                    near[i, j] = True
                    near[j, i] = near.get((j, i), False)

        def pairs(items: set[tuple[int, int]]) -> tuple[IntArray, IntArray]:
            ordered = sorted(items)
            return (np.array([a for a, _ in ordered], np.int64),
                    np.array([b for _, b in ordered], np.int64))  # fmt: skip

        def setting(values: FloatArray, default: float) -> FloatArray:
            if len(values) < size:  # a registry made without the columns (tests)
                values = np.full(size, np.nan)
            out: FloatArray = np.where(np.isnan(values), default, values)
            return out

        up_src, up_dst = pairs(up)
        near_src, near_dst = pairs(set(near))
        near_down = np.array(
            [near[a, b] for a, b in zip(near_src.tolist(), near_dst.tolist(), strict=True)], bool
        )
        stuck_checked = np.zeros(size, bool)
        stuck_checked[up_src] = True
        excursion_checked = np.zeros(size, bool)
        excursion_checked[near_src] = True
        return cls(
            up_src, up_dst, near_src, near_dst, near_down, stuck_checked, excursion_checked,
            setting(registry.stuck_tolerance, defaults.stuck_tolerance),
            setting(registry.stuck_move, defaults.stuck_move),
            np.round(setting(registry.stuck_s, defaults.stuck_s) * _US).astype(np.int64),
            setting(registry.excursion_min, defaults.excursion_min),
            setting(registry.excursion_ratio, defaults.excursion_ratio),
            defaults.excursion_upstream_ratio,
        )  # fmt: skip

    @property
    def members(self) -> IntArray:
        """Every point these checks read."""
        return np.unique(np.concatenate([self.up_src, self.up_dst, self.near_src]))


def _means(window: Window | None, size: int) -> FloatArray:
    if window is None:
        return np.full(size, np.nan)
    count = window.count[:size]
    with np.errstate(invalid="ignore", divide="ignore"):
        out: FloatArray = np.where(count > 0, window.total[:size] / np.maximum(count, 1), np.nan)
    return out


def stuck_verdicts(
    window: Window, previous: Window | None, points: NeighbourPoints
) -> tuple[BoolArray, BoolArray]:
    """(stuck, normal) per point id for one window (neither: hold); ``previous``: the window
    just before it (None: no readings there)."""
    size = len(points.stuck_checked)
    count = window.count[:size]
    spread = window.vmax[:size] - window.vmin[:size]
    two = points.stuck_checked & (count >= 2)
    with np.errstate(invalid="ignore"):
        flat = two & (spread <= points.tolerance)
        shift = np.abs(_means(window, size) - _means(previous, size))
        moved = np.zeros(size, bool)
        if len(points.up_src):
            np.logical_or.at(
                moved, points.up_src, shift[points.up_dst] >= points.move[points.up_src]
            )
    return flat & moved, two & ~flat


def excursions(
    x: int,
    before: tuple[Window | None, Window | None],
    window: Window,
    after: Window | None,
    points: NeighbourPoints,
    window_us: int,
    skip: frozenset[int],
) -> tuple[list[EpisodeChange], frozenset[int]]:
    """The ``local_excursion`` records of window ``x`` (``before``: the windows ``x - 2`` and
    ``x - 1``, ``after``: ``x + 1``; None: no readings there), and the points flagged; the
    points of ``skip`` (flagged in window ``x - 1``) are not flagged again."""
    if before[0] is None and before[1] is None:
        return [], frozenset()
    size = len(points.excursion_checked)
    count = window.count[:size]
    earlier = np.vstack([_means(before[0], size), _means(before[1], size)])
    some = np.isfinite(earlier).any(axis=0)
    base = np.where(some, np.min(np.where(np.isfinite(earlier), earlier, np.inf), 0), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        # the mean without the window's highest reading: one spike is no excursion
        robust = (window.total[:size] - window.vmax[:size]) / np.maximum(count - 1, 1)
        rise = robust - base
        cand = points.excursion_checked & (count >= 3) & (rise >= points.excursion_min)
    if not cand.any():
        return [], frozenset()
    stack = np.vstack([earlier, _means(window, size), _means(after, size)])
    have = np.isfinite(stack).sum(axis=0) >= 2
    with np.errstate(invalid="ignore"):
        spread = np.where(
            have,
            np.nanmax(np.where(np.isfinite(stack), stack, -np.inf), 0)
            - np.nanmin(np.where(np.isfinite(stack), stack, np.inf), 0),
            np.nan,
        )
        src, dst = points.near_src, points.near_dst
        known = np.zeros(size, bool)
        np.logical_or.at(known, src, np.isfinite(spread[dst]))
        seen = np.zeros(size, bool)
        ratio = np.where(points.near_down, points.excursion_ratio[src], points.upstream_ratio)
        np.logical_or.at(seen, src, spread[dst] >= ratio * rise[src])
    flag = cand & known & ~seen
    out: list[EpisodeChange] = []
    flagged = []
    abnormal_type = RULES[EXCURSION][0]
    for p in np.flatnonzero(flag).tolist():
        flagged.append(p)
        if p in skip:
            continue
        out.append(EpisodeChange(
            point_id=p, rule=EXCURSION, abnormal_type=abnormal_type, opened=True,
            started_at_us=x * window_us, threshold=float(base[p] + points.excursion_min[p]),
            start_value=float(window.first[p]), ended_at_us=(x + 1) * window_us,
            count=int(count[p]), value_sum=float(window.total[p]),
            max_value=float(window.vmax[p]), max_at_us=int(window.vmax_at[p]),
            min_value=float(window.vmin[p]), min_at_us=int(window.vmin_at[p]),
            classification=EXCURSION_LABEL, raised_at_us=(x + 2) * window_us,
        ))  # fmt: skip
    return out, frozenset(flagged)
