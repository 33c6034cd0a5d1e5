"""A robust trend per sensor, vectorised over a batch: the forecaster of the pre-alarms.

Per point, over its readings in time order:

1. a **median of three** (the reading and the two before it) removes a spike of one reading
   (interference) and delays a real rise by one reading;
2. an **exponentially weighted least-squares line** through the filtered readings: weight
   ``exp(-age / tau)``, so the effective window is about ``tau`` (a reading ``3 tau`` old
   weighs 5 %). The line gives, at each reading, the level ``a`` and the slope ``b`` (per
   second), the forecast ``a + b * horizon`` and its standard error from the weighted
   residuals.

The weighted sums (``S0 = sum w``, ``S1 = sum w tau``, ``S2 = sum w tau^2``, ``Sy``, ``Sty``,
``Syy``, ages ``tau <= 0`` counted from the reading) are the whole state: carried from one
reading to the next by a decay and a shift, so they are cumulative sums within a batch (no
Python loop per reading) and a few numbers per point between batches. Where a batch is cut
changes nothing: the same readings give the same forecasts in any batching
(``tests/alarms/test_forecast.py``).

The sums of a batch are taken about the middle of a time segment with weights
``exp(u / tau)``; a batch spanning more than :data:`SEGMENT_TAUS` time constants is cut into
segments (one loop turn each: replay batches, never a live one of a few cycles) so the
weights stay in a range where the differences of cumulative sums keep their precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from minewatch.alarms.small import every, highest, lowest, where_set

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
NEVER = -(2**62)
#: Longest span of one segment of a batch, in time constants: weights within exp(+-2). The
#: sums of all points of a segment are one cumulative sum; a point's own sums are read off it
#: by difference, so a wider range of weights would cost them precision.
SEGMENT_TAUS = 4.0


@dataclass(frozen=True, slots=True)
class TrendState:
    """Per point (the caller's index: a point id, or a column of the pre-alarms' compact
    state): the weighted sums at the point's last input reading, and the last two raw inputs
    (for the median of three); NaN / NEVER: none yet. The sums are the rows of one (6, points)
    array (``s0`` .. ``syy`` are its rows), the inputs of one (2, points) array, so a batch
    reads and writes each with one call."""

    t_us: IntArray
    sums: FloatArray  # (6, points): s0, s1, s2, sy, sty, syy
    prev: FloatArray  # (2, points): the latest raw input, the one before it

    @classmethod
    def empty(cls, size: int) -> TrendState:
        return cls(np.full(size, NEVER, np.int64), np.zeros((6, size)), np.full((2, size), np.nan))

    def grown(self, size: int) -> TrendState:
        if size == len(self.t_us):
            return self
        fresh = TrendState.empty(size)
        keep = min(size, len(self.t_us))
        fresh.t_us[:keep] = self.t_us[:keep]
        fresh.sums[:, :keep] = self.sums[:, :keep]
        fresh.prev[:, :keep] = self.prev[:, :keep]
        return fresh

    @property
    def s0(self) -> FloatArray:
        return self.sums[0]

    @property
    def s1(self) -> FloatArray:
        return self.sums[1]

    @property
    def s2(self) -> FloatArray:
        return self.sums[2]

    @property
    def sy(self) -> FloatArray:
        return self.sums[3]

    @property
    def sty(self) -> FloatArray:
        return self.sums[4]

    @property
    def syy(self) -> FloatArray:
        return self.sums[5]

    @property
    def prev1(self) -> FloatArray:
        """The latest raw input."""
        return self.prev[0]

    @property
    def prev2(self) -> FloatArray:
        """The raw input before it."""
        return self.prev[1]


@dataclass(frozen=True, slots=True)
class Trend:
    """Per input row: the fitted line at the reading and what it forecasts."""

    level: FloatArray  # a: the line at the reading's time
    slope: FloatArray  # b: per second
    weight: FloatArray  # S0: the history behind the fit (readings, weighted)
    forecast: FloatArray  # a + b * horizon
    stderr: FloatArray  # standard error of the forecast (NaN: too little history)
    filtered: FloatArray  # the median-of-three input


def median3(
    pid: npt.NDArray[np.int32], y: FloatArray, gs: npt.NDArray[np.intp], state: TrendState
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The median of each reading and the two before it of its point (the state carries the
    last two of the previous batch; a missing one counts as the one after it, so a point's
    first reading passes unchanged and its second gives the first). Returns (filtered, the last
    two raw inputs per row: prev1, prev2 after the row)."""
    n = len(y)
    idx = np.arange(n)
    p1 = np.empty(n)
    p2 = np.empty(n)
    if n:
        p1[1:] = y[:-1]
        p2[2:] = y[:-2]
        at_start = idx == gs
        second = idx == gs + 1
        p1[at_start] = state.prev1[pid[at_start]]
        p2[at_start] = state.prev2[pid[at_start]]
        p2[second] = state.prev1[pid[second]]
    a = np.where(np.isnan(p1), y, p1)
    b = np.where(np.isnan(p2), a, p2)
    low, high = np.minimum(a, b), np.maximum(a, b)
    return np.maximum(low, np.minimum(high, y)), y, p1


