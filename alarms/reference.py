"""The alarm rules one reading at a time, in pure Python: the engine's baseline and oracle.

:class:`ReferenceEngine` implements the rule families of :class:`alarms.engine.AlarmEngine`
(thresholds with hysteresis, on-delay, confirmation and the ramp exception; interference
spikes; calibration, declared, flagged and undeclared; faults, negative drift and flat line;
feed abnormal; data interruption; switch states) the way an engineer would write them without
numpy: readings in arrival order, per-point state in small slotted objects. It is what the
engine's throughput is measured against (``bench/alarm_engine.py``), and what its results are
checked against (``tests/alarms/test_reference_differential.py``,
``tests/alarms/test_batch_invariance.py``): both produce the same episodes.

Where the engine's semantics are intricate, this module follows them on purpose:

* a reading not after its point's latest evaluated reading is late: flagged, not evaluated;
* the previous reading (ramp, flat line) is the point's previous *valid* reading;
* a 馈电异常 merges the source's and the feed's readings in event time (at equal times the
  source's first, each seeing the other's reading of that time), one event at a time once it
  is decided: when every point of the pair has reported up to it (checked after each
  reading), or, at the end of a batch and at a tick, when it is older than the pair's latest
  reading or the clock less the allowed lateness. A reading older than what was decided counts
  from the next event on. The lateness bound is the only thing that needs batch boundaries;
* off-delay (threshold rules): a clear reading makes the run *pending*; the readings that
  follow are its dip, kept apart; a set reading within the off-delay (``t <= clear +
  off_delay``) continues the run, the dip's readings joining its statistics (they neither
  confirm nor raise); the point's first reading later than that ends it at the clear, before
  the reading is evaluated, and so does a tick whose clock less the allowed lateness is later.
  The 馈电 cut is the raw latch: off while pending;
* a silence longer than the interruption time between two readings of a point that no tick
  saw is a data interruption from the first missing reading to the next one.

Only the episodes are produced; :class:`alarms.episodes.EpisodeLog` folds the engine's
``EpisodeChange`` records into the same :class:`alarms.episodes.Episode` values, so the two can
be compared.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from minewatch.alarms.codes import Classification
from minewatch.alarms.episodes import Episode
from minewatch.alarms.reference_neighbours import NeighbourReference, WindowRun
from minewatch.alarms.rules.co import PUFF, COPoints
from minewatch.alarms.rules.context import UNRELIABLE
from minewatch.alarms.rules.cross_check import CrossPoints
from minewatch.alarms.rules.feed import FeedPairs
from minewatch.alarms.rules.params import PointParams, RuleDefaults
from minewatch.alarms.rules.states import RULE_NAMES, StatePoints
from minewatch.batch import ReadingBatch
from minewatch.codes import PointStatus
from minewatch.registry import PointRegistry

NAN = math.nan
_CALIBRATION = int(PointStatus.CALIBRATION)
_UNRELIABLE = int(UNRELIABLE)
_STATUS_RULES = (
    ("disconnection", int(PointStatus.SENSOR_FAULT), Classification.DISCONNECTION.value),
    ("over_range", int(PointStatus.OVER_RANGE), Classification.OVER_RANGE.value),
    ("substation_fault", int(PointStatus.SUBSTATION_FAULT), Classification.SUBSTATION_FAULT.value),
)
_SPIKE_RULES = ("upper_alarm", "power_off")  # a one-reading run of these is interference
_RECLASSIFIED = ("upper_alarm", "power_off", "upper_prewarn")
_EXCEEDANCE = Classification.EXCEEDANCE.value


class _Run:
    """An excursion of one rule at one point: the raw latch is on; ``episode`` once raised."""

    __slots__ = (
        "count", "dip", "eligible", "episode", "label", "latch", "near", "need", "pending",
        "related", "start", "start_value", "threshold", "total", "vmax", "vmax_at", "vmin",
        "vmin_at", "zero",
    )  # fmt: skip

    def __init__(
        self, t: int, v: float, need: int, label: str, threshold: float, related: int | None
    ) -> None:
        self.start, self.start_value, self.need = t, v, need
        self.label, self.threshold, self.related = label, threshold, related
        self.eligible = self.count = self.near = 0
        self.total = 0.0
        self.vmax, self.vmax_at, self.vmin, self.vmin_at = -math.inf, 0, math.inf, 0
        self.episode: Episode | None = None
        self.zero: int | None = None  # the point's latest zero-gas reading before the run
        self.latch = t  # start of the raw latch's current stretch (the 馈电 cut)
        self.pending: int | None = None  # off-delay: the clear that may end the run
        self.dip: list[float] = []  # [count, total, max, max_at, min, min_at, near] since it

    def add(self, v: float, t: int, near: bool) -> None:
        self.count += 1
        self.total += v
        if v > self.vmax:
            self.vmax, self.vmax_at = v, t
        if v < self.vmin:
            self.vmin, self.vmin_at = v, t
        self.near += near

    def add_dip(self, v: float, t: int, near: bool) -> None:
        dip = self.dip
        dip[0] += 1
        dip[1] += v
        if v > dip[2]:
            dip[2], dip[3] = v, t
        if v < dip[4]:
            dip[4], dip[5] = v, t
        dip[6] += near

    def resume(self, t: int) -> None:
        """A set reading within the off-delay: the dip's readings become the run's."""
        count, total, vmax, vmax_at, vmin, vmin_at, near = self.dip
        self.count += int(count)
        self.total += total
        if vmax > self.vmax:
            self.vmax, self.vmax_at = vmax, int(vmax_at)
        if vmin < self.vmin:
            self.vmin, self.vmin_at = vmin, int(vmin_at)
        self.near += int(near)
        self.pending, self.dip, self.latch = None, [], t

    def fill(self, episode: Episode) -> None:
        episode.count, episode.total = self.count, self.total
        episode.vmax, episode.vmax_at = self.vmax, self.vmax_at
        episode.vmin, episode.vmin_at = self.vmin, self.vmin_at


@dataclass(slots=True)
class _Level:
    """One threshold rule at one point (a rule whose set level is NaN is not listed)."""

    rule: str
    upper: bool
    set: float
    clear: float
    ramp: float  # previous valid reading at or beyond it: no confirmation (NaN: never)


class _Point:
    """One point's settings and state."""

    __slots__ = (
        "alarm_clear", "alarm_high", "co", "control_us", "drift_floor", "fire_us",
        "flat_window", "gas", "interrupted", "interruption_us", "last_time", "last_value",
        "last_zero", "levels", "off_delay_us", "on_delay_us", "poll_us", "poweroff_high",
        "puff_us", "repeats", "runs", "state", "windows",
    )  # fmt: skip
    # settings, set once by the reference's constructor from the point registry
    alarm_high: float
    alarm_clear: float
    poweroff_high: float
    on_delay_us: int
    off_delay_us: int
    poll_us: int
    interruption_us: int
    control_us: int
    flat_window: int
    drift_floor: float
    gas: float
    co: bool  # a CO point with an alarm level (alarms/rules/co.py)
    puff_us: int  # co_puff_max_s; -1: no vehicles
    fire_us: int  # co_fire_after_s

    def __init__(self) -> None:
        self.levels: list[_Level] = []
        self.windows: list[tuple[int, int]] = []  # declared calibrations [start, end)
        self.runs: dict[str, _Run] = {}
        self.last_time: int | None = None  # latest evaluated reading
        self.last_value = NAN  # latest valid reading
        self.last_zero: int | None = None  # latest valid reading at the zero-gas level
        self.repeats = 0  # identical consecutive valid readings (flat line)
        self.interrupted: Episode | None = None
        self.state: tuple[str, float] | None = None  # switch point: (rule, its alarm value)


