"""The production state as an input of the pre-alarm forecaster (issue 17, sessions 6-7).

A methane point at a working face emits more while coal is cut: after a cutting start the
emission rises within minutes towards a new level, and falls after the stop. The mine shows
the cutting state on an equipment on/off point (设备开停, 1004: the shearer or roadheader, 1 =
开) of the working's substation. With ``cut_tau_s`` > 0 (``mines.prealarm``; the defaults
were tuned on the development sets), for ``cut_window_s`` after that point switched from 0 to
1 (a valid reading of 1 after one of 0), a rise of a methane point of the same substation is
read as the first-order response of the emission to the start, time constant ``T``:

* the rise need not last (the fast trend's slope, no slow trend), ``cut_confirm`` readings
  confirm it;
* the forecast is the level the response tends to within the horizon,
  ``level + slope x T x (1 - exp(-horizon / T))`` (the rise left in a first-order response
  is its slope times its time constant), instead of the straight line
  ``level + slope x horizon``; its standard error is scaled by the same ratio;
* ``T`` is estimated per point and cutting start from the decay of the point's own fast
  slope since the start (:func:`response_time`), between ``cut_tau_s`` and
  ``cut_tau_max_s``: a face that answers slowly is forecast with its own slow response
  (session 7); with ``cut_tau_max_s`` at or below ``cut_tau_s``, ``T`` is ``cut_tau_s``.

Outside that window, or with ``cut_tau_s`` 0 (the input off), nothing changes. The
shearer's last reading and last start per point, and each methane point's steepest slope
since its start, are carried in :class:`CuttingState`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from minewatch.alarms.forecast import NEVER, Trend
from minewatch.alarms.rules.run_state import Rows
from minewatch.registry import PointRegistry

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
#: 设备开停: an equipment's on/off state; on a working's substation, its cutting machine
EQUIPMENT_ON_OFF = "1004"
_KEY = np.int64(1) << 40  # (point, time) keys: point x 2^40 + us from the batch's start


@dataclass(frozen=True, slots=True)
class CuttingPoints:
    """Per point id: the shearer point of its substation (-1: none, or the input off) and
    the input's settings; ``used`` marks the shearer points read."""

    shearer: IntArray
    tau_s: FloatArray
    window_s: FloatArray
    confirm: IntArray
    used: BoolArray
    #: the longest response time the estimate may reach (``cut_tau_max_s``; at or below
    #: ``tau_s``: no estimate, ``tau_s`` fixed)
    tau_max_s: FloatArray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def none(cls, size: int = 0) -> CuttingPoints:
        return cls(np.full(size, -1, np.int64), np.zeros(size), np.zeros(size),
                   np.zeros(size, np.int64), np.zeros(size, bool), np.zeros(size))  # fmt: skip

    @classmethod
    def of(
        cls,
        registry: PointRegistry,
        wanted: BoolArray,
        tau_s: FloatArray,
        window_s: FloatArray,
        confirm: IntArray,
        tau_max_s: FloatArray | None = None,
    ) -> CuttingPoints:
        """``wanted``: the forecast points whose mine has the input on (``cut_tau_s`` > 0);
        ``tau_max_s``: the response time estimate's bound per point (None: no estimate)."""
        size = registry.size
        shearer = np.full(size, -1, np.int64)
        stations = registry.substation_code
        if stations is not None and wanted.any():
            by_station: dict[tuple[str, str], int] = {}
            for i in np.flatnonzero(registry.known).tolist():
                if registry.sensor_type[i] == EQUIPMENT_ON_OFF:
                    by_station.setdefault((str(registry.mine_code[i]), str(stations[i])), i)
            for i in np.flatnonzero(wanted).tolist():
                key = (str(registry.mine_code[i]), str(stations[i]))
                shearer[i] = by_station.get(key, -1)
        used = np.zeros(size, bool)
        used[shearer[shearer >= 0]] = True
        tau_max = np.zeros(size) if tau_max_s is None else tau_max_s
        return cls(shearer, tau_s, window_s, confirm, used, tau_max)

    @property
    def active(self) -> bool:
        return bool(self.used.any())


