"""``minewatch evaluate TRACE``: replay a recorded trace through the alarm engine and measure it.

Pure (no database, no broker): the registry is built from the trace's ``mine.json`` (point ids
1..n in trace order) and ``calibrations.json`` (the declared windows, as the gateway would
load them from the ``calibrations`` table). The readings go through :class:`AlarmEngine` in
batches of ``batch_cycles`` polling cycles (default 1: what the live gateway sees), with
``engine.tick`` at each batch's last event time, so data interruptions are found in event
time, never on the wall clock. (With batches of N cycles, a silence is seen at the end of a
batch, and a silence shorter than a batch is not seen by the clock at all: that is the
replay path's behaviour.)

In the same pass over the readings:

* the episodes (start, raise time, end, rule, classification, point, max) are assembled from
  the engine's :class:`EpisodeChange` records, as the store would hold them;
* a **naive threshold baseline** runs on the same readings: an alarm whenever
  ``value >= alarm_high`` (raised at the first such reading, cleared at the first reading
  below it; no hysteresis, no confirmation, no status bits, no calibration awareness);
* for every label that needs it, the moment its condition became true in the data: the
  first reading at or above the point's level inside the labelled window;
* the engine's time is measured (evaluate + commit + tick only), and the first
  ``python_cycles`` cycles are kept to time :mod:`alarms.reference` (the same rule families,
  one reading at a time in pure Python) on the same batches and ticks, and to compare the
  episodes of both per rule.

The scoring is in :mod:`alarms.evaluation.score` (class mapping, precision/recall/latency,
ISA-18.2 / EEMUA 191 measures); the tables in :mod:`alarms.evaluation.report`.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from minewatch.alarms.engine import AlarmEngine
from minewatch.alarms.episodes import Episode, EpisodeLog
from minewatch.alarms.evaluation.fire_score import TemperatureTap, confirmed_fires
from minewatch.alarms.evaluation.incident_score import incidents_report
from minewatch.alarms.evaluation.prealarm_score import (
    BASELINE_READINGS,
    LinearExtrapolation,
    PrealarmLog,
    PreEpisode,
    persistence,
    score_prealarms,
)
from minewatch.alarms.evaluation.score import SLACK_S, LabelFacts, score
from minewatch.alarms.incidents import Incident, shifted
from minewatch.alarms.prealarms import PrealarmParams, PrealarmPoints
from minewatch.alarms.reference import ReferenceEngine
from minewatch.alarms.rules.calibration import declared_mask
from minewatch.alarms.rules.context import UNRELIABLE
from minewatch.alarms.rules.fusion import CO_RULES
from minewatch.alarms.rules.run_state import Rows
from minewatch.batch import ReadingBatch
from minewatch.codes import PointStatus
from minewatch.metadata import MineDefinition
from minewatch.registry import CalibrationWindows, PointRegistry
from minewatch.trace import ReadingChunk, Trace

#: Cycles at the trace's start on which the pure-Python reference is timed, with the engine's
#: time on the same cycles: ten minutes at 1 s (the reference takes minutes for a day).
PYTHON_CYCLES = 600
_PARAMS = (
    "sensor_type",
    "range_low",
    "range_high",
    "alarm_high",
    "alarm_high_clear",
    "alarm_low",
    "alarm_low_clear",
    "poweroff_high",
    "restore_high",
    "poweroff_low",
    "restore_low",
    "on_delay_s",
    "prewarn_high",
    "prewarn_high_clear",
    "prewarn_low",
    "prewarn_low_clear",
    "poll_cycle_s",
    "interruption_cycles",
    "control_time_s",
    "flatline_samples",
    "calibration_gas",
    "off_delay_s",
    "alarm_state",
    "area_code",
    "co_puff_max_s",
    "co_fire_after_s",
    "cross_check_ratio",
    "cross_check_min",
    "cross_check_s",
    "stuck_tolerance",
    "stuck_move",
    "stuck_s",
    "excursion_min",
    "excursion_ratio",
)


def registry_of(trace: Trace) -> PointRegistry:
    """The registry the gateway would load for the trace's mine: ids 1..n in trace order."""
    return registry_from_definition(
        trace.definition,
        [
            (
                c.point,
                trace.start_us + round(c.start_s * 1e6),
                trace.start_us + round(c.end_s * 1e6),
            )
            for c in trace.calibrations
        ],
    )


