"""Dispatcher load in incidents (issue 13): what ``minewatch evaluate`` reports of them.

The *real labelled events* are the trace's root labels (``cause`` None) that a dispatcher must
be shown: every required kind except declared calibrations and interference spikes (records
only). An incident is *explained* by a label when one of its members overlaps (with the
evaluation's slack) a label on its point; it is counted for the label's root event. Incidents
explained only by calibration or spike labels are nuisance (target 0); incidents explained by
no label are unexplained. A *chattering* incident is one of :data:`CHATTER` or more incidents
rooted at one point within :data:`CHATTER_S` seconds (as for alarms). Floods: 10-minute
windows with more than :data:`FLOOD` incidents, and the largest number of real events that
started in such a window (a flood is justified only where the labels have more than
:data:`FLOOD` events in 10 minutes).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from minewatch.alarms.evaluation.score import CHATTER, CHATTER_S, FLOOD, SLACK_S, WINDOW_S
from minewatch.alarms.incidents import Incident, Topology, group

if TYPE_CHECKING:
    from minewatch.alarms.evaluation.run import Replay
    from minewatch.metadata import MineDefinition
    from minewatch.trace import Trace

NUISANCE_KINDS = frozenset({"calibration", "interference"})
NOT_EVENTS = NUISANCE_KINDS | {"methane_near_limit"}


def topology_of(definition: MineDefinition, off_delay_s: float | None = None) -> Topology:
    """The grouping topology of a mine definition, points numbered from 0 in its order."""
    index = {p.code: i for i, p in enumerate(definition.points)}
    return Topology.of(
        area={i: p.area_code for i, p in enumerate(definition.points)},
        sensor_type={i: p.sensor_type for i, p in enumerate(definition.points)},
        paths=[
            (i, index[d.target], d.delay_s)
            for i, p in enumerate(definition.points)
            for d in p.downstream
        ],
        off_delay_s=off_delay_s,
        substation={i: p.substation for i, p in enumerate(definition.points)},
    )


def incidents_report(trace: Trace, result: Replay) -> dict[str, object]:
    """Incident figures of the engine's episodes and of the naive baseline's alarms grouped the
    same way, over the replayed span."""
    cycle_us = int(trace.manifest["cycle_us"])
    start = trace.start_us + int(trace.manifest.get("first_cycle", 0)) * cycle_us
    end = start + result.cycles * cycle_us
    slack = round(SLACK_S * 1e6)
    topology = topology_of(trace.definition)
    engine = result.incidents if result.incidents is not None else group(result.episodes, topology)
    return {
        "off_delay_s": topology.off_delay_us / 1e6,
        "minewatch": incident_measures(trace, engine, start, end, slack),
        "baseline_grouped": incident_measures(
            trace, group(result.baseline, topology), start, end, slack
        ),
    }


def incident_measures(
    trace: Trace, incidents: list[Incident], start_us: int, end_us: int, slack_us: int
) -> dict[str, object]:
    """Incident figures of ``incidents`` (the engine's, or the baseline's grouped)."""
    labels = trace.ground_truth
    index = {code: i for i, code in enumerate(trace.codes)}
    t0 = trace.start_us
    root_of = [k if g.cause is None else g.cause for k, g in enumerate(labels)]
    events = [
        k for k, g in enumerate(labels)
        if g.cause is None and g.required and g.kind not in NOT_EVENTS
    ]  # fmt: skip
    stations: dict[str, list[int]] = {}
    for i, p in enumerate(trace.definition.points):
        stations.setdefault(p.substation, []).append(i)
    by_point: dict[int, list[int]] = {}
    for k, g in enumerate(labels):
        points = [index[g.point]] if g.point in index else stations.get(g.substation, [])
        for i in points:
            by_point.setdefault(i, []).append(k)

    def explained_by(incident: Incident) -> set[int]:
        out = set()
        for m in incident.members:
            end = m.end_us if m.end_us is not None else end_us
            for k in by_point.get(m.point, ()):
                g = labels[k]
                lo, hi = t0 + round(g.start_s * 1e6), t0 + round(g.end_s * 1e6)
                if m.start_us <= hi + slack_us and end >= lo - slack_us:
                    out.add(k)
        return out

    per_event: dict[int, int] = {}
    nuisance = unexplained = 0
    per_kind: dict[str, int] = {}
    for incident in incidents:
        found = explained_by(incident)
        roots = {root_of[k] for k in found if labels[k].kind not in NUISANCE_KINDS}
        if not found:
            unexplained += 1
        elif not roots:
            nuisance += 1
        for r in roots:
            per_event[r] = per_event.get(r, 0) + 1
        kind = labels[min(roots)].kind if roots else ("nuisance" if found else "unexplained")
        per_kind[kind] = per_kind.get(kind, 0) + 1
    counts = [per_event.get(k, 0) for k in events]
    window = round(WINDOW_S * 1e6)
    bins = max(1, math.ceil((end_us - start_us) / window))
    raised = np.array([i.raised_us for i in incidents], np.int64)
    per_window = np.bincount(((raised - start_us) // window).clip(0, bins - 1), minlength=bins)
    event_starts = np.array([t0 + round(labels[k].start_s * 1e6) for k in events], np.int64)
    events_per_window = np.bincount(
        ((event_starts - start_us) // window).clip(0, bins - 1), minlength=bins
    )
    floods = per_window > FLOOD
    return {
        "incidents": len(incidents),
        "real_events": len(events),
        "per_real_event": len(incidents) / len(events) if events else None,
        "events_shown": sum(c > 0 for c in counts),
        "max_per_event": max(counts, default=0),
        "nuisance": nuisance,
        "unexplained": unexplained,
        "chattering": _chattering(incidents),
        "floods": int(floods.sum()),
        "unjustified_floods": int((floods & (events_per_window <= FLOOD)).sum()),
        "members_mean": (
            sum(len(i.members) for i in incidents) / len(incidents) if incidents else None
        ),
        "by_kind": dict(sorted(per_kind.items())),
        "by_grade": _by_grade(incidents),
    }


def _chattering(incidents: list[Incident]) -> int:
    """Incidents that chatter: :data:`CHATTER` or more rooted at one point within
    :data:`CHATTER_S` seconds (each such incident counted once)."""
    by_point: dict[int, list[int]] = {}
    for i in incidents:
        by_point.setdefault(i.key[0], []).append(i.raised_us)
    gap = round(CHATTER_S * 1e6)
    count = 0
    for times in by_point.values():
        t = np.sort(np.array(times, np.int64))
        if len(t) < CHATTER:
            continue
        hit = np.zeros(len(t), bool)
        for s in range(len(t) - CHATTER + 1):
            if t[s + CHATTER - 1] - t[s] <= gap:
                hit[s : s + CHATTER] = True
        count += int(hit.sum())
    return count


def _by_grade(incidents: list[Incident]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in incidents:
        out[i.grade] = out.get(i.grade, 0) + 1
    return dict(sorted(out.items()))
