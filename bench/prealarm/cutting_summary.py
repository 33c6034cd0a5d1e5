"""The accumulations of ``minewatch evaluate --json`` reports split by cause (issue 17,
session 6): those a shearer restart caused (root label ``detail`` "cutting") and the others,
for minewatch and the two baselines. Each argument is a report and its trace:

    python bench/prealarm/cutting_summary.py /tmp/pho-9201.json:/tmp/pho-9201.trace ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

if not __package__:  # run as a script: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[2])

from minewatch.trace import Trace

MODELS = ("minewatch", "linear", "persistence")


def main(argv: list[str]) -> int:
    pairs = [arg.split(":", 1) for arg in argv]
    loaded = [(json.loads(Path(r).read_text())["prealarms"], Trace(Path(t))) for r, t in pairs]
    for model in MODELS:
        split: dict[str, list[float | None]] = {"cutting": [], "other": []}
        for report, trace in loaded:
            truth = trace.ground_truth
            for e in report[model]["events"]:
                if e["category"] != "accumulation":
                    continue
                roots = {truth[k].cause if truth[k].cause is not None else k for k in e["labels"]}
                cut = any(truth[r].detail == "cutting" for r in roots)
                split["cutting" if cut else "other"].append(e["lead_s"])
        for name, leads in split.items():
            got = [x for x in leads if x is not None]
            line = f"{model} {name} accumulations: {len(got)}/{len(leads)}"
            if got:
                line += (f", lead mean {np.mean(got):.0f} s (median {np.median(got):.0f},"
                         f" min {min(got):.0f}, max {max(got):.0f})")  # fmt: skip
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