@dataclass(frozen=True, slots=True)
class _Reading:
    """One evaluated reading, as every family sees it."""

    t: int
    v: float
    s: int
    valid: bool  # no fault bit: the value is a measurement
    declared: bool  # inside a declared calibration window
    calibrating: bool  # declared, or flagged (status bit 4)


class _Pair:
    """The 馈电 rule of one source: its readings and its feeds' not decided yet."""

    __slots__ = ("base", "decided", "feed_base", "feed_rows", "feeds", "rows")

    def __init__(self, feeds: list[int]) -> None:
        self.feeds = feeds
        self.decided: int | None = None  # events up to this time are decided
        self.rows: list[tuple[int, bool, int | None, float, bool]] = []  # t, cut, since, v, ok
        self.base: tuple[bool, int | None, float] = (False, None, NAN)  # latest decided row's
        self.feed_rows: dict[int, list[tuple[int, float]]] = {f: [] for f in feeds}
        self.feed_base = dict.fromkeys(feeds, NAN)  # each feed's latest decided valid value


def _or(value: float, fallback: float) -> float:
    return fallback if math.isnan(value) else value


def _levels(r: dict[str, float]) -> list[_Level]:
    """The threshold rules of a point from its registry row (see alarms/rules/thresholds.py)."""
    ah, po, pw = r["alarm_high"], r["poweroff_high"], r["prewarn_high"]
    al, pl = r["alarm_low"], r["prewarn_low"]
    below_po = [x for x in (ah, pw) if x < po]
    levels = [
        _Level("upper_alarm", True, ah, _or(r["alarm_high_clear"], ah), pw if pw < ah else NAN),
        _Level("power_off", True, po, _or(r["restore_high"], po), max(below_po, default=NAN)),
        _Level("upper_prewarn", True, pw, _or(r["prewarn_high_clear"], pw), NAN),
        _Level("lower_alarm", False, al, _or(r["alarm_low_clear"], al), pl if pl > al else NAN),
        _Level("lower_prewarn", False, pl, _or(r["prewarn_low_clear"], pl), NAN),
    ]
    return [level for level in levels if not math.isnan(level.set)]


