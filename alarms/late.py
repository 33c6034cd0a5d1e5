"""Late readings evaluated in their own time order (issue 15, docs/alarms.md "Batching and
late data").

A reading that is not after its point's last evaluated reading is late (:mod:`.engine`): a
mine catching up after an outage, a national file delivered late. The live engine does not
rewind its state for it (that would replay history as if it were live). Instead, per point
with late readings, the window of its stored readings around them (``context_us`` before the
first late reading and after the last, widened to cover the ended stored episodes there) is
evaluated by an engine of its own, from an empty state, in time order. A point in a 馈电 pair
(:mod:`.rules.feed`) brings the other points of its pair into the window with the same bounds,
and the pair's held decisions are taken at the window's end, so 馈电异常 is evaluated on the
late window too; data interruption is the silences left between the window's readings.

:func:`plan` compares the window's episodes with the stored ones (:class:`Stored`) and says
what the store (:mod:`.late_store`) does:

* an episode no stored episode of the same point and rule overlaps, that touches the late
  readings: added, ``computed_late``;
* one that overlaps one stored episode that has ended (live, or computed late from an earlier
  part of a backlog), of a rule the window decides alone (:data:`CORRECTED_RULES`), with
  other start, end or statistics (an interruption: classification): the stored episode is
  **corrected** to it (the previous values kept, :class:`Correction`); a live episode still
  open only gets its peak and trough corrected (the live engine goes on counting);
* one of another rule that overlaps only episodes computed late before: the first of those
  is extended to cover it;
* a live data interruption that has ended, whose silence the late readings fill (no silence
  longer than the interruption time left in it): reclassified ``delivery_delay``, corrected.

Pure: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from minewatch.alarms.codes import RULES, Classification
from minewatch.alarms.engine import AlarmEngine, Evaluation
from minewatch.alarms.episodes import Episode, EpisodeChange, EpisodeLog
from minewatch.alarms.families import Tick, feed_tick
from minewatch.alarms.rules import interruption
from minewatch.alarms.rules.feed import FeedPairs
from minewatch.batch import ReadingBatch
from minewatch.codes import ReadingFlag

FEED_RULE = "feed_abnormal"
#: The rules whose episodes a late reading can add: every rule of the engine.
LATE_RULES = frozenset(RULES)
#: The rules whose stored live episodes a late window corrects: those the window's readings
#: decide alone (no state older than the window: thresholds with their on-delay, confirmation
#: and off-delay, the 馈电 pair, the silences between readings).
CORRECTED_RULES = frozenset(
    {"upper_alarm", "lower_alarm", "power_off", "upper_prewarn", "lower_prewarn", FEED_RULE,
     interruption.RULE}
)  # fmt: skip

#: Context evaluated around late readings at least (2 x the allowed lateness if longer): enough
#: for the on-delays, confirmations and off-delays that decide an episode's start and end.
MIN_CONTEXT_US = 120_000_000

REASON_LATE = "late_readings"
REASON_FILLED = "late_readings_filled_interruption"


@dataclass(frozen=True, slots=True)
class LateSpans:
    """Per point with late readings (ascending ids): the first and last late reading's time."""

    point_id: npt.NDArray[np.int32]
    first_us: npt.NDArray[np.int64]
    last_us: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.point_id)

    def as_dict(self) -> dict[int, tuple[int, int]]:
        return {
            p: (f, la)
            for p, f, la in zip(
                self.point_id.tolist(), self.first_us.tolist(), self.last_us.tolist(), strict=True
            )
        }

    @classmethod
    def of(cls, spans: dict[int, tuple[int, int]]) -> LateSpans:
        points = sorted(spans)
        return cls(
            np.array(points, np.int32),
            np.array([spans[p][0] for p in points], np.int64),
            np.array([spans[p][1] for p in points], np.int64),
        )


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


