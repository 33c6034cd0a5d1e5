"""False pre-alarms that re-raise a point soon after its previous pre-alarm cleared (issue 17,
session 7): run it on the development traces only (bench/prealarm/README.md).

Replays each trace (300-cycle batches, as ``tune.py``) with the given settings, classes every
pre-alarm as ``score_prealarms`` does, and counts the false ones raised within 1, 2, 5 and 10
minutes of the clear of the same point's previous pre-alarm.

    python bench/prealarm/reraises.py '{}' /tmp/pa-dev-11.trace /tmp/pa-dev-12.trace
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

if not __package__:  # run as a script: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[2])

from minewatch.alarms.evaluation.prealarm_score import (
    GAS_KINDS,
    PreEpisode,
    _windows,
    exceedance_events,
)
from minewatch.alarms.evaluation.run import registry_of, replay
from minewatch.alarms.evaluation.score import SLACK_S
from minewatch.alarms.prealarms import PrealarmParams, PrealarmPoints
from minewatch.trace import Trace

GAPS_S = (60, 120, 300, 600)


def false_episodes(trace: Trace, episodes: list[PreEpisode], points: PrealarmPoints,
                   facts: object) -> list[PreEpisode]:  # fmt: skip
    """The false pre-alarms, by ``score_prealarms``'s test."""
    slack = round(SLACK_S * 1e6)
    hits: dict[int, list[int]] = {}
    for ev in exceedance_events(trace, facts):  # type: ignore[arg-type]
        hits.setdefault(ev.point, []).append(ev.hit_us)
    gas = _windows(trace, facts, GAS_KINDS)  # type: ignore[arg-type]
    out = []
    for e in episodes:
        horizon = round(float(points.horizon_s[e.point + 1]) * 1e6) + slack
        if any(e.raised_us <= h <= e.raised_us + horizon for h in hits.get(e.point, [])):
            continue
        if any(a - slack <= e.raised_us <= b + slack for a, b in gas.get(e.point, [])):
            continue
        out.append(e)
    return out


def main(argv: list[str]) -> int:
    params = PrealarmParams.of(json.loads(argv[0]))
    total = {g: 0 for g in GAPS_S}
    n_false = n_all = 0
    for path in argv[1:]:
        trace = Trace(Path(path))
        result = replay(trace, batch_cycles=300, python_cycles=0, prealarm=params)
        points = PrealarmPoints.of(registry_of(trace), {trace.definition.mine.code: params})
        episodes = result.prealarms
        false = false_episodes(trace, episodes, points, result.conditions)
        prev: dict[int, PreEpisode] = {}
        gaps: dict[int, float] = {}  # id(false episode) -> seconds since the point's last clear
        for e in sorted(episodes, key=lambda e: (e.point, e.raised_us)):
            before = prev.get(e.point)
            if before is not None and before.cleared_us is not None:
                gaps[id(e)] = (e.raised_us - before.cleared_us) / 1e6
            prev[e.point] = e
        within = {g: sum(1 for e in false if gaps.get(id(e), 1e18) <= g) for g in GAPS_S}
        shown = sorted(round(gaps[id(e)]) for e in false if id(e) in gaps)
        print(f"{path}: pre-alarms {len(episodes)} false {len(false)} re-raised within "
              f"{', '.join(f'{g // 60} min {n}' for g, n in within.items())}; gaps s {shown}",
              flush=True)  # fmt: skip
        n_all += len(episodes)
        n_false += len(false)
        for g in GAPS_S:
            total[g] += within[g]
    print(f"all: pre-alarms {n_all} false {n_false} re-raised within "
          f"{', '.join(f'{g // 60} min {n}' for g, n in total.items())}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
