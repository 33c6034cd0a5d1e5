"""Off-delay (ISA-18.2): a run of a threshold rule ends only once its condition has been clear
for ``off_delay_s`` of event time.

The raw hysteresis latch (:func:`alarms.rules.latch.latch`) turns off at a clear row: a *drop*.
The readings from a drop to the next set row of the point are its *dip*. The drop ends the run
only if no set row follows within the off-delay (``t_set <= t_drop + off_delay``); otherwise the
dip is *bridged*: the run, and its episode, continue, and the dip's readings enter its
statistics (they do not confirm it: they had cleared). A drop whose off-delay has not passed
at the batch's end is *pending* (:attr:`alarms.rules.run_state.RunState.pending_clear_us`): the next
batch resolves it like a drop at its first row, or the clock does once the off-delay and the
allowed lateness have passed (:func:`alarms.rules.runs.expire_pending`). A run whose drop is
not bridged ends at the drop (its episode's ``ended_at``), decided at the point's first row
later than the off-delay, which may itself be a set row that starts a new run.

Here only the dips are found, vectorised like the latch: per drop, the first set row after it
(one reversed ``np.minimum.accumulate``) and the point's last row in the batch; the run
machinery (:mod:`alarms.rules.runs`) then holds the run through bridged and pending dips.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from minewatch.alarms.rules.latch import previous_state

if TYPE_CHECKING:
    from minewatch.alarms.rules.run_state import Rows, RunState

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Dips:
    """Per row of a batch, the dips of one rule (rows sorted by point, time)."""

    bridged: BoolArray  # in a dip that a set row within the off-delay ends: the run holds
    pending: BoolArray  # in a dip still within the off-delay at the point's last row
    drop_us: IntArray  # time of the clear that began the row's dip (where bridged | pending)
    carried: BoolArray  # the row's dip began before the batch
    resumed: BoolArray  # first row of a point whose run pending before the batch stays open
    continued: BoolArray  # ...and continues: a set row came within the off-delay
    expired_rows: npt.NDArray[np.intp]  # per run pending before the batch that ended: the row
    # after its off-delay


def applies(state: RunState, off_delay_us: IntArray) -> bool:
    """Whether a batch needs the off-delay: some point has one, or some run of ``state`` is
    pending or continued through a dip (e.g. its off-delay was just set to 0)."""
    return bool(
        off_delay_us.any()
        or state.pending.any()
        or (state.raw & (state.latch_us != state.start_us)).any()
    )


def dips(
    rows: Rows,
    on: BoolArray,
    raw0: BoolArray,
    pending_us: IntArray,
    pending: BoolArray,
    off_delay_us: IntArray,
) -> Dips:
    """The dips of the raw latch ``on`` (``raw0``: before each row's point's first row);
    ``pending_us``/``pending``, ``off_delay_us``: per row, of its point."""
    n = len(rows)
    idx = np.arange(n)
    t = rows.t
    before = previous_state(rows.gs, on, raw0)
    virtual = rows.first & pending  # a drop before the batch, resolved as if at the first row
    drop = (before & ~on) | virtual
    d = np.flatnonzero(drop)
    no = np.zeros(n, bool)
    if not len(d):
        return Dips(no, no, np.zeros(n, np.int64), no, no, no, np.empty(0, np.intp))
    is_virtual = virtual[d]
    drop_us = np.where(is_virtual, pending_us[d], t[d])
    deadline = drop_us + off_delay_us[d]
    group_end = rows.last_rows[(np.cumsum(rows.first) - 1)[d]]
    set_at = np.minimum.accumulate(np.where(on, idx, n)[::-1])[::-1][d]  # next raw-on row
    has_set = set_at <= group_end
    positive = off_delay_us[d] > 0
    bridged = has_set & (t[np.minimum(set_at, n - 1)] <= deadline) & positive
    waiting = ~has_set & (t[group_end] <= deadline) & positive

    last_drop = np.maximum.accumulate(np.where(drop, idx, -1))
    in_dip = ~on & (last_drop >= rows.gs)
    k = np.minimum(np.searchsorted(d, last_drop), len(d) - 1)  # the row's drop
    resumed, continued = no.copy(), no.copy()
    resumed[d[is_virtual & (bridged | waiting)]] = True
    continued[d[is_virtual & bridged]] = True
    expired = np.flatnonzero(is_virtual & ~bridged & ~waiting)
    ends = np.array(
        [
            d[j] + int(np.searchsorted(t[d[j] : group_end[j] + 1], deadline[j], "right"))
            for j in expired.tolist()
        ],
        np.intp,
    )
    return Dips(
        bridged=in_dip & bridged[k],
        pending=in_dip & waiting[k],
        drop_us=drop_us[k],
        carried=in_dip & is_virtual[k],
        resumed=resumed,
        continued=continued,
        expired_rows=ends,
    )