def ew_trend(
    pid: npt.NDArray[np.int32],
    t_us: IntArray,
    y: FloatArray,
    state: TrendState,
    tau_s: FloatArray,
    horizon_s: FloatArray,
    filtered: FloatArray | None = None,
) -> tuple[Trend, TrendState]:
    """The trend at every row (rows sorted by (point, time), one input each) and the state
    after them. ``tau_s`` and ``horizon_s`` are per point id; ``filtered``: the rows' median
    of three when already known (a second trend over the same rows)."""
    sums, filtered, after = ew_sums(pid, t_us, y, state, tau_s, filtered)
    return fit_trend(sums, horizon_s[pid], filtered), after


def ew_sums(
    pid: npt.NDArray[np.int32],
    t_us: IntArray,
    y: FloatArray,
    state: TrendState,
    tau_s: FloatArray,
    filtered: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, TrendState]:
    """:func:`ew_trend` without the fit: the six sums at every row, shape (6, rows), the
    rows' median of three, and the state after them."""
    n = len(pid)
    first = np.ones(n, bool)
    first[1:] = pid[1:] != pid[:-1]
    gs = np.maximum.accumulate(np.where(first, np.arange(n), 0)) if n else np.arange(0)
    if filtered is None:
        filtered, _, _ = median3(pid, y, gs, state)
    sums = np.empty((6, n))
    if n:
        span = int(highest(t_us) - lowest(t_us))
        limit = SEGMENT_TAUS * float(lowest(tau_s[pid])) * 1e6
        if span <= limit:
            sums = _segment_sums(pid, t_us, filtered, gs, state, tau_s)
        else:  # a long replay batch: segments of time, each carrying the sums to the next
            seg = ((t_us - lowest(t_us)) // max(1, int(limit))).astype(np.int64)
            carry = state
            for k in np.unique(seg).tolist():
                rows = where_set(seg == k)
                sub_first = np.ones(len(rows), bool)
                sub_first[1:] = pid[rows][1:] != pid[rows][:-1]
                sub_gs = np.maximum.accumulate(np.where(sub_first, np.arange(len(rows)), 0))
                part = _segment_sums(pid[rows], t_us[rows], filtered[rows], sub_gs, carry, tau_s)
                sums[:, rows] = part
                carry = _after(carry, pid[rows], t_us[rows], part, y[rows], sub_first)
    after = _after(state, pid, t_us, sums, y, first)
    return sums, filtered, after


def ew_state_after(
    pid: npt.NDArray[np.int32],
    t_us: IntArray,
    y: FloatArray,
    state: TrendState,
    tau_s: FloatArray,
    filtered: FloatArray,
) -> TrendState:
    """The state :func:`ew_trend` leaves after the rows, without the fit at every row: the
    weighted sums at each point's last row only (a sum per point instead of cumulative sums),
    for rows whose trend nobody reads. ``filtered``: the rows' median of three."""
    n = len(pid)
    if not n:
        return state
    first = np.ones(n, bool)
    first[1:] = pid[1:] != pid[:-1]
    span = int(highest(t_us) - lowest(t_us))
    if span > SEGMENT_TAUS * float(lowest(tau_s[pid])) * 1e6:  # a long replay batch: in full
        return ew_trend(pid, t_us, y, state, tau_s, np.zeros(len(tau_s)), filtered)[1]
    starts = where_set(first)
    last = np.append(starts[1:], n) - 1
    mid = (int(lowest(t_us)) + int(highest(t_us))) // 2
    u = (t_us - mid) / 1e6
    tau = tau_s[pid]
    e = np.exp(u / tau)
    x = np.empty((6, n))
    x[0] = e
    np.multiply(e, u, out=x[1])
    np.multiply(x[1], u, out=x[2])
    np.multiply(e, filtered, out=x[3])
    np.multiply(x[1], filtered, out=x[4])
    np.multiply(x[3], filtered, out=x[5])
    _add_carried(x, pid, starts, state, tau_s, mid)
    c0, c1, c2, cy, cuy, cyy = np.add.reduceat(x, starts, axis=1)
    ul = u[last]
    f = 1.0 / e[last]
    sums = np.zeros((6, n))
    sums[0, last] = f * c0
    sums[1, last] = f * (c1 - ul * c0)
    sums[2, last] = f * (c2 - 2 * ul * c1 + ul * ul * c0)
    sums[3, last] = f * cy
    sums[4, last] = f * (cuy - ul * cy)
    sums[5, last] = f * cyy
    return _after(state, pid, t_us, sums, y, first)


def _add_carried(
    x: FloatArray,
    pid: npt.NDArray[np.int32],
    starts: npt.NDArray[np.intp],
    state: TrendState,
    tau_s: FloatArray,
    mid: int,
) -> None:
    """Add the sums carried from before the segment as a term at each point's first row."""
    sp = pid[starts]
    prior = state.t_us[sp]
    has = prior != NEVER
    up = np.where(has, (np.where(has, prior, mid) - mid) / 1e6, 0.0)
    w = np.where(has, np.exp(np.maximum(up / tau_s[sp], -700.0)), 0.0)
    s0, s1, s2 = state.s0[sp], state.s1[sp], state.s2[sp]
    sy, sty = state.sy[sp], state.sty[sp]
    x[0, starts] += w * s0
    x[1, starts] += w * (up * s0 + s1)
    x[2, starts] += w * (up * up * s0 + 2 * up * s1 + s2)
    x[3, starts] += w * sy
    x[4, starts] += w * (up * sy + sty)
    x[5, starts] += w * state.syy[sp]


def _segment_sums(
    pid: npt.NDArray[np.int32],
    t_us: IntArray,
    y: FloatArray,
    gs: npt.NDArray[np.intp],
    state: TrendState,
    tau_s: FloatArray,
) -> FloatArray:
    """The six weighted sums at each row (ages from the row), shape (6, rows).

    Each term is weighted ``exp(u / tau)`` (``u``: seconds from the segment's middle), so the
    sums at a row are its point's cumulative sums scaled by ``exp(-u / tau)`` and shifted to
    ages from the row. The sums carried from before the segment enter as one more term at the
    point's first row, weighted by the age of their time."""
    mid = (int(lowest(t_us)) + int(highest(t_us))) // 2
    u = (t_us - mid) / 1e6  # seconds about the segment's middle: |u| <= 2 tau
    tau = tau_s[pid]
    e = np.exp(u / tau)
    x = _terms(e, u, y, np.empty((6, len(u))))
    # the sums carried from before the segment, as a term at each point's first row
    starts = where_set(gs == np.arange(len(gs)))
    _add_carried(x, pid, starts, state, tau_s, mid)
    sizes = np.diff(np.append(starts, len(u)))
    if len(sizes) and every(sizes == sizes[0]):  # every point as many rows: a block each
        c = np.cumsum(x.reshape(6, len(sizes), int(sizes[0])), axis=2).reshape(6, len(u))
    else:
        c = np.cumsum(x, axis=1)
        c -= c[:, gs] - x[:, gs]  # each point's own cumulative sums
    out = np.empty_like(c)
    _ages_from_rows(c, e, u, out)
    return out


def _after(
    state: TrendState,
    pid: npt.NDArray[np.int32],
    t_us: IntArray,
    sums: FloatArray,
    y: FloatArray,
    first: npt.NDArray[np.bool_],
) -> TrendState:
    """The state after the rows: each present point's sums at its last row, and its last two
    raw inputs."""
    n = len(pid)
    if not n:
        return state
    last = where_set(np.append(first[1:], True))
    points = pid[last]
    t = state.t_us.copy()
    t[points] = t_us[last]
    after = state.sums.copy()
    after[:, points] = sums[:, last]
    prev = state.prev.copy()
    prev[0, points] = y[last]
    before_last = last - 1
    own = (before_last >= 0) & ~first[last]
    prev[1, points] = np.where(own, y[np.maximum(before_last, 0)], state.prev1[points])
    return TrendState(t, after, prev)


def fit_line(sums: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """The weighted least-squares line through each row's sums: (den, ok, slope, level), with
    floating-point errors ignored (the caller's ``np.errstate``)."""
    s0, s1, s2, sy, sty, _ = sums
    den = s0 * s2 - s1 * s1
    ok = (s0 > 2.0) & (den > 1e-12 * np.maximum(s0 * s2, 1e-300))
    slope = np.where(ok, (s0 * sty - s1 * sy) / den, 0.0)
    level = np.where(ok, (s2 * sy - s1 * sty) / den, sy / np.maximum(s0, 1e-300))
    return den, ok, slope, level


def fit_trend(sums: FloatArray, horizon_s: FloatArray, filtered: FloatArray) -> Trend:
    """The weighted least-squares line through each row's sums, and its forecast."""
    s0, s1, s2, sy, sty, syy = sums
    with np.errstate(invalid="ignore", divide="ignore"):
        den, ok, slope, level = fit_line(sums)
        rss = np.maximum(syy - level * sy - slope * sty, 0.0)
        sigma2 = rss / np.maximum(s0 - 2.0, 1e-9)
        h = horizon_s
        var = sigma2 * (s2 - 2 * h * s1 + h * h * s0) / den
        stderr = np.where(ok, np.sqrt(np.maximum(var, 0.0)), np.nan)
    return Trend(level, slope, s0, level + slope * horizon_s, stderr, filtered)


def ew_trend_single(
    pid: npt.NDArray[np.int32],
    t_us: IntArray,
    y: FloatArray,
    states: tuple[TrendState, ...],
    taus: FloatArray,
    horizon_s: FloatArray,
) -> list[tuple[Trend, TrendState]] | None:
    """:func:`ew_trend` for rows of distinct points (one polling cycle: each row its point's
    only one), for several trends of the same rows at once (``states[k]`` with the time
    constants ``taus[k]`` per point id, ``taus`` of shape (trends, points); the median of
    three of the first for all, as the pre-alarms' fast and slow trends): the same arithmetic
    in the same order, so the same bits, without the group bookkeeping a batch of several
    readings per point needs, and one call per step for all the trends. None when the rows
    span more than one segment (the general path cuts them)."""
    n = len(pid)
    if not n:
        return None
    t_min, t_max = int(t_us.min()), int(t_us.max())
    tau = np.take(taus, pid, axis=1)  # C order: ``taus[:, pid]`` is in Fortran order, and
    if t_max - t_min > SEGMENT_TAUS * float(tau.min()) * 1e6:  # mixed orders are slow
        return None
    # median3 with every row at its point's start
    a, b = np.take(states[0].prev, pid, axis=1)
    filtered = _median3_single(a, b, y)
    # _segment_sums: each row its own group, so the cumulative sums are the terms themselves
    mid = (t_min + t_max) // 2
    k = len(states)
    prior = np.array([st.t_us[pid] for st in states]) if k > 1 else states[0].t_us[pid]
    gathered = np.stack([np.take(st.sums, pid, axis=1) for st in states], axis=1) if k > 1 else (
        np.take(states[0].sums, pid, axis=1)[:, None, :]
    )  # fmt: skip
    carried = (gathered, *_carried_weights(prior, mid, tau))
    sums = np.empty((6, k, n))
    if t_min == t_max and not np.isnan(filtered).any():
        _sums_at_mid(filtered, carried, sums)
    else:
        _sums_about(mid, t_us, filtered, carried, tau, sums)
    fit = fit_trend(sums, horizon_s[pid], filtered)
    out = []
    for j, st in enumerate(states):
        # _after: every row is its point's last; the one before it the state's latest input
        t = st.t_us.copy()
        t[pid] = t_us
        after = st.sums.copy()
        after[:, pid] = sums[:, j]
        prev = st.prev.copy()
        prev[1, pid] = prev[0, pid]
        prev[0, pid] = y
        trend = Trend(fit.level[j], fit.slope[j], fit.weight[j], fit.forecast[j], fit.stderr[j],
                      filtered)  # fmt: skip
        out.append((trend, TrendState(t, after, prev)))
    return out


def _median3_single(a: FloatArray, b: FloatArray, y: FloatArray) -> FloatArray:
    """:func:`median3` of rows each at its point's start: ``a``, ``b`` the point's last two
    raw inputs before the row."""
    a = np.where(np.isnan(a), y, a)
    b = np.where(np.isnan(b), a, b)
    return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), y))


