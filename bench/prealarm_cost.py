"""Benchmark: the pre-alarm forecaster's cost per batch inside AlarmEngine (issue 17).

The workload of ``bench/alarm_engine.py`` (methane points with AR(1) noise, excursions, spikes,
faults, calibrations; oxygen and feed points) through the engine per batch size, pre-alarms on
(the defaults). Within each run, the forecaster's own time (``engine.prealarms.evaluate``) is
timed apart from the engine's whole time (evaluate + commit + tick), so both are measured
under the same load: the throughput kept is (whole - forecaster) / whole, the issue's target
more than half. Runs with pre-alarms off (``enabled = false`` for the mine) alternate with
them, as a cross-check on a quiet machine (on a loaded one, their difference is mostly noise).

    .venv/bin/python bench/prealarm_cost.py [--points 2000] [--samples 1200] [--repeat 3]
    .venv/bin/python bench/prealarm_cost.py --trace /tmp/large-1h.trace  # a recorded trace

With ``--trace``, the batches are the trace's polling cycles (1 and 60 per batch, as
``minewatch evaluate`` cuts them), through the registry ``minewatch evaluate`` builds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

# Run as a script, sys.path[0] is bench/: import from the repository root instead.
if not __package__:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np

from bench.alarm_engine import MINE, Workload
from minewatch.alarms.engine import AlarmEngine
from minewatch.alarms.evaluation.run import cycle_batches, registry_of
from minewatch.alarms.prealarms import PrealarmParams
from minewatch.batch import ReadingBatch
from minewatch.registry import PointRegistry
from minewatch.trace import Trace


def run(
    registry: PointRegistry,
    work: list[tuple[ReadingBatch, int]],
    on: bool,
    mine: str = MINE,
    settings: PrealarmParams | None = None,
) -> tuple[float, float]:
    """(seconds in evaluate + commit + tick over the batches, of which the forecaster's);
    ``settings``: the mine's pre-alarm settings when on (default: the defaults)."""
    params = ({mine: settings} if settings else {}) if on else {mine: PrealarmParams(enabled=False)}
    engine = AlarmEngine(registry, prealarm_params=params)
    spent = [0.0]
    forecast = engine.prealarms.evaluate

    def timed(*args: Any) -> Any:
        began = time.perf_counter()
        try:
            return forecast(*args)
        finally:
            spent[0] += time.perf_counter() - began

    engine.prealarms.evaluate = timed  # type: ignore[method-assign]  # timing only
    started = time.perf_counter()
    for batch, now in work:
        engine.commit(engine.evaluate(batch))
        engine.commit(engine.tick(now))
    return time.perf_counter() - started, spent[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=2000, help="methane points")
    parser.add_argument("--samples", type=int, default=1200, help="polling cycles of 1 s")
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs of each")
    parser.add_argument("--trace", type=Path, help="a recorded trace instead of the workload")
    parser.add_argument("--settings", default="{}",
                        help="pre-alarm settings as JSON, e.g. {\"vent_confirm\": 0}")  # fmt: skip
    args = parser.parse_args()
    settings = PrealarmParams.of(json.loads(args.settings))
    if args.trace:
        trace = Trace(args.trace)
        registry = registry_of(trace)
        mine = trace.definition.mine.code

        def plan_of(cycles: int) -> list[tuple[ReadingBatch, int]]:
            return [(ReadingBatch(c.time_us, c.point + 1, c.value, c.status,
                                  np.zeros(len(c), np.int16)), int(c.time_us[-1]))
                    for c, _ in cycle_batches(trace, cycles)]  # fmt: skip

        readings = int(trace.manifest["readings"])
        print(f"{args.trace}: {trace.manifest['points']} points, {trace.manifest['cycles']} "
              f"cycles, {readings:,} readings; settings: {settings}")  # fmt: skip
    else:
        mine = MINE
        work = Workload(args.points, args.samples)
        registry = work.registry()
        plan_of = work.batches
        readings = sum(len(b) for b, _ in work.batches(args.samples))
        print(f"{args.points} methane points (+ oxygen, feed) x {args.samples} cycles = "
              f"{readings:,} readings; settings: {settings}")  # fmt: skip
    for cycles in (1, 60):
        plan = plan_of(cycles)
        best = {False: (float("inf"), 0.0), True: (float("inf"), 0.0)}
        for _ in range(args.repeat):  # alternate, keep each one's best (least disturbed)
            for on in (False, True):
                best[on] = min(best[on], run(registry, plan, on, mine, settings))
        whole, forecaster = best[True]
        print(f"batches of {cycles:>2} cycle(s), {len(plan)} batches: engine with pre-alarms "
              f"{readings / whole / 1e6:.3f} M/s, forecaster {forecaster / len(plan) * 1e3:.3f} "
              f"ms per batch = {forecaster / whole:.0%} of the engine's time: throughput kept "
              f"{(whole - forecaster) / whole:.0%}; cross-check, pre-alarms off: "
              f"{readings / best[False][0] / 1e6:.3f} M/s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
