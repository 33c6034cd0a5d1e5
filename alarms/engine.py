"""The alarm engine: evaluates a batch against every rule without mutating its state.

``evaluate`` returns an :class:`Evaluation` (flags for the batch, episode changes and the state
after it); the caller stores the batch and the changes in one transaction and only then calls
``commit``. A failed write can therefore be retried with the engine unchanged. ``tick(now)``
does the same for what the clock decides (data interruption; 馈电 decisions held for a silent
side and off-delay clears pending on a silent point, once ``now`` less the allowed lateness has
passed them). Evaluations must be committed in the order they were made, one at a time (the
gateway's writer owns the engine).

Rule families, one module each under :mod:`alarms.rules`, registered in
:data:`alarms.families.FAMILIES`, which ``evaluate`` and ``tick`` loop over: thresholds (gas
alarms with hysteresis, on-delay, confirmation and pre-warnings), calibration, faults
(maintenance), switch states (fan stop, smoke...), feed (馈电异常) and interruption. Every
episode carries a classification (:class:`alarms.codes.Classification`). Rows are evaluated in
event time, sorted by (point, time); a row not after its point's last evaluated reading is late:
flagged, stored, not evaluated here (:mod:`alarms.late` evaluates it apart, in its own time
order). Every rule keeps its state across batches, so where a batch
is cut changes no episode (``tests/alarms/test_batch_invariance.py``); the rule that merges
points (feed) holds its decisions until both sides have reported or the allowed lateness has
passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from operator import is_not
from typing import Any

import numpy as np
import numpy.typing as npt

from minewatch.alarms.episodes import EpisodeChange
from minewatch.alarms.families import FAMILIES, RUN_RULES, Family, Step, Tick, no_band
from minewatch.alarms.incidents import Incident, IncidentChange, IncidentTracker, Topology
from minewatch.alarms.prealarms import PrealarmOutcome, PrealarmParams, Prealarms
from minewatch.alarms.rules import feed, interruption, states
from minewatch.alarms.rules.context import BatchContext
from minewatch.alarms.rules.params import PointParams, RuleDefaults
from minewatch.alarms.rules.run_state import NEVER, Rows, RunState
from minewatch.alarms.rules.thresholds import Reach, ThresholdRule, threshold_rules
from minewatch.alarms.small import every, highest, lowest, some, where_set
from minewatch.batch import ReadingBatch
from minewatch.codes import ReadingFlag
from minewatch.registry import PointRegistry

_NEVER = NEVER


@dataclass(frozen=True, slots=True)
class EngineState:
    """Everything the engine knows per point id; replaced as a whole on commit."""

    last_time_us: npt.NDArray[np.int64]  # latest evaluated reading (event time)
    last_value: npt.NDArray[np.float64]  # latest valid reading (NaN: none yet)
    runs: dict[str, RunState]
    repeats: npt.NDArray[np.int64]  # identical consecutive readings (flat-line)
    interruption: interruption.InterruptionState
    last_zero_us: npt.NDArray[np.int64]  # latest zero-gas reading (undeclared calibration)
    feed: feed.FeedState  # 馈电: readings of D pairs not decided yet
    #: state a family keeps beyond its run states, by family name (the cross-check's windows)
    families: dict[str, Any] = field(default_factory=dict)
    #: The rules of ``runs`` with a run open (latched or pending its clear) at some point: a
    #: rule outside it with no row that sets it has nothing to do in a batch.
    open_rules: frozenset[str] = frozenset()
    #: readings kept for a deferred family until its next decision (``Family.next_decision``)
    deferred: dict[str, Deferred] = field(default_factory=dict)

    @classmethod
    def empty(cls, size: int) -> EngineState:
        return cls(
            np.full(size, _NEVER, np.int64),
            np.full(size, np.nan),
            {rule: RunState.empty(size) for rule in RUN_RULES},
            np.zeros(size, np.int64),
            interruption.InterruptionState.empty(size),
            np.full(size, _NEVER, np.int64),
            feed.FeedState.empty(size),
        )

    def with_open_rules(self) -> EngineState:
        """The state with ``open_rules`` found again from ``runs`` (after a change in place)."""
        return replace(self, open_rules=open_rules(self.runs))

    def grown(self, size: int) -> EngineState:
        def grow(array: np.ndarray, fill: object) -> np.ndarray:
            out = np.full(size, fill, dtype=array.dtype)
            keep = min(size, len(array))
            out[:keep] = array[:keep]
            return out

        return EngineState(
            grow(self.last_time_us, _NEVER),
            grow(self.last_value, np.nan),
            {rule: self.runs.get(rule, RunState.empty(0)).grown(size) for rule in RUN_RULES},
            grow(self.repeats, 0),
            self.interruption.grown(size),
            grow(self.last_zero_us, _NEVER),
            self.feed.grown(size),
            self.families,
            deferred=self.deferred,
        ).with_open_rules()


@dataclass(frozen=True, slots=True)
class Deferred:
    """Readings kept for a deferred family: per batch, the columns (point id, time, value,
    status) of its rows in evaluation order; each point's latest valid value before them; the
    number of readings kept."""

    chunks: tuple[tuple[npt.NDArray[Any], ...], ...]
    last_value: npt.NDArray[np.float64]
    size: int


#: Readings a deferred family keeps at most (~11 MB); past it, they are evaluated at once (a
#: family evaluates kept readings at any time before its next decision to the same effect).
DEFER_MAX_READINGS = 500_000


def open_rules(runs: dict[str, RunState], before: EngineState | None = None) -> frozenset[str]:
    """The rules of ``runs`` with a run open at some point: found for every rule, or (with
    ``before``, the state ``runs`` were computed from) for the rules whose run state changed."""
    if before is None:
        return frozenset(rule for rule, state in runs.items() if state.any_open())
    if len(runs) == len(before.runs) and not any(map(is_not, runs.values(), before.runs.values())):
        return before.open_rules  # every run state the one before (the usual batch): one pass
    found = None
    for rule, state in runs.items():
        if state is before.runs.get(rule):
            continue
        if found is None:
            found = set(before.open_rules)
        if state.any_open():
            found.add(rule)
        else:
            found.discard(rule)
    return before.open_rules if found is None else frozenset(found)


@dataclass(frozen=True, slots=True)
class Evaluation:
    flags: npt.NDArray[np.int16]  # per row of the evaluated batch, in its original order
    changes: list[EpisodeChange]
    state: EngineState
    #: incidents opened, joined, updated or closed (alarms/incidents.py), stored after changes
    incidents: list[IncidentChange] = field(default_factory=list)
    tracker: IncidentTracker | None = None  # the incidents after the batch (None: unchanged)
    #: pre-alarms raised or cleared and the forecasters' state after (alarms/prealarms.py)
    prealarm: PrealarmOutcome | None = None

    @property
    def active(self) -> dict[str, npt.NDArray[np.bool_]]:
        """Open episodes per rule after the batch (indexed by point id)."""
        out = {rule: s.active for rule, s in self.state.runs.items()}
        out[interruption.RULE] = self.state.interruption.active
        return out

    @property
    def last_time_us(self) -> npt.NDArray[np.int64]:
        return self.state.last_time_us


@dataclass
class AlarmEngine:
    """Per-point alarm state, indexed by point id; one engine owns the points of its mines."""

    registry: PointRegistry
    defaults: RuleDefaults = field(default_factory=RuleDefaults)
    state: EngineState = field(default_factory=lambda: EngineState.empty(0))
    rules: tuple[ThresholdRule, ...] = ()
    #: each mine's incident off-delay (``mines.incident_off_delay_s``); missing: the default
    incident_off_delay_s: dict[str, float] = field(default_factory=dict)
    #: each mine's pre-alarm settings (``mines.prealarm``); missing: the defaults
    prealarm_params: dict[str, PrealarmParams] = field(default_factory=dict)
    #: skip the families a batch cannot start anything in (``Family.idle``) and defer the
    #: ones that decide later (``Family.next_decision``); off: every family evaluates every
    #: batch and tick (the tests compare both)
    quiet_gate: bool = True

    def __post_init__(self) -> None:
        self.incidents = IncidentTracker(Topology.from_registry(self.registry))
        self.prealarms = Prealarms.of(self.registry, self.prealarm_params)
        self.use_registry(self.registry)

    def use_registry(self, registry: PointRegistry) -> None:
        """Take new point metadata (thresholds may have changed); keep the state."""
        if self.state.deferred:  # readings kept under the old metadata: evaluated with it
            self._flush_deferred()
        self.registry = registry
        topology = Topology.from_registry(registry, self.incident_off_delay_s)
        self.incidents = IncidentTracker(topology, self.incidents.open)
        self.rules = threshold_rules(registry)
        self.reach = Reach.of(self.rules, registry.size)
        self.params = PointParams.of(registry, self.defaults)
        self.pairs = feed.FeedPairs.of(registry)
        self.state_points = states.StatePoints.of(registry)
        #: what families derive from the registry (``Family.prepare``), by family name
        self.prepared = {f.name: f.prepare(registry, self.defaults)
                         for f in FAMILIES if f.prepare is not None}  # fmt: skip
        self._quiet_bands(registry.size)
        self._mine_of = _mine_index(registry)
        self.state = self.state.grown(registry.size)
        self.prealarms = Prealarms.of(registry, self.prealarm_params, self.prealarms.state)

    # -- the quiet gate (issue 14; alarms/families.py: Family.idle, band, light) -------------

    def _quiet_bands(self, size: int) -> None:
        """Each gated family's band, and the band of them all (where a reading is quiet for
        every family): NaN bounds become infinite, so one comparison per side decides."""
        self.bands: dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]] = {}
        low, high = np.full(size, -np.inf), np.full(size, np.inf)
        for family in FAMILIES:
            if family.idle is None:
                continue
            lo, hi = family.band(self) if family.band is not None else no_band(size)
            lo, hi = np.nan_to_num(lo, nan=-np.inf), np.nan_to_num(hi, nan=np.inf)
            self.bands[family.name] = (lo, hi)
            low, high = np.maximum(low, lo), np.minimum(high, hi)
        self.band_low, self.band_high = low, high

    def _gated(self, ctx: BatchContext) -> set[str]:
        """The families (by name) that the batch cannot start anything in: rows that all
        measure, none calibrating, strictly inside the family's band; idle is checked apart."""
        if ctx.any_status or ctx.any_calibrating or not self.quiet_gate:
            return set()
        pid, v = ctx.rows.pid, ctx.rows.v
        inside = (v > self.band_low[pid]) & (v < self.band_high[pid])
        if every(inside):
            return set(self.bands)  # the common case: one check for every family
        # a row inside the band of them all is inside each one's: look at the others only
        out = set()
        outside = np.flatnonzero(~inside)
        pid, v = pid[outside], v[outside]
        for name, (lo, hi) in self.bands.items():
            if bool(((v > lo[pid]) & (v < hi[pid])).all()):
                out.add(name)
        return out

    # -- deferred families (issue 14; alarms/families.py: Family.next_decision, reads) --------

    def _deferral(self, family: Family, step: Step, watermark_us: int) -> bool:
        """Keep the batch's readings for ``family`` while the watermark is below its next
        decision (True: done for this batch); at it, or past ``DEFER_MAX_READINGS``, evaluate
        the family once on the kept readings and the batch's (True), or, with nothing kept,
        let it run as usual (False)."""
        assert family.next_decision is not None
        if not self.quiet_gate:
            return False
        st = step.before
        kept = step.deferred.get(family.name)
        columns = None
        if watermark_us < family.next_decision(self, st.families.get(family.name)):
            columns = self._read_by(family, step.ctx.rows)
            size = len(columns[0]) + (kept.size if kept is not None else 0)
            if size <= DEFER_MAX_READINGS:
                if len(columns[0]):
                    chunks = (*kept.chunks, columns) if kept is not None else (columns,)
                    last_value = kept.last_value if kept is not None else st.last_value
                    step.deferred[family.name] = Deferred(chunks, last_value, size)
                return True
        if kept is None:
            return False
        del step.deferred[family.name]
        ctx = step.ctx
        more = columns if columns is not None else self._read_by(family, ctx.rows)
        step.ctx = self._kept_context(kept, more)
        try:
            family.evaluate(self, step)
        finally:
            step.ctx = ctx
        return True

    def _flush_in_tick(self, family: Family, kept: Deferred, tick: Tick) -> None:
        """The kept readings of ``family`` evaluated before the tick that reaches its next
        decision (they decide nothing themselves: their watermark was below it)."""
        ctx = self._kept_context(kept, None)
        st = tick.before
        step = Step(ctx, st, st.last_time_us, tick.runs, {}, tick.changes, st.repeats,
                    tick.interruption, tick.feed, tick.families)  # fmt: skip
        family.evaluate(self, step)
        tick.runs, tick.changes, tick.families = step.runs, step.changes, step.families
        # the family's tick reads its state from ``before``: the state with these readings
        tick.before = replace(st, runs=dict(step.runs), families=dict(step.families))

    def _flush_deferred(self) -> None:
        """Every deferred family evaluated on its kept readings, into the state (they decide
        nothing: their watermark was below the family's next decision)."""
        st = self.state
        runs, families = dict(st.runs), dict(st.families)
        changes: list[EpisodeChange] = []
        for family in FAMILIES:
            kept = st.deferred.get(family.name)
            if kept is None:
                continue
            step = Step(self._kept_context(kept, None), st, st.last_time_us, runs, {}, changes,
                        st.repeats, st.interruption, st.feed, families)  # fmt: skip
            family.evaluate(self, step)
            runs, families = step.runs, step.families
        self.state = replace(st, runs=runs, families=families, deferred={},
                             open_rules=open_rules(runs, st))  # fmt: skip

    def _read_by(self, family: Family, rows: Rows) -> tuple[npt.NDArray[Any], ...]:
        """The columns of the rows of the points ``family`` reads."""
        if family.reads is None:  # copies: the batch's arrays are the caller's
            return (rows.pid.copy(), rows.t.copy(), rows.v.copy(), rows.s.copy())
        sel = where_set(family.reads(self)[rows.pid])
        return (rows.pid[sel], rows.t[sel], rows.v[sel], rows.s[sel])

    def _kept_context(
        self, kept: Deferred, more: tuple[npt.NDArray[Any], ...] | None
    ) -> BatchContext:
        """The context of the kept readings (and ``more`` after them), sorted by (point,
        time): each batch's rows were, and a point's later batches have later readings."""
        chunks = kept.chunks if more is None else (*kept.chunks, more)
        pid, t, v, s = (np.concatenate([c[k] for c in chunks]) for k in range(4))
        order = _point_order(pid)
        rows = Rows.of(pid[order], t[order], v[order], s[order])
        return BatchContext.of(rows, self.registry, self.params, kept.last_value)

    @property
    def active(self) -> dict[str, npt.NDArray[np.bool_]]:
        return Evaluation(np.empty(0, np.int16), [], self.state).active

    @property
    def last_time_us(self) -> npt.NDArray[np.int64]:
        return self.state.last_time_us

    def restore(
        self,
        open_episodes: Sequence[tuple[int, str] | tuple[int, str, int]],
        last_times: Sequence[tuple[int, int] | tuple[int, int, float]],
    ) -> None:
        """Rebuild state from the database: open episodes and each point's latest reading.

        Episode tuples are (point id, rule[, started_at_us]); reading tuples are
        (point id, time_us[, value]).
        """
        size = self.registry.size
        for item in open_episodes:
            point_id, rule = int(item[0]), str(item[1])
            started = int(item[2]) if len(item) > 2 else _NEVER
            if not 0 <= point_id < size:
                continue
            if rule in self.state.runs:
                self.state.runs[rule].restore_open(point_id, started)
            elif rule == interruption.RULE:
                self.state.interruption.active[point_id] = True
                self.state.interruption.start_us[point_id] = started
        for reading in last_times:
            point_id = int(reading[0])
            if 0 <= point_id < size:
                self.state.last_time_us[point_id] = int(reading[1])
                if len(reading) > 2:
                    self.state.last_value[point_id] = float(reading[2])
        cut = self.state.runs["power_off"]
        self.state = replace(
            self.state,
            feed=self.state.feed.restored(self.state.last_value, cut.raw, cut.latch_us),
        ).with_open_rules()

    def restore_incidents(
        self, off_delay_s: dict[str, float], open_incidents: list[Incident]
    ) -> None:
        """Each mine's incident off-delay and the incidents still open (from the database),
        after a restart: the next alarms of an open event join its incident."""
        self.incident_off_delay_s = dict(off_delay_s)
        topology = Topology.from_registry(self.registry, self.incident_off_delay_s)
        self.incidents = IncidentTracker(topology, list(open_incidents))

    def restore_prealarms(
        self, params: dict[str, PrealarmParams], open_prealarms: list[tuple[int, int]]
    ) -> None:
        """Each mine's pre-alarm settings and the pre-alarms still open (point id, raised_us),
        after a restart (alarms/prealarm_store.py); the forecasts start again from nothing."""
        self.prealarm_params = dict(params)
        self.prealarms = Prealarms.of(self.registry, self.prealarm_params)
        self.prealarms.restore(open_prealarms)

    def commit(self, evaluation: Evaluation) -> None:
        """Adopt the state after a batch, once the batch and its changes are durable."""
        self.state = evaluation.state
        if evaluation.tracker is not None:
            self.incidents = evaluation.tracker
        self.prealarms.commit(evaluation.prealarm)

    def _incidents(self, evaluation: Evaluation, watermark_us: int) -> Evaluation:
        """``evaluation`` with the incidents its changes open, join, update or close (on a
        copy of the tracker: ``commit`` adopts it)."""
        tracker = self.incidents
        if not evaluation.changes and not tracker.closable(watermark_us):
            return evaluation
        tracker = tracker.copy()
        incidents = tracker.apply(evaluation.changes, watermark_us)
        return replace(evaluation, incidents=incidents, tracker=tracker)

    def tick(self, now_us: int, *, behind: bool = False) -> Evaluation:
        """What the clock decides at ``now_us`` (wall clock, microseconds): data interruption
        (at once), and, once ``now_us`` less the allowed lateness has passed them, 馈电
        decisions held for a silent side and off-delay clears pending on a silent point.

        ``behind``: the caller may hold readings not evaluated yet (a backlog in its queue or
        its broker session). The wall clock would then take the queued readings for silence;
        the clock of each point is instead :meth:`mine_clock` (its mine's newest evaluated
        reading, or the newest of all less the allowed lateness if later), and the other
        families' bound is the newest reading evaluated (like ``evaluate``'s) less the
        allowed lateness; neither is later than ``now_us``.

        Like ``evaluate``: store the changes, then ``commit`` the evaluation.
        """
        st = self.state
        clock_us = None
        if behind:
            clock_us = self.mine_clock(now_us)
            newest = int(st.last_time_us.max()) if len(st.last_time_us) else NEVER
            now_us = max(min(now_us, newest), NEVER + self.defaults.lateness_us)
        tick = Tick(
            now_us, now_us - self.defaults.lateness_us, st, dict(st.runs), [], st.interruption,
            st.feed, dict(st.families), clock_us,
        )  # fmt: skip
        deferred = st.deferred
        for family in FAMILIES:
            if family.tick is None:
                continue
            if family.next_decision is not None and self.quiet_gate:
                if tick.bound_us < family.next_decision(self, tick.families.get(family.name)):
                    continue  # the clock decides nothing in the family yet
                if family.name in deferred:  # its kept readings first
                    deferred = dict(deferred)
                    self._flush_in_tick(family, deferred.pop(family.name), tick)
            family.tick(self, tick)
        state = EngineState(  # (``replace`` loops over the fields: slower, on every tick)
            st.last_time_us, st.last_value, tick.runs, st.repeats, tick.interruption,
            st.last_zero_us, tick.feed, tick.families, open_rules(tick.runs, st), deferred,
        )  # fmt: skip
        evaluation = Evaluation(np.empty(0, np.int16), tick.changes, state)
        return self._incidents(evaluation, now_us - self.defaults.lateness_us)

    def mine_clock(self, now_us: int) -> npt.NDArray[np.int64]:
        """Per point id, the clock of a tick behind a backlog: its mine's watermark (the
        newest reading of the mine evaluated: mines' clocks differ, and the readings of one
        mine are queued together), or, if later, the newest reading of all less the allowed
        lateness (so a whole mine that falls silent is still seen while other mines' readings
        advance); at most ``now_us``; ``NEVER`` everywhere while nothing was evaluated."""
        last = self.state.last_time_us
        mine_of = self._mine_of[: len(last)]
        inside = np.flatnonzero(mine_of >= 0)
        newest = np.full(int(mine_of.max(initial=-1)) + 1, NEVER, np.int64)
        np.maximum.at(newest, mine_of[inside], last[inside])
        clock = np.full(len(last), NEVER, np.int64)
        clock[inside] = newest[mine_of[inside]]
        top = int(last.max(initial=NEVER))
        if top != NEVER:
            np.maximum(clock, top - self.defaults.lateness_us, out=clock)
        return np.minimum(clock, now_us)

    def evaluate(self, batch: ReadingBatch) -> Evaluation:
        """Every rule family (:data:`alarms.families.FAMILIES`, in its order) over the batch."""
        st = self.state
        flags = batch.flags.copy()
        pid, t = batch.point_id, batch.time_us
        if len(pid) > 1 and np.count_nonzero(pid[1:] > pid[:-1]) == len(pid) - 1:
            # A point's readings, one each, in point order (a live batch of one polling cycle):
            # already in evaluation order, and skipped (late or a repeat) only against the state.
            skipped = t <= st.last_time_us[pid]
            if some(skipped):
                flags |= skip_flags(pid, t, st.last_time_us, skipped)
                live = np.flatnonzero(~skipped)
                rows = Rows.distinct(pid[live], t[live], batch.value[live], batch.status[live])
            else:
                rows = Rows.distinct(pid, t, batch.value, batch.status)
        else:
            skipped, order = live_order(pid, t, st.last_time_us)
            if skipped.any():
                flags |= skip_flags(pid, t, st.last_time_us, skipped)
            pid, t = pid[order], t[order]
            rows = Rows.of(pid, t, batch.value[order], batch.status[order])
        if not len(rows):
            return Evaluation(flags, [], st)

        ctx = BatchContext.of(rows, self.registry, self.params, st.last_value)
        last_time = st.last_time_us.copy()
        last = rows.last_rows
        last_points = rows.pid[last]
        last_time[last_points] = rows.t[last]
        step = Step(ctx, st, last_time, dict(st.runs), {}, [], st.repeats, st.interruption, st.feed,
                    dict(st.families), dict(st.deferred))  # fmt: skip
        watermark = int(highest(rows.t)) - self.defaults.lateness_us
        gated = self._gated(ctx)
        for family in FAMILIES:
            if family.next_decision is not None and self._deferral(family, step, watermark):
                continue
            if (
                family.name in gated
                and family.idle is not None
                and family.idle(self, st)
                and (family.light is None or family.light(self, step))
            ):
                continue  # a quiet batch: nothing to start, nothing open
            family.evaluate(self, step)

        last_value = st.last_value.copy()
        if ctx.all_valid:
            last_value[last_points] = rows.v[last]
        else:
            has_valid = ctx.last_valid_row >= 0
            last_value[last_points[has_valid]] = rows.v[ctx.last_valid_row[has_valid]]
        state = EngineState(
            last_time, last_value, step.runs, step.repeats, step.interruption,
            _last_zero(ctx, st.last_zero_us), step.feed, step.families,
            open_rules(step.runs, st), step.deferred,
        )  # fmt: skip
        prealarm = self.prealarms.evaluate(rows, ctx.gas_ok)
        evaluation = Evaluation(flags, step.changes, state, prealarm=prealarm)
        return self._incidents(evaluation, watermark)


