"""Benchmark: readings/s through AlarmEngine against the per-reading reference, same run.

The engine (numpy, every rule family) and :mod:`alarms.reference` (the same rules in pure
Python, one reading at a time) evaluate the same batches, with the clock (``tick``) at each
batch's last event time, as ``minewatch evaluate`` does. The data: methane points (AR(1) noise,
excursions, interference spikes, disconnections, test gas flagged, declared and undeclared,
over-range, substation faults, negative drift, stuck sensors, silences), a few oxygen points
(lower alarm and pre-warning) and feed points on D relations (馈电异常). The episodes of both
are counted per rule and must be equal: the benchmark is a correctness check too.

    .venv/bin/python bench/alarm_engine.py [--points 2000] [--samples 1200] [--batches 1,60,replay]
    .venv/bin/python bench/alarm_engine.py --trace TRACE [--cycles 600] [--batches 1,10,60,600]

Times are CPU seconds of this process (``time.process_time``): the machines are shared, and
wall time would count the other processes' work; both sides are timed the same way.

With ``--trace``, a recorded trace (``minewatch.simulators.trace record``) is replayed instead:
its first ``--cycles`` polling cycles, as ``minewatch evaluate`` cuts them. Each batch size is
one row of the table (engine and reference rates, their ratio), so the cross-over is visible.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

# Run as a script, sys.path[0] is bench/: import from the repository root instead.
if not __package__:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from minewatch.alarms.engine import AlarmEngine
from minewatch.alarms.episodes import Episode, EpisodeLog
from minewatch.alarms.evaluation.run import cycle_batches, registry_of
from minewatch.alarms.prealarms import PrealarmParams
from minewatch.alarms.reference import ReferenceEngine
from minewatch.batch import ReadingBatch
from minewatch.registry import CalibrationWindows, PointRegistry
from minewatch.trace import Trace

ALARM, ALARM_CLEAR, POWER_OFF, RESTORE = 1.0, 0.9, 1.5, 1.0
PREWARN, PREWARN_CLEAR = 0.8, 0.75
T0 = 1_780_000_000_000_000
S = 1_000_000
MINE = "141024010001"
DISCONNECTED, OVER_RANGE, SUBSTATION_FAULT, CALIBRATION = 128, 8, 16, 4


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


Plan = list[tuple[ReadingBatch, int]]  # batches, each with the clock after it


class Workload:
    """Points 1..n (methane, then oxygen, then feed points), values[sample, point - 1] (NaN: no
    reading) and status bits, and the declared calibration windows."""

    def __init__(self, points: int, samples: int, seed: int = 1) -> None:
        self.samples = samples
        self.methane = points
        self.oxygen = max(1, points // 50)
        self.feeds = max(1, points // 100)
        rng = np.random.default_rng(seed + 1)
        oxygen = 20.5 + 0.05 * rng.standard_normal((samples, self.oxygen))
        for p in range(self.oxygen):
            for _ in range(3):  # dips to the pre-warning and alarm levels
                start, length = rng.integers(samples), int(rng.integers(10, 200))
                oxygen[start : start + length, p] -= rng.uniform(1.5, 3.2)
        feed = np.ones((samples, self.feeds))
        for p in range(self.feeds):
            for _ in range(2):  # the feed cut: the switch reads 0
                start = rng.integers(samples)
                feed[start : start + int(rng.integers(30, 300)), p] = 0.0
        methane = make_data(points, samples, seed)
        self.values = np.hstack([methane, np.round(oxygen, 2), feed])
        self.status = np.zeros(self.values.shape, np.int16)
        self.windows: list[tuple[int, int, int]] = []
        self._events(rng)
        # D relations from methane points spread over the mine to the feed points
        self.sources = np.linspace(1, points, self.feeds, dtype=np.int64).tolist()

    def _events(self, rng: np.random.Generator) -> None:
        """Faults, test gas and silences on the methane points, ``points // 20`` of each."""
        v, s = self.values, self.status

        def stretch(low: int, high: int) -> tuple[slice, int]:
            length = int(rng.integers(low, high))
            start = int(rng.integers(0, max(1, self.samples - length)))
            return slice(start, start + length), int(rng.integers(self.methane))

        for _ in range(max(1, self.methane // 20)):
            rows, p = stretch(5, 60)
            v[rows, p], s[rows, p] = 0.0, DISCONNECTED
            rows, p = stretch(3, 20)
            v[rows, p], s[rows, p] = 4.0, OVER_RANGE
            rows, p = stretch(5, 30)
            s[rows, p] |= SUBSTATION_FAULT
            rows, p = stretch(20, 120)  # test gas with the calibration bit
            v[rows, p], s[rows, p] = 2.0, CALIBRATION
            rows, p = stretch(5, 60)  # test gas, neither flagged nor declared
            v[rows, p] = 2.0
            rows, p = stretch(3, 30)  # below the range bottom
            v[rows, p] = -0.02
            rows, p = stretch(70, 200)  # a stuck sensor
            v[rows, p] = v[rows.start, p]
            rows, p = stretch(5, 100)  # silence: no readings
            v[rows, p] = np.nan
            rows, p = stretch(20, 120)  # declared (报备) test gas
            v[rows, p] = 1.5
            start, end = T0 + rows.start * S, T0 + rows.stop * S
            self.windows.append((p + 1, start, end))

    def registry(self) -> PointRegistry:
        m, o, f = self.methane, self.oxygen, self.feeds
        n = m + o + f
        kind = np.array(["methane"] * m + ["oxygen"] * o + ["feed"] * f)

        def per_kind(methane: object, oxygen: object, feed: object) -> list[object]:
            return [{"methane": methane, "oxygen": oxygen, "feed": feed}[k] for k in kind]

        nan = np.nan
        relations: list[object] = [None] * n
        for i, source in enumerate(self.sources):
            relations[source - 1] = [{"kind": "D", "target": f"F{i + 1}"}]
        codes = [f"P{i}" for i in range(1, m + o + 1)] + [f"F{i}" for i in range(1, f + 1)]
        frame = pd.DataFrame({
            "id": np.arange(1, n + 1), "mine_code": MINE, "code": codes,
            "sensor_type": per_kind("0001", "0012", "1011"),
            "value_type": per_kind("MN", "MN", "KG"),
            "range_low": per_kind(0.0, 0.0, nan), "range_high": per_kind(4.0, 25.0, nan),
            "alarm_high": per_kind(ALARM, nan, nan),
            "alarm_high_clear": per_kind(ALARM_CLEAR, nan, nan),
            "poweroff_high": per_kind(POWER_OFF, nan, nan),
            "restore_high": per_kind(RESTORE, nan, nan),
            "prewarn_high": per_kind(PREWARN, nan, nan),
            "prewarn_high_clear": per_kind(PREWARN_CLEAR, nan, nan),
            "alarm_low": per_kind(nan, 18.0, nan), "alarm_low_clear": per_kind(nan, 18.5, nan),
            "prewarn_low": per_kind(nan, 19.0, nan),
            "prewarn_low_clear": per_kind(nan, 19.5, nan),
            "poll_cycle_s": 1.0, "flatline_samples": per_kind(60.0, 60.0, nan),
            "relations": relations,
        })  # fmt: skip
        return PointRegistry.from_frame(frame, CalibrationWindows.from_rows(self.windows))

    def batches(self, cycles: int) -> Plan:
        """Batches of ``cycles`` polling cycles (each cycle all points, as the gateway gets
        them), each with the clock at its last event time."""
        n = self.values.shape[1]
        out = []
        for k in range(0, self.samples, cycles):
            block = self.values[k : k + cycles].ravel()
            keep = ~np.isnan(block)
            rows = len(block) // n
            times = T0 + (k + np.repeat(np.arange(rows), n)) * S
            pid = np.tile(np.arange(1, n + 1, dtype=np.int32), rows)
            status = self.status[k : k + cycles].ravel()
            batch = ReadingBatch(
                times[keep].astype(np.int64), pid[keep], block[keep], status[keep],
                np.zeros(int(keep.sum()), np.int16),
            )  # fmt: skip
            out.append((batch, int(times[-1])))
        return out


def run_engine(
    registry: PointRegistry, work: Plan, prealarms: bool = True
) -> tuple[float, list[Episode]]:
    """CPU seconds in evaluate + commit + tick, and the episodes assembled from the changes;
    without ``prealarms``, the forecaster is off in every mine (the reference has none)."""
    off = PrealarmParams(enabled=False)
    params = {} if prealarms else {str(m): off for m in np.unique(registry.mine_code[1:])}
    engine = AlarmEngine(registry, prealarm_params=params)
    changes = []
    started = time.process_time()
    for batch, now in work:
        evaluation = engine.evaluate(batch)
        engine.commit(evaluation)
        changes.append(evaluation.changes)
        evaluation = engine.tick(now)
        engine.commit(evaluation)
        changes.append(evaluation.changes)
    seconds = time.process_time() - started
    log = EpisodeLog()
    for batch_changes in changes:
        log.apply(batch_changes)
    return seconds, log.episodes


def run_reference(registry: PointRegistry, work: Plan) -> tuple[float, list[Episode]]:
    """CPU seconds through the per-reading reference (building it included), its episodes."""
    started = time.process_time()
    reference = ReferenceEngine(registry)
    for batch, now in work:
        reference.evaluate(batch)
        reference.tick(now)
    return time.process_time() - started, reference.episodes()


def count(episodes: list[Episode]) -> Counter[str]:
    """Episodes per rule (and per classification where a rule has several)."""
    out: Counter[str] = Counter(e.rule for e in episodes)
    for e in episodes:
        if e.rule in (
            "upper_alarm",
            "power_off",
            "upper_prewarn",
            "calibration",
            "data_interruption",
        ):
            out[f"  {e.rule}: {e.classification}"] += 1
    return out


def trace_work(path: Path, cycles: int) -> tuple[PointRegistry, Callable[[int], Plan]]:
    """The registry of a recorded trace and its first ``cycles`` polling cycles, cut into
    batches of a given number of cycles (as ``minewatch evaluate`` replays it)."""
    trace = Trace(path)
    registry = registry_of(trace)

    def plan(per_batch: int) -> Plan:
        out: Plan = []
        seen = 0
        for chunk, k in cycle_batches(trace, per_batch):
            if seen >= cycles:
                break
            seen += k
            zeros = np.zeros(len(chunk), np.int16)
            batch = ReadingBatch(chunk.time_us, chunk.point + 1, chunk.value, chunk.status, zeros)
            out.append((batch, int(chunk.time_us[-1])))
        return out

    return registry, plan


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=2000, help="methane points")
    parser.add_argument("--samples", type=int, default=1200, help="polling cycles of 1 s")
    parser.add_argument(
        "--batches", default="1,60,replay",
        help="polling cycles per batch, comma-separated ('replay': every cycle in one batch)",
    )  # fmt: skip
    parser.add_argument("--trace", type=Path, help="a recorded trace instead of the workload")
    parser.add_argument("--cycles", type=int, default=600, help="with --trace: its first cycles")
    parser.add_argument(
        "--without-prealarms", action="store_true",
        help="also time the engine with the pre-alarm forecaster off (the reference has none)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.trace is not None:
        registry, make_plan = trace_work(args.trace, args.cycles)
        total_cycles = args.cycles
        print(f"trace {args.trace}: {registry.size - 1} points, first {args.cycles} cycles")
    else:
        if args.samples <= 600 or args.points < 10:
            parser.error("--samples must exceed 600 (excursions last up to 300 cycles), "
                         "--points >= 10")  # fmt: skip
        work = Workload(args.points, args.samples)
        registry, make_plan, total_cycles = work.registry(), work.batches, args.samples
        print(f"{args.points} methane + {work.oxygen} oxygen + {work.feeds} feed points x "
              f"{args.samples} cycles")  # fmt: skip
    sizes = [total_cycles if b == "replay" else int(b) for b in args.batches.split(",")]
    print(f"load average at start: {_load()}")
    counts: dict[tuple[str, int], Counter[str]] = {}
    same = True
    runs: list[tuple[str, Callable[..., tuple[float, list[Episode]]]]] = [
        ("engine", run_engine), ("reference", run_reference),
    ]  # fmt: skip
    if args.without_prealarms:
        runs.append(("no pre-alarms", lambda r, w: run_engine(r, w, prealarms=False)))
    extra = f" {'no pre-alarms M/s':>17} {'ratio':>7}" if args.without_prealarms else ""
    header = (f"{'cycles/batch':>12} {'readings/batch':>14} {'engine M/s':>11} "
              f"{'reference M/s':>13} {'ratio':>7}{extra}  same episodes")  # fmt: skip
    print(header)
    for cycles in sizes:
        plan = make_plan(cycles)
        n = sum(len(batch) for batch, _ in plan)
        rate = {}
        for name, run in runs:
            seconds, episodes = run(registry, plan)
            counts[name, cycles] = count(episodes)
            rate[name] = n / seconds / 1e6
        agree = all(counts[name, cycles] == counts["reference", cycles] for name, _ in runs)
        same &= agree
        more = ""
        if args.without_prealarms:
            bare = rate["no pre-alarms"]
            more = f" {bare:>17.3f} {bare / rate['reference']:>6.1f}x"
        print(f"{cycles:>12} {n / len(plan):>14,.0f} {rate['engine']:>11.3f} "
              f"{rate['reference']:>13.3f} {rate['engine'] / rate['reference']:>6.1f}x{more}  "
              f"{agree}", flush=True)  # fmt: skip
    print(f"load average at end: {_load()}")
    print()
    rules = sorted(set().union(*counts.values()), key=lambda r: (r.strip().split(":")[0], r))
    print(f"{'episodes':<42}" + "".join(f"{name:>11}" for name, _ in counts))
    print(f"{'cycles/batch':<42}" + "".join(f"{c:>11}" for _, c in counts))
    for rule in rules:
        print(f"{rule:<42}" + "".join(f"{c[rule]:>11}" for c in counts.values()))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
