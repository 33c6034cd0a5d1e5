"""Benchmark: the forecaster alone, with and without the split of the slow trend (issue 17).

On replay batches, the slow trend is fitted at every row only for the points whose fast
forecast raises something in the batch or that have a pre-alarm up; the others' slow sums are
carried on with a sum per point (``alarms/prealarms.py``, ``SPLIT_ROWS_PER_POINT``). Both ways
run in one process on the same batches, alternating batch by batch, so the load of a shared
machine falls on both alike.

    .venv/bin/python bench/prealarm_split.py --trace /tmp/pa-large.trace
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path

if not __package__:  # run as a script: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np

import minewatch.alarms.prealarms as prealarms_module
from bench.alarm_engine import Workload
from minewatch.alarms.evaluation.run import cycle_batches, registry_of
from minewatch.alarms.prealarms import Prealarms
from minewatch.alarms.rules.run_state import Rows
from minewatch.registry import PointRegistry
from minewatch.trace import Trace

Plan = list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
NEVER_SPLIT = 10**9


def plans(trace: Path | None) -> Iterator[tuple[str, PointRegistry, Plan]]:
    if trace is not None:
        tr = Trace(trace)
        registry = registry_of(tr)
        for cycles in (1, 60):
            plan = [(b.time_us, b.point + 1, b.value, b.status)
                    for b, _ in cycle_batches(tr, cycles)]  # fmt: skip
            yield f"{trace.name}, {cycles} cycle(s)", registry, plan
    work = Workload(2000, 1200)
    registry = work.registry()
    for cycles in (1, 60):
        plan = [(b.time_us, b.point_id, b.value, b.status) for b, _ in work.batches(cycles)]
        yield f"bench/alarm_engine.py workload, {cycles} cycle(s)", registry, plan


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", type=Path, help="a recorded trace (and the synthetic workload)")
    args = parser.parse_args()
    split = prealarms_module.SPLIT_ROWS_PER_POINT
    for name, registry, plan in plans(args.trace):
        rows = []
        for t, p, v, s in plan:
            order = np.lexsort((t, p))
            rows.append(Rows.of(p[order].astype(np.int32), t[order], v[order], s[order]))
        engines = {m: Prealarms.of(registry) for m in (split, NEVER_SPLIT)}
        spent = dict.fromkeys(engines, 0.0)
        for r in rows:
            ok = r.s == 0
            for m, pre in engines.items():
                prealarms_module.SPLIT_ROWS_PER_POINT = m
                began = time.perf_counter()
                outcome = pre.evaluate(r, ok)
                spent[m] += time.perf_counter() - began
                pre.commit(outcome)
        prealarms_module.SPLIT_ROWS_PER_POINT = split
        same = np.array_equal(engines[split].state.active, engines[NEVER_SPLIT].state.active)
        per = {m: spent[m] / len(rows) * 1e3 for m in spent}
        print(f"{name}: {len(rows)} batches, forecaster per batch: split {per[split]:.2f} ms, "
              f"whole {per[NEVER_SPLIT]:.2f} ms; same pre-alarms up: {same}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