def _mine_index(registry: PointRegistry) -> npt.NDArray[np.int64]:
    """Per point id, the position of its mine in ``registry.ids_by_mine`` (-1: no point)."""
    out = np.full(registry.size, -1, np.int64)
    for k, ids in enumerate(registry.ids_by_mine.values()):
        out[ids[ids < registry.size]] = k
    return out


def _last_zero(ctx: BatchContext, before: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Each point's latest zero-gas reading after the batch."""
    if not len(ctx.zero_rows):
        return before
    if ctx.rows.single:  # each row its point's only one: a zero row's own time, or before
        after = before.copy()
        after[ctx.rows.pid[ctx.zero_rows]] = ctx.rows.t[ctx.zero_rows]
        return after
    last = ctx.rows.last_rows
    points = ctx.rows.pid[last]
    after = before.copy()
    after[points] = ctx.zero_at(last, before[points])
    return after


def live_order(
    point_id: npt.NDArray[np.int32],
    time_us: npt.NDArray[np.int64],
    last_time_us: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.intp]]:
    """(late mask in arrival order, the live rows' indices sorted by (point, time)).

    Live rows of a point arrive in time order (that is what "not late" means), so a stable
    sort by point keeps each point's rows in time order. The common case, a batch whose event
    times never decrease (cycles arrive in order), needs that one sort: a row is late when its
    time is not after the point's last evaluated reading or equals the previous row's time
    of its point. Otherwise :func:`late_rows` finds the late rows in the general way.
    """
    n = len(time_us)
    if n < 2 or not every(time_us[1:] >= time_us[:-1]):
        late = late_rows(point_id, time_us, last_time_us)
        live = np.flatnonzero(~late)
        return late, live[_point_order(point_id[live])]
    order = _point_order(point_id)
    pid, t = point_id[order], time_us[order]
    late_sorted = t <= last_time_us[pid]
    late_sorted[1:] |= (pid[1:] == pid[:-1]) & (t[1:] == t[:-1])
    late = np.zeros(n, bool)
    late[order] = late_sorted
    return late, order[~late_sorted]