@dataclass(frozen=True, slots=True)
class TrendPair:
    """Two trends of the same points (the pre-alarms' fast and slow one) in two arrays, so
    that a polling cycle reads and writes the state of both with one call each (issue 14:
    calls per batch, not readings, were the cost). ``values`` (16, points): the sum ``k``
    (``s0`` .. ``syy``, :class:`TrendState`'s order) of trend ``j`` in row ``2 k + j``, then
    each trend's last two raw inputs (rows 12-13: the first's, 14-15: the second's);
    ``times`` (2, points): each trend's time. :meth:`trends` gives both as
    :class:`TrendState` views of these arrays. ``same_time``: every element of ``times``
    when they are all one time (a cycle that covered every column left them so), else None."""

    values: FloatArray
    times: IntArray
    same_time: int | None = None

    @classmethod
    def of(cls, first: TrendState, second: TrendState) -> TrendPair:
        """The two trends' states packed (copied) into one pair."""
        values = np.empty((16, len(first.t_us)))
        values[0:12:2] = first.sums
        values[1:12:2] = second.sums
        values[12:14] = first.prev
        values[14:16] = second.prev
        return cls(values, np.stack([first.t_us, second.t_us]))

    def trends(self) -> tuple[TrendState, TrendState]:
        v, t = self.values, self.times
        return TrendState(t[0], v[0:12:2], v[12:14]), TrendState(t[1], v[1:12:2], v[14:16])


