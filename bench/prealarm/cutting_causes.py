"""What the production input did with each cutting accumulation and each false pre-alarm of a
development trace (issue 17, session 7): a diagnosis for tuning, so run it on development
traces only (bench/prealarm/README.md). Per cutting accumulation (its root label): its peak,
the pre-alarms raised within it (seconds after its start) and its exceedance with the lead;
then every pre-alarm not followed by an exceedance of its point within the horizon, with the
cutting accumulations of its point it came in (seconds after their start).

    python bench/prealarm/cutting_causes.py '{"cut_tau_s": 200}' /tmp/dev-21.trace ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

if not __package__:  # run as a script: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[2])

from minewatch.alarms.evaluation.run import prealarm_report, replay
from minewatch.alarms.prealarms import PrealarmParams
from minewatch.trace import Trace


def main(argv: list[str]) -> int:
    params = PrealarmParams.of(json.loads(argv[0]))
    for path in argv[1:]:
        trace = Trace(Path(path))
        result = replay(trace, batch_cycles=300, python_cycles=0, prealarm=params)
        report = prealarm_report(trace, result, params)["minewatch"]
        assert isinstance(report, dict)
        t0 = trace.start_us
        span = result.cycles * int(trace.manifest["cycle_us"]) / 1e6
        level = {c: float(trace.definition.points[i].alarm_high or 0)
                 for i, c in enumerate(trace.codes)}  # fmt: skip
        print(f"# {path}")
        by_point: dict[str, list[tuple[float, float]]] = {}
        for g in trace.ground_truth:
            if g.detail != "cutting" or g.cause is not None:
                continue
            code, start = g.point, float(g.start_s)
            if start >= span:
                continue
            eps = [e for e in result.prealarms if trace.codes[e.point] == code
                   and start - 60 <= (e.raised_us - t0) / 1e6 <= g.end_s]  # fmt: skip
            raised = [round((e.raised_us - t0) / 1e6 - start) for e in eps]
            by_point.setdefault(code, []).append((start, float(g.end_s)))
            hit = [(round(e["hit_s"] - start), e["lead_s"]) for e in report["events"]
                   if e["point"] == code and start <= e["hit_s"] <= g.end_s]  # fmt: skip
            print(f"cut {code} start {start:.0f} peak {g.peak} level {level.get(code)} "
                  f"raised at +{raised} hit (at, lead) {hit}")  # fmt: skip
        horizon = params.horizon_s + 60
        hits = {(e["point"], e["hit_s"]) for e in report["events"]}
        for e in result.prealarms:
            code = trace.codes[e.point]
            at = (e.raised_us - t0) / 1e6
            if any(p == code and at <= h <= at + horizon for p, h in hits):
                continue
            inside = [round(at - a) for a, b in by_point.get(code, []) if a - 600 <= at <= b]
            print(f"raised {code} at {at:.0f} forecast {e.forecast:.2f} cutting +{inside}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