def registry_from_definition(
    definition: MineDefinition,
    calibrations: Sequence[tuple[str, int, int]] = (),
) -> PointRegistry:
    """A registry from a mine definition (point i gets id i + 1) and declared calibration
    windows ``(point code, start_us, end_us)``."""
    mine = definition.mine.code
    rows = [
        {name: getattr(p, name) for name in _PARAMS}
        | {
            "id": i,
            "mine_code": mine,
            "code": p.code,
            "value_type": p.value_type.value,
            "relations": [r.model_dump(mode="json") for r in p.relations],
            "downstream": [d.model_dump(mode="json") for d in p.downstream],
            "substation_code": p.substation,
        }
        for i, p in enumerate(definition.points, start=1)
    ]
    ids = {p.code: i for i, p in enumerate(definition.points, start=1)}
    windows = CalibrationWindows.from_rows(
        [(ids[code], start, end) for code, start, end in calibrations if code in ids]
    )
    return PointRegistry.from_frame(pd.DataFrame(rows), windows)


# -- the naive baseline and the label conditions --------------------------------------------------


@dataclass
class Baseline:
    """``value >= alarm_high`` per reading: raise on the first, clear on the first below."""

    level: npt.NDArray[np.float64]  # per point index; NaN: no alarm level
    above: npt.NDArray[np.bool_] = field(init=False)
    raises: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = field(default_factory=list)
    clears: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.above = np.zeros(len(self.level), bool)

    def feed(
        self,
        p: npt.NDArray[np.int32],
        t: npt.NDArray[np.int64],
        v: npt.NDArray[np.float64],
        first: npt.NDArray[np.bool_],
        last: npt.NDArray[np.intp],
    ) -> None:
        """Rows sorted by (point, time); ``first``: a point's first row, ``last``: last rows."""
        with np.errstate(invalid="ignore"):
            above = v >= self.level[p]
        before = np.empty(len(above), bool)
        before[1:] = above[:-1]
        before[first] = self.above[p[first]]
        up = np.flatnonzero(above & ~before)
        down = np.flatnonzero(~above & before)
        self.raises.append((p[up].astype(np.int64), t[up]))
        self.clears.append((p[down].astype(np.int64), t[down]))
        self.above[p[last]] = above[last]

    def episodes(self) -> list[Episode]:
        def merged(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
            p = np.concatenate([a for a, _ in parts]) if parts else np.empty(0, np.int64)
            t = np.concatenate([b for _, b in parts]) if parts else np.empty(0, np.int64)
            order = np.lexsort((t, p))
            return p[order], t[order]

        rp, rt = merged(self.raises)
        cp, ct = merged(self.clears)
        out: list[Episode] = []
        for point in np.unique(rp).tolist():
            starts = rt[np.searchsorted(rp, point) : np.searchsorted(rp, point, "right")]
            ends = ct[np.searchsorted(cp, point) : np.searchsorted(cp, point, "right")].tolist()
            level = float(self.level[point])
            for k, start in enumerate(starts.tolist()):
                end = ends[k] if k < len(ends) else None
                episode = Episode(point, "baseline", "exceedance", start, start, None, level)
                episode.end_us, episode.vmax = end, math.nan
                out.append(episode)
        return out


@dataclass
class ConditionFinder:
    """Per label: the first valid reading at or above its level inside its window."""

    point: npt.NDArray[np.int64]
    level: npt.NDArray[np.float64]
    start_us: npt.NDArray[np.int64]
    end_us: npt.NDArray[np.int64]
    first_us: npt.NDArray[np.int64] = field(init=False)
    count: npt.NDArray[np.int64] = field(init=False)

    def __post_init__(self) -> None:
        self.first_us = np.full(len(self.point), -1, np.int64)
        self.count = np.zeros(len(self.point), np.int64)

    def feed(
        self,
        p: npt.NDArray[np.int32],
        t: npt.NDArray[np.int64],
        v: npt.NDArray[np.float64],
        ok: npt.NDArray[np.bool_],
    ) -> None:
        if not len(t):
            return
        lo_t, hi_t = int(t.min()), int(t.max())
        live = np.flatnonzero(
            (self.start_us <= hi_t) & (self.end_us > lo_t) & np.isfinite(self.level)
        )
        for k in live.tolist():
            a, b = np.searchsorted(p, [self.point[k], self.point[k] + 1]).tolist()
            tt, vv = t[a:b], v[a:b]
            hit = ok[a:b] & (tt >= self.start_us[k]) & (tt < self.end_us[k]) & (vv >= self.level[k])
            n = int(np.count_nonzero(hit))
            if n and self.first_us[k] < 0:
                self.first_us[k] = int(tt[hit][0])
            self.count[k] += n


# -- the replay ------------------------------------------------------------------------------


@dataclass
class Replay:
    """What one pass over a trace produced."""

    episodes: list[Episode]
    baseline: list[Episode]
    conditions: LabelFacts
    readings: int
    cycles: int
    engine_s: float
    engine_prefix_s: float
    prefix_cycles: int
    prefix_readings: int
    python_s: float | None
    python_opened: dict[str, int] | None
    engine_opened_prefix: dict[str, int]
    incidents: list[Incident] | None = None  # the engine's incidents, as it tracked them live
    #: episodes of the engine and of the reference that differ on the prefix (per rule)
    reference_differences: dict[str, dict[str, object]] = field(default_factory=dict)
    prealarms: list[PreEpisode] = field(default_factory=list)  # the engine's (issue 17)
    linear_prealarms: list[PreEpisode] = field(default_factory=list)  # the baseline's
    #: the fused fire confirmations (F04 ``co_fire_confirmed``) decided from the episodes and
    #: the areas' temperature readings (alarms/evaluation/fire_score.py)
    fused: list[Episode] = field(default_factory=list)


def _cycles(trace: Trace) -> Iterator[ReadingChunk]:
    """The readings one polling cycle (one event time) at a time."""
    for chunk in trace.chunks():
        t = chunk.time_us
        if not len(t):
            continue
        bounds = np.concatenate(([0], np.flatnonzero(t[1:] != t[:-1]) + 1, [len(t)])).tolist()
        for a, b in itertools.pairwise(bounds):
            yield ReadingChunk(t[a:b], chunk.point[a:b], chunk.value[a:b], chunk.status[a:b])


def cycle_batches(trace: Trace, cycles: int) -> Iterator[tuple[ReadingChunk, int]]:
    """Batches of ``cycles`` polling cycles (the last may be shorter), with their cycle count."""
    pending: list[ReadingChunk] = []
    for cycle in _cycles(trace):
        pending.append(cycle)
        if len(pending) == cycles:
            yield _concat(pending), len(pending)
            pending = []
    if pending:
        yield _concat(pending), len(pending)


def _concat(parts: list[ReadingChunk]) -> ReadingChunk:
    if len(parts) == 1:
        return parts[0]
    return ReadingChunk(
        *(
            np.concatenate([getattr(c, f.name) for c in parts])
            for f in dataclasses.fields(ReadingChunk)
        )
    )


def replay(
    trace: Trace,
    *,
    batch_cycles: int = 1,
    python_cycles: int = PYTHON_CYCLES,
    progress: Callable[[int], None] | None = None,
    prealarm: PrealarmParams | None = None,
) -> Replay:
    """Run the trace through the engine, the baseline and the label conditions (one pass).
    ``prealarm``: the mine's pre-alarm settings (default: the engine's defaults)."""
    if batch_cycles < 1:
        raise ValueError("batch_cycles must be at least 1")
    registry = registry_of(trace)
    mine = trace.definition.mine.code
    engine = AlarmEngine(registry, prealarm_params={mine: prealarm} if prealarm else {})
    prealarm_log = PrealarmLog()
    linear = LinearExtrapolation(engine.prealarms.points)
    log = EpisodeLog(point_offset=-1)
    n = len(trace.codes)
    baseline = Baseline(registry.alarm_high[1 : n + 1].copy())
    facts = LabelFacts.of(trace, registry)
    finder = ConditionFinder(facts.point, facts.level, facts.start_us, facts.end_us)
    temperatures = TemperatureTap.of(trace.definition)
    engine_s = prefix_s = 0.0
    readings = cycles = 0
    prefix: list[tuple[ReadingBatch, int]] = []
    prefix_cycles = 0
    prefix_log = EpisodeLog(point_offset=-1)
    incidents: dict[tuple[int, str, int], Incident] = {}  # the latest state of each
    for chunk, k in cycle_batches(trace, batch_cycles):
        in_prefix = cycles < python_cycles
        cycles += k
        readings += len(chunk)
        zeros = np.zeros(len(chunk), np.int16)
        batch = ReadingBatch(chunk.time_us, chunk.point + 1, chunk.value, chunk.status, zeros)
        began = time.perf_counter()
        evaluation = engine.evaluate(batch)
        engine.commit(evaluation)
        ticked = engine.tick(int(chunk.time_us[-1]))
        engine.commit(ticked)
        took = time.perf_counter() - began
        engine_s += took
        log.apply(evaluation.changes)
        log.apply(ticked.changes)
        if evaluation.prealarm is not None:
            prealarm_log.apply(evaluation.prealarm.changes)
        for change in (*evaluation.incidents, *ticked.incidents):
            incidents[change.key] = change.incident
        if in_prefix:
            prefix_s += took
            prefix.append((batch, int(chunk.time_us[-1])))
            prefix_cycles += k
            prefix_log.apply(evaluation.changes)
            prefix_log.apply(ticked.changes)
        temperatures.track(evaluation.changes, point_offset=-1)
        temperatures.track(ticked.changes, point_offset=-1)
        _side_passes(chunk, baseline, finder, linear, registry, temperatures)
        temperatures.settle(_next_co_starts(engine, n, int(chunk.time_us[-1])))
        if progress is not None:
            progress(readings)
    temperatures.finish()
    facts = facts.with_conditions(finder.first_us, finder.count)
    prefix_readings = sum(len(b) for b, _ in prefix)
    python_s, python_opened, differences = None, None, {}
    if prefix:
        python_s, reference_episodes = _time_reference(prefix, registry)
        python_opened = _per_rule(reference_episodes)
        differences = compare_episodes(prefix_log.episodes, reference_episodes)
    episodes = log.episodes
    return Replay(
        episodes=episodes,
        baseline=baseline.episodes(),
        conditions=facts,
        readings=readings,
        cycles=cycles,
        engine_s=engine_s,
        engine_prefix_s=prefix_s,
        prefix_cycles=prefix_cycles,
        prefix_readings=prefix_readings,
        python_s=python_s,
        python_opened=python_opened,
        engine_opened_prefix=_per_rule(prefix_log.episodes),
        reference_differences=differences,
        prealarms=prealarm_log.episodes,
        linear_prealarms=linear.log.episodes,
        fused=confirmed_fires(trace.definition, episodes, temperatures.frame()),
        incidents=sorted(
            (shifted(i, -1) for i in incidents.values()), key=lambda i: (i.raised_us, i.key)
        ),
    )


def _next_co_starts(engine: AlarmEngine, n: int, now_us: int) -> npt.NDArray[np.int64]:
    """Per trace point (from 0): the earliest start a CO alarm the engine opens after ``now_us``
    can have: the start of a run it holds but has not raised (the confirmation, the fire
    candidate's delay), else the next reading's time (after ``now_us``)."""
    out = np.full(n, now_us + 1, np.int64)
    for rule in CO_RULES:
        state = engine.state.runs.get(rule)
        if state is None:
            continue
        held = (state.open & ~state.active)[1 : n + 1]
        out[held] = np.minimum(out[held], state.start_us[1 : n + 1][held])
    return out


def _side_passes(
    chunk: ReadingChunk,
    baseline: Baseline,
    finder: ConditionFinder,
    linear: LinearExtrapolation,
    registry: PointRegistry,
    temperatures: TemperatureTap,
) -> None:
    """The baselines, the label conditions and the temperature tap on one batch, sorted by
    (point, time)."""
    order = np.argsort(chunk.point, kind="stable")  # time order kept within a point
    p, t, v, s = chunk.point[order], chunk.time_us[order], chunk.value[order], chunk.status[order]
    first = np.ones(len(p), bool)
    first[1:] = p[1:] != p[:-1]
    last = np.flatnonzero(np.append(first[1:], True))
    baseline.feed(p, t, v, first, last)
    calibrating = (s & PointStatus.CALIBRATION) != 0
    ok = ((s & UNRELIABLE) == 0) & ~calibrating
    finder.feed(p, t, v, ok)
    temperatures.feed(p, t, v, ok)
    # the forecast baseline sees what the forecaster sees: no declared calibration either
    declared = declared_mask(Rows.of(p + 1, t, v, s), registry.calibrations)
    keep = ok & ~declared
    linear.feed(p[keep] + 1, t[keep], v[keep])


def _time_reference(
    batches: list[tuple[ReadingBatch, int]], registry: PointRegistry
) -> tuple[float, list[Episode]]:
    """Seconds of :class:`alarms.reference.ReferenceEngine` (every rule family, one reading at a
    time) over the same batches and ticks as the engine, and its episodes (points from 0)."""
    began = time.perf_counter()
    reference = ReferenceEngine(registry)
    for batch, now in batches:
        reference.evaluate(batch)
        reference.tick(now)
    seconds = time.perf_counter() - began
    episodes = reference.episodes()
    for episode in episodes:
        episode.point -= 1
        if episode.related is not None:
            episode.related -= 1
    return seconds, episodes


def _episode_key(e: Episode) -> tuple[object, ...]:
    return (e.point, e.rule, e.classification, e.start_us, e.raised_us, e.end_us, e.count)


def compare_episodes(
    engine: list[Episode], reference: list[Episode], show: int = 5
) -> dict[str, dict[str, object]]:
    """Per rule where they differ: the episodes only the engine has and only the reference has
    (start, raise, end, classification, readings), up to ``show`` of each, with the counts."""
    out: dict[str, dict[str, object]] = {}
    for rule in sorted({e.rule for e in engine} | {e.rule for e in reference}):
        mine = {_episode_key(e) for e in engine if e.rule == rule}
        theirs = {_episode_key(e) for e in reference if e.rule == rule}
        if mine == theirs:
            continue
        only_engine, only_reference = (
            sorted(mine - theirs, key=repr),
            sorted(theirs - mine, key=repr),
        )
        out[rule] = {
            "engine": len(mine),
            "reference": len(theirs),
            "only_engine": [list(k) for k in only_engine[:show]],
            "only_reference": [list(k) for k in only_reference[:show]],
            "only_engine_count": len(only_engine),
            "only_reference_count": len(only_reference),
        }
    return out


def _per_rule(episodes: list[Episode]) -> dict[str, int]:
    out: dict[str, int] = {}
    for episode in episodes:
        out[episode.rule] = out.get(episode.rule, 0) + 1
    return dict(sorted(out.items()))


def _incident_targets(incidents: dict[str, Any]) -> list[dict[str, object]]:
    mine = incidents["minewatch"]
    per_event = mine["per_real_event"]
    return [
        {
            "name": "shown incidents per real labelled event",
            "target": "<= 1.2",
            "value": per_event,
            "met": None if per_event is None else per_event <= 1.2,
        },
        {
            "name": "chattering incidents",
            "target": "0",
            "value": mine["chattering"],
            "met": mine["chattering"] == 0,
        },
        {
            "name": "incidents from declared calibrations and spikes",
            "target": "0",
            "value": mine["nuisance"],
            "met": mine["nuisance"] == 0,
        },
    ]


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None: strict JSON has no NaN."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    if isinstance(value, np.generic):
        return finite(value.item())
    return value


def records(trace: Trace, result: Replay) -> dict[str, list[dict[str, Any]]]:
    """Every episode and incident with the labels it overlaps (index in the trace's
    ground truth, with the evaluation's slack), so a user can score with their own tools."""
    codes, t0 = trace.codes, trace.start_us
    slack = round(SLACK_S * 1e6)
    stations: dict[str, list[str]] = {}
    for p in trace.definition.points:
        stations.setdefault(p.substation, []).append(p.code)
    windows: dict[str, list[tuple[int, int, int]]] = {}
    for k, g in enumerate(trace.ground_truth):
        for code in [g.point] if g.point else stations.get(g.substation, []):
            lo, hi = t0 + round(g.start_s * 1e6), t0 + round(g.end_s * 1e6)
            windows.setdefault(code, []).append((k, lo - slack, hi + slack))

    def labels(point: int, start: int, end: int | None) -> list[int]:
        stop = end if end is not None else 2**62
        return [k for k, lo, hi in windows.get(codes[point], []) if start <= hi and stop >= lo]

    def at(us: int | None) -> float | None:
        return None if us is None else (us - t0) / 1e6

    episodes = [
        {"point": codes[e.point], "rule": e.rule, "classification": e.classification,
         "start_s": at(e.start_us), "raised_s": at(e.raised_us), "end_s": at(e.end_us),
         "max": e.vmax, "readings": e.count, "labels": labels(e.point, e.start_us, e.end_us)}
        for e in [*result.episodes, *result.fused]
    ]  # fmt: skip
    incidents = [
        {"root": codes[i.key[0]], "root_rule": i.key[1], "grade": i.grade,
         "start_s": at(i.start_us), "raised_s": at(i.raised_us), "end_s": at(i.closed_at_us),
         "peak": i.peak if i.peak_point is not None else None,
         "members": [[codes[m.point], m.rule, at(m.start_us), at(m.end_us)] for m in i.members],
         "labels": sorted({k for m in i.members for k in labels(m.point, m.start_us, m.end_us)})}
        for i in result.incidents or []
    ]  # fmt: skip
    return {"episodes": episodes, "incidents": incidents}


def prealarm_report(
    trace: Trace, result: Replay, prealarm: PrealarmParams | None
) -> dict[str, object]:
    """Pre-alarms of the forecaster and the two baselines, scored per exceedance event."""
    registry = registry_of(trace)
    mine = trace.definition.mine.code
    points = PrealarmPoints.of(registry, {mine: prealarm} if prealarm else {})
    duration_s = result.cycles * int(trace.manifest["cycle_us"]) / 1e6
    params = prealarm or PrealarmParams()
    return {
        "params": dataclasses.asdict(params),
        "baseline_readings": BASELINE_READINGS,
        "minewatch": score_prealarms(trace, result.conditions, result.prealarms, points,
                                     duration_s),
        "linear": score_prealarms(trace, result.conditions, result.linear_prealarms, points,
                                  duration_s),
        "persistence": persistence(trace, result.conditions, points, duration_s),
    }  # fmt: skip


# -- the command body ---------------------------------------------------------------------------


def run_evaluate(
    trace_path: Path | str,
    *,
    batch_cycles: int = 1,
    json_out: Path | str | None = None,
    python_cycles: int = PYTHON_CYCLES,
    progress: Callable[[int], None] | None = None,
    prealarm: PrealarmParams | None = None,
) -> dict[str, object]:
    """Evaluate the engine on a trace; the results as a JSON-able dict (also written to
    ``json_out`` when given). See :func:`alarms.evaluation.score.score` for the keys."""
    trace = Trace(Path(trace_path))
    began = time.perf_counter()
    result = replay(
        trace, batch_cycles=batch_cycles, python_cycles=python_cycles, progress=progress,
        prealarm=prealarm,
    )  # fmt: skip
    report = score(trace, result, batch_cycles=batch_cycles)
    report["incidents"] = incidents = incidents_report(trace, result)
    report["targets"] += _incident_targets(incidents)  # type: ignore[operator]
    report["run"] = {"wall_s": round(time.perf_counter() - began, 1)}
    report["reference_differences"] = result.reference_differences
    report["prealarms"] = prealarm_report(trace, result, prealarm)
    if json_out is not None:
        report["records"] = records(trace, result)
        text = json.dumps(finite(report), ensure_ascii=False, indent=1, allow_nan=False)
        Path(json_out).write_text(text + "\n", encoding="utf-8")
    return report
