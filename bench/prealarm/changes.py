"""Every pre-alarm change of a recorded trace, one JSON line each (point id, raised_us,
cleared_us, level, forecast, predicted_us, horizon_s, floats with all their digits): the trace
replayed through ``AlarmEngine`` as ``minewatch evaluate`` does (``cycles`` polling cycles per
batch, default 1, the clock at each batch's last reading). Two checkouts' outputs compared with
``cmp`` show whether a change of the forecaster moved any pre-alarm (docs/benchmarks.md
"Session 6: the forecaster's cost").

    python bench/prealarm/changes.py TRACE OUT.jsonl [cycles]
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

# Run as a script, sys.path[0] is bench/prealarm/: import from the repository root instead.
if not __package__:
    sys.path[0] = str(Path(__file__).resolve().parents[2])

from minewatch.alarms.engine import AlarmEngine
from minewatch.alarms.evaluation.run import cycle_batches, registry_of
from minewatch.batch import ReadingBatch
from minewatch.trace import Trace


def main(argv: list[str]) -> int:
    trace = Trace(Path(argv[0]))
    engine = AlarmEngine(registry_of(trace))
    lines = []
    for chunk, _ in cycle_batches(trace, int(argv[2]) if len(argv) > 2 else 1):
        zeros = np.zeros(len(chunk), np.int16)
        batch = ReadingBatch(chunk.time_us, chunk.point + 1, chunk.value, chunk.status, zeros)
        evaluation = engine.evaluate(batch)
        engine.commit(evaluation)
        if evaluation.prealarm is not None:
            lines += [json.dumps(dataclasses.astuple(c)) for c in evaluation.prealarm.changes]
        engine.commit(engine.tick(int(chunk.time_us[-1])))
    Path(argv[1]).write_text("".join(f"{line}\n" for line in lines))
    print(f"{len(lines)} pre-alarm changes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
