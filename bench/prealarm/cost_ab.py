"""The forecaster's own time per batch with two pre-alarm settings, alternating in one
process over the same batches of a trace (issue 17, session 7): so both are measured under
the same load. Uses ``run`` of bench/prealarm_cost.py (the time inside
``Prealarms.evaluate``).

    python bench/prealarm/cost_ab.py /tmp/cost.trace '{}' '{"cut_tau_max_s": 0}' --repeat 3
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

if not __package__:  # run as a script: import from the repository root and bench/
    root = Path(__file__).resolve().parents[2]
    sys.path[0:1] = [str(root), str(root / "bench")]

from prealarm_cost import run  # type: ignore[import-not-found]

from minewatch.alarms.evaluation.run import cycle_batches, registry_of
from minewatch.alarms.prealarms import PrealarmParams
from minewatch.batch import ReadingBatch
from minewatch.trace import Trace


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace", type=Path)
    parser.add_argument("a", help="settings A (JSON)")
    parser.add_argument("b", help="settings B (JSON)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    trace = Trace(args.trace)
    registry = registry_of(trace)
    mine = trace.definition.mine.code
    settings = {
        "A": PrealarmParams.of(json.loads(args.a)),
        "B": PrealarmParams.of(json.loads(args.b)),
    }
    for cycles in (1, 60):
        plan = [(ReadingBatch(c.time_us, c.point + 1, c.value, c.status,
                              np.zeros(len(c), np.int16)), int(c.time_us[-1]))
                for c, _ in cycle_batches(trace, cycles)]  # fmt: skip
        spent: dict[str, list[float]] = {"A": [], "B": []}
        for _ in range(args.repeat):
            for name, params in settings.items():
                _, forecaster = run(registry, plan, True, mine, params)
                spent[name].append(forecaster / len(plan) * 1e3)
        print(
            f"batches of {cycles:>2} cycle(s): forecaster ms per batch, "
            + "; ".join(f"{k}: {', '.join(f'{x:.3f}' for x in v)}" for k, v in spent.items())
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
