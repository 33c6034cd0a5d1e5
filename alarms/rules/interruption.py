"""Data interruption (数据中断, M03): no reading of a point for N polling cycles.

Driven by a clock passed in (``AlarmEngine.tick(now_us)``), not by the next message: a silent
point cannot announce its own silence. A point opens an episode when ``now`` is more than
``interruption_cycles x poll_cycle_s`` after its last evaluated reading; the episode starts
when the first reading was due (last + one cycle) and ends at the event time of the next
reading. If that reading shows the gap was short after all (the readings were only delivered
late, e.g. a spool replayed after a network outage), the episode is reclassified
``delivery_delay``: the one record that tells of arrival, not of the readings. Points that
never reported are not checked (nothing to miss yet).

A silence in event time that no tick saw (a batch that holds the readings on both sides of
it, a replay without a clock) is recorded when the next reading shows it: the same episode
as the clock's, opened and ended at once. So the interruptions of a series do not depend on
how it was batched.

``tick`` compares event time with ``now``: the caller must not tick while replaying history.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from minewatch.alarms.codes import RULES, Classification
from minewatch.alarms.episodes import EpisodeChange
from minewatch.alarms.rules.params import PointParams
from minewatch.alarms.rules.run_state import NEVER, Rows

RULE = "data_interruption"


@dataclass(frozen=True, slots=True)
class InterruptionState:
    active: npt.NDArray[np.bool_]
    start_us: npt.NDArray[np.int64]

    @classmethod
    def empty(cls, size: int) -> InterruptionState:
        return cls(np.zeros(size, bool), np.full(size, NEVER, np.int64))

    def grown(self, size: int) -> InterruptionState:
        out = InterruptionState.empty(size)
        keep = min(size, len(self.active))
        for f in fields(self):
            getattr(out, f.name)[:keep] = getattr(self, f.name)[:keep]
        return out

    def copy(self) -> InterruptionState:
        return InterruptionState(self.active.copy(), self.start_us.copy())


def tick(
    now_us: int | npt.NDArray[np.int64],
    state: InterruptionState,
    known: npt.NDArray[np.bool_],
    last_time_us: npt.NDArray[np.int64],
    last_value: npt.NDArray[np.float64],
    params: PointParams,
) -> tuple[list[EpisodeChange], InterruptionState]:
    """Episodes opened by the silence of points at ``now_us``, and the state after.

    ``now_us``: one clock for all points, or one per point id (a gateway behind its backlog
    checks each point against its mine's watermark: ``AlarmEngine.mine_clock``).
    """
    size = len(state.active)
    if isinstance(now_us, int) and now_us != NEVER and size == len(last_time_us):
        # one clock (the usual tick): the same test in fewer calls. Times, the clock and
        # the interruption times lie within 2^62 of 0, so no subtraction wraps and
        # ``clock - last > interruption`` is ``last < clock - interruption``
        last = last_time_us
        silent = (last < now_us - params.interruption_us[:size]) & (last != NEVER)
        silent &= known[:size]
        silent &= ~state.active
        if not np.count_nonzero(silent):
            return [], state
    clock = np.broadcast_to(np.asarray(now_us, np.int64), (size,))
    seen = known[:size] & (last_time_us[:size] != NEVER) & (clock != NEVER)
    # (integer arrays wrap silently: no floating-point state to set)
    late = clock - last_time_us[:size] > params.interruption_us[:size]
    silent = seen & ~state.active & late
    points = silent.nonzero()[0]
    if not len(points):
        return [], state
    after = state.copy()
    start = last_time_us[points] + params.poll_cycle_us[points]
    after.active[points] = True
    after.start_us[points] = start
    changes = [
        _silence(p, first_due, value, last, raised)
        for p, first_due, value, last, raised in zip(
            points.tolist(),
            start.tolist(),
            np.nan_to_num(last_value[points]).tolist(),
            last_time_us[points].tolist(),
            clock[points].tolist(),
            strict=True,
        )
    ]
    return changes, after


def on_readings(
    rows: Rows,
    state: InterruptionState,
    last_time_us: npt.NDArray[np.int64],
    prev_value: npt.NDArray[np.float64],
    params: PointParams,
) -> tuple[list[EpisodeChange], InterruptionState]:
    """End the interruptions of points that report again (at their first reading), and record
    the gaps in event time that no tick saw (a batch that spans the silence, a replay).

    ``prev_value``: per row, the point's previous valid reading (NaN: none).
    """
    if not len(rows):
        return [], state
    changes = _gaps(rows, state, last_time_us, prev_value, params)
    first = np.flatnonzero(rows.first)
    pts = rows.pid[first]
    ending = state.active[pts]
    if not ending.any():
        return changes, state
    after = state.copy()
    rows_end = first[ending]
    pts_end = pts[ending]
    after.active[pts_end] = False
    after.start_us[pts_end] = NEVER
    gap = rows.t[rows_end] - last_time_us[pts_end]
    late_only = gap <= params.interruption_us[pts_end]
    # a reading from before the first due time (delivered late) ends the episode at its start
    ended = np.maximum(rows.t[rows_end], state.start_us[pts_end])
    abnormal = RULES[RULE][0]
    changes += [
        EpisodeChange(
            point_id=p,
            rule=RULE,
            abnormal_type=abnormal,
            opened=False,
            started_at_us=None,
            threshold=None,
            start_value=None,
            ended_at_us=t,
            count=0,
            value_sum=0.0,
            max_value=float("-inf"),
            max_at_us=0,
            min_value=float("inf"),
            min_at_us=0,
            classification=Classification.DELIVERY_DELAY.value if late else None,
        )
        for p, t, late in zip(pts_end.tolist(), ended.tolist(), late_only.tolist(), strict=True)
    ]
    return changes, after


def _gaps(
    rows: Rows,
    state: InterruptionState,
    last_time_us: npt.NDArray[np.int64],
    prev_value: npt.NDArray[np.float64],
    params: PointParams,
) -> list[EpisodeChange]:
    """Closed interruptions for the silences longer than the interruption time between a
    point's consecutive readings, unless the clock already opened one (an open episode)."""
    if rows.single:  # each row its point's first
        prev_t = last_time_us[rows.pid]
    else:
        prev_t = np.empty(len(rows), np.int64)
        prev_t[1:] = rows.t[:-1]
        prev_t[rows.first] = last_time_us[rows.pid[rows.first]]
    with np.errstate(over="ignore"):
        gap = (prev_t != NEVER) & (rows.t - prev_t > params.interruption_us[rows.pid])
    if not gap.any():
        return []
    gap &= ~(rows.first & state.active[rows.pid])
    found = np.flatnonzero(gap)
    if not len(found):
        return []
    out = []
    for k in found.tolist():
        p, last, end = int(rows.pid[k]), int(prev_t[k]), int(rows.t[k])
        value = float(np.nan_to_num(prev_value[k]))
        out.append(_silence(p, last + int(params.poll_cycle_us[p]), value, last, end, end))
    return out


def _silence(
    point: int, start: int, value: float, last: int, raised: int, ended: int | None = None
) -> EpisodeChange:
    """An interruption opened at ``start`` (when the first missing reading was due), counting
    the last reading before the silence (``value`` at ``last``: keeps mean/max/min defined);
    ended at ``ended`` when the next reading already shows its end."""
    return EpisodeChange(
        point_id=point,
        rule=RULE,
        abnormal_type=RULES[RULE][0],
        opened=True,
        started_at_us=start,
        threshold=None,
        start_value=value,
        ended_at_us=ended,
        count=1,
        value_sum=value,
        max_value=value,
        max_at_us=last,
        min_value=value,
        min_at_us=last,
        classification=Classification.DATA_INTERRUPTION.value,
        raised_at_us=raised,
    )


def any_gap(rows: Rows, last_time_us: npt.NDArray[np.int64], params: PointParams) -> bool:
    """Some point's reading comes longer than its interruption time after the one before it
    (:func:`on_readings` records those silences)."""
    if not len(rows):
        return False
    if rows.single:
        prev_t = last_time_us[rows.pid]
    else:
        prev_t = np.empty(len(rows), np.int64)
        prev_t[1:] = rows.t[:-1]
        prev_t[rows.first] = last_time_us[rows.pid[rows.first]]
    # (integer arrays wrap silently: no floating-point state to set)
    gap = (prev_t != NEVER) & (rows.t - prev_t > params.interruption_us[rows.pid])
    return int(np.count_nonzero(gap)) > 0
