"""Sum the pre-alarm figures of several ``minewatch evaluate --json`` reports (issue 17): the
rows of the tables in docs/benchmarks.md "Pre-alarms", for minewatch and the two baselines.

    python bench/prealarm/summary.py /tmp/pa-heldout-9101.json /tmp/pa-heldout-9102.json ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

MODELS = ("minewatch", "linear", "persistence")
CATEGORIES = ("accumulation", "fan_stop", "exceedance", "outburst")


def main(argv: list[str]) -> int:
    reports = [json.loads(Path(p).read_text())["prealarms"] for p in argv]
    for model in MODELS:
        rs = [r[model] for r in reports]
        print(f"## {model}")
        for cat in CATEGORIES:
            events = [e for r in rs for e in r["events"] if e["category"] == cat]
            leads = [e["lead_s"] for e in events if e["lead_s"] is not None]
            line = f"{cat}: {len(leads)}/{len(events)}"
            if leads:
                over_all = sum(leads) / len(events)
                line += (f", lead mean {np.mean(leads):.0f} s (median {np.median(leads):.0f},"
                         f" min {min(leads):.0f}, max {max(leads):.0f});"
                         f" over all {over_all:.0f} s")  # fmt: skip
            print(line)
        keys = ("prealarms", "before_an_exceedance", "during_an_exceedance", "false",
                "false_near_limit")  # fmt: skip
        print(", ".join(f"{k} {sum(r[k] for r in rs):,}" for k in keys))
        weeks = sum(r["sensor_weeks"] for r in rs)
        false = sum(r["false"] for r in rs)
        print(f"false per sensor-week {false / weeks:.2f} ({weeks:.2f} sensor-weeks)")
        if model == "minewatch":
            for p, r in zip(argv, rs, strict=True):
                acc = r["categories"]["accumulation"]
                print(f"  {Path(p).stem}: accumulations {acc['prealarmed']}/{acc['events']},"
                      f" fan stops {r['categories']['fan_stop']['prealarmed']}/"
                      f"{r['categories']['fan_stop']['events']}, false {r['false']}"
                      f" ({r['false_per_sensor_week']:.2f}/sensor-week)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