def ew_pair_single(
    pid: npt.NDArray[np.int32],
    t_us: IntArray,
    y: FloatArray,
    pair: TrendPair,
    taus: FloatArray,
) -> tuple[FloatArray, FloatArray] | None:
    """:func:`ew_trend_single` of both trends of ``pair`` without the fit: (the pair's new
    ``values`` columns of the rows' points, shape (16, rows), whose first 12 rows are the
    sums as ``(6, 2, rows)``; the median of three of the rows). Per element the same
    arithmetic in the same order, so the same bits. None when the rows span more than one
    segment (the general path cuts them)."""
    n = len(pid)
    if not n:
        return None
    t_min, t_max = int(t_us[t_us.argmin()]), int(t_us[t_us.argmax()])
    tau = np.take(taus, pid, axis=1)  # (rows in C order: see ew_trend_single)
    if t_min != t_max and t_max - t_min > SEGMENT_TAUS * float(tau.min()) * 1e6:
        return None
    before = np.take(pair.values, pid, axis=1)
    filtered = _median3_single(before[12], before[13], y)
    mid = (t_min + t_max) // 2
    carried = (
        before[:12].reshape(6, 2, n),
        *_carried_weights(np.take(pair.times, pid, axis=1), mid, tau),
    )
    cols = np.empty((16, n))
    sums = cols[:12].reshape(6, 2, n)
    if t_min == t_max and not np.isnan(filtered).any():
        _sums_at_mid(filtered, carried, sums)
    else:
        _sums_about(mid, t_us, filtered, carried, tau, sums)
    cols[12] = y  # each trend's latest input, and the one before it
    cols[14] = y
    cols[13] = before[12]
    cols[15] = before[14]
    return cols, filtered


