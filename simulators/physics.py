"""Gas physics of the simulated mine, on (cycles x points) numpy arrays.

* The production cycle (三八制) as an emission factor per working: maintenance level outside
  cutting, ramps at shift handovers, a triangular swing over a shearer pass (longwall) or a
  cut-and-bolt cycle (heading), each working with its own phase.
* AR(1) processes in time (measurement noise, slow emission variability): a loop over the
  cycles of a block with numpy over all points inside (about 3 us per cycle for 2,000 points).
* The airflow network: each methane point carries ``share`` of its upstream methane point's
  level, ``delay`` cycles later, averaged over a dispersion window. Points are processed in
  topological order; a history of the last cycles makes blocks join seamlessly, so the result
  does not depend on how the run is cut into blocks.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from minewatch.simulators.config import MineConfig, ProductionConfig

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Edges:
    """Airflow links between methane points, sorted so that sources come before targets."""

    src: IntArray
    dst: IntArray
    share: FloatArray
    delay: IntArray  # cycles
    window: IntArray  # cycles of the dispersion moving average (>= 1)

    @property
    def history(self) -> int:
        """Cycles of past levels a block needs to evaluate every edge."""
        if not len(self.src):
            return 1
        return int((self.delay + self.window).max())

    def downstream_of(self, point: int) -> list[int]:
        """Every point the air from ``point`` reaches, in processing order."""
        reached = {point}
        out = []
        for s, d in zip(self.src.tolist(), self.dst.tolist(), strict=True):
            if s in reached and d not in reached:
                reached.add(d)
                out.append(d)
        return out


def build_edges(config: MineConfig, is_methane: npt.NDArray[np.bool_]) -> Edges:
    """Edges between consecutive methane points of every roadway, topologically sorted."""
    cycle_s = config.simulation.cycle_s
    raw: dict[tuple[int, int], tuple[float, int, int]] = {}
    for roadway in config.roadways:
        gas = [
            (config.resolve(ref), delay)
            for ref, delay in zip(roadway.points, roadway.delays_s, strict=True)
            if is_methane[config.resolve(ref)]
        ]
        for (a, ta), (b, tb) in itertools.pairwise(gas):
            delay = max(0, round((tb - ta) / cycle_s))
            window = max(1, round(roadway.dispersion * (tb - ta) / cycle_s))
            raw[(a, b)] = (roadway.share, delay, window)
    order = _topological_order(len(is_methane), list(raw))
    rank = {p: i for i, p in enumerate(order)}
    pairs = sorted(raw, key=lambda e: (rank[e[1]], rank[e[0]]))
    return Edges(
        src=np.array([a for a, _ in pairs], np.int64),
        dst=np.array([b for _, b in pairs], np.int64),
        share=np.array([raw[e][0] for e in pairs], np.float64),
        delay=np.array([raw[e][1] for e in pairs], np.int64),
        window=np.array([raw[e][2] for e in pairs], np.int64),
    )


def _topological_order(n: int, pairs: list[tuple[int, int]]) -> list[int]:
    incoming = [0] * n
    targets: dict[int, list[int]] = {}
    for a, b in pairs:
        incoming[b] += 1
        targets.setdefault(a, []).append(b)
    ready = [p for p in range(n) if incoming[p] == 0]
    order = []
    while ready:
        p = ready.pop()
        order.append(p)
        for q in targets.get(p, []):
            incoming[q] -= 1
            if incoming[q] == 0:
                ready.append(q)
    if len(order) != n:
        raise ValueError("the roadways' airflow has a loop between methane points")
    return order


def local_baseline(baseline: FloatArray, edges: Edges) -> FloatArray:
    """The part of each point's typical level that is emitted at the point itself.

    The configured baseline is what the sensor typically reads; what arrives from upstream
    (share x upstream baseline) is taken off so the total stays at the configured level.
    """
    local = baseline.copy()
    np.subtract.at(local, edges.dst, edges.share * baseline[edges.src])
    if np.any(local < -1e-9):
        bad = np.flatnonzero(local < -1e-9).tolist()
        raise ValueError(f"points {bad}: baseline below what the air brings from upstream")
    return np.maximum(local, 0.0)


def propagate(full: FloatArray, start: int, edges: Edges) -> None:
    """Add upstream levels to ``full[start:]`` in place, edge by edge.

    ``full`` is (history + block) x points; rows before ``start`` are final. For an edge
    u -> d with delay k and window w, row t gains ``share * mean(full[t-k-w+1 : t-k+1, u])``.
    """
    rows = full.shape[0] - start
    for s, d, share, k, w in zip(
        edges.src.tolist(), edges.dst.tolist(), edges.share.tolist(),
        edges.delay.tolist(), edges.window.tolist(), strict=True,
    ):  # fmt: skip
        lo = start - k - w + 1
        column = full[max(lo, 0) : start + rows - k, s]
        if lo < 0:
            column = np.concatenate([np.zeros(-lo), column])
        sums = np.cumsum(column)
        mean = np.empty(rows)
        mean[0] = sums[w - 1]
        mean[1:] = sums[w:] - sums[:-w]
        full[start:, d] += share * mean / w


def production_factor(
    config: ProductionConfig,
    clock_s: FloatArray,
    kind_heading: npt.NDArray[np.bool_],
    phase_s: FloatArray,
) -> FloatArray:
    """Emission factor (cycles x workings): 1 while cutting on average, lower otherwise."""
    shift_s = config.shift_hours * 3600.0
    since = np.mod(clock_s - config.first_shift_start_h * 3600.0, 86400.0)
    shift = np.floor(since / shift_s).astype(np.int64)
    into = since - shift * shift_s
    cutting = np.isin(shift, config.cutting_shifts)
    edge = np.minimum(into - config.handover_s, shift_s - config.handover_s - into)
    on = np.where(cutting, np.clip(edge / config.ramp_s, 0.0, 1.0), 0.0)[:, None]
    period = np.where(kind_heading, config.heading_cycle_s, config.shearer_pass_s)[None, :]
    x = np.mod(clock_s[:, None] + phase_s[None, :], period) / period
    wave = 1.0 - 4.0 * np.abs(x - 0.5)  # triangle in [-1, 1]
    cut = 1.0 + config.amplitude * wave
    level = config.maintenance_level
    return level + (1.0 - level) * on * cut


def cutting(config: ProductionConfig, clock_s: FloatArray) -> npt.NDArray[np.bool_]:
    """Per cycle: the production cycle cuts (a cutting shift, past the handover at its start
    and before the one at its end): where :func:`production_factor` is above the
    maintenance level. What a shearer's on/off point (设备开停) shows."""
    shift_s = config.shift_hours * 3600.0
    since = np.mod(clock_s - config.first_shift_start_h * 3600.0, 86400.0)
    shift = np.floor(since / shift_s).astype(np.int64)
    into = since - shift * shift_s
    edge = np.minimum(into - config.handover_s, shift_s - config.handover_s - into)
    return np.isin(shift, config.cutting_shifts) & (edge > 0)


def ar1(shocks: FloatArray, state: FloatArray, phi: float) -> FloatArray:
    """Unit-variance AR(1) along axis 0, continuing from ``state`` (updated in place)."""
    out = np.empty_like(shocks)
    scale = np.sqrt(1.0 - phi * phi)
    x = state
    for i in range(shocks.shape[0]):
        x = phi * x + scale * shocks[i]
        out[i] = x
    state[:] = x
    return out


def hysteresis(
    value: FloatArray, set_level: FloatArray, clear_level: FloatArray, prev: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """Latch per column: on at ``value >= set``, off below ``clear``, else as before.

    Two ``maximum.accumulate`` passes over index arrays (docs: CONVENTIONS, columns).
    """
    rows = np.arange(value.shape[0])[:, None]
    with np.errstate(invalid="ignore"):
        sets = np.where(value >= set_level, rows, -2)
        clears = np.where(value < clear_level, rows, -2)
    sets = np.maximum(sets, np.where(prev, -1, -2)[None, :])
    clears = np.maximum(clears, np.where(prev, -2, -1)[None, :])
    return np.maximum.accumulate(sets, axis=0) > np.maximum.accumulate(clears, axis=0)