def skip_flags(
    point_id: npt.NDArray[np.int32],
    time_us: npt.NDArray[np.int64],
    last_time_us: npt.NDArray[np.int64],
    skipped: npt.NDArray[np.bool_],
) -> npt.NDArray[np.int16]:
    """The flag of each row (arrival order) the live engine does not evaluate: ``REPEAT`` for
    the same time as the point's last evaluated reading or as a row of the point that arrived
    before it, ``LATE`` for an older time; 0 for the rows it evaluates."""
    n = len(time_us)
    order = np.lexsort((np.arange(n), time_us, point_id))
    pid, t = point_id[order], time_us[order]
    again = np.zeros(n, bool)
    again[1:] = (pid[1:] == pid[:-1]) & (t[1:] == t[:-1])
    repeat = np.zeros(n, bool)
    repeat[order] = again
    repeat |= time_us == last_time_us[point_id]
    flags = np.zeros(n, np.int16)
    flags[skipped & repeat] = ReadingFlag.REPEAT
    flags[skipped & ~repeat] = ReadingFlag.LATE
    return flags


def _point_order(point_id: npt.NDArray[np.int32]) -> npt.NDArray[np.intp]:
    """A stable sort by point id; numpy radix-sorts 16-bit keys in O(n)."""
    if len(point_id) and int(lowest(point_id)) >= 0 and int(highest(point_id)) < 2**15:
        return np.argsort(point_id.astype(np.int16), kind="stable")
    return np.argsort(point_id, kind="stable")


