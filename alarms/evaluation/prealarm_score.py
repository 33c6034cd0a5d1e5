"""Pre-alarms measured against a trace's labels (issue 17), with two baselines.

**Exceedance events.** Every real methane label (``methane_exceedance``,
``methane_accumulation``, ``outburst``, ``power_off_failure`` and the derived labels of fan
stops and of every air scenario downstream) whose condition became true in the data (a valid
reading at or above the point's ``alarm_high`` inside the label's window: its *hit*), one
event per (point, hit): a root label and the derived label at its own point are one event.
Each event is classed by its root label's kind: ``accumulation`` (slow, tens of minutes),
``outburst`` (seconds from baseline to limit: no forecast can see it; reported apart and
never counted as a miss), ``fan_stop`` and ``exceedance`` (the simulator's step-like ramps of
12-120 s).

Per event: **pre-alarmed** when a pre-alarm of its point was raised before the hit and was
still up at the hit (or ended less than ``SLACK_S`` before it); its **lead** is hit less
raise.

**False pre-alarms**: a pre-alarm with no exceedance event at its point within
``[raise, raise + horizon + SLACK_S]`` and raised outside every labelled gas window of its
point; counted per **sensor-week** (forecast points times the trace's duration). Those
explained by a ``methane_near_limit`` label (gas within the sensor's accuracy of the level,
which never reached it) are shown apart and are counted false all the same.

**Baselines, same readings, same input filter (valid, not calibrating):**

* *persistence* (no forecast): the value now is the forecast, so it "warns" at the first
  reading at the level: lead 0 by construction, never before the alarm;
* *linear extrapolation* of the last ``n`` readings (ordinary least squares): raised when the
  line ``horizon`` ahead reaches the level while the reading is below it, cleared when it
  falls back below; no median filter, no confidence, no confirmation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from minewatch.alarms.evaluation.score import SLACK_S, LabelFacts
from minewatch.alarms.prealarms import PrealarmChange, PrealarmPoints
from minewatch.alarms.rules.latch import group_starts, latch, previous_state
from minewatch.trace import Trace

WEEK_S = 7 * 86400.0
GAS_KINDS = frozenset(
    {"methane_exceedance", "methane_accumulation", "outburst", "power_off_failure"}
)
CATEGORY = {
    "methane_accumulation": "accumulation",
    "outburst": "outburst",
    "fan_stop": "fan_stop",
    "methane_exceedance": "exceedance",
    "power_off_failure": "exceedance",
}
CATEGORIES = ("accumulation", "fan_stop", "exceedance", "outburst")
#: Linear extrapolation baseline: readings in its window (at 1 s: a minute).
BASELINE_READINGS = 60


@dataclass
class PreEpisode:
    """A pre-alarm from raise to clear, by trace point index (0-based)."""

    point: int
    raised_us: int
    cleared_us: int | None = None
    forecast: float = float("nan")
    predicted_us: int | None = None


@dataclass
class PrealarmLog:
    """Pre-alarm changes (engine point ids) assembled into episodes."""

    point_offset: int = -1
    episodes: list[PreEpisode] = field(default_factory=list)
    _open: dict[int, PreEpisode] = field(default_factory=dict)

    def apply(self, changes: list[PrealarmChange]) -> None:
        for c in changes:
            point = c.point + self.point_offset
            if c.cleared_us is None:
                e = PreEpisode(point, c.raised_us, None, c.forecast, c.predicted_us)
                self._open[point] = e
                self.episodes.append(e)
            elif point in self._open:
                self._open.pop(point).cleared_us = c.cleared_us


@dataclass
class LinearExtrapolation:
    """The baseline: OLS over each point's last ``n`` readings, extrapolated ``horizon``."""

    points: PrealarmPoints
    n: int = BASELINE_READINGS
    log: PrealarmLog = field(default_factory=PrealarmLog)

    def __post_init__(self) -> None:
        size = len(self.points.target)
        self.hist_t = np.zeros((size, self.n - 1), np.int64)
        self.hist_v = np.zeros((size, self.n - 1))
        self.hist_k = np.zeros(size, np.int64)
        self.active = np.zeros(size, bool)
        self.raised = np.zeros(size, np.int64)

    def feed(
        self, pid: npt.NDArray[np.int32], t: npt.NDArray[np.int64], v: npt.NDArray[np.float64]
    ) -> None:
        """Rows sorted by (point id, time), already filtered (valid, not calibrating)."""
        keep = self.points.target[pid]
        pid, t, v = pid[keep], t[keep], v[keep]
        if not len(pid):
            return
        present = np.unique(pid)
        m = self.n - 1
        slots = np.arange(m)[None, :] >= (m - self.hist_k[present])[:, None]
        hp = np.repeat(present, m).reshape(len(present), m)[slots]
        ap = np.concatenate([hp, pid])
        at = np.concatenate([self.hist_t[present][slots], t])
        av = np.concatenate([self.hist_v[present][slots], v])
        batch = np.concatenate([np.zeros(len(hp), bool), np.ones(len(pid), bool)])
        order = np.argsort(ap, kind="stable")
        ap, at, av, batch = ap[order], at[order], av[order], batch[order]
        gs = group_starts(ap)
        idx = np.arange(len(ap))
        k = np.minimum(self.n, idx - gs + 1)
        x = (at - at.min()) / 1e6

        def window(col: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            c = np.concatenate([[0.0], np.cumsum(col)])
            return c[idx + 1] - c[idx + 1 - k]

        sx, sy, sxx, sxy = window(x), window(av), window(x * x), window(x * av)
        with np.errstate(invalid="ignore", divide="ignore"):
            den = k * sxx - sx * sx
            slope = np.where(den > 0, (k * sxy - sx * sy) / den, 0.0)
            level_now = sy / k + slope * (x - sx / k)
            forecast = level_now + slope * self.points.horizon_s[ap]
            alarm = self.points.level[ap]
            full = k >= self.n
            rise = full & (forecast >= alarm) & (av < alarm)
            clear = full & (forecast < alarm)
        # decisions on the batch's rows only (the history rows were decided before)
        rows = np.flatnonzero(batch)
        bp, bt = ap[rows], at[rows]
        bgs = group_starts(bp)
        initial = self.active[bp]
        state = latch(bgs, rise[rows], clear[rows] & ~rise[rows], initial)
        before = previous_state(bgs, state, initial)
        for i in np.flatnonzero(state != before).tolist():
            p = int(bp[i])
            if state[i]:
                self.raised[p] = int(bt[i])
                self.log.apply([PrealarmChange(p, int(bt[i]), None, float(alarm[rows[i]]),
                                               float(forecast[rows[i]]), None, 0.0)])  # fmt: skip
            else:
                self.log.apply([PrealarmChange(p, int(self.raised[p]), int(bt[i]), 0.0, 0.0,
                                               None, 0.0)])  # fmt: skip
        last = np.flatnonzero(np.append(bp[1:] != bp[:-1], True))
        self.active[bp[last]] = state[last]
        # each present point's last n - 1 readings become its history
        ends = np.flatnonzero(np.append(ap[1:] != ap[:-1], True))
        for col, store in ((at, self.hist_t), (av, self.hist_v)):
            taken = np.zeros((len(present), m), col.dtype)
            for j in range(m):  # m columns, not a loop per reading
                src = ends - (m - 1 - j)
                ok = src >= gs[ends]
                taken[:, j] = np.where(ok, col[np.maximum(src, 0)], 0)
            store[present] = taken
        self.hist_k[present] = np.minimum(m, ends - gs[ends] + 1)


@dataclass(frozen=True, slots=True)
class Event:
    point: int
    hit_us: int
    category: str
    labels: tuple[int, ...]


def exceedance_events(trace: Trace, facts: LabelFacts) -> list[Event]:
    """One event per point and root label: the labels of one scenario at one point (its root
    label and the derived one at the same point) are one exceedance; its hit is their
    earliest."""
    truth = trace.ground_truth
    labels: dict[tuple[int, int], list[int]] = {}
    for k in range(len(truth)):
        g = truth[k]
        if g.kind not in GAS_KINDS or facts.first_us[k] < 0 or facts.point[k] < 0:
            continue
        if g.kind == "power_off_failure":
            continue  # measured at the power-off level: its own point's alarm-level label counts
        root = g.cause if g.cause is not None else k
        labels.setdefault((int(facts.point[k]), root), []).append(k)
    events = [
        Event(p, int(min(facts.first_us[k] for k in ks)),
              CATEGORY.get(truth[root].kind, "exceedance"), tuple(ks))
        for (p, root), ks in labels.items()
    ]  # fmt: skip
    return sorted(events, key=lambda e: (e.hit_us, e.point))


def _windows(
    trace: Trace, facts: LabelFacts, kinds: frozenset[str]
) -> dict[int, list[tuple[int, int]]]:
    """Per point: the windows of labels of ``kinds`` (from the hit where there is one)."""
    out: dict[int, list[tuple[int, int]]] = {}
    for k, g in enumerate([*trace.ground_truth, *trace.near_limit]):
        if g.kind in kinds and facts.point[k] >= 0:
            start = int(facts.first_us[k]) if facts.first_us[k] >= 0 else int(facts.start_us[k])
            out.setdefault(int(facts.point[k]), []).append((start, int(facts.end_us[k])))
    return out


def score_prealarms(
    trace: Trace,
    facts: LabelFacts,
    episodes: list[PreEpisode],
    points: PrealarmPoints,
    duration_s: float,
) -> dict[str, Any]:
    """The figures of one forecaster's pre-alarms (see the module's docstring)."""
    events = exceedance_events(trace, facts)
    slack = round(SLACK_S * 1e6)
    by_point: dict[int, list[PreEpisode]] = {}
    for e in episodes:
        by_point.setdefault(e.point, []).append(e)
    per_event = []
    for ev in events:
        best: PreEpisode | None = None
        for e in by_point.get(ev.point, []):
            up_at_hit = e.cleared_us is None or e.cleared_us >= ev.hit_us - slack
            if (
                e.raised_us < ev.hit_us
                and up_at_hit
                and (best is None or e.raised_us < best.raised_us)
            ):
                best = e
        lead = None if best is None else (ev.hit_us - best.raised_us) / 1e6
        per_event.append({"point": trace.codes[ev.point], "category": ev.category,
                          "hit_s": (ev.hit_us - trace.start_us) / 1e6, "labels": list(ev.labels),
                          "prealarmed": best is not None, "lead_s": lead})  # fmt: skip
    gas = _windows(trace, facts, GAS_KINDS)
    near = _windows(trace, facts, frozenset({"methane_near_limit"}))
    hits: dict[int, list[int]] = {}
    for ev in events:
        hits.setdefault(ev.point, []).append(ev.hit_us)
    false = near_limit = during = early = 0
    for e in episodes:
        p = e.point
        horizon = round(float(points.horizon_s[p + 1]) * 1e6) + slack
        if any(e.raised_us <= h <= e.raised_us + horizon for h in hits.get(p, [])):
            early += 1
        elif any(a - slack <= e.raised_us <= b + slack for a, b in gas.get(p, [])):
            during += 1
        else:
            false += 1
            if any(a - horizon <= e.raised_us <= b + slack for a, b in near.get(p, [])):
                near_limit += 1
    sensors = int(points.target.sum())
    weeks = sensors * duration_s / WEEK_S
    categories = {}
    for name in CATEGORIES:
        rows = [r for r in per_event if r["category"] == name]
        leads = [float(v) for r in rows if isinstance(v := r["lead_s"], float)]
        categories[name] = {
            "events": len(rows),
            "prealarmed": len(leads),
            "share": len(leads) / len(rows) if rows else None,
            "lead_mean_s": float(np.mean(leads)) if leads else None,
            "lead_median_s": float(np.median(leads)) if leads else None,
            "lead_min_s": float(min(leads)) if leads else None,
            "lead_max_s": float(max(leads)) if leads else None,
        }
    return {
        "prealarms": len(episodes),
        "before_an_exceedance": early,
        "during_an_exceedance": during,
        "false": false,
        "false_near_limit": near_limit,
        "sensors": sensors,
        "sensor_weeks": weeks,
        "false_per_sensor_week": false / weeks if weeks else None,
        "categories": categories,
        "events": per_event,
    }


def persistence(
    trace: Trace, facts: LabelFacts, points: PrealarmPoints, duration_s: float
) -> dict[str, Any]:
    """The persistence baseline: its "pre-alarm" is the first reading at the level."""
    events = exceedance_events(trace, facts)
    sensors = int(points.target.sum())
    weeks = sensors * duration_s / WEEK_S
    categories = {}
    for name in CATEGORIES:
        n = sum(1 for e in events if e.category == name)
        categories[name] = {"events": n, "prealarmed": 0, "share": 0.0 if n else None,
                            "lead_mean_s": 0.0 if n else None, "lead_median_s": 0.0 if n else None,
                            "lead_min_s": None, "lead_max_s": None}  # fmt: skip
    return {"prealarms": 0, "before_an_exceedance": 0, "during_an_exceedance": 0, "false": 0,
            "false_near_limit": 0, "sensors": sensors, "sensor_weeks": weeks,
            "false_per_sensor_week": 0.0, "categories": categories, "events": []}  # fmt: skip