@dataclass(frozen=True, slots=True)
class CuttingState:
    """Per point id. Shearer points: a valid reading seen, the last one was 1, and the last
    start (a 1 after a 0: the first reading seen starts nothing). Methane points (the
    response time's estimate, :func:`response_time`): the steepest fast slope since the
    start of the window their rows are in (``peak``), its time, and that start (NEVER:
    none)."""

    seen: BoolArray
    on: BoolArray
    start_us: IntArray
    peak: FloatArray = field(default_factory=lambda: np.zeros(0))
    peak_us: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    peak_of: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))

    @classmethod
    def empty(cls, size: int) -> CuttingState:
        never = np.full(size, NEVER, np.int64)
        return cls(np.zeros(size, bool), np.zeros(size, bool), never, np.zeros(size),
                   never.copy(), never.copy())  # fmt: skip

    def grown(self, size: int) -> CuttingState:
        if size == len(self.on) and len(self.peak) == size:
            return self
        keep = min(size, len(self.on))
        out = CuttingState.empty(size)
        out.seen[:keep] = self.seen[:keep]
        out.on[:keep] = self.on[:keep]
        out.start_us[:keep] = self.start_us[:keep]
        if len(self.peak) == len(self.on):
            out.peak[:keep] = self.peak[:keep]
            out.peak_us[:keep] = self.peak_us[:keep]
            out.peak_of[:keep] = self.peak_of[:keep]
        return out

    def copy(self) -> CuttingState:
        return CuttingState(self.seen.copy(), self.on.copy(), self.start_us.copy(),
                            self.peak.copy(), self.peak_us.copy(), self.peak_of.copy())  # fmt: skip


def cutting_started(
    pts: CuttingPoints,
    state: CuttingState,
    rows: Rows,
    ok: BoolArray,
    pid: npt.NDArray[np.int32],
    t: IntArray,
) -> tuple[BoolArray, IntArray, CuttingState]:
    """Per forecast row (``pid``, ``t``): its shearer is on and started within
    ``cut_window_s`` up to the row's time, and that start (NEVER: none); the state after
    the rows."""
    size = len(pts.shearer)
    st = state.grown(size)
    shearer = pts.shearer[pid] if size else np.full(len(pid), -1, np.int64)
    has = shearer >= 0
    if not has.any():
        return np.zeros(len(pid), bool), np.full(len(pid), NEVER, np.int64), st
    sel = np.flatnonzero(ok & pts.used[rows.pid])
    s = np.where(has, shearer, 0)
    on_at, start_at = st.on[s], st.start_us[s]
    if len(sel):  # rows are sorted by (point, time)
        spid = rows.pid[sel].astype(np.int64)
        on = rows.v[sel] >= 0.5
        first = np.ones(len(spid), bool)
        first[1:] = spid[1:] != spid[:-1]
        prev = np.where(first, np.where(st.seen[spid], st.on[spid], on), np.roll(on, 1))
        if (on != prev).any():  # a start or a stop in the batch
            on_at, start_at, st = _through(st, rows, sel, spid, on, prev, first, s, has, t)
        elif not st.seen[spid].all():  # first readings: they start nothing
            st = st.copy()
            st.seen[spid] = True
            st.on[spid] = on
    window = pts.window_s[pid] * 1e6
    started = has & on_at & (start_at != NEVER) & (t - start_at <= window)
    return started, np.where(started, start_at, NEVER), st


def _through(
    st: CuttingState,
    rows: Rows,
    sel: IntArray,
    spid: IntArray,
    on: BoolArray,
    prev: BoolArray,
    first: BoolArray,
    s: IntArray,
    has: BoolArray,
    t: IntArray,
) -> tuple[BoolArray, IntArray, CuttingState]:
    """:func:`cutting_started` where a shearer switched within the rows: per forecast row, its
    shearer's state and last start at the row's time; the state after the rows."""
    st_t = rows.t[sel]
    base = int(min(t.min(), st_t.min()))
    key = spid * _KEY + (st_t - base)
    began = on & ~prev
    # the latest start up to each row, within its point (else the state's)
    idx = np.arange(len(spid))
    group = np.maximum.accumulate(np.where(first, idx, 0))
    last_began = np.maximum.accumulate(np.where(began, idx, -1))
    inside = last_began >= group
    start_row = np.where(inside, st_t[np.maximum(last_began, 0)], st.start_us[spid])
    k = np.searchsorted(key, s * _KEY + (t - base), "right") - 1
    kk = np.maximum(k, 0)
    same = has & (k >= 0) & (spid[kk] == s)
    on_at = np.where(same, on[kk], st.on[s])
    start_at = np.where(same, start_row[kk], st.start_us[s])
    ends = np.flatnonzero(np.append(spid[1:] != spid[:-1], True))
    out = st.copy()
    out.seen[spid[ends]] = True
    out.on[spid[ends]] = on[ends]
    out.start_us[spid[ends]] = start_row[ends]
    return on_at, start_at, out


