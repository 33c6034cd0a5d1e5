"""Sensors checked against their neighbours on the airflow path (issue 13, item 3).

Sensors of one airflow path see the same gas, a little later and attenuated downstream. A
catalytic sensor losing its sensitivity (poisoned, drifting down) reads far below its
neighbours while they read gas; its readings stay above zero, so the negative-drift rule never
sees it. ``cross_check`` (a maintenance alarm, never a gas alarm) raises when a point reads
far below every neighbour for long enough:

* **Neighbours** are the mine definition's airflow relation (``points.downstream``, migration
  0016), both ways: the points a point's air reaches and the points whose air reaches it,
  of the same sensor type and analog.
* **Windows**: readings that measure the gas (no fault bit, not calibrating) are averaged per
  point over aligned windows of ``RuleDefaults.cross_check_window_s`` (300 s, event time). A
  window is decided once the event-time watermark (the batch's latest reading, or the clock,
  less the allowed lateness) has passed its end, so every reading of it is in: the same
  readings in any batching give the same windows and decisions. A reading of a window already
  decided (later than the allowed lateness) is left out of the check.
* **Low** in a window: the point has readings, some neighbour has, the lowest neighbour mean
  is at least ``cross_check_min`` (they read gas), and the point's mean is at most
  ``cross_check_ratio`` x that lowest neighbour mean *and* below ``cross_check_min`` itself
  (it reads no gas: a point reading 0.2 % upstream of a downstream rise to 1 % is not low).
  **Normal**: readings on both sides and not low. Otherwise (no data, or the neighbours read
  no gas) the window holds what was.
* The alarm **starts** at the first low window's start, is **raised** at the end of the low
  window that makes it last ``cross_check_s`` (per point; defaults 0.3, 0.1, 1800 s), and
  **ends** at the start of the first normal window. Its statistics are the point's readings of
  its windows (count, sum, max, min with their times); ``start_value`` is the first reading of
  the first low window.

The same windows serve two more checks, a stuck sensor whose neighbours move
(``sensor_stuck``) and an excursion no neighbour sees (``local_excursion``):
:mod:`alarms.rules.neighbour_checks`.

Per-point settings are data (``points.cross_check_ratio``, ``cross_check_min``,
``cross_check_s``, migration 0017). The engine keeps the windows not yet decided
(:class:`CrossState`: the readings of the windows not decided, at most two at the default
window and lateness, as the batches brought them; a window's statistics are made once, when
it is decided) and the alarm's run in a
:class:`~alarms.rules.run_state.RunState`, so an open alarm is restored after a restart.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import numpy.typing as npt

from minewatch.alarms.codes import RULES, Classification
from minewatch.alarms.episodes import EpisodeChange
from minewatch.alarms.rules import neighbour_checks as more
from minewatch.alarms.rules.context import BatchContext
from minewatch.alarms.rules.params import RuleDefaults
from minewatch.alarms.rules.run_state import NEVER, RunState
from minewatch.codes import ValueType
from minewatch.registry import PointRegistry

RULE = "cross_check"
LABEL = Classification.CROSS_CHECK.value
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_US = 1_000_000


@dataclass(frozen=True, slots=True)
class CrossPoints:
    """The neighbour pairs (point ``src`` is checked against ``dst``) and settings per point."""

    src: IntArray
    dst: IntArray
    member: npt.NDArray[np.bool_]  # a point checked, or a neighbour of one
    checked: npt.NDArray[np.bool_]
    ratio: FloatArray
    minimum: FloatArray
    hold_us: IntArray
    window_us: int
    #: the stuck sensor and the lone excursion (alarms/rules/neighbour_checks.py)
    more: more.NeighbourPoints

    @classmethod
    def of(cls, registry: PointRegistry, defaults: RuleDefaults) -> CrossPoints:
        size = registry.size
        pairs: set[tuple[int, int]] = set()
        analog = registry.value_type == ValueType.ANALOG.value
        downstream = registry.downstream
        for i in np.flatnonzero(registry.known & analog).tolist() if downstream is not None else ():
            for path in downstream[i] or ():  # type: ignore[index]
                j = registry.point_id(str(registry.mine_code[i]), str(path["target"]))
                same = j >= 0 and registry.sensor_type[j] == registry.sensor_type[i]
                if same and j != i and analog[j]:
                    pairs |= {(i, j), (j, i)}
        ordered = sorted(pairs)
        src = np.array([a for a, _ in ordered], np.int64)
        dst = np.array([b for _, b in ordered], np.int64)
        extra = more.NeighbourPoints.of(registry, defaults)
        member = np.zeros(size, bool)
        member[src] = True
        member[dst] = True
        member[extra.members] = True
        checked = np.zeros(size, bool)
        checked[src] = True

        def setting(values: FloatArray, default: float) -> FloatArray:
            out: FloatArray = np.where(np.isnan(values), default, values)
            return out

        return cls(
            src, dst, member, checked,
            setting(registry.cross_check_ratio, defaults.cross_check_ratio),
            setting(registry.cross_check_min, defaults.cross_check_min),
            np.round(setting(registry.cross_check_s, defaults.cross_check_s) * _US)
            .astype(np.int64),
            round(defaults.cross_check_window_s * _US),
            extra,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Window:
    """One window's readings per point id (count 0: none)."""

    count: IntArray
    total: FloatArray
    first: FloatArray
    first_at: IntArray
    vmax: FloatArray
    vmax_at: IntArray
    vmin: FloatArray
    vmin_at: IntArray

    @classmethod
    def empty(cls, size: int) -> Window:
        return cls(
            np.zeros(size, np.int64), np.zeros(size), np.full(size, np.nan),
            np.full(size, NEVER, np.int64), np.full(size, -np.inf), np.zeros(size, np.int64),
            np.full(size, np.inf), np.zeros(size, np.int64),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Chunk:
    """One batch's readings of the points the checks read, in (point, time) order, with their
    window index: kept as they came (never changed once made) until their window is decided,
    so a batch costs a selection, not a window's statistics."""

    w: IntArray
    pid: npt.NDArray[np.int32]
    v: FloatArray
    t: IntArray


@dataclass(frozen=True, slots=True)
class CrossState:
    """Readings of windows not decided yet (in batch order) and the last decided window
    index; the last three decided windows with readings (index, window; oldest first), whether
    the excursion of the last one is still to be decided (it needs the window after), and the
    points the last excursion decision flagged (with that window's index)."""

    chunks: tuple[Chunk, ...] = ()
    decided: int = NEVER
    recent: tuple[tuple[int, Window], ...] = ()
    pending: bool = False
    flagged: tuple[int, frozenset[int]] = (NEVER, frozenset())


def add_rows(ctx: BatchContext, points: CrossPoints, before: CrossState | None) -> CrossState:
    """``before`` with the batch's readings of the points checked and their neighbours."""
    state = before if before is not None else CrossState()
    rows = ctx.rows
    if not len(rows) or not (
        len(points.src) or len(points.more.near_src) or len(points.more.up_src)
    ):
        return state
    sel = np.flatnonzero(ctx.gas_ok & points.member[rows.pid])
    if not len(sel):
        return state
    w = rows.t[sel] // points.window_us
    keep = w > state.decided
    if not keep.all():
        sel, w = sel[keep], w[keep]
        if not len(sel):
            return state
    chunk = Chunk(w, rows.pid[sel], rows.v[sel], rows.t[sel])
    return replace(state, chunks=(*state.chunks, chunk))


def _windows(
    state: CrossState, last: int, size: int
) -> tuple[dict[int, Window], tuple[Chunk, ...]]:
    """The windows up to ``last`` with readings (their statistics), and the chunks of the later
    windows."""
    if not state.chunks:
        return {}, ()
    if all(int(c.w.min()) > last for c in state.chunks):
        return {}, state.chunks
    w = np.concatenate([c.w for c in state.chunks])
    pid = np.concatenate([c.pid for c in state.chunks])
    v = np.concatenate([c.v for c in state.chunks])
    t = np.concatenate([c.t for c in state.chunks])
    due = w <= last
    later = ~due
    rest = (Chunk(w[later], pid[later], v[later], t[later]),) if later.any() else ()
    # per point in time order: batches come in time order per point (late readings are
    # skipped), each in (point, time) order, so a stable sort by window, then point
    order = np.lexsort((pid[due], w[due]))
    w, pid, v, t = w[due][order], pid[due][order], v[due][order], t[due][order]
    out: dict[int, Window] = {}
    bounds = np.flatnonzero(np.diff(w)) + 1
    for lo, hi in zip([0, *bounds.tolist()], [*bounds.tolist(), len(w)], strict=True):
        out[int(w[lo])] = _merged(None, pid[lo:hi], v[lo:hi], t[lo:hi], size)
    return out, rest


def _merged(
    window: Window | None, pid: npt.NDArray[np.int32], v: FloatArray, t: IntArray, size: int
) -> Window:
    """``window`` (copied) with the readings ``pid, v, t`` (sorted by point, then time)."""
    if window is None:
        out = Window.empty(size)
    elif len(window.count) >= size:  # copied: a published window never changes
        out = Window(*(getattr(window, f.name).copy() for f in fields(Window)))
    else:  # the registry grew since the window began
        out = Window.empty(size)
        for f in fields(Window):
            old = getattr(window, f.name)
            getattr(out, f.name)[: len(old)] = old
    if not len(pid):
        return out
    starts = np.flatnonzero(np.concatenate([[True], pid[1:] != pid[:-1]]))
    points = pid[starts]
    count = np.diff(np.append(starts, len(pid)))
    group = np.repeat(np.arange(len(starts)), count)
    index = np.arange(len(pid))
    top, low = np.maximum.reduceat(v, starts), np.minimum.reduceat(v, starts)
    # the earliest reading at the highest (lowest) value, as one reading at a time finds it
    top_at = t[np.minimum.reduceat(np.where(v == top[group], index, len(pid)), starts)]
    low_at = t[np.minimum.reduceat(np.where(v == low[group], index, len(pid)), starts)]
    new = out.count[points] == 0
    out.first[points[new]] = v[starts[new]]
    out.first_at[points[new]] = t[starts[new]]
    out.count[points] += count
    out.total[points] += np.add.reduceat(v, starts)
    higher = top > out.vmax[points]
    out.vmax[points[higher]], out.vmax_at[points[higher]] = top[higher], top_at[higher]
    lower = low < out.vmin[points]
    out.vmin[points[lower]], out.vmin_at[points[lower]] = low[lower], low_at[lower]
    return out


def verdicts(
    window: Window, points: CrossPoints
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """(low, normal) per point id for one window (neither: hold)."""
    size = len(points.member)
    if len(window.count) < size:  # the registry grew since the window began
        window = _merged(window, np.zeros(0, np.int32), np.zeros(0), np.zeros(0, np.int64), size)

    count = window.count[:size]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, window.total[:size] / np.maximum(count, 1), np.nan)
    lowest = np.full(size, np.inf)
    seen = np.isfinite(mean[points.dst])
    np.minimum.at(lowest, points.src[seen], mean[points.dst][seen])
    known = points.checked & (count > 0) & np.isfinite(lowest)
    gas = known & (lowest >= points.minimum)
    with np.errstate(invalid="ignore"):
        low = gas & (mean <= points.ratio * lowest) & (mean < points.minimum)
    return low, gas & ~low


def decide(
    state: CrossState, runs: dict[str, RunState], points: CrossPoints, bound_us: int
) -> tuple[list[EpisodeChange], CrossState, dict[str, RunState]]:
    """Decide the windows that ended before ``bound_us``, in order: the changes, the windows
    left, the run states after of ``cross_check`` and ``sensor_stuck`` (``runs`` is not
    modified). A window's excursions (:func:`neighbour_checks.excursions`) are decided with
    the window after it, or once the bound has passed that one without readings."""
    last = bound_us // points.window_us - 1  # the last window whose end is at or before bound
    if last <= state.decided:
        return [], state, runs
    size = len(points.member)
    ready, chunks = _windows(state, last, size)
    due = sorted(ready)
    changes: list[EpisodeChange] = []
    cross = runs[RULE].copy() if due else runs[RULE]
    stuck = runs[more.STUCK].copy() if due else runs[more.STUCK]
    recent = [(i, _sized(x, size)) for i, x in state.recent]  # the registry may have grown
    pending, flagged = state.pending, state.flagged
    for w in due:
        window = ready[w]
        if pending:  # the last window's excursions: this one is the window after, or not
            after_it = window if recent[-1][0] == w - 1 else None
            found, points_flagged = _excursion_records(recent, after_it, points, flagged)
            changes += found
            flagged = (recent[-1][0], points_flagged)
        changes += _window(window, w, cross, points, *verdicts(window, points), RULE, LABEL,
                           points.hold_us)  # fmt: skip
        previous = recent[-1][1] if recent and recent[-1][0] == w - 1 else None
        changes += _window(window, w, stuck, points,
                           *more.stuck_verdicts(window, previous, points.more), more.STUCK,
                           more.STUCK_LABEL, points.more.stuck_hold_us)  # fmt: skip
        recent, pending = [*recent, (w, window)][-3:], True
    if pending and recent[-1][0] < last:  # the window after passed without readings
        found, points_flagged = _excursion_records(recent, None, points, flagged)
        changes += found
        flagged = (recent[-1][0], points_flagged)
        pending = False
    after = CrossState(chunks, last, tuple(recent), pending, flagged)
    return _folded(changes), after, {**runs, RULE: cross, more.STUCK: stuck}


def _excursion_records(
    recent: list[tuple[int, Window]],
    after: Window | None,
    points: CrossPoints,
    flagged: tuple[int, frozenset[int]],
) -> tuple[list[EpisodeChange], frozenset[int]]:
    """The excursions of the last window of ``recent`` (``after``: the window after it)."""
    x, window = recent[-1]
    by_index = dict(recent)
    before = (by_index.get(x - 2), by_index.get(x - 1))
    skip = flagged[1] if flagged[0] == x - 1 else frozenset()
    return more.excursions(x, before, window, after, points.more, points.window_us, skip)


def _sized(window: Window, size: int) -> Window:
    """``window`` with a slot for every point id (the registry may have grown since)."""
    if len(window.count) >= size:
        return window
    return _merged(window, np.zeros(0, np.int32), np.zeros(0), np.zeros(0, np.int64), size)


def _folded(changes: list[EpisodeChange]) -> list[EpisodeChange]:
    """One change per episode: the windows decided at once after an opening (or an update)
    fold into it, as the store applies one evaluation's updates before its inserts."""
    out: list[EpisodeChange] = []
    live: dict[tuple[int, str], int] = {}  # (point, rule) -> its change whose episode goes on
    for c in changes:
        key = (c.point_id, c.rule)
        k = live.get(key)
        if c.opened or k is None:
            out.append(c)
            k = len(out) - 1
        else:
            a = out[k]
            higher, lower = c.max_value > a.max_value, c.min_value < a.min_value
            out[k] = replace(
                a, ended_at_us=c.ended_at_us, count=a.count + c.count,
                value_sum=a.value_sum + c.value_sum,
                max_value=c.max_value if higher else a.max_value,
                max_at_us=c.max_at_us if higher else a.max_at_us,
                min_value=c.min_value if lower else a.min_value,
                min_at_us=c.min_at_us if lower else a.min_at_us,
            )  # fmt: skip
        if out[k].ended_at_us is None:
            live[key] = k
        else:
            live.pop(key, None)
    return out


def _window(
    window: Window,
    w: int,
    run: RunState,
    points: CrossPoints,
    low: npt.NDArray[np.bool_],
    normal: npt.NDArray[np.bool_],
    rule: str,
    label: str,
    hold_us: IntArray,
) -> list[EpisodeChange]:
    """One decided window of a latched check (``low``: the condition holds, ``normal``: it
    does not, neither: hold): start, continue, raise or end each point's run (``run``
    updated)."""
    start_us, end_us = w * points.window_us, (w + 1) * points.window_us
    abnormal_type = RULES[rule][0]
    out: list[EpisodeChange] = []
    for p in np.flatnonzero(normal & run.raw).tolist():  # back to normal
        if run.active[p]:
            out.append(EpisodeChange(p, rule, abnormal_type, False, None, None, None, start_us,
                                     0, 0.0, -np.inf, 0, np.inf, 0))  # fmt: skip
        run.raw[p] = run.active[p] = False
        run.start_us[p] = NEVER
    for p in np.flatnonzero(low).tolist():
        c, total = int(window.count[p]), float(window.total[p])
        vmax, vmax_at = float(window.vmax[p]), int(window.vmax_at[p])
        vmin, vmin_at = float(window.vmin[p]), int(window.vmin_at[p])
        if not run.raw[p]:  # a new run
            run.raw[p], run.start_us[p] = True, start_us
            run.start_value[p] = window.first[p]
            run.count[p], run.total[p] = 0, 0.0
            run.vmax[p], run.vmin[p] = -np.inf, np.inf
        if run.active[p]:  # an open alarm: this window's readings
            out.append(EpisodeChange(p, rule, abnormal_type, False, None, None, None, None,
                                     c, total, vmax, vmax_at, vmin, vmin_at))  # fmt: skip
            continue
        run.count[p] += c
        run.total[p] += total
        if vmax > run.vmax[p]:
            run.vmax[p], run.vmax_at[p] = vmax, vmax_at
        if vmin < run.vmin[p]:
            run.vmin[p], run.vmin_at[p] = vmin, vmin_at
        if end_us - run.start_us[p] >= hold_us[p]:  # lasted long enough: raise
            run.active[p] = True
            out.append(EpisodeChange(
                p, rule, abnormal_type, True, int(run.start_us[p]), None,
                float(run.start_value[p]), None, int(run.count[p]), float(run.total[p]),
                float(run.vmax[p]), int(run.vmax_at[p]), float(run.vmin[p]),
                int(run.vmin_at[p]), label, end_us,
            ))  # fmt: skip
    return out