def late_rows(
    point_id: npt.NDArray[np.int32],
    time_us: npt.NDArray[np.int64],
    last_time_us: npt.NDArray[np.int64],
) -> npt.NDArray[np.bool_]:
    """Rows (in arrival order) not later than an earlier reading of their point: one already
    evaluated (``last_time_us``) or one that arrived before them in this batch.

    Event time decides the alarm state, so a backfilled reading must not replay history as if
    it were live, whether it arrives in a later batch or in the same one. Per point, a running
    maximum of the times seen so far in arrival order: points are grouped by a stable sort, and
    each group's dense time ranks are shifted by the group number times n, so one
    ``np.maximum.accumulate`` never carries across groups.
    """
    n = len(time_us)
    late = np.zeros(n, bool)
    if n == 0:
        return late
    order = np.argsort(point_id, kind="stable")
    pid = point_id[order]
    t = time_us[order]
    is_start = np.ones(n, bool)
    is_start[1:] = pid[1:] != pid[:-1]
    group = np.cumsum(is_start) - 1
    _, rank = np.unique(t, return_inverse=True)
    key = rank.astype(np.int64) + group.astype(np.int64) * n
    running = np.maximum.accumulate(key)
    before = np.empty(n, np.int64)
    before[0] = -1
    before[1:] = running[:-1]
    before[is_start] = -1
    late[order] = (key <= before) | (t <= last_time_us[pid])
    return late