def response_time(
    pts: CuttingPoints,
    state: CuttingState,
    pid: npt.NDArray[np.int32],
    t: IntArray,
    fast_slope: FloatArray,
    start_at: IntArray,
    cut: BoolArray,
) -> tuple[FloatArray, CuttingState]:
    """Per row, the response time of the first-order forecast (``cut_tau_s`` where the
    estimate is off); the state after the rows.

    A first-order response's slope decays as ``exp(-age / T)``: ``d`` seconds after the
    steepest slope ``b_max`` of the response (since its cutting start), a slope ``b`` gives
    ``T = d / ln(b_max / b)``. The estimate is bounded below by ``cut_tau_s`` (the prior: a
    fast response, the shorter forecast), above by ``cut_tau_s + d`` (no longer than the
    decay watched: right after the steepest slope a noisy ratio near 1 would give any
    ``T``) and by ``cut_tau_max_s``. The noise of the fast slope makes ``b_max`` too steep,
    so the estimate errs short (the smaller forecast)."""
    prior = pts.tau_s[pid]
    tau_max = pts.tau_max_s[pid] if len(pts.tau_max_s) else prior
    sel = np.flatnonzero(cut & (tau_max > prior))
    if not len(sel):
        return prior, state
    p = pid[sel].astype(np.int64)
    ts, of = t[sel], start_at[sel]
    b = np.where(np.isfinite(fast_slope[sel]), fast_slope[sel], -np.inf)
    n = len(sel)
    # segments: a point's rows of one cutting start (rows sorted by point, then time)
    new = np.ones(n, bool)
    new[1:] = (p[1:] != p[:-1]) | (of[1:] != of[:-1])
    if new.all():  # each row its own segment (one polling cycle): the row is its maximum
        b_max, t_max = b, ts
    else:
        # the running maximum within each segment, exactly: ranks (a later equal slope ranks
        # higher, as it would replace the maximum one reading at a time), offset per segment
        seg = np.cumsum(new) - 1
        order = np.argsort(b, kind="stable")
        rank = np.empty(n, np.int64)
        rank[order] = np.arange(n)
        top = order[np.maximum.accumulate(seg * n + rank) - seg * n]
        b_max, t_max = b[top], ts[top]
    # the state's maximum, where the segment goes on with the state's start
    carried = state.peak_of[p] == of
    older = carried & (state.peak[p] > b_max)
    b_max = np.where(older, state.peak[p], b_max)
    t_max = np.where(older, state.peak_us[p], t_max)
    d = (ts - t_max) / 1e6
    base = prior[sel]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = b / b_max
        decay = np.log(b_max / b)
        found = (b_max > 0) & (ratio > 0) & (ratio < 1)
        estimate = np.where(found, d / np.where(found, decay, 1.0), base)
    tau = np.clip(np.minimum(estimate, base + d), base, tau_max[sel])
    out = prior.copy()
    out[sel] = tau
    ends = np.flatnonzero(np.append(p[1:] != p[:-1], True))
    after = state.copy()
    after.peak[p[ends]] = b_max[ends]
    after.peak_us[p[ends]] = t_max[ends]
    after.peak_of[p[ends]] = of[ends]
    return out, after


def first_order(
    trend: Trend, fast_slope: FloatArray, cut: BoolArray, tau_s: FloatArray, horizon_s: FloatArray
) -> Trend:
    """``trend`` with, on the ``cut`` rows, the fast slope and the first-order forecast."""
    tau = np.where(tau_s > 0, tau_s, 1.0)
    reach = tau * (1.0 - np.exp(-horizon_s / tau))  # the response's rise per unit slope
    slope = np.where(cut, fast_slope, trend.slope)
    forecast = np.where(cut, trend.level + fast_slope * reach, trend.forecast)
    stderr = np.where(cut, trend.stderr * reach / horizon_s, trend.stderr)
    return dataclasses.replace(trend, slope=slope, forecast=forecast, stderr=stderr)


@dataclass(frozen=True, slots=True)
class Cut:
    """The production input's view of a batch's forecast rows: which are in a window after
    a cutting start (``rows``), that start per row, and the input's state after the batch."""

    rows: BoolArray
    start_us: IntArray
    state: CuttingState

    def take(self, sel: IntArray) -> Cut:
        return Cut(self.rows[sel], self.start_us[sel], self.state)


def apply(
    trend: Trend,
    fast_slope: FloatArray,
    cut: Cut,
    pid: npt.NDArray[np.int32],
    t: IntArray,
    pts: CuttingPoints,
    horizon_s: FloatArray,
    confirm: IntArray,
) -> tuple[Trend, IntArray, CuttingState]:
    """The trend and the readings confirming a raise, per row, with the input on the
    ``cut`` rows (``horizon_s``, ``confirm``: per row, as they are without it); the input's
    state after the rows (the response time's estimate)."""
    tau, state = response_time(pts, cut.state, pid, t, fast_slope, cut.start_us, cut.rows)
    trend = first_order(trend, fast_slope, cut.rows, tau, horizon_s)
    return trend, np.where(cut.rows, pts.confirm[pid], confirm), state