def pair_spans(spans: LateSpans, pairs: FeedPairs) -> LateSpans:
    """Per point of a 馈电 pair with a late reading on either side: the union of the pair's
    late spans (the window of every point of the pair, and what a 馈电 episode must touch)."""
    own = spans.as_dict()
    out: dict[int, tuple[int, int]] = {}
    for source in np.unique(pairs.source).tolist():
        members = [source, *pairs.feed[pairs.source == source].tolist()]
        hit = [own[p] for p in members if p in own]
        if not hit:
            continue
        union = (min(h[0] for h in hit), max(h[1] for h in hit))
        for p in members:
            before = out.get(p, union)
            out[p] = (min(before[0], union[0]), max(before[1], union[1]))
    return LateSpans.of(out)


def context_us(engine: AlarmEngine) -> int:
    return max(2 * engine.defaults.lateness_us, MIN_CONTEXT_US)


@dataclass(slots=True)
class Stored:
    """A stored episode of a point in a late window (``late``: computed late itself)."""

    id: int
    point: int
    rule: str
    start_us: int
    end_us: int | None
    late: bool
    classification: str | None = None
    count: int = 0
    total: float = 0.0
    vmax: float = -math.inf
    vmax_at: int = 0
    vmin: float = math.inf
    vmin_at: int = 0

    def overlaps(self, episode: Episode) -> bool:
        assert episode.end_us is not None
        return self.start_us <= episode.end_us and (
            self.end_us is None or self.end_us >= episode.start_us
        )


@dataclass(frozen=True, slots=True)
class Correction:
    """A stored live episode corrected by late readings: the fields that change, as they were
    (``previous``) and as they are to be (``corrected``), by their column names."""

    alarm_id: int
    point: int
    rule: str
    reason: str
    previous: dict[str, object]
    corrected: dict[str, object]


@dataclass(slots=True)
class Plan:
    inserts: list[Episode] = field(default_factory=list)
    extensions: list[tuple[int, Episode]] = field(default_factory=list)  # (alarm id, episode)
    corrections: list[Correction] = field(default_factory=list)


def window_episodes(engine: AlarmEngine, window: ReadingBatch) -> list[Episode]:
    """Every episode of ``window`` (the stored readings around the late ones, any order) in
    time order, from ``engine``'s state (a fresh engine: nothing evaluated).

    ``engine.evaluate`` does not mutate the engine, so one fresh engine serves every window.
    The 馈电 decisions still held at the window's end are taken (the clock set past every
    reading); an episode still open where the window ends is closed at its point's last
    reading in it (the live engine holds the point's state from there on).
    """
    if not len(window):
        return []
    order = np.lexsort((window.time_us, window.point_id))
    ordered = window.take(order).with_flags(np.zeros(len(window), np.int16))
    log = EpisodeLog()
    evaluation = engine.evaluate(ordered)
    log.apply(evaluation.changes)
    log.apply(_held_feed(engine, evaluation, int(ordered.time_us.max())))
    pid = ordered.point_id
    ends = np.flatnonzero(np.r_[pid[1:] != pid[:-1], True])
    last_seen = dict(zip(pid[ends].tolist(), ordered.time_us[ends].tolist(), strict=True))
    for episode in log.episodes:
        if episode.end_us is None:
            episode.end_us = max(last_seen.get(episode.point, episode.start_us), episode.start_us)
    return log.episodes


def _held_feed(engine: AlarmEngine, evaluation: Evaluation, last_us: int) -> list[EpisodeChange]:
    """The 馈电 changes of the decisions held after ``evaluation``, taken as the clock would
    once past ``last_us`` by the allowed lateness."""
    st = evaluation.state
    bound = last_us + 1
    tick = Tick(bound + engine.defaults.lateness_us, bound, st, dict(st.runs), [],
                st.interruption, st.feed, dict(st.families))  # fmt: skip
    feed_tick(engine, tick)
    return [c for c in tick.changes if c.rule == FEED_RULE]


