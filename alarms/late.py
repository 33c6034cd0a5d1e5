"""Late readings evaluated in their own time order (issue 15, docs/alarms.md "Batching and
late data").

A reading that is not after its point's last evaluated reading is late (:mod:`.engine`): a
mine catching up after an outage, a national file delivered late. The live engine does not
rewind its state for it (that would replay history as if it were live). Instead, per point
with late readings, the window of its stored readings around them (``context_us`` before the
first late reading and after the last) is evaluated by an engine of its own, from an empty
state, in time order; the episodes found there that touch the late readings are candidates
for the store (:mod:`.late_store`), which adds those no stored episode of the same point and
rule covers, marked ``computed_late``.

Rules over one point only: 馈电异常 merges a methane point with its feed point and data
interruption is about arrival, so neither is evaluated again here. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from minewatch.alarms.codes import RULES
from minewatch.alarms.engine import AlarmEngine
from minewatch.alarms.episodes import Episode, EpisodeLog
from minewatch.alarms.rules import interruption
from minewatch.batch import ReadingBatch
from minewatch.codes import ReadingFlag

#: The rules whose episodes a late reading can add: every rule over one point.
LATE_RULES = frozenset(RULES) - {"feed_abnormal", interruption.RULE}

#: Context evaluated around late readings at least (2 x the allowed lateness if longer): enough
#: for the on-delays, confirmations and off-delays that decide an episode's start and end.
MIN_CONTEXT_US = 120_000_000


@dataclass(frozen=True, slots=True)
class LateSpans:
    """Per point with late readings (ascending ids): the first and last late reading's time."""

    point_id: npt.NDArray[np.int32]
    first_us: npt.NDArray[np.int64]
    last_us: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.point_id)


def late_spans(batch: ReadingBatch) -> LateSpans | None:
    """The spans of the rows of ``batch`` flagged late; None when there are none."""
    late = (batch.flags & ReadingFlag.LATE) != 0
    if not late.any():
        return None
    pid, t = batch.point_id[late], batch.time_us[late]
    order = np.lexsort((t, pid))
    pid, t = pid[order], t[order]
    starts = np.flatnonzero(np.r_[True, pid[1:] != pid[:-1]])
    ends = np.r_[starts[1:], len(pid)] - 1
    return LateSpans(pid[starts], t[starts], t[ends])


def context_us(engine: AlarmEngine) -> int:
    return max(2 * engine.defaults.lateness_us, MIN_CONTEXT_US)


def window_episodes(engine: AlarmEngine, window: ReadingBatch, spans: LateSpans) -> list[Episode]:
    """The episodes of ``window`` (the stored readings around the late ones, any order) in time
    order, from ``engine``'s state (a fresh engine: nothing evaluated), that touch a late span.

    ``engine.evaluate`` does not mutate the engine, so one fresh engine serves every window.
    An episode still open where the window ends is closed at the point's last reading in it;
    the live engine holds the point's state from there on.
    """
    if not len(window):
        return []
    order = np.lexsort((window.time_us, window.point_id))
    ordered = window.take(order).with_flags(np.zeros(len(window), np.int16))
    log = EpisodeLog()
    log.apply(engine.evaluate(ordered).changes)
    pid = ordered.point_id
    ends = np.flatnonzero(np.r_[pid[1:] != pid[:-1], True])
    last_seen = dict(zip(pid[ends].tolist(), ordered.time_us[ends].tolist(), strict=True))
    span = {
        p: (f, la)
        for p, f, la in zip(
            spans.point_id.tolist(), spans.first_us.tolist(), spans.last_us.tolist(), strict=True
        )
    }
    found = []
    for episode in log.episodes:
        if episode.rule not in LATE_RULES or episode.point not in span:
            continue
        first, last = span[episode.point]
        end = episode.end_us if episode.end_us is not None else last_seen[episode.point]
        if episode.start_us > last or end < first:
            continue  # context only: the live engine decided it
        episode.end_us = max(end, episode.start_us)
        found.append(episode)
    return found
