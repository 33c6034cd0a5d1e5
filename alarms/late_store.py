"""Storage of the episodes that late readings reveal (:mod:`.late`), in the write batch's
transaction, after its readings were copied (so the window holds the late readings too).

For each episode found in a window: a stored episode of the same point and rule that overlaps
it and was computed live covers it (left as it is); one computed late earlier (the previous
part of a backlog) is extended to cover both, its statistics recomputed from the stored
readings; otherwise it is inserted, ended, ``computed_late``, ``raised_at`` the time it was
computed. No live notification: it is history, shown to regulators as computed late.
"""

from __future__ import annotations

import logging

import numpy as np
import psycopg

from minewatch.alarms.codes import RULES
from minewatch.alarms.engine import AlarmEngine
from minewatch.alarms.episodes import Episode
from minewatch.alarms.late import LATE_RULES, LateSpans, context_us, late_spans, window_episodes
from minewatch.alarms.rules.params import RuleDefaults
from minewatch.batch import ReadingBatch
from minewatch.registry import PointRegistry
from minewatch.timeutil import us_to_datetime

log = logging.getLogger(__name__)

_WINDOW = """
SELECT DISTINCT ON (r.point_id, r.time)
       (EXTRACT(EPOCH FROM r.time) * 1000000)::bigint, r.point_id, r.value, r.status
FROM unnest(%(points)s::int[], %(lo)s::timestamptz[], %(hi)s::timestamptz[]) AS w(pid, lo, hi)
JOIN readings r ON r.point_id = w.pid AND r.time >= w.lo AND r.time <= w.hi
ORDER BY r.point_id, r.time
"""

_STORED = """
SELECT a.id, a.point_id, a.rule, (EXTRACT(EPOCH FROM a.started_at) * 1000000)::bigint,
       (EXTRACT(EPOCH FROM a.ended_at) * 1000000)::bigint, a.computed_late
FROM unnest(%(points)s::int[], %(lo)s::timestamptz[], %(hi)s::timestamptz[]) AS w(pid, lo, hi)
JOIN alarms a ON a.point_id = w.pid AND a.started_at <= w.hi
             AND (a.ended_at IS NULL OR a.ended_at >= w.lo)
WHERE a.rule = ANY(%(rules)s)
"""

_INSERT = """
INSERT INTO alarms (mine_code, point_id, rule, abnormal_type, classification, state, started_at,
                    ended_at, raised_at, threshold, start_value, max_value, max_at, min_value,
                    min_at, value_sum, value_count, computed_late)
SELECT p.mine_code, p.id, %(rule)s, %(abnormal_type)s,
       coalesce(%(classification)s::text, 'exceedance'), 'cleared', %(started_at)s,
       %(ended_at)s, now(), %(threshold)s, %(start_value)s, %(max_value)s, %(max_at)s,
       %(min_value)s, %(min_at)s, %(value_sum)s, %(count)s, true
FROM points p WHERE p.id = %(point_id)s
"""

_EXTEND = """
UPDATE alarms a SET started_at = s.lo, ended_at = s.hi, value_count = s.n, value_sum = s.total,
       max_value = s.vmax, max_at = s.vmax_at, min_value = s.vmin, min_at = s.vmin_at,
       updated_at = now()
FROM (SELECT least(a0.started_at, %(started_at)s) AS lo,
             greatest(a0.ended_at, %(ended_at)s) AS hi FROM alarms a0 WHERE a0.id = %(id)s) b,
LATERAL (SELECT b.lo, b.hi, count(*) AS n, coalesce(sum(r.value), 0) AS total,
                max(r.value) AS vmax,
                (array_agg(r.time ORDER BY r.value DESC, r.time))[1] AS vmax_at,
                min(r.value) AS vmin,
                (array_agg(r.time ORDER BY r.value, r.time))[1] AS vmin_at
         FROM readings r WHERE r.point_id = %(point_id)s AND r.time >= b.lo AND r.time < b.hi
         HAVING count(*) > 0) s
WHERE a.id = %(id)s
"""