def ew_pair_cycle(
    t_us: IntArray,
    y: FloatArray,
    pair: TrendPair,
    taus: FloatArray,
    memo: dict[str, Any] | None = None,
) -> tuple[FloatArray, FloatArray] | None:
    """:func:`ew_pair_single` for rows that are every column of ``pair`` in order (a polling
    cycle that reached every forecast point), stamped with one time, each with history and a
    valid input: the pair's arrays and ``taus`` (2, columns) are read whole, no gather (issue
    14: the calls per batch are the cost). Per element the same operations in the same order,
    so the same bits; None where a condition fails (the caller takes the general path).

    When the pair's times are one (``same_time``), the age of the carried sums is one number
    (``(same_time - t) / 1e6``, the value of every element of the array it stands for), and
    the weights of the last cycle with the same age and ``taus`` are taken again from
    ``memo`` (the caller's, kept between cycles; arrays only read)."""
    t0 = int(t_us[0])
    if np.count_nonzero(t_us != t0):
        return None
    before = pair.values
    a, b = before[12], before[13]
    # _median3_single: with no NaN among a, b and y its ``where``s change nothing, and a NaN
    # in any of them gives a NaN here (minimum and maximum propagate it): then not this path
    filtered = np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), y))
    if np.count_nonzero(np.isnan(filtered)):
        return None
    up: float | FloatArray
    if pair.same_time is not None and pair.same_time != NEVER:
        up = (pair.same_time - t0) / 1e6  # _carried_weights with every point's history
        if memo is not None and memo.get("up") == up and memo.get("taus") is taus:
            w = memo["w"]
        else:
            w = np.exp(np.maximum(up / taus, -700.0))
            if memo is not None:
                memo.update(up=up, taus=taus, w=w)
    else:
        if pair.times.ravel()[pair.times.argmin()] == NEVER:
            return None
        up = (pair.times - t0) / 1e6  # _carried_weights with every point's history
        w = np.exp(np.maximum(up / taus, -700.0))
    n = len(y)
    cols = np.empty((16, n))
    _sums_at_mid(filtered, (before[:12].reshape(6, 2, n), w, up), cols[:12].reshape(6, 2, n))
    cols[12:16:2] = y  # each trend's latest input, and the one before it
    cols[13:16:2] = before[12:15:2]
    return cols, filtered


