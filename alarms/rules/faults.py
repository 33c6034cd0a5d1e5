"""Fault states as maintenance episodes, never gas alarms.

* status bits: 128 传感器故障/断线 -> ``disconnection`` (YCBJ 004; the simulator and the
  platforms mark a disconnected sensor with bit 128, its value at the range bottom), 8 超量程
  -> ``over_range`` (YCBJ 008), 16 分站故障 -> ``substation_fault`` (M04). Raised at the first
  flagged reading, cleared at the first reading without the bit.
* ``negative_drift`` (负漂, M01): ``drift_samples`` consecutive valid analog readings below the
  range bottom (or below 0 where a negative lower alarm, the platforms' -0.01, marks a drift
  detector); cleared by a reading at or above it unless a drifting reading follows within
  ``drift_off_delay_s`` (an off-delay: a sensor hovering at its range bottom would chatter).
* ``flatline`` (stuck sensor, M02): ``flatline_samples`` identical consecutive valid readings of
  an analog point (zero variance over the window), counted across batches; raised at the
  N-th identical reading, cleared by the first different one.

A fault reading holds the gas rules (see :mod:`alarms.rules.context`), except over-range: a
methane sensor pinned at its top is still above every gas level, and recall comes first.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from minewatch.alarms.rules.context import BatchContext
from minewatch.alarms.rules.params import PointParams
from minewatch.alarms.rules.run_state import BoolArray, Rows, RunOutcome, RunState, quiet
from minewatch.alarms.rules.runs import evaluate_runs
from minewatch.alarms.small import every, some
from minewatch.codes import PointStatus

STATUS_RULES: tuple[tuple[str, PointStatus], ...] = (
    ("disconnection", PointStatus.SENSOR_FAULT),
    ("over_range", PointStatus.OVER_RANGE),
    ("substation_fault", PointStatus.SUBSTATION_FAULT),
)


def evaluate_faults(
    ctx: BatchContext,
    states: dict[str, RunState],
    repeats: npt.NDArray[np.int64],
    params: PointParams,
    open_rules: frozenset[str] | None = None,
) -> tuple[dict[str, RunOutcome], npt.NDArray[np.int64]]:
    """Outcomes per fault rule, and the identical-reading counts per point after the batch.
    ``open_rules``: the rules with a run open (None: look at ``states``)."""
    rows = ctx.rows
    size = len(params.analog)
    one = _ones(size)
    out: dict[str, RunOutcome] = {}

    def is_open(name: str) -> bool:
        return states[name].any_open() if open_rules is None else name in open_rules

    bits_seen = int(np.bitwise_or.reduce(rows.s)) if len(rows) else 0
    for name, bit in STATUS_RULES:
        if not bits_seen & bit and not is_open(name):  # nothing sets, nothing open
            out[name] = quiet(states[name], len(rows))
            continue
        flagged = (rows.s & bit) != 0
        out[name] = evaluate_runs(rows, flagged, ~flagged, states[name], need=one)

    if is_open("negative_drift") or some(ctx.drift):  # open, pending its clear, or starting
        drift_need = np.full(size, params.defaults.drift_samples, np.int64)
        with np.errstate(invalid="ignore"):
            above = ctx.valid & (rows.v >= params.drift_floor[rows.pid])
        off_delay = round(params.defaults.drift_off_delay_s * 1e6)
        out["negative_drift"] = evaluate_runs(
            rows, ctx.drift, above, states["negative_drift"], need=drift_need,
            off_delay_us=np.full(size, off_delay, np.int64) if off_delay else None,
        )  # fmt: skip
    else:
        out["negative_drift"] = quiet(states["negative_drift"], len(rows))

    window = params.flatline_samples[rows.pid]
    checked = window > 0
    if not ctx.all_valid:
        checked &= ctx.valid
    same = checked & (rows.v == ctx.prev_value)
    changed = checked & ~same
    if rows.single:  # one row per point: the count carried, one more, or 0 at a change
        count = repeats[rows.pid] + same
        count[changed] = 0
    else:
        count = _repeats(rows, same, changed, repeats)
    stuck = same & (count >= window - 1)
    if some(stuck) or is_open("flatline"):
        out["flatline"] = evaluate_runs(rows, stuck, changed, states["flatline"], need=one)
    else:
        out["flatline"] = quiet(states["flatline"], len(rows))
    after = repeats.copy()
    if len(rows):
        if rows.single:
            after[rows.pid] = count
        else:
            after[rows.pid[rows.last_rows]] = count[rows.last_rows]
    return out, after


_ONES: dict[int, npt.NDArray[np.int64]] = {}


def _ones(size: int) -> npt.NDArray[np.int64]:
    """``need`` of one reading for every point (read only, so one array per size serves)."""
    ones = _ONES.get(size)
    if ones is None:
        ones = _ONES[size] = np.ones(size, np.int64)
        ones.flags.writeable = False
    return ones


def _repeats(
    rows: Rows, same: BoolArray, changed: BoolArray, carried: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Per row: identical consecutive readings so far (0 at a change), carried over batches.

    Rows that are neither ``same`` nor ``changed`` (not checked) hold the count.
    """
    n = len(rows)
    idx = np.arange(n)
    last_change = np.maximum.accumulate(np.where(changed, idx, -1)) if n else idx
    since_change = last_change >= rows.gs
    if every(same | changed):  # every row checked: the distance to the last change
        return np.where(since_change, idx - last_change, idx - rows.gs + 1 + carried[rows.pid])
    cs = np.cumsum(same)
    base = np.where(since_change, cs[np.maximum(last_change, 0)], cs[rows.gs] - same[rows.gs])
    return cs - base + np.where(since_change, 0, carried[rows.pid])


FAULT_RULES = (*(name for name, _ in STATUS_RULES), "negative_drift", "flatline")


def quiet_repeats(
    ctx: BatchContext, repeats: npt.NDArray[np.int64], params: PointParams
) -> npt.NDArray[np.int64] | None:
    """The identical-reading counts after a batch that sets no fault rule otherwise (every row
    valid, no status bit, no drift, no fault run open): what :func:`evaluate_faults` keeps of
    it. None when a reading reaches its point's flat-line window (the rule must run)."""
    rows = ctx.rows
    if not len(rows):
        return repeats
    window = params.flatline_samples[rows.pid]
    checked = window > 0
    same = checked & (rows.v == ctx.prev_value)
    changed = checked & ~same
    if rows.single:
        count = repeats[rows.pid] + same
        count[changed] = 0
        if some(same & (count >= window - 1)):
            return None
        after = repeats.copy()
        after[rows.pid] = count
        return after
    count = _repeats(rows, same, changed, repeats)
    if some(same & (count >= window - 1)):
        return None
    after = repeats.copy()
    after[rows.pid[rows.last_rows]] = count[rows.last_rows]
    return after
