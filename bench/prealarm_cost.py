"""Benchmark: the pre-alarm forecaster's cost per batch inside AlarmEngine (issue 17).

The workload of ``bench/alarm_engine.py`` (methane points with AR(1) noise, excursions, spikes,
faults, calibrations; oxygen and feed points) through the engine twice per batch size, in the
same run and alternating: pre-alarms off (``enabled = false`` for the mine) and on (the
defaults). Reported: readings/s of each, the forecaster's time per batch (the difference) and
the throughput kept (on / off; the target of the issue: more than half).

    .venv/bin/python bench/prealarm_cost.py [--points 2000] [--samples 1200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# Run as a script, sys.path[0] is bench/: import from the repository root instead.
if not __package__:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from bench.alarm_engine import MINE, Workload
from minewatch.alarms.engine import AlarmEngine
from minewatch.alarms.prealarms import PrealarmParams
from minewatch.batch import ReadingBatch
from minewatch.registry import PointRegistry


def run(registry: PointRegistry, work: list[tuple[ReadingBatch, int]], on: bool) -> float:
    """Seconds in evaluate + commit + tick over the batches."""
    params = {} if on else {MINE: PrealarmParams(enabled=False)}
    engine = AlarmEngine(registry, prealarm_params=params)
    started = time.perf_counter()
    for batch, now in work:
        engine.commit(engine.evaluate(batch))
        engine.commit(engine.tick(now))
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=2000, help="methane points")
    parser.add_argument("--samples", type=int, default=1200, help="polling cycles of 1 s")
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs of each")
    args = parser.parse_args()
    work = Workload(args.points, args.samples)
    registry = work.registry()
    readings = sum(len(b) for b, _ in work.batches(args.samples))
    print(f"{args.points} methane points (+ oxygen, feed) x {args.samples} cycles = "
          f"{readings:,} readings; defaults: {PrealarmParams()}")  # fmt: skip
    for cycles in (1, 60):
        plan = work.batches(cycles)
        best = {False: float("inf"), True: float("inf")}
        for _ in range(args.repeat):  # alternate, keep each one's best (least disturbed)
            for on in (False, True):
                best[on] = min(best[on], run(registry, plan, on))
        per_batch_ms = (best[True] - best[False]) / len(plan) * 1e3
        print(f"batches of {cycles:>2} cycle(s): off {readings / best[False] / 1e6:6.3f} M/s, "
              f"on {readings / best[True] / 1e6:6.3f} M/s; forecaster {per_batch_ms:.3f} ms "
              f"per batch ({len(plan)} batches); throughput kept "
              f"{best[False] / best[True]:.0%}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
