"""Power-off failure (馈电异常, YCBJ 003): the cut was commanded, the feed still has power.

A methane point P with a D relation (``points.relations``: ``{"kind": "D", "target": F}``) to
a feed point F (sensor type 1011 馈电器 / 1015 馈电) commands a cut while its power-off latch is
on (``value >= poweroff_high`` until ``value < restore_high``: the raw latch of the
``power_off`` rule, without confirmation nor off-delay, as the substation acts on the raw
levels; the cut's start is ``RunState.latch_us``). If F
still reads 1 (有电) ``control_time_s`` (default: one polling cycle) after the cut began, P
opens a ``feed_abnormal`` episode; it ends when F reads 0 or the cut ends.

The symmetric case of the domain reference (§5, [I]), power restored while the methane is
still at or above the restore level (复电 while CH4 >= 复电门限), is the same condition: the cut
holds until the value falls below ``restore_high``, so a feed back on before that is a
failure at once (the cut began more than the control time before). A feed that stays off
after the restore is not an alarm: a cut device is often locked out (闭锁) and restarted by
hand later, and nothing about the gas is wrong.

P's and F's readings come in separately; the engine merges them in event time per P: at every
reading of either, P's cut state and F's value are the latest at or before that time (before
the batch: the engine's state). The loop is over the few points with D relations present in
the batch, with numpy inside.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from minewatch.alarms.rules.params import PointParams
from minewatch.alarms.rules.runs import NEVER, Rows, RunOutcome, RunState, evaluate_runs
from minewatch.codes import FEED_SENSOR_TYPES, RelationKind
from minewatch.registry import PointRegistry

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class FeedPairs:
    """D relations from a point with a power-off level to a feed point, sorted by source."""

    source: IntArray
    feed: IntArray

    @classmethod
    def of(cls, registry: PointRegistry) -> FeedPairs:
        pairs: list[tuple[int, int]] = []
        for p in np.flatnonzero(registry.known & np.isfinite(registry.poweroff_high)).tolist():
            for relation in registry.relations[p] or ():
                if relation.get("kind") != RelationKind.POWER_OFF.value:
                    continue
                target = registry.lookup(registry.mine_code[p], [str(relation.get("target"))])
                f = int(target[0])
                if f >= 0 and registry.sensor_type[f] in FEED_SENSOR_TYPES:
                    pairs.append((p, f))
        pairs.sort()
        array = np.array(pairs, np.int64).reshape(-1, 2)
        return cls(array[:, 0].copy(), array[:, 1].copy())

    def __len__(self) -> int:
        return len(self.source)


def evaluate_feed(
    rows: Rows,
    valid: npt.NDArray[np.bool_],
    cut: RunOutcome,
    cut_before: RunState,
    pairs: FeedPairs,
    last_value: npt.NDArray[np.float64],
    state: RunState,
    params: PointParams,
) -> RunOutcome | None:
    """Runs of ``feed_abnormal`` per source point, or None when no related point reported."""
    if not len(pairs) or not len(rows):
        return None
    # Only a source whose cut is on (before the batch or at one of its rows) can open or hold
    # a run, and only an open run can end: the other pairs have nothing to do. Skipping them
    # keeps a one-cycle batch (the live gateway's) from looping over every D relation.
    cutting = cut_before.raw.copy()
    if cut.on is not None:
        cutting[rows.pid[cut.on]] = True
    involved = cutting[pairs.source] | state.raw[pairs.source]
    if not involved.any():
        return None
    chunks: list[tuple[IntArray, IntArray, npt.NDArray[np.float64], npt.NDArray[np.bool_]]] = []
    cond_parts: list[npt.NDArray[np.bool_]] = []
    clear_parts: list[npt.NDArray[np.bool_]] = []
    for p in np.unique(pairs.source[involved]).tolist():
        feeds = pairs.feed[pairs.source == p].tolist()
        lo, hi = _slice(rows, p)
        tp = rows.t[lo:hi]
        feed_slices = [_slice(rows, f) for f in feeds]
        feed_rows = [np.arange(a, b)[valid[a:b]] for a, b in feed_slices]
        times = np.concatenate([tp, *(rows.t[r] for r in feed_rows)])
        is_p = np.zeros(len(times), bool)
        is_p[: hi - lo] = True
        if not len(times):
            continue
        order = np.lexsort((~is_p, times))  # at equal times, P's reading first
        times, is_p = times[order], is_p[order]
        at = np.searchsorted(tp, times, "right") - 1
        row = lo + np.maximum(at, 0)
        has = at >= 0
        if cut.on is None or cut.start_us is None:  # no cut changes in the batch: as before
            cut_on = np.full(len(times), cut_before.raw[p])
            since = np.full(len(times), cut_before.latch_us[p])
        else:
            cut_on = np.where(has, cut.on[row], cut_before.raw[p])
            since = np.where(has, cut.start_us[row], cut_before.latch_us[p])
        value = np.where(has, rows.v[row], last_value[p])
        feed_on = np.zeros(len(times), bool)
        for f, r in zip(feeds, feed_rows, strict=True):
            j = np.searchsorted(rows.t[r], times, "right") - 1
            fv = np.where(j >= 0, rows.v[r][np.maximum(j, 0)] if len(r) else 0.0, last_value[f])
            feed_on |= fv >= 0.5
        with np.errstate(over="ignore"):
            late = (since != NEVER) & (times - since >= params.control_time_us[p])
        cond_parts.append(cut_on & feed_on & late)
        clear_parts.append(~cut_on | ~feed_on)
        counted = is_p & np.where(has, valid[row], False)
        chunks.append((np.full(len(times), p, np.int64), times, value, counted))
    if not chunks:
        return None
    events = Rows.of(
        np.concatenate([c[0] for c in chunks]).astype(np.int32),
        np.concatenate([c[1] for c in chunks]),
        np.concatenate([c[2] for c in chunks]),
    )
    counted = np.concatenate([c[3] for c in chunks])
    return evaluate_runs(
        events,
        np.concatenate(cond_parts),
        np.concatenate(clear_parts),
        state,
        need=np.ones(len(state.raw), np.int64),
        eligible=np.ones(len(events), bool),
        counted=counted,
    )


def _slice(rows: Rows, point: int) -> tuple[int, int]:
    key = np.array([point, point + 1], rows.pid.dtype)  # the column's dtype: no cast of it
    lo, hi = np.searchsorted(rows.pid, key, "left").tolist()
    return int(lo), int(hi)
