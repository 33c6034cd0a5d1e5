"""Micro-benchmark: readings/s through AlarmEngine.evaluate vs a per-reading Python loop.

Both run the threshold rules (upper alarm and power-off, hysteresis, confirmation by a second
reading unless the previous one was at the ramp level, episode statistics) on the same data:
2,000 methane points x 3,600 one-second samples, laid out as the gateway receives them (each
polling cycle, all points). The engine evaluates every other rule family as well
(pre-warnings, calibration, faults, flat-line, drift, feed, interruption). The episode counts
of both are compared, so the two implementations are checked against each other too.

    .venv/bin/python bench/alarm_engine.py [--points 2000] [--samples 3600] [--batch 60]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

# Run as a script: import from the repository, not from bench/ (whose other scripts would
# shadow packages). Imported as ``bench.alarm_engine`` (by alarms.evaluate): leave sys.path.
if not __package__:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from alarms.engine import AlarmEngine
from ingest.batch import ReadingBatch
from minewatch.registry import PointRegistry

ALARM, ALARM_CLEAR, POWER_OFF, RESTORE = 1.0, 0.9, 1.5, 1.0
T0 = 1_780_000_000_000_000


def make_data(points: int, samples: int, seed: int = 1) -> np.ndarray:
    """values[sample, point]: AR(1) noise around a baseline, excursions and spikes."""
    rng = np.random.default_rng(seed)
    baseline = rng.uniform(0.1, 0.5, points)
    noise = np.empty((samples, points))
    ar = np.zeros(points)
    for k in range(samples):
        ar = 0.9 * ar + np.sqrt(1 - 0.81) * rng.standard_normal(points)
        noise[k] = ar
    values = baseline + 0.04 * noise
    for _ in range(points // 2):  # excursions: trapezoids of 10..300 s up to 0.9..2.2 %
        p, start = rng.integers(points), rng.integers(samples - 300)
        length = int(rng.integers(10, 300))
        shape = np.minimum(1.0, np.minimum(np.arange(length) + 1, length - np.arange(length)) / 5)
        values[start : start + length, p] += shape * rng.uniform(0.6, 1.9)
    spikes = rng.integers(0, samples * points, points)  # single-sample interference
    values.reshape(-1)[spikes] += 3.0
    return np.round(np.clip(values, 0.0, 4.0), 2)


def registry(points: int) -> PointRegistry:
    frame = pd.DataFrame({
        "id": np.arange(1, points + 1), "mine_code": "141024010001",
        "code": [f"P{i}" for i in range(1, points + 1)], "sensor_type": "0001",
        "value_type": "MN", "range_low": 0.0, "range_high": 4.0, "alarm_high": ALARM,
        "alarm_high_clear": ALARM_CLEAR, "poweroff_high": POWER_OFF, "restore_high": RESTORE,
    })  # fmt: skip
    return PointRegistry.from_frame(frame)


def batches(values: np.ndarray, cycles: int) -> list[ReadingBatch]:
    samples, points = values.shape
    pid = np.tile(np.arange(1, points + 1, dtype=np.int32), cycles)
    out = []
    for k in range(0, samples, cycles):
        block = values[k : k + cycles]
        n = block.size
        times = T0 + (k + np.repeat(np.arange(len(block)), points)) * 1_000_000
        zeros = np.zeros(n, np.int16)
        out.append(ReadingBatch(times.astype(np.int64), pid[:n], block.ravel(), zeros, zeros))
    return out


def run_engine(values: np.ndarray, cycles: int) -> tuple[float, dict[str, int]]:
    engine = AlarmEngine(registry(values.shape[1]))
    work = batches(values, cycles)
    opened: dict[str, int] = {}
    started = time.perf_counter()
    for batch in work:
        evaluation = engine.evaluate(batch)
        engine.commit(evaluation)
        for change in evaluation.changes:
            if change.opened:
                opened[change.rule] = opened.get(change.rule, 0) + 1
    return time.perf_counter() - started, opened


def run_python(values: np.ndarray) -> tuple[float, dict[str, int]]:
    """The same two rules, one reading at a time, state in per-point lists."""
    samples, points = values.shape
    times = np.repeat(T0 + np.arange(samples, dtype=np.int64) * 1_000_000, points)
    pids = np.tile(np.arange(points), samples)
    levels = {
        "upper_alarm": ([ALARM] * points, [ALARM_CLEAR] * points, [float("nan")] * points),
        "power_off": ([POWER_OFF] * points, [RESTORE] * points, [ALARM] * points),
    }
    return threshold_loop(times.tolist(), pids.tolist(), values.ravel().tolist(), levels)


#: rule -> (set level, clear level, ramp level) per point index; NaN set level = rule off.
Levels = dict[str, tuple[list[float], list[float], list[float]]]


def threshold_loop(
    times: list[int], points: list[int], values: list[float], levels: Levels
) -> tuple[float, dict[str, int]]:
    """Upper threshold rules with hysteresis and confirmation, one reading at a time.

    Readings in time order (``points`` index the per-point ``levels`` lists), state in
    per-point lists: the straightforward implementation the engine is measured against
    (``alarms.evaluate`` runs it on a recorded trace). Returns (seconds, episodes opened).
    """
    size = len(next(iter(levels.values()))[0]) if levels else 0
    rules = [(name, *lv) for name, lv in levels.items()]
    opened = {name: 0 for name, *_ in rules}
    state = {
        name: {"on": [False] * size, "active": [False] * size, "n": [0] * size,
               "need": [2] * size, "start": [0] * size, "stats": [None] * size}
        for name, *_ in rules
    }  # fmt: skip
    episodes: list[tuple[object, ...]] = []
    prev = [float("nan")] * size
    started = time.perf_counter()
    for t, p, v in zip(times, points, values, strict=True):
        for name, set_levels, clear_levels, ramp_levels in rules:
            s = state[name]
            if not s["on"][p]:
                if v >= set_levels[p]:
                    s["on"][p] = True
                    s["n"][p] = 1
                    s["start"][p] = t
                    s["need"][p] = 1 if prev[p] >= ramp_levels[p] else 2
                    s["stats"][p] = [v, v, t, v, t, 1]  # sum, max, max_at, min, min_at, n
                else:
                    continue
            elif v < clear_levels[p]:
                if s["active"][p]:
                    episodes.append((p, name, s["start"][p], t, *s["stats"][p]))
                s["on"][p] = s["active"][p] = False
                continue
            else:
                s["n"][p] += 1
                st = s["stats"][p]
                st[0] += v
                st[5] += 1
                if v > st[1]:
                    st[1], st[2] = v, t
                if v < st[3]:
                    st[3], st[4] = v, t
            if not s["active"][p] and s["n"][p] >= s["need"][p]:
                s["active"][p] = True
                opened[name] += 1
        prev[p] = v
    return time.perf_counter() - started, opened


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=3600)
    parser.add_argument("--batch", type=int, default=60, help="polling cycles per batch")
    args = parser.parse_args()
    values = make_data(args.points, args.samples)
    n = values.size
    print(f"{args.points} points x {args.samples} samples = {n:,} readings")
    results = {}
    for label, cycles in ((f"engine, batches of {args.batch} cycles", args.batch),
                          ("engine, one batch (replay)", args.samples)):  # fmt: skip
        seconds, opened = run_engine(values, cycles)
        results[label] = (seconds, opened)
        print(f"{label:<38} {n / seconds / 1e6:8.2f} M readings/s  ({seconds:.2f} s)  {opened}")
    py_seconds, py_opened = run_python(values)
    print(f"{'pure Python, per reading':<38} {n / py_seconds / 1e6:8.2f} M readings/s  "
          f"({py_seconds:.2f} s)  {py_opened}")  # fmt: skip
    for label, (seconds, opened) in results.items():
        same = all(opened.get(rule, 0) == count for rule, count in py_opened.items())
        print(f"ratio ({label}): {py_seconds / seconds:.1f}x; same episodes: {same}")


if __name__ == "__main__":
    main()
