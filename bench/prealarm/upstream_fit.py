"""The upstream experiment of the pre-alarm forecaster (issue 17), on the development traces
only: fit, per airflow pair (upstream methane point -> downstream methane point, transport
delay ``d`` from the mine definition), the share of an upstream rise that arrives downstream,
by least squares of ``down(t + d) - down(t)`` on ``up(t) - up(t - d)`` over the readings
where the upstream rose by more than ``MIN_RISE`` (1 s readings, median of three); then run
the development grid with those shares as the per-pair gains of the upstream term.

    python bench/prealarm/upstream_fit.py /tmp/pa-dev-11.trace /tmp/pa-dev-12.trace ...

Prints the shares and, per scale of the shares, the same figures as bench/prealarm/tune.py.
"""

from __future__ import annotations

import dataclasses
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

if not __package__:  # run as a script: import from the repository root
    sys.path[0] = str(Path(__file__).resolve().parents[2])

from minewatch.alarms.evaluation import run as evaluation_run
from minewatch.alarms.evaluation.run import prealarm_report, replay
from minewatch.alarms.prealarms import PrealarmParams, PrealarmPoints
from minewatch.trace import Trace

MIN_RISE = 0.1  # %CH4 over the delay: only rises fit the share


def series(trace: Trace) -> tuple[np.ndarray, np.ndarray]:
    """(cycle times in s, values: cycles x points; NaN: missing or a fault)."""
    n = len(trace.codes)
    times: list[np.ndarray] = []
    values: list[np.ndarray] = []
    for chunk in trace.chunks():
        cycles = np.unique(chunk.time_us)
        grid = np.full((len(cycles), n), np.nan)
        row = np.searchsorted(cycles, chunk.time_us)
        ok = chunk.status == 0
        grid[row[ok], chunk.point[ok]] = chunk.value[ok]
        times.append((cycles - trace.start_us) / 1e6)
        values.append(grid)
    return np.concatenate(times), np.vstack(values)


def fit(traces: list[Trace]) -> dict[tuple[str, str], float]:
    xs: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)
    ys: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)
    for trace in traces:
        _, v = series(trace)
        index = {c: i for i, c in enumerate(trace.codes)}
        for p in trace.definition.points:
            for path in p.downstream:
                u, w, d = index[p.code], index.get(path.target), round(path.delay_s)
                if w is None or d < 1:
                    continue
                up, down = v[:, u], v[:, w]
                x = up[d : len(up) - d] - up[: len(up) - 2 * d]  # up(t) - up(t - d)
                y = down[2 * d :] - down[d : len(down) - d]  # down(t + d) - down(t)
                keep = np.isfinite(x) & np.isfinite(y) & (x > MIN_RISE)
                xs[(p.code, path.target)].append(x[keep])
                ys[(p.code, path.target)].append(y[keep])
    shares = {}
    for key in xs:
        x, y = np.concatenate(xs[key]), np.concatenate(ys[key])
        shares[key] = float(np.clip((x @ y) / (x @ x), 0.0, 1.0)) if len(x) > 30 else 0.0
    return shares


def main(argv: list[str]) -> int:
    traces = [Trace(Path(p)) for p in argv]
    shares = fit(traces)
    for (u, w), s in sorted(shares.items()):
        print(f"share {u[-6:]} -> {w[-6:]}: {s:.3f}")
    original = PrealarmPoints.of
    for scale in (0.5, 1.0, 1.5):

        def of(registry, per_mine=None, default=None, scale=scale):  # type: ignore[no-untyped-def]
            pts = original(registry, per_mine, default)
            codes = registry.code
            gain = np.array([scale * shares.get((str(codes[u]), str(codes[d])), 0.0)
                             for d, u in zip(pts.up_down, pts.up_src, strict=True)])  # fmt: skip
            return dataclasses.replace(pts, up_gain=gain)

        evaluation_run.PrealarmPoints.of = of  # type: ignore[method-assign]
        params = PrealarmParams(upstream_gain=1.0)  # pairs on; gains replaced by the shares
        false = 0
        weeks = 0.0
        found: dict[str, list[float]] = defaultdict(list)
        total: dict[str, int] = defaultdict(int)
        for trace in traces:
            result = replay(trace, batch_cycles=300, python_cycles=0, prealarm=params)
            r = prealarm_report(trace, result, params)["minewatch"]
            assert isinstance(r, dict)
            false += r["false"]
            weeks += r["sensor_weeks"]
            for e in r["events"]:
                total[e["category"]] += 1
                if e["lead_s"] is not None:
                    found[e["category"]].append(e["lead_s"])
        parts = [f"false/sw {false / weeks:.2f} ({false})"]
        for cat in ("accumulation", "fan_stop", "exceedance"):
            leads = found[cat]
            mean = round(float(np.mean(leads))) if leads else None
            parts.append(f"{cat} {len(leads)}/{total[cat]} mean {mean}")
        print("scale", scale, " ".join(parts), flush=True)
    evaluation_run.PrealarmPoints.of = original  # type: ignore[method-assign]
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