#: Rows of the products of a trend's sums that its line needs: s0 s2, s1 s1, s0 sty, s1 sy,
#: s2 sy, s1 sty (the terms of :func:`fit_line`'s ``den``, slope and level numerators)
_LEFT = np.array([0, 1, 0, 1, 2, 1])
_RIGHT = np.array([2, 1, 4, 3, 3, 4])


def line_reaches(sums: FloatArray, horizon_s: FloatArray, level: FloatArray) -> BoolArray:
    """Per row: the weighted line through ``sums`` (6, rows) reaches ``level`` within the
    horizon (``level_fit + slope x horizon >= level``), as :func:`fit_line` computes it. When
    every row has a line (``ok``, the usual case), the six products and the three differences
    are one call each (the same element operations, so the same bits)."""
    p = sums[_LEFT] * sums[_RIGHT]
    d = p[0::2] - p[1::2]  # den, the slope's and the level's numerators
    ok = (sums[0] > 2.0) & (d[0] > 1e-12 * np.maximum(p[0], 1e-300))
    if np.count_nonzero(ok) == len(ok):  # every den > 0: the divisions raise nothing
        q = d[1:] / d[0]  # slope, level
        out: BoolArray = q[1] + q[0] * horizon_s >= level
        return out
    with np.errstate(invalid="ignore", divide="ignore"):
        _, _, slope, fitted = fit_line(sums)
        out = fitted + slope * horizon_s >= level
    return out