class LateEvaluation:
    """Evaluates the late readings of each write batch (one per writer; see :mod:`.late`)."""

    def __init__(self, defaults: RuleDefaults | None = None) -> None:
        self._defaults = defaults or RuleDefaults()
        self._engine: AlarmEngine | None = None
        self.added = 0  # episodes inserted so far (tests, logs)
        self.extended = 0

    def _fresh(self, registry: PointRegistry) -> AlarmEngine:
        if self._engine is None or self._engine.registry is not registry:
            self._engine = AlarmEngine(registry, self._defaults)
        return self._engine

    async def store(
        self, cur: psycopg.AsyncCursor, registry: PointRegistry, batch: ReadingBatch
    ) -> None:
        """Evaluate the rows of ``batch`` flagged late (nothing to do when none is) and store
        the episodes they reveal, in the cursor's transaction."""
        spans = late_spans(batch)
        if spans is None:
            return
        engine = self._fresh(registry)
        margin = context_us(engine)
        bounds = _bounds(spans, margin)
        await cur.execute(_WINDOW, bounds)
        window = _batch(await cur.fetchall())
        found = window_episodes(engine, window, spans)
        if not found:
            return
        await cur.execute(_STORED, {**_bounds(spans, margin), "rules": sorted(LATE_RULES)})
        stored: dict[tuple[int, str], list[tuple[int, int, int | None, bool]]] = {}
        for alarm_id, point_id, rule, start, end, late in await cur.fetchall():
            stored.setdefault((point_id, rule), []).append((alarm_id, start, end, late))
        inserts, extensions = [], []
        for episode in found:
            assert episode.end_us is not None
            covering = [
                s for s in stored.get((episode.point, episode.rule), [])
                if s[1] <= episode.end_us and (s[2] is None or s[2] >= episode.start_us)
            ]  # fmt: skip
            if not covering:
                inserts.append(_insert_params(episode))
            elif all(late for *_, late in covering):
                extensions.append({
                    "id": covering[0][0], "point_id": episode.point,
                    "started_at": us_to_datetime(episode.start_us),
                    "ended_at": us_to_datetime(episode.end_us),
                })  # fmt: skip
        if extensions:
            await cur.executemany(_EXTEND, extensions)
        if inserts:
            await cur.executemany(_INSERT, inserts)
            log.info("late readings: %d alarm episode(s) computed late", len(inserts))
        self.added += len(inserts)
        self.extended += len(extensions)


def _bounds(spans: LateSpans, margin_us: int) -> dict[str, object]:
    return {
        "points": spans.point_id.tolist(),
        "lo": [us_to_datetime(t - margin_us) for t in spans.first_us.tolist()],
        "hi": [us_to_datetime(t + margin_us) for t in spans.last_us.tolist()],
    }


def _batch(rows: list[tuple[int, int, float, int]]) -> ReadingBatch:
    if not rows:
        return ReadingBatch.empty()
    time_us, point_id, value, status = zip(*rows, strict=True)
    n = len(rows)
    return ReadingBatch(
        np.asarray(time_us, np.int64), np.asarray(point_id, np.int32),
        np.asarray(value, np.float64), np.asarray(status, np.int16), np.zeros(n, np.int16),
    )  # fmt: skip


def _insert_params(episode: Episode) -> dict[str, object]:
    assert episode.end_us is not None
    if not episode.count:  # a record without readings of its own: its start value stands
        value = episode.start_value if episode.start_value is not None else 0.0
        episode.vmax = episode.vmin = episode.total = value
        episode.vmax_at = episode.vmin_at = episode.start_us
        episode.count = 1
    return {
        "point_id": episode.point,
        "rule": episode.rule,
        "abnormal_type": RULES[episode.rule][0],
        "classification": episode.classification,
        "started_at": us_to_datetime(episode.start_us),
        "ended_at": us_to_datetime(episode.end_us),
        "threshold": episode.threshold,
        "start_value": episode.start_value if episode.start_value is not None else episode.vmax,
        "max_value": episode.vmax,
        "max_at": us_to_datetime(episode.vmax_at),
        "min_value": episode.vmin,
        "min_at": us_to_datetime(episode.vmin_at),
        "value_sum": episode.total,
        "count": episode.count,
    }
