"""Benchmark: the alarm engine's CPU time per rule family, on a recorded trace.

Every family's ``evaluate`` and ``tick`` (alarms/families.py) is wrapped with a CPU clock
(``time.process_time``: the machines are shared), in one run of the engine over the trace's
first ``--cycles`` polling cycles cut into batches of ``--batch-cycles`` (as ``minewatch
evaluate`` replays it, with the clock at each batch's last event time). The table gives each
family's share of the engine's time and its cost per batch, split into *quiet* batches (no
reading at or beyond a level of the thresholds, no status bit: what most live batches are)
and the others. Each family is timed in the same run as the others, so the machine's load
moves them alike.

    .venv/bin/python bench/family_cost.py --trace TRACE [--cycles 900] [--batch-cycles 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

# Run as a script, sys.path[0] is bench/: import from the repository root instead.
if not __package__:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from minewatch.alarms import engine as engine_module
from minewatch.alarms.engine import AlarmEngine
from minewatch.alarms.evaluation.run import cycle_batches, registry_of
from minewatch.alarms.families import FAMILIES, Family
from minewatch.alarms.rules.context import BatchContext
from minewatch.alarms.rules.run_state import Rows
from minewatch.batch import ReadingBatch
from minewatch.trace import Trace


class Clock:
    """CPU seconds per (family, quiet or not)."""

    def __init__(self) -> None:
        self.seconds: dict[tuple[str, bool], float] = {}
        self.quiet = False

    def wrap(self, family: Family) -> Family:
        def timed(call):  # type: ignore[no-untyped-def]
            if call is None:
                return None

            def run(engine, step):  # type: ignore[no-untyped-def]
                started = time.process_time()
                call(engine, step)
                key = (family.name, self.quiet)
                self.seconds[key] = self.seconds.get(key, 0.0) + time.process_time() - started

            return run

        return replace(family, evaluate=timed(family.evaluate), tick=timed(family.tick))


def quiet_batch(engine: AlarmEngine, batch: ReadingBatch) -> bool:
    """No status bit and no reading at or beyond a threshold rule's level."""
    if batch.status.any():
        return False
    order = np.lexsort((batch.time_us, batch.point_id))
    pid, t = batch.point_id[order], batch.time_us[order]
    rows = Rows.of(pid, t, batch.value[order], batch.status[order])
    ctx = BatchContext.of(rows, engine.registry, engine.params, engine.state.last_value)
    upper, lower = engine.reach.reached(ctx)
    return not (upper or lower)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", type=Path, required=True)
    parser.add_argument("--cycles", type=int, default=900)
    parser.add_argument("--batch-cycles", type=int, default=1)
    args = parser.parse_args()
    trace = Trace(args.trace)
    registry = registry_of(trace)
    clock = Clock()
    engine_module.FAMILIES = tuple(clock.wrap(f) for f in FAMILIES)  # type: ignore[misc]
    engine = AlarmEngine(registry)
    print(f"trace {args.trace}: {registry.size - 1} points, first {args.cycles} cycles, "
          f"{args.batch_cycles} per batch; load average at start "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip
    batches = {True: 0, False: 0}
    total = 0.0
    seen = 0
    for chunk, k in cycle_batches(trace, args.batch_cycles):
        if seen >= args.cycles:
            break
        seen += k
        batch = ReadingBatch(chunk.time_us, chunk.point + 1, chunk.value, chunk.status,
                             np.zeros(len(chunk), np.int16))  # fmt: skip
        clock.quiet = quiet_batch(engine, batch)
        batches[clock.quiet] += 1
        started = time.process_time()
        engine.commit(engine.evaluate(batch))
        engine.commit(engine.tick(int(chunk.time_us[-1])))
        total += time.process_time() - started
    print(f"batches: {batches[True]} quiet, {batches[False]} not; engine {total:.2f} CPU s "
          f"({total / max(1, sum(batches.values())) * 1e3:.2f} ms per batch); load average at "
          f"end {', '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip
    print(f"{'family':<14} {'share':>6} {'quiet us/batch':>15} {'other us/batch':>15}")
    for family in FAMILIES:
        q = clock.seconds.get((family.name, True), 0.0)
        o = clock.seconds.get((family.name, False), 0.0)
        print(f"{family.name:<14} {(q + o) / total:>6.1%} "
              f"{q / max(1, batches[True]) * 1e6:>15.0f} "
              f"{o / max(1, batches[False]) * 1e6:>15.0f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
