"""The tuning grid of the pre-alarm forecaster (issue 17): run it on the development traces
only (bench/prealarm/README.md).

Every combination of the given settings through ``replay()`` and ``prealarm_report()`` (the
code of ``minewatch evaluate``), the traces together: false pre-alarms per sensor-week, slow
accumulations and fan stops pre-alarmed with their mean lead, fast exceedances; ``cut``: the
accumulations among them that a shearer restart caused (session 6, ``detail`` "cutting").

    python bench/prealarm/tune.py '{"horizon_s": [900, 1200], "slow_tau_s": [300, 400]}' \\
        /tmp/pa-dev-11.trace /tmp/pa-dev-12.trace /tmp/pa-dev-13.trace
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np

if not __package__:  # run as a script: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[2])

from minewatch.alarms.evaluation.run import prealarm_report, replay
from minewatch.alarms.prealarms import PrealarmParams
from minewatch.trace import Trace

CLASSES = (("accumulation", "acc"), ("fan_stop", "fan"), ("exceedance", "exc"))


def cutting(trace: Trace, event: dict[str, object]) -> bool:
    """An exceedance event of a cutting accumulation (its root label's detail, session 6)."""
    truth = trace.ground_truth
    labels = event["labels"]
    assert isinstance(labels, list)
    roots = {truth[k].cause if truth[k].cause is not None else k for k in labels}
    return any(truth[r].detail == "cutting" for r in roots)


def main(argv: list[str]) -> int:
    grid: dict[str, list[object]] = json.loads(argv[0])
    traces = [Trace(Path(p)) for p in argv[1:]]
    for combo in itertools.product(*grid.values()):
        settings = dict(zip(grid, combo, strict=True))
        params = PrealarmParams.of(settings)
        false = near = raised = 0
        weeks = 0.0
        counts = {short: [0, []] for _, short in (*CLASSES, ("", "cut"))}
        for trace in traces:
            result = replay(trace, batch_cycles=300, python_cycles=0, prealarm=params)
            r = prealarm_report(trace, result, params)["minewatch"]
            assert isinstance(r, dict)
            false += r["false"]
            raised += r["prealarms"]
            near += r["false_near_limit"]
            weeks += r["sensor_weeks"]
            for cat, short in CLASSES:
                counts[short][0] += r["categories"][cat]["events"]
                leads = [e["lead_s"] for e in r["events"] if e["category"] == cat]
                counts[short][1] += [lead for lead in leads if lead is not None]
            cut = [e for e in r["events"] if cutting(trace, e)]
            counts["cut"][0] += len(cut)
            counts["cut"][1] += [e["lead_s"] for e in cut if e["lead_s"] is not None]
        parts = [f"pre-alarms {raised} false/sw {false / weeks:.2f} ({false}, near {near})"]
        for short in (*(s for _, s in CLASSES), "cut"):
            n, leads = counts[short]
            mean = round(float(np.mean(leads))) if leads else None
            parts.append(f"{short} {len(leads)}/{n} mean {mean}")
        print("minewatch", settings, " ".join(parts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