def plan(
    found: list[Episode],
    stored: list[Stored],
    own: dict[int, tuple[int, int]],
    pair: dict[int, tuple[int, int]],
) -> Plan:
    """What to store for the window's episodes ``found``, given the ``stored`` episodes of its
    points; ``own``: each point's late span, ``pair``: each pair point's (see the module)."""
    by_key: dict[tuple[int, str], list[Stored]] = {}
    for s in stored:
        by_key.setdefault((s.point, s.rule), []).append(s)
    out = Plan()
    corrected: set[int] = set()
    for episode in found:
        if episode.rule not in LATE_RULES:
            continue
        covering = [s for s in by_key.get((episode.point, episode.rule), [])
                    if s.overlaps(episode)]  # fmt: skip
        if len(covering) == 1 and episode.rule in CORRECTED_RULES:
            # the window holds the whole stored episode: what it finds there stands
            s = covering[0]
            if s.id not in corrected:
                correction = _correction(s, episode)
                if correction is not None:
                    out.corrections.append(correction)
                    if s.end_us is not None:  # as it is now, for the next episodes
                        s.start_us, s.end_us = episode.start_us, episode.end_us
                corrected.add(s.id)
                continue
        if any(not s.late for s in covering):
            continue  # the live engine decided it
        if not _touches(episode, own, pair):
            continue  # context only: the live engine decided it
        if covering:
            out.extensions.append((covering[0].id, episode))
        else:
            out.inserts.append(episode)
    found_gaps: dict[int, list[Episode]] = {}
    for episode in found:
        if episode.rule == interruption.RULE:
            found_gaps.setdefault(episode.point, []).append(episode)
    for s in stored:
        if (
            s.rule == interruption.RULE and not s.late and s.end_us is not None
            and s.id not in corrected and s.point in own
            and s.classification == Classification.DATA_INTERRUPTION.value
            and s.start_us <= own[s.point][1] and s.end_us >= own[s.point][0]
            and not any(s.overlaps(e) for e in found_gaps.get(s.point, []))
        ):  # fmt: skip
            out.corrections.append(Correction(
                s.id, s.point, s.rule, REASON_FILLED,
                {"classification": s.classification},
                {"classification": Classification.DELIVERY_DELAY.value},
            ))  # fmt: skip
    return out


def _touches(
    episode: Episode, own: dict[int, tuple[int, int]], pair: dict[int, tuple[int, int]]
) -> bool:
    """Whether ``episode`` touches the late readings it could come from: its point's own, or
    (馈电) its pair's."""
    span = (pair if episode.rule == FEED_RULE else own).get(episode.point)
    if span is None:
        return False
    assert episode.end_us is not None
    return not (episode.start_us > span[1] or episode.end_us < span[0])


def _correction(live: Stored, episode: Episode) -> Correction | None:
    """The correction of ``live`` to the window's ``episode``; None when they agree."""
    assert episode.end_us is not None
    now: dict[str, object] = {}
    if live.end_us is None:  # still open: the live engine counts on; peak and trough only
        if episode.count and episode.vmax > live.vmax:
            now["max_value"], now["max_at"] = episode.vmax, episode.vmax_at
        if episode.count and episode.vmin < live.vmin:
            now["min_value"], now["min_at"] = episode.vmin, episode.vmin_at
    else:
        now = {
            "started_at": episode.start_us, "ended_at": episode.end_us,
            "value_count": episode.count, "value_sum": episode.total,
            "max_value": episode.vmax, "max_at": episode.vmax_at,
            "min_value": episode.vmin, "min_at": episode.vmin_at,
        }  # fmt: skip
        if episode.classification is not None and episode.rule == interruption.RULE:
            # a threshold episode's class may rest on state older than the window (a zero-gas
            # reading before it: undeclared calibration): the live one's stands
            now["classification"] = episode.classification
        if not episode.count:  # a record without readings of its own (an interruption)
            for key in ("value_count", "value_sum", "max_value", "max_at", "min_value",
                        "min_at"):  # fmt: skip
                now.pop(key)
    was = {
        "started_at": live.start_us, "ended_at": live.end_us, "value_count": live.count,
        "value_sum": live.total, "max_value": live.vmax, "max_at": live.vmax_at,
        "min_value": live.vmin, "min_at": live.vmin_at, "classification": live.classification,
    }  # fmt: skip
    changed = {k: v for k, v in now.items() if not _same(was[k], v)}
    if not changed:
        return None
    return Correction(live.id, live.point, live.rule, REASON_LATE,
                      {k: was[k] for k in changed}, changed)  # fmt: skip


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b