class ReferenceEngine:
    """The engine's rules, one reading at a time. Feed batches with :meth:`evaluate` and the
    clock with :meth:`tick`, as the engine (there is no separate commit)."""

    def __init__(self, registry: PointRegistry, defaults: RuleDefaults | None = None) -> None:
        self.defaults = defaults or RuleDefaults()
        self.confirm = max(1, self.defaults.confirm_samples)
        self.trend_band = self.defaults.trend_band
        self._episodes: list[Episode] = []
        self._spikes_seen: set[tuple[int, int]] = set()
        params = PointParams.of(registry, self.defaults)
        state_points = StatePoints.of(registry)
        co = COPoints.of(registry, self.defaults)
        self.cross = CrossPoints.of(registry, self.defaults)
        self._neighbours: dict[int, list[int]] = {}
        for a, b in zip(self.cross.src.tolist(), self.cross.dst.tolist(), strict=True):
            self._neighbours.setdefault(a, []).append(b)
        #: cross-check windows not decided yet: window -> point -> its readings' statistics
        self._windows: dict[int, dict[int, list[float]]] = {}
        self._decided = -(2**62)
        self._cross_runs: dict[int, WindowRun] = {}  # point -> its low streak
        #: the stuck sensor and the lone excursion on the same windows
        self._more = NeighbourReference(self.cross.more, self.cross.window_us, self._episodes)
        columns = (
            "alarm_high", "alarm_high_clear", "poweroff_high", "restore_high", "prewarn_high",
            "prewarn_high_clear", "alarm_low", "alarm_low_clear", "prewarn_low",
            "prewarn_low_clear",
        )  # fmt: skip
        levels = {name: getattr(registry, name).tolist() for name in columns}
        self.points: list[_Point | None] = [None] * registry.size
        for p in range(registry.size):
            if not registry.known[p]:
                continue
            pt = self.points[p] = _Point()
            pt.levels = _levels({name: values[p] for name, values in levels.items()})
            pt.alarm_high = levels["alarm_high"][p]
            pt.alarm_clear = _or(levels["alarm_high_clear"][p], pt.alarm_high)
            pt.poweroff_high = levels["poweroff_high"][p]
            pt.on_delay_us = int(params.on_delay_us[p])
            pt.off_delay_us = int(params.off_delay_us[p])
            pt.poll_us = int(params.poll_cycle_us[p])
            pt.interruption_us = int(params.interruption_us[p])
            pt.control_us = int(params.control_time_us[p])
            pt.flat_window = int(params.flatline_samples[p])
            pt.drift_floor = float(params.drift_floor[p])
            pt.gas = float(params.calibration_gas[p])
            pt.co = bool(co.co[p])
            pt.puff_us, pt.fire_us = int(co.puff_max_us[p]), int(co.fire_after_us[p])
            rule_index = int(state_points.rule[p])
            if rule_index >= 0:
                pt.state = (RULE_NAMES[rule_index], float(state_points.alarm_state[p]))
        windows = registry.calibrations
        for p, start, end in zip(
            windows.point_id.tolist(), windows.start_us.tolist(), windows.end_us.tolist(),
            strict=True,
        ):  # fmt: skip
            point = self.points[p]
            assert point is not None  # calibration windows are loaded for known points only
            point.windows.append((start, end))
        pairs = FeedPairs.of(registry)
        feeds: dict[int, list[int]] = {}  # source -> its feed points (D relations)
        for source, feed in zip(pairs.source.tolist(), pairs.feed.tolist(), strict=True):
            feeds.setdefault(source, []).append(feed)
        self.pairs = {source: _Pair(targets) for source, targets in feeds.items()}
        self._sources_of: dict[int, list[int]] = {}  # feed point -> the sources it serves
        for source, targets in feeds.items():
            for f in targets:
                self._sources_of.setdefault(f, []).append(source)
        self.lateness = self.defaults.lateness_us

    # -- input ------------------------------------------------------------------------------

    def evaluate(self, batch: ReadingBatch) -> list[bool]:
        """Every reading of the batch in arrival order; returns the late flag per reading."""
        self._spikes_seen.clear()
        late: list[bool] = []
        latest: int | None = None
        for t, p, v, s in zip(
            batch.time_us.tolist(), batch.point_id.tolist(), batch.value.tolist(),
            batch.status.tolist(), strict=True,
        ):  # fmt: skip
            pt = self.points[p]
            if pt is None or (pt.last_time is not None and t <= pt.last_time):
                late.append(pt is not None)
                continue
            late.append(False)
            latest = t if latest is None else max(latest, t)
            valid = not s & _UNRELIABLE
            self._reading(pt, p, t, v, s, valid)
            touched = []
            if p in self.pairs:
                on, since = self._cut(pt)
                self.pairs[p].rows.append((t, on, since, v, valid))
                touched.append(p)
            for source in self._sources_of.get(p, ()):
                if valid:
                    self.pairs[source].feed_rows[p].append((t, v))
                touched.append(source)
            for source in touched:  # decided once every point of the pair reported up to it
                self._feed(source, self._lowest_last(source))
        for source in self.pairs:
            self._feed(source, self._lagging(source))
        if latest is not None:
            self._decide(latest - self.lateness)
        return late

    def tick(self, now_us: int) -> None:
        """What the clock decides: data interruption (points silent for ``interruption_cycles``
        polling cycles); off-delay clears and 馈电 events older than the clock less the
        allowed lateness."""
        self._spikes_seen.clear()
        bound = now_us - self.lateness
        drift_off = round(self.defaults.drift_off_delay_s * 1e6)
        for p, pt in enumerate(self.points):
            if pt is None:
                continue
            for lv in pt.levels:
                run = pt.runs.get(lv.rule)
                if (
                    run is not None
                    and run.pending is not None
                    and (run.pending + pt.off_delay_us < bound)
                ):
                    del pt.runs[lv.rule]
                    self._end(pt, p, lv.rule, run, run.pending)
            run = pt.runs.get("negative_drift")
            if run is not None and run.pending is not None and run.pending + drift_off < bound:
                del pt.runs["negative_drift"]
                self._end(pt, p, "negative_drift", run, run.pending)
        for source in self.pairs:
            self._feed(source, bound)
        self._decide(bound)
        for p, pt in enumerate(self.points):
            if pt is None or pt.last_time is None or pt.interrupted is not None:
                continue
            if now_us - pt.last_time > pt.interruption_us:
                value = 0.0 if math.isnan(pt.last_value) else pt.last_value
                episode = Episode(
                    p, "data_interruption", Classification.DATA_INTERRUPTION.value,
                    pt.last_time + pt.poll_us, now_us, value, None, None, None,
                    1, value, value, pt.last_time, value, pt.last_time,
                )  # fmt: skip
                self._episodes.append(episode)
                pt.interrupted = episode

    def episodes(self) -> list[Episode]:
        """Every episode so far; the statistics of open ones are those up to now."""
        for pt in self.points:
            for run in pt.runs.values() if pt is not None else ():
                if run.episode is not None:
                    run.fill(run.episode)
        return self._episodes

    # -- one reading ------------------------------------------------------------------------

    def _reading(self, pt: _Point, p: int, t: int, v: float, s: int, valid: bool) -> None:
        """One reading through every family (alarms/families.py), then the point's state."""
        declared = bool(pt.windows) and any(a <= t < b for a, b in pt.windows)
        r = _Reading(t, v, s, valid, declared, bool(s & _CALIBRATION) or declared)
        self._interruption(pt, p, r)
        self._thresholds(pt, p, r)
        self._calibration(pt, p, r)
        self._faults(pt, p, r)
        self._states(pt, p, r)
        self._co(pt, p, r)
        self._cross_check(pt, p, r)
        pt.last_time = t
        if valid:
            pt.last_value = v
            if v <= self.defaults.calibration_zero_level:
                pt.last_zero = t

    def _interruption(self, pt: _Point, p: int, r: _Reading) -> None:
        """Data interruption: the point reports again, or its silence shows in event time."""
        t = r.t
        if pt.interrupted is not None:  # the point reports again
            episode, pt.interrupted = pt.interrupted, None
            episode.end_us = max(t, episode.start_us)  # a late reading from before it began
            if t - pt.last_time <= pt.interruption_us:  # type: ignore[operator]
                episode.classification = Classification.DELIVERY_DELAY.value
        elif pt.last_time is not None and t - pt.last_time > pt.interruption_us:
            value = 0.0 if math.isnan(pt.last_value) else pt.last_value
            self._episodes.append(Episode(
                p, "data_interruption", Classification.DATA_INTERRUPTION.value,
                pt.last_time + pt.poll_us, t, value, None, None, t,
                1, value, value, pt.last_time, value, pt.last_time,
            ))  # fmt: skip

    def _thresholds(self, pt: _Point, p: int, r: _Reading) -> None:
        """Upper/lower alarm, power-off, pre-warnings (and interference, at their end)."""
        runs, t, v = pt.runs, r.t, r.v
        if runs and pt.off_delay_us:  # runs pending their clear whose off-delay has passed
            for lv in pt.levels:
                run = runs.get(lv.rule)
                pending = None if run is None else run.pending
                if pending is not None and t > pending + pt.off_delay_us:
                    del runs[lv.rule]
                    self._end(pt, p, lv.rule, run, pending)  # type: ignore[arg-type]
        if not r.valid or r.calibrating:  # not a measurement of the gas
            return
        prev = pt.last_value
        drift = v < pt.drift_floor
        for lv in pt.levels:
            if lv.upper:
                cand, clear = v >= lv.set, v < lv.clear
            elif drift:  # negative drift is a fault, not low gas: hold
                continue
            else:
                cand, clear = v <= lv.set, v > lv.clear
            if cand or lv.rule in runs:
                band = abs(lv.set) * self.trend_band
                if lv.upper:  # the ramp level, or a reading continuing a rise
                    ramp = prev >= lv.ramp or (prev >= lv.set - band and v <= lv.set + band)
                else:
                    ramp = prev <= lv.ramp or (prev <= lv.set + band and v >= lv.set - band)
                need = 1 if ramp and pt.on_delay_us == 0 else self.confirm
                near = lv.upper and not clear and self._near_gas(pt, v)
                puff = lv.rule == "upper_alarm" and pt.puff_us >= 0  # opened as a puff
                self._latch(pt, p, lv.rule, t, v, cand, clear, need=need,
                            delay=pt.on_delay_us, near=near, threshold=lv.set,
                            off_delay=pt.off_delay_us,
                            label=PUFF if puff else _EXCEEDANCE)  # fmt: skip

    def _calibration(self, pt: _Point, p: int, r: _Reading) -> None:
        """Excursions to the alarm level while calibrating, flagged or declared."""
        if r.valid and (r.calibrating or "calibration" in pt.runs):
            cand = r.calibrating and r.v >= pt.alarm_high
            clear = not r.calibrating or r.v < pt.alarm_clear
            if cand or clear:  # readings between the levels hold and are not counted
                kind = "DECLARED" if r.declared else "FLAGGED"
                label = Classification["CALIBRATION_" + kind]
                self._latch(pt, p, "calibration", r.t, r.v, cand, clear, label=label.value,
                            threshold=pt.alarm_high)  # fmt: skip

    def _faults(self, pt: _Point, p: int, r: _Reading) -> None:
        """Status-bit faults, negative drift (with its off-delay) and flat line."""
        runs, t, v, s = pt.runs, r.t, r.v, r.s
        drift_run = runs.get("negative_drift")
        drift_off = round(self.defaults.drift_off_delay_s * 1e6)
        pending_drift = None if drift_run is None else drift_run.pending
        if pending_drift is not None and t > pending_drift + drift_off:
            del runs["negative_drift"]
            self._end(pt, p, "negative_drift", drift_run, pending_drift)  # type: ignore[arg-type]
        for rule, bit, label in _STATUS_RULES:
            if s & bit or rule in runs:
                self._latch(pt, p, rule, t, v, bool(s & bit), not s & bit, label=label)
        if r.valid and not math.isnan(pt.drift_floor):
            drift = v < pt.drift_floor
            if drift or "negative_drift" in runs:
                self._latch(pt, p, "negative_drift", t, v, drift, not drift,
                            need=self.defaults.drift_samples, off_delay=drift_off,
                            label=Classification.NEGATIVE_DRIFT.value)  # fmt: skip
        if r.valid and pt.flat_window > 0:
            same = v == pt.last_value
            pt.repeats = pt.repeats + 1 if same else 0
            stuck = same and pt.repeats >= pt.flat_window - 1
            if stuck or "flatline" in runs:
                self._latch(pt, p, "flatline", t, v, stuck, not same,
                            label=Classification.FLATLINE.value)  # fmt: skip

    def _states(self, pt: _Point, p: int, r: _Reading) -> None:
        """A switch point in its alarm state (after its on-delay)."""
        if r.valid and pt.state is not None:
            rule, alarm_value = pt.state
            self._latch(pt, p, rule, r.t, r.v, r.v == alarm_value, r.v != alarm_value,
                        delay=pt.on_delay_us, threshold=alarm_value)  # fmt: skip

    def _latch(
        self,
        pt: _Point,
        p: int,
        rule: str,
        t: int,
        v: float,
        cand: bool,
        clear: bool,
        *,
        need: int = 1,
        delay: int = 0,
        counted: bool = True,
        near: bool = False,
        label: str = _EXCEEDANCE,
        threshold: float = NAN,
        related: int | None = None,
        off_delay: int = 0,
    ) -> None:
        """One eligible reading of a latched rule: set wins over clear; otherwise hold. With
        an off-delay, a clear makes the run pending (see the module's docstring)."""
        run = pt.runs.get(rule)
        if run is not None and run.pending is not None:  # in a dip, within the off-delay
            if not cand:
                if counted:
                    run.add_dip(v, t, near)
                return
            run.resume(t)
        elif cand:
            if run is None:
                run = pt.runs[rule] = _Run(t, v, need, label, threshold, related)
                run.zero = pt.last_zero
        elif clear:
            if run is not None:
                if off_delay > 0:
                    run.pending, run.dip = t, [0, 0.0, -math.inf, 0, math.inf, 0, 0]
                    if counted:
                        run.add_dip(v, t, near)
                    return
                del pt.runs[rule]
                self._end(pt, p, rule, run, t)
            return
        elif run is None:
            return
        if counted:
            run.add(v, t, near)
        run.eligible += 1
        if run.episode is None and run.eligible >= run.need and t - run.start >= delay:
            level = None if math.isnan(run.threshold) else run.threshold
            run.episode = Episode(
                p, rule, run.label, run.start, t, run.start_value, level, run.related
            )
            self._episodes.append(run.episode)

    def _end(self, pt: _Point, p: int, rule: str, run: _Run, t: int) -> None:
        episode = run.episode
        if episode is None:  # never raised: a one-reading jump is an interference spike
            if (
                rule in _SPIKE_RULES
                and run.eligible == 1
                and (p, run.start) not in self._spikes_seen
            ):
                self._spikes_seen.add((p, run.start))
                v = run.start_value
                threshold = None if math.isnan(run.threshold) else run.threshold
                self._episodes.append(Episode(
                    p, "interference", Classification.INTERFERENCE.value, run.start, t, v,
                    threshold, None, t, 1, v, v, run.start, v, run.start,
                ))  # fmt: skip
            return
        run.fill(episode)
        episode.end_us = t
        if rule in _RECLASSIFIED and self._undeclared_calibration(pt, run, t):
            episode.classification = Classification.CALIBRATION_UNDECLARED.value
        elif rule == "upper_alarm" and pt.puff_us >= 0:  # CO where vehicles pass
            episode.classification = PUFF if t - run.start <= pt.puff_us else _EXCEEDANCE

    # -- CO classes and cross-checks (alarms/rules/co.py, cross_check.py) ---------------------

    def _co(self, pt: _Point, p: int, r: _Reading) -> None:
        """A fire candidate: CO at the alarm level for the point's ``co_fire_after_s``."""
        if not pt.co or not r.valid or r.calibrating:
            return
        cand, clear = r.v >= pt.alarm_high, r.v < pt.alarm_clear
        if cand or "co_fire_candidate" in pt.runs:
            self._latch(pt, p, "co_fire_candidate", r.t, r.v, cand, clear, need=self.confirm,
                        delay=pt.fire_us, threshold=pt.alarm_high)  # fmt: skip

    def _cross_check(self, pt: _Point, p: int, r: _Reading) -> None:
        """A reading into its cross-check window (decided in :meth:`_decide`)."""
        if not self.cross.member[p] or not r.valid or r.calibrating:
            return
        w = r.t // self.cross.window_us
        if w <= self._decided:  # later than the allowed lateness: out of the check
            return
        stats = self._windows.setdefault(w, {}).get(p)
        if stats is None:  # count, total, first, max, max_at, min, min_at
            stats = self._windows[w][p] = [0, 0.0, r.v, -math.inf, 0, math.inf, 0]
        stats[0] += 1
        stats[1] += r.v
        if r.v > stats[3]:
            stats[3], stats[4] = r.v, r.t
        if r.v < stats[5]:
            stats[5], stats[6] = r.v, r.t

    def _decide(self, bound: int) -> None:
        """The cross-check windows that ended at or before ``bound``, in order."""
        size = self.cross.window_us
        last = bound // size - 1
        if last <= self._decided:
            return
        for w in sorted(x for x in self._windows if x <= last):
            window = self._windows.pop(w)
            self._decide_window(w, window)
            self._more.window(w, window)
        self._more.passed(last)
        self._decided = last

    def _decide_window(self, w: int, window: dict[int, list[float]]) -> None:
        cross, start, end = self.cross, w * self.cross.window_us, (w + 1) * self.cross.window_us
        for p, neighbours in self._neighbours.items():
            mine = window.get(p)
            means = [window[q][1] / window[q][0] for q in neighbours if q in window]
            if mine is None or not means or min(means) < cross.minimum[p]:
                continue  # nothing to compare: hold
            run = self._cross_runs.get(p)
            mean = mine[1] / mine[0]
            low = mean <= cross.ratio[p] * min(means) and mean < cross.minimum[p]
            if not low:
                if run is not None:
                    del self._cross_runs[p]
                    if run.episode is not None:
                        run.episode.end_us = start
                continue
            if run is None:
                run = self._cross_runs[p] = WindowRun(
                    "cross_check", Classification.CROSS_CHECK.value, start, mine[2]
                )
            raised = run.add(p, mine, end, cross.hold_us[p])
            if raised is not None:
                self._episodes.append(raised)

    # -- calibration shape ------------------------------------------------------------------

    def _near_gas(self, pt: _Point, v: float) -> bool:
        """At the point's standard gas level (or, without one, at a default level)."""
        tol = self.defaults.standard_gas_tolerance
        if not math.isnan(pt.gas):
            return abs(v - pt.gas) <= tol
        return any(abs(v - level) <= tol for level in self.defaults.standard_gas)

    def _undeclared_calibration(self, pt: _Point, run: _Run, end: int) -> bool:
        """An excursion shaped like a test-gas calibration (alarms/rules/calibration.py)."""
        d = self.defaults
        return (
            run.count >= d.calibration_min_samples
            and end - run.start <= round(d.calibration_max_s * 1e6)
            and self._near_gas(pt, run.vmax)
            and run.vmax >= run.threshold + d.standard_gas_tolerance
            and 2 * run.near >= run.count
            and run.zero is not None
            and run.start - run.zero <= round(d.calibration_max_s * 1e6)
        )

    # -- feed abnormal ----------------------------------------------------------------------

    @staticmethod
    def _cut(pt: _Point) -> tuple[bool, int | None]:
        """(power-off latch on, since when) of a point."""
        run = pt.runs.get("power_off")
        if run is None or run.pending is not None:  # a pending clear: the cut is off
            return False, None
        return True, run.latch

    def _last_times(self, source: int) -> list[int | None]:
        return [
            self.points[q].last_time  # type: ignore[union-attr]
            for q in (source, *self.pairs[source].feeds)
        ]

    def _lowest_last(self, source: int) -> int | None:
        """Every point of the pair has reported up to this time (None: one never did)."""
        times = self._last_times(source)
        return None if None in times else min(t for t in times if t is not None)

    def _lagging(self, source: int) -> int | None:
        """The pair's latest reading less the allowed lateness."""
        times = [t for t in self._last_times(source) if t is not None]
        return max(times) - self.lateness if times else None

    def _feed(self, p: int, horizon: int | None) -> None:
        """馈电异常 of source ``p``: decide its events up to ``horizon``, one at a time."""
        pair = self.pairs[p]
        if horizon is None or (pair.decided is not None and horizon <= pair.decided):
            return
        decided = pair.decided
        pt = self.points[p]
        assert pt is not None

        def fresh(t: int) -> bool:
            return (decided is None or t > decided) and t <= horizon

        events = [(row[0], 0) for row in pair.rows if fresh(row[0])]
        events += [(t, 1) for f in pair.feeds for t, _ in pair.feed_rows[f] if fresh(t)]
        events.sort()  # by time; at equal times, the source's reading first
        rows = pair.rows  # each point's readings in time order
        at = -1  # the source's latest reading at or before the event
        seen = dict.fromkeys(pair.feeds, -1)  # each feed's latest valid reading at or before it
        for time, kind in events:
            while at + 1 < len(rows) and rows[at + 1][0] <= time:
                at += 1
            if at >= 0:
                _, cut, since, value, valid = rows[at]
            else:
                (cut, since, value), valid = pair.base, False
            feed_on = False
            for f in pair.feeds:
                fr = pair.feed_rows[f]
                while seen[f] + 1 < len(fr) and fr[seen[f] + 1][0] <= time:
                    seen[f] += 1
                fv = fr[seen[f]][1] if seen[f] >= 0 else pair.feed_base[f]
                feed_on = feed_on or fv >= 0.5
            late = since is not None and time - since >= pt.control_us
            self._latch(
                pt, p, "feed_abnormal", time, value, cut and feed_on and late,
                not cut or not feed_on, counted=kind == 0 and valid,
                label=Classification.POWER_OFF_FAILURE.value, threshold=pt.poweroff_high,
                related=pair.feeds[0],
            )  # fmt: skip
        done = [row for row in rows if row[0] <= horizon]
        if done:
            _, cut, since, value, _ = done[-1]
            pair.base = (cut, since, value)
        pair.rows = rows[len(done) :]
        for f in pair.feeds:
            fr = pair.feed_rows[f]
            decided_f = [v for t, v in fr if t <= horizon]
            if decided_f:
                pair.feed_base[f] = decided_f[-1]
            pair.feed_rows[f] = fr[len(decided_f) :]
        pair.decided = horizon


def replay(
    registry: PointRegistry,
    steps: Iterable[ReadingBatch | int],
    defaults: RuleDefaults | None = None,
) -> list[Episode]:
    """The episodes of a sequence of batches and ticks (an int is a tick at that time)."""
    engine = ReferenceEngine(registry, defaults)
    for step in steps:
        if isinstance(step, ReadingBatch):
            engine.evaluate(step)
        else:
            engine.tick(step)
    return engine.episodes()