def _carried_weights(prior: IntArray, mid: int, tau: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The weight of the carried sums and the age of their time ``prior`` in seconds about
    ``mid``, shape (trends, rows); a point without history (``NEVER``) weighs 0."""
    has = prior != NEVER
    if np.count_nonzero(has) == has.size:  # every point has history: no masks, same values
        up = (prior - mid) / 1e6
        w = np.exp(np.maximum(up / tau, -700.0))
    else:
        up = np.where(has, (np.where(has, prior, mid) - mid) / 1e6, 0.0)
        w = np.where(has, np.exp(np.maximum(up / tau, -700.0)), 0.0)
    return w, up


#: sums (6, trends, rows), weight, age (one number where every row's is the same)
Carried = tuple[FloatArray, FloatArray, FloatArray | float]


def _sums_at_mid(filtered: FloatArray, carried: Carried, out: FloatArray) -> None:
    """:func:`_sums_about` when every row is at ``mid`` (one polling cycle stamped with one
    time) and no input is NaN: ``u`` is 0, so the weights ``e`` and ``f`` are exactly 1 and
    the terms in ``u`` exactly 0; the same values without computing them (a zero may differ
    in sign). Per element: ``1 + w s0``, ``w (up s0 + s1)``, ``w (up^2 s0 + 2 up s1 + s2)``,
    ``y + w sy``, ``w (up sy + sty)``, ``y^2 + w syy``, each pair of like terms (rows 0 and 3,
    1 and 4) in one call."""
    s, w, up = carried
    np.multiply(w, s[0:6:3], out=out[0:6:3])  # w s0, w sy
    np.multiply(w, up * s[0:6:3] + s[1:6:3], out=out[1:6:3])  # w (up s0 + s1), w (up sy + sty)
    np.multiply(w, up * up * s[0] + 2 * up * s[1] + s[2], out=out[2])
    np.multiply(w, s[5], out=out[5])
    out[0] += 1.0
    out[3] += filtered
    out[5] += filtered * filtered


def _sums_about(
    mid: int,
    t_us: IntArray,
    filtered: FloatArray,
    carried: Carried,
    tau: FloatArray,
    out: FloatArray,
) -> None:
    """The six sums of each trend at each row (each its point's only one), shape
    (6, trends, rows), into ``out``: :func:`_segment_sums` without the cumulative sums."""
    n, k = tau.shape[-1], carried[0].shape[1]
    u = (t_us - mid) / 1e6
    e = np.exp(u / tau)
    x = _terms(e, u, filtered, np.empty((6, k, n)))
    (s0, s1, s2, sy, sty, syy), w, up = carried
    x[0] += w * s0
    x[1] += w * (up * s0 + s1)
    x[2] += w * (up * up * s0 + 2 * up * s1 + s2)
    x[3] += w * sy
    x[4] += w * (up * sy + sty)
    x[5] += w * syy
    _ages_from_rows(x, e, u, out)


def _terms(e: FloatArray, u: FloatArray, y: FloatArray, x: FloatArray) -> FloatArray:
    """The six terms of the trend sums (1, u, u², y, u·y, y², each weighted ``e``) into ``x``."""
    x[0] = e
    np.multiply(e, u, out=x[1])
    np.multiply(x[1], u, out=x[2])
    np.multiply(e, y, out=x[3])
    np.multiply(x[1], y, out=x[4])
    np.multiply(x[3], y, out=x[5])
    return x


def _ages_from_rows(c: FloatArray, e: FloatArray, u: FloatArray, out: FloatArray) -> None:
    """Sums ``c`` about the segment's middle turned into sums of ages from each row, into
    ``out`` (scaled by ``1 / e`` and shifted by ``u``)."""
    c0, c1, c2, cy, cuy, cyy = c
    f = 1.0 / e
    np.multiply(f, c0, out=out[0])
    out[1] = f * (c1 - u * c0)
    out[2] = f * (c2 - 2 * u * c1 + u * u * c0)
    np.multiply(f, cy, out=out[3])
    out[4] = f * (cuy - u * cy)
    np.multiply(f, cyy, out=out[5])
