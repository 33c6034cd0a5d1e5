"""The fused fire confirmation (F04 ``co_fire_confirmed``) on a replayed trace (issue 13, 4).

``minewatch evaluate`` has no database, so the fusion task (:mod:`alarms.fusion_store`) does
not run in it. This module decides the same thing from the replay's episodes and the area's
temperature readings, with the rule's pure parts (:mod:`alarms.rules.fusion`: its rule lists,
classes and :func:`~alarms.rules.fusion.temperature_rises`), so the evaluation can score the
confirmation per class:

* a **CO run** is a CO point's overlapping CO alarms (``upper_alarm`` classed ``exceedance``
  or ``co_vehicle_suspected``, ``co_fire_candidate``), from the first start to the last end:
  what the live rule sees open at once;
* it is confirmed by a ``smoke`` alarm of the point's area (``points.area_code``) that
  overlaps it, at the later of the two starts; or, once the run holds a CO alarm that is not a
  suspected puff (a fire candidate from its raise; an ``upper_alarm`` of a point without
  vehicles from its start), by an ``upper_alarm`` of a temperature point (0003) of the area
  or by a temperature point's first valid reading more than the mine's rise above its last
  valid reading at or before the run's start; the confirmation must come before the run ends;
* the fused episode starts at the earliest confirmation, is raised when the live rule could
  have raised it (a temperature confirmation not before the run stops being only a puff), and
  ends with the run.

The live rule evaluates on the clock (every few seconds) with the facts in the database; this
form decides on the episodes' event times, so a confirmation found live one evaluation later
is found here at its reading. The rise is the engine default
(:data:`~alarms.rules.fusion.DEFAULT_CO_FIRE_TEMPERATURE_RISE`) unless given: a trace carries
no ``mines.co_fire_temperature_rise``.

The temperature readings come from :class:`TemperatureTap`, which the replay feeds batch by
batch and which keeps only those of an area within ten minutes before one of the area's CO
alarms and until its end (what the decision above reads), so the evaluation's memory does not
grow with every temperature reading of the trace.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from minewatch.alarms.episodes import Episode, EpisodeChange
from minewatch.alarms.rules.fusion import (
    CO_CLASSES,
    CO_FIRE_CONFIRMED,
    CO_RULES,
    CO_SENSOR_TYPE,
    DEFAULT_CO_FIRE_TEMPERATURE_RISE,
    PUFF,
    SMOKE_RULE,
    TEMPERATURE_SENSOR_TYPES,
    temperature_rises,
)
from minewatch.metadata import MineDefinition

EXCEEDANCE = "exceedance"
#: Readings before a run's start kept to find each temperature point's baseline (the last
#: valid reading at or before the start): ten minutes, far more than any polling cycle.
LOOKBACK_US = 600 * 1_000_000


_NO_START = np.iinfo(np.int64).max
#: The tap settles its pending rows once they reach this many (and then twice what stayed).
SETTLE_ROWS = 65_536
_Rows = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]


@dataclass
class TemperatureTap:
    """Valid readings of the temperature points that share an area with a CO point, kept in
    the evaluation's pass over the readings (points numbered from 0, the trace's order).

    Only the readings :func:`confirmed_fires` can look at are kept: those of an area within
    ``[start - LOOKBACK_US, end)`` of one of the area's CO alarms (``upper_alarm``,
    ``co_fire_candidate``: a CO run is a union of them). The replay tells the tap the CO
    alarms as the engine opens and ends them (:meth:`track`) and, at each batch's end, how far
    back an alarm not yet opened can start (:meth:`settle`: the start of a run the engine holds
    unconfirmed, or the next reading); a reading older than that minus ``LOOKBACK_US`` that
    lies in no known alarm's window of its area is dropped. Without :meth:`settle` every
    reading is kept. A CO alarm that opens earlier than the bound given allowed raises
    ``RuntimeError``, never a silently different confirmation."""

    keep: npt.NDArray[np.bool_]
    #: per point: its area's number (temperature points kept, CO points of those areas), -1
    area: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    parts: list[_Rows] = field(default_factory=list)  # settled: kept for good
    pending: list[_Rows] = field(default_factory=list)  # not settled yet
    pending_rows: int = 0
    settle_rows: int = SETTLE_ROWS
    #: per area: readings before this time are settled (kept or dropped)
    settled_us: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    #: the known CO alarms' windows: the open ones' (area, from) per (point, rule), the ended
    #: ones' (area, from, to) while readings they want may still come
    windows: dict[tuple[int, str], tuple[int, int]] = field(default_factory=dict)
    closed: list[tuple[int, int, int]] = field(default_factory=list)
    dropped: int = 0  # readings dropped (for the tests and the figures)

    @classmethod
    def of(cls, definition: MineDefinition) -> TemperatureTap:
        points = definition.points
        co_areas = {p.area_code for p in points
                    if p.sensor_type == CO_SENSOR_TYPE and p.area_code is not None}  # fmt: skip
        keep = np.array(
            [p.sensor_type in TEMPERATURE_SENSOR_TYPES and p.area_code in co_areas
             for p in points], bool,
        )  # fmt: skip
        tapped = sorted({p.area_code for p, k in zip(points, keep, strict=True)
                         if k and p.area_code is not None})  # fmt: skip
        number = {a: k for k, a in enumerate(tapped)}
        area = np.array(
            [number.get(p.area_code, -1) if p.area_code is not None
             and (k or p.sensor_type == CO_SENSOR_TYPE) else -1
             for p, k in zip(points, keep, strict=True)], np.int64,
        )  # fmt: skip
        return cls(keep, area, settled_us=np.full(len(tapped), np.iinfo(np.int64).min, np.int64))

    def feed(
        self,
        p: npt.NDArray[np.int32],
        t: npt.NDArray[np.int64],
        v: npt.NDArray[np.float64],
        ok: npt.NDArray[np.bool_],
    ) -> None:
        if not self.keep.any():
            return
        m = ok & self.keep[p]
        if m.any():
            self.pending.append((p[m].astype(np.int64), t[m].astype(np.int64), v[m].copy()))
            self.pending_rows += int(np.count_nonzero(m))

    def track(self, changes: list[EpisodeChange], point_offset: int = 0) -> None:
        """The CO alarms the engine opened and ended (its changes of one batch, point ids
        plus ``point_offset`` being the tap's)."""
        for c in [c for c in changes if not c.opened] + [c for c in changes if c.opened]:
            if c.rule not in CO_RULES:
                continue
            point = c.point_id + point_offset
            if not 0 <= point < len(self.area) or self.area[point] < 0:
                continue
            a = int(self.area[point])
            key = (point, c.rule)
            if c.opened:
                assert c.started_at_us is not None
                if c.started_at_us - LOOKBACK_US < self.settled_us[a]:
                    raise RuntimeError(
                        f"a CO alarm of point {point} opened at {c.started_at_us} us, before "
                        "the bound the temperature tap was given: readings it needs are dropped"
                    )
                self.windows[key] = (a, c.started_at_us - LOOKBACK_US)
            if c.ended_at_us is not None and key in self.windows:
                a, lo = self.windows.pop(key)
                self.closed.append((a, lo, c.ended_at_us))

    def settle(self, next_start_us: npt.NDArray[np.int64], *, force: bool = False) -> None:
        """Drop the pending readings no CO alarm can want. ``next_start_us``: per point (the
        tap's numbers), the earliest start a CO alarm opened from now on can have; read only
        at the area's CO points. Does nothing until enough rows are pending, unless ``force``."""
        if not self.pending or (self.pending_rows < self.settle_rows and not force):
            return
        co = self.area >= 0
        co &= ~self.keep
        horizon = np.full(len(self.settled_us), _NO_START, np.int64)
        np.minimum.at(horizon, self.area[co], next_start_us[co])
        horizon = np.maximum(horizon, np.iinfo(np.int64).min + LOOKBACK_US) - LOOKBACK_US
        p, t, v = (np.concatenate([part[k] for part in self.pending]) for k in range(3))
        a = self.area[p]
        old = t < horizon[a]
        wanted = np.zeros(len(t), bool)
        for wa, lo, hi in self.closed:
            wanted |= (a == wa) & (t >= lo) & (t < hi)
        for wa, lo in self.windows.values():
            wanted |= (a == wa) & (t >= lo)
        settled = old & wanted
        if settled.any():
            self.parts.append((p[settled], t[settled], v[settled]))
        self.dropped += int(np.count_nonzero(old & ~wanted))
        stay = ~old
        self.pending = [(p[stay], t[stay], v[stay])] if stay.any() else []
        self.pending_rows = int(np.count_nonzero(stay))
        self.settle_rows = max(SETTLE_ROWS, 2 * self.pending_rows)
        self.settled_us = np.maximum(self.settled_us, horizon)
        self.closed = [(wa, lo, hi) for wa, lo, hi in self.closed if hi > self.settled_us[wa]]

    def finish(self) -> None:
        """The trace has ended: no CO alarm opens any more; settle every pending reading."""
        self.settle(np.full(len(self.area), _NO_START, np.int64), force=True)

    def frame(self) -> pd.DataFrame:
        """``point_id``, ``time_us``, ``value``, sorted by point then time."""
        parts = self.parts + self.pending
        if not parts:
            return pd.DataFrame({"point_id": [], "time_us": [], "value": []})
        p = np.concatenate([a for a, _, _ in parts])
        t = np.concatenate([b for _, b, _ in parts])
        v = np.concatenate([c for _, _, c in parts])
        order = np.lexsort((t, p))
        return pd.DataFrame({"point_id": p[order], "time_us": t[order], "value": v[order]})


@dataclass(frozen=True, slots=True)
class _Run:
    point: int
    start_us: int
    end_us: int | None  # None: open at the trace's end
    not_puff_us: int | None  # when the run first holds a CO alarm that is not a puff


def _runs(episodes: list[Episode], puff_points: set[int]) -> list[_Run]:
    """The CO runs of one point's CO alarms (sorted by start)."""
    out: list[_Run] = []
    inf = math.inf
    start: int | None = None
    end: float = -inf
    not_puff: float = inf
    point = -1

    def close() -> None:
        if start is not None:
            out.append(_Run(point, start, None if end == inf else int(end),
                            None if not_puff == inf else int(not_puff)))  # fmt: skip

    for e in sorted(episodes, key=lambda e: e.start_us):
        e_end: float = inf if e.end_us is None else e.end_us
        if start is None or e.start_us >= end:
            close()
            start, end, not_puff, point = e.start_us, e_end, inf, e.point
        else:
            end = max(end, e_end)
        if e.rule == "co_fire_candidate":
            at: float = e.raised_us if e.raised_us is not None else e.start_us
        elif e.point not in puff_points:
            at = e.start_us  # no vehicles here: the upper_alarm is an exceedance from the start
        elif e.classification != PUFF:
            at = e_end  # a puff that lasted: reclassified when it ended
        else:
            at = inf
        not_puff = min(not_puff, at)
    close()
    return out


def confirmed_fires(
    definition: MineDefinition,
    episodes: list[Episode],
    temperatures: pd.DataFrame,
    rise: float = DEFAULT_CO_FIRE_TEMPERATURE_RISE,
) -> list[Episode]:
    """The ``co_fire_confirmed`` episodes (points from 0, the trace's order) of a replay."""
    points = definition.points
    area = {i: p.area_code for i, p in enumerate(points) if p.area_code is not None}
    co = {i for i in area if points[i].sensor_type == CO_SENSOR_TYPE}
    puff_points = {i for i in co if points[i].co_puff_max_s is not None}
    temps_of: dict[str, list[int]] = {}
    for i, a in area.items():
        if points[i].sensor_type in TEMPERATURE_SENSOR_TYPES:
            temps_of.setdefault(a, []).append(i)
    by_co: dict[int, list[Episode]] = {}
    smoke: dict[str, list[Episode]] = {}
    heat: dict[str, list[Episode]] = {}
    for e in episodes:
        if e.point in co and e.rule in CO_RULES and e.classification in CO_CLASSES:
            by_co.setdefault(e.point, []).append(e)
        elif e.point in area and e.classification == EXCEEDANCE:
            if e.rule == SMOKE_RULE:
                smoke.setdefault(area[e.point], []).append(e)
            elif e.rule == "upper_alarm" and points[e.point].sensor_type in (
                TEMPERATURE_SENSOR_TYPES
            ):
                heat.setdefault(area[e.point], []).append(e)
    out: list[Episode] = []
    for point, eps in sorted(by_co.items()):
        a = area[point]
        for run in _runs(eps, puff_points):
            fused = _confirm(run, smoke.get(a, []), heat.get(a, []),
                             _readings(temperatures, temps_of.get(a, []), run), rise)  # fmt: skip
            if fused is not None:
                out.append(fused)
    return out


def _readings(frame: pd.DataFrame, temps: list[int], run: _Run) -> pd.DataFrame:
    if not temps or frame.empty:
        return frame.iloc[0:0]
    t = frame["time_us"]
    m = frame["point_id"].isin(temps) & (t >= run.start_us - LOOKBACK_US)
    if run.end_us is not None:
        m &= t < run.end_us
    return frame[m]


def _confirm(
    run: _Run, smoke: list[Episode], heat: list[Episode], readings: pd.DataFrame, rise: float
) -> Episode | None:
    end = math.inf if run.end_us is None else run.end_us

    def overlapping(e: Episode) -> bool:
        return e.start_us < end and (e.end_us is None or e.end_us > run.start_us)

    found: list[tuple[int, int, int]] = []  # (confirmed at, raisable at, point)
    for e in smoke:
        if overlapping(e):
            at = max(e.start_us, run.start_us)
            found.append((at, at, e.point))
    if run.not_puff_us is not None and run.not_puff_us < end:
        for e in heat:
            if overlapping(e):
                at = max(e.start_us, run.start_us)
                found.append((at, max(at, run.not_puff_us), e.point))
        for q, at in temperature_rises(readings, run.start_us, rise).items():
            if at < end:
                found.append((at, max(at, run.not_puff_us), q))
    if not found:
        return None
    confirming = {q for _, _, q in found}
    episode = Episode(
        run.point,
        CO_FIRE_CONFIRMED,
        EXCEEDANCE,
        min(a for a, _, _ in found),
        min(r for _, r, _ in found),
        float(len(confirming)),
        rise,
    )
    episode.end_us = run.end_us
    return episode
