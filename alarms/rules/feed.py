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

**Event time, whatever the batching.** P and F often sit on different substations, whose
messages arrive in either order and in different batches. The rule is evaluated on the merged
series of P's and F's readings in event time (at every reading of either, P's cut and F's
value are their latest readings at or before that time; at equal times P's reading first).
An event is *decided* only once no reading that could change it can still come: up to the
*horizon* of P, the latest of

* the earliest last reading among P and its feeds (every point of the pair has reported up to
  there, and a point's readings are evaluated in time order: an earlier one would be late);
* the latest last reading among them minus the allowed lateness
  (``RuleDefaults.allowed_lateness_s``): one side may lag the other by that much;
* the clock minus the allowed lateness (``AlarmEngine.tick``): both sides silent.

Until then the pair's readings wait in :class:`FeedState` (at most about the allowed lateness
of them). A reading that arrives after the horizon passed its time (later than the allowed
lateness) counts for the pair's live state from the next event on: the live engine does not
merge it back into decided history. A reading flagged late (not after its own point's last
reading: a backlog) is evaluated again with its pair in its own time order by
:mod:`alarms.late`, which adds or corrects the 馈电 episodes it reveals; one merely behind its
pair by more than the allowed lateness is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import numpy.typing as npt

from minewatch.alarms.rules.run_state import NEVER, Rows, RunOutcome, RunState
from minewatch.alarms.rules.runs import evaluate_runs
from minewatch.alarms.small import every, some, where_set
from minewatch.codes import FEED_SENSOR_TYPES, RelationKind
from minewatch.registry import PointRegistry

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class FeedPairs:
    """D relations from a point with a power-off level to a feed point, sorted by source;
    ``size``: the registry's, for the per-point masks."""

    source: IntArray
    feed: IntArray
    size: int = 0
    # Derived once (each batch reads them): the distinct sources, where each one's pairs
    # start, each pair's index among the sources, per point id whether it is a source, a
    # feed or either, and whether every source has one feed (no reduction needed).
    sources: IntArray = field(init=False)
    starts: IntArray = field(init=False)
    pair_source: IntArray = field(init=False)
    is_source: BoolArray = field(init=False)
    is_feed: BoolArray = field(init=False)
    is_pair_point: BoolArray = field(init=False)
    one_feed_each: bool = field(init=False)
    feeds_distinct: bool = field(init=False)

    def __post_init__(self) -> None:
        first = np.ones(len(self.source), bool)
        first[1:] = self.source[1:] != self.source[:-1]
        starts = np.flatnonzero(first)
        sources = self.source[starts]
        size = max(self.size, int(max(self.source.max(), self.feed.max())) + 1 if len(self) else 0)
        is_source, is_feed = np.zeros(size, bool), np.zeros(size, bool)
        is_source[self.source], is_feed[self.feed] = True, True
        derived = {
            "sources": sources, "starts": starts,
            "pair_source": np.searchsorted(sources, self.source),
            "is_source": is_source, "is_feed": is_feed, "is_pair_point": is_source | is_feed,
            "one_feed_each": len(sources) == len(self.source),
            "feeds_distinct": len(np.unique(self.feed)) == len(self.feed),
        }  # fmt: skip
        for name, value in derived.items():
            object.__setattr__(self, name, value)

    @classmethod
    def of(cls, registry: PointRegistry) -> FeedPairs:
        pairs: list[tuple[int, int]] = []
        for p in np.flatnonzero(registry.known & np.isfinite(registry.poweroff_high)).tolist():
            for relation in registry.relations[p] or ():
                if relation.get("kind") != RelationKind.POWER_OFF.value:
                    continue
                f = registry.point_id(str(registry.mine_code[p]), str(relation.get("target")))
                if f >= 0 and registry.sensor_type[f] in FEED_SENSOR_TYPES:
                    pairs.append((p, f))
        pairs.sort()
        array = np.array(pairs, np.int64).reshape(-1, 2)
        return cls(array[:, 0].copy(), array[:, 1].copy(), registry.size)

    def __len__(self) -> int:
        return len(self.source)

    def horizons(
        self, decided_us: IntArray, last_time_us: IntArray, bound_us: int, lateness_us: int
    ) -> tuple[IntArray, IntArray]:
        """(sources, their horizon): see the module's docstring; ``bound_us`` is the clock's
        (NEVER: none). Never earlier than what was decided before."""
        sources = self.sources
        src_t, feed_t = last_time_us[sources], last_time_us[self.feed]
        if self.one_feed_each:
            lowest, highest = np.minimum(src_t, feed_t), np.maximum(src_t, feed_t)
        else:
            lowest = np.minimum(src_t, np.minimum.reduceat(feed_t, self.starts))
            highest = np.maximum(src_t, np.maximum.reduceat(feed_t, self.starts))
        lagging = np.where(highest == NEVER, NEVER, highest - lateness_us)
        horizon = np.maximum(np.maximum(decided_us[sources], lowest), lagging)
        return sources, np.maximum(horizon, bound_us)


@dataclass(frozen=True, slots=True)
class FeedState:
    """What the rule keeps across batches: per point id, the decided time and the pair's
    state there; and the readings of pair points not decided yet, sorted by (point, time)."""

    decided_us: IntArray  # per source: its events up to this time are decided
    base_cut: BoolArray  # per source: the raw cut at its latest reading at or before then
    base_since: IntArray  # ...its start (NEVER: off)
    base_value: FloatArray  # source: its latest reading's value; feed: its latest valid one
    pid: npt.NDArray[np.int32]
    t: IntArray
    v: FloatArray
    valid: BoolArray
    cut: BoolArray  # source rows: the raw cut after the reading
    since: IntArray

    @classmethod
    def empty(cls, size: int) -> FeedState:
        i, f, b = np.empty(0, np.int64), np.empty(0), np.empty(0, bool)
        return cls(
            np.full(size, NEVER, np.int64), np.zeros(size, bool), np.full(size, NEVER, np.int64),
            np.full(size, np.nan), np.empty(0, np.int32), i, f, b, b, i,
        )  # fmt: skip

    def grown(self, size: int) -> FeedState:
        out = FeedState.empty(size)
        keep = min(size, len(self.decided_us))
        for name in ("decided_us", "base_cut", "base_since", "base_value"):
            getattr(out, name)[:keep] = getattr(self, name)[:keep]
        kept = self.pid < size
        rows = {f.name: getattr(self, f.name)[kept] for f in fields(self)[4:]}
        return FeedState(out.decided_us, out.base_cut, out.base_since, out.base_value, **rows)

    def decided(self, decided_us: IntArray) -> FeedState:
        """The state with other decided times (``replace`` without its field-by-field loop:
        every batch and tick moves them)."""
        return FeedState(decided_us, self.base_cut, self.base_since, self.base_value, self.pid,
                         self.t, self.v, self.valid, self.cut, self.since)  # fmt: skip

    def restored(self, last_value: FloatArray, cut: BoolArray, since: IntArray) -> FeedState:
        """The state after a restart: the latest stored values and the restored cuts."""
        return FeedState(
            self.decided_us.copy(), cut.copy(), np.where(cut, since, NEVER),
            last_value.copy(), self.pid, self.t, self.v, self.valid, self.cut, self.since,
        )  # fmt: skip

    def with_rows(
        self,
        pid: npt.NDArray[np.int32],
        t: IntArray,
        v: FloatArray,
        valid: BoolArray,
        cut: BoolArray,
        since: IntArray,
    ) -> FeedState:
        """These readings (sorted by (point, time), each later than the point's kept ones)
        added to the kept ones."""
        if not len(pid):
            return self
        if not len(self.pid):  # nothing kept: the new rows are in order already
            return FeedState(
                self.decided_us, self.base_cut, self.base_since, self.base_value,
                pid, t, v, valid, cut, since,
            )  # fmt: skip
        columns = [
            np.concatenate([getattr(self, name), new])
            for name, new in zip(("pid", "t", "v", "valid", "cut", "since"),
                                 (pid, t, v, valid, cut, since), strict=True)
        ]  # fmt: skip
        order = np.argsort(columns[0], kind="stable")  # kept rows first: earlier in time
        pid_, t_, v_, valid_, cut_, since_ = (c[order] for c in columns)
        return FeedState(
            self.decided_us, self.base_cut, self.base_since, self.base_value,
            pid_, t_, v_, valid_, cut_, since_,
        )  # fmt: skip


def pair_rows(
    rows: Rows,
    valid: BoolArray,
    cut: RunOutcome,
    pairs: FeedPairs,
    state: FeedState,
    all_valid: bool = False,
) -> FeedState:
    """``state`` with the batch's readings of pair points added: every reading of a source
    (with its raw cut), the valid readings of a feed (``all_valid``: every row is valid)."""
    if not len(pairs) or not len(rows):
        return state
    if all_valid:
        take = pairs.is_pair_point[rows.pid]
    else:
        take = pairs.is_source[rows.pid] | (pairs.is_feed[rows.pid] & valid)
    if not some(take):
        return state
    if cut.on is None or cut.start_us is None:  # the power-off rule had nothing open
        at = where_set(take)
        on, since = np.zeros(len(at), bool), np.full(len(at), NEVER, np.int64)
    else:
        on, since = cut.on[take], np.where(cut.on, cut.start_us, NEVER)[take]
    return state.with_rows(rows.pid[take], rows.t[take], rows.v[take], valid[take], on, since)


def decide(
    state: FeedState,
    pairs: FeedPairs,
    last_time_us: IntArray,
    runs: RunState,
    control_time_us: IntArray,
    lateness_us: int,
    bound_us: int = NEVER,
    run_open: bool | None = None,
) -> tuple[RunOutcome | None, FeedState]:
    """Evaluate every event of every pair up to its source's horizon; the runs of
    ``feed_abnormal`` (None: nothing to evaluate) and the state after. ``run_open``: some
    ``feed_abnormal`` run is open (None: look at ``runs``)."""
    if not len(pairs):
        return None, state
    sources, horizon = pairs.horizons(state.decided_us, last_time_us, bound_us, lateness_us)
    decided = state.decided_us
    after_decided = decided.copy()
    after_decided[sources] = horizon
    if not len(state.pid):  # no reading waits: the decided times move, nothing else
        return None, state.decided(after_decided)
    size = len(decided)
    point_horizon = np.full(size, np.iinfo(np.int64).max, np.int64)  # not a pair point: drop
    if pairs.feeds_distinct:
        point_horizon[pairs.feed] = horizon[pairs.pair_source]
    else:
        np.minimum.at(point_horizon, pairs.feed, horizon[pairs.pair_source])
    point_horizon[sources] = horizon
    pid, t = state.pid, state.t
    events = None
    if run_open is None:
        run_open = runs.any_open()
    if run_open or some(state.cut) or some(state.base_cut):  # else no cut, no run
        events = _events(state, pairs, sources, horizon, runs, control_time_us)
    outcome = None
    if events is not None:
        ev_rows, cond, clear, counted = events
        outcome = evaluate_runs(
            ev_rows, cond, clear, runs, need=np.ones(len(runs.raw), np.int64),
            eligible=np.ones(len(ev_rows), bool), counted=counted,
        )  # fmt: skip

    # The readings now decided become the base; the rest wait.
    done = t <= point_horizon[pid]
    all_done = every(done)
    base_cut, base_since, base_value = state.base_cut, state.base_since, state.base_value
    if all_done or some(done):
        last = where_set(_last_done(pid, done))
        points = pid[last]
        base_value = base_value.copy()
        base_value[points] = state.v[last]
        src = pairs.is_source[points]
        if some(src):
            base_cut, base_since = base_cut.copy(), base_since.copy()
            base_cut[points[src]] = state.cut[last[src]]
            base_since[points[src]] = state.since[last[src]]
    if all_done:
        rows = _NO_ROWS
    else:
        keep = ~done
        rows = (pid[keep], t[keep], state.v[keep], state.valid[keep], state.cut[keep],
                state.since[keep])  # fmt: skip
    return outcome, FeedState(after_decided, base_cut, base_since, base_value, *rows)


_EMPTY = FeedState.empty(0)
_NO_ROWS = (_EMPTY.pid, _EMPTY.t, _EMPTY.v, _EMPTY.valid, _EMPTY.cut, _EMPTY.since)


def _last_done(pid: npt.NDArray[np.int32], done: BoolArray) -> BoolArray:
    """Per row: the last decided row of its point (a point's decided rows come first)."""
    followed = np.zeros(len(pid), bool)
    followed[:-1] = (pid[1:] == pid[:-1]) & done[1:]
    return done & ~followed


def _events(
    state: FeedState,
    pairs: FeedPairs,
    sources: IntArray,
    horizon: IntArray,
    runs: RunState,
    control_time_us: IntArray,
) -> tuple[Rows, BoolArray, BoolArray, BoolArray] | None:
    """The merged events of the sources with something to decide: (events as rows of the
    source, the failure condition, its clear, counted in the statistics)."""
    pid, t = state.pid, state.t
    decided = state.decided_us
    # Only a source whose cut is on (at its base or at a reading to decide) or whose run is
    # open can open or end a run: the other pairs have nothing to do. Skipping them keeps a
    # one-cycle batch (the live gateway's) from looping over every D relation.
    src_horizon = np.full(len(decided), NEVER, np.int64)
    src_horizon[sources] = horizon
    fresh = (t > decided[pid]) & (t <= src_horizon[pid])
    cutting = state.base_cut.copy()
    cutting[pid[fresh & state.cut]] = True
    todo = sources[(horizon > decided[sources]) & (cutting | runs.open)[sources]]
    if not len(todo):
        return None
    lo = np.searchsorted(pid, todo, "left")
    hi = np.searchsorted(pid, todo, "right")
    parts: list[tuple[IntArray, FloatArray, BoolArray, BoolArray, BoolArray]] = []
    owners: list[int] = []
    for p, a, b in zip(todo.tolist(), lo.tolist(), hi.tolist(), strict=True):
        since0, h = int(decided[p]), int(src_horizon[p])
        tp = t[a:b]
        feeds = pairs.feed[pairs.source == p].tolist()
        feed_slices = [tuple(np.searchsorted(pid, [f, f + 1], "left").tolist()) for f in feeds]
        mine = (tp > since0) & (tp <= h)
        times = [tp[mine]]
        for fa, fb in feed_slices:
            tf = t[fa:fb]
            times.append(tf[(tf > since0) & (tf <= h)])
        all_t = np.concatenate(times)
        if not len(all_t):
            continue
        is_p = np.zeros(len(all_t), bool)
        is_p[: int(mine.sum())] = True
        order = np.lexsort((~is_p, all_t))  # at equal times, P's reading first
        all_t, is_p = all_t[order], is_p[order]
        at = np.searchsorted(tp, all_t, "right") - 1
        has = at >= 0
        row = a + np.maximum(at, 0)
        cut_on = np.where(has, state.cut[row], state.base_cut[p])
        since = np.where(has, state.since[row], state.base_since[p])
        value = np.where(has, state.v[row], state.base_value[p])
        feed_on = np.zeros(len(all_t), bool)
        for f, (fa, fb) in zip(feeds, feed_slices, strict=True):
            j = np.searchsorted(t[fa:fb], all_t, "right") - 1
            fv = np.where(j >= 0, state.v[fa + np.maximum(j, 0)] if fb > fa else 0.0,
                          state.base_value[f])  # fmt: skip
            with np.errstate(invalid="ignore"):
                feed_on |= fv >= 0.5
        with np.errstate(over="ignore"):
            late = (since != NEVER) & (all_t - since >= control_time_us[p])
        counted = is_p & np.where(has, state.valid[row], False)
        parts.append((all_t, value, cut_on & feed_on & late, ~cut_on | ~feed_on, counted))
        owners.append(p)
    if not parts:
        return None
    events = Rows.of(
        np.concatenate(
            [np.full(len(x[0]), p, np.int32) for p, x in zip(owners, parts, strict=True)]
        ),
        np.concatenate([x[0] for x in parts]),
        np.concatenate([x[1] for x in parts]),
    )
    return (
        events,
        np.concatenate([x[2] for x in parts]),
        np.concatenate([x[3] for x in parts]),
        np.concatenate([x[4] for x in parts]),
    )


def quiet_fold(
    rows: Rows, pairs: FeedPairs, state: FeedState, last_time_us: IntArray, lateness_us: int
) -> FeedState | None:
    """:func:`decide` after :func:`pair_rows` for a batch of one reading per point that
    cuts nothing, with no cut, no reading kept and no run open before it, and every reading
    valid: the decided times move and the readings become the base. None when a reading of it
    must wait for the other side (the general path keeps it)."""
    if not len(pairs):
        return state
    if not rows.single:
        return None
    sources, horizon = pairs.horizons(state.decided_us, last_time_us, NEVER, lateness_us)
    decided = state.decided_us.copy()
    decided[sources] = horizon
    sel = pairs.is_pair_point[rows.pid].nonzero()[0]
    if not len(sel):
        return state.decided(decided)
    pid, t = rows.pid[sel], rows.t[sel]
    point_horizon = np.empty(len(decided), np.int64)
    point_horizon.fill(np.iinfo(np.int64).max)
    if pairs.feeds_distinct:
        point_horizon[pairs.feed] = horizon[pairs.pair_source]
    else:
        np.minimum.at(point_horizon, pairs.feed, horizon[pairs.pair_source])
    point_horizon[sources] = horizon
    if np.count_nonzero(t <= point_horizon[pid]) < len(t):
        return None
    base_value = state.base_value.copy()
    base_value[pid] = rows.v[sel]
    return FeedState(decided, state.base_cut, state.base_since, base_value, *_NO_ROWS)
