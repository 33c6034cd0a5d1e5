"""Storage of what late readings reveal (:mod:`.late`), in the write batch's transaction,
after its readings were copied (so the window holds the late readings too).

Per :func:`.late.plan`: new episodes are inserted, ended, ``computed_late``, ``raised_at`` the
time they were computed; episodes computed late before are extended, their statistics
recomputed from the stored readings; live episodes the late readings change are corrected in
place (``corrected_at``), the values they had kept in ``alarm_corrections`` (migration 0023).
Each insert and correction is notified like a live change (``pg_notify``: the MQTT alarm topic),
marked ``computed_late``; the database's change log numbers them for the SSE stream. The
inserted episodes are returned as changes for the incidents (:mod:`.late_incidents`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import orjson
import psycopg

from minewatch.alarms.codes import RULES
from minewatch.alarms.engine import AlarmEngine
from minewatch.alarms.episodes import Episode, EpisodeChange
from minewatch.alarms.incidents import changes_of
from minewatch.alarms.late import (
    CORRECTED_RULES,
    LATE_RULES,
    REASON_FILLED,
    Correction,
    Stored,
    context_us,
    late_spans,
    pair_spans,
    plan,
    window_episodes,
)
from minewatch.alarms.rules.params import RuleDefaults
from minewatch.alarms.store import alarm_events, notify
from minewatch.batch import ReadingBatch
from minewatch.registry import PointRegistry
from minewatch.timeutil import us_to_datetime

log = logging.getLogger(__name__)

_WINDOW = """
SELECT DISTINCT ON (r.point_id, r.time)
       (EXTRACT(EPOCH FROM r.time) * 1000000)::bigint, r.point_id, r.value, r.status
FROM unnest(%(points)s::int[], %(lo)s::timestamptz[], %(hi)s::timestamptz[]) AS w(pid, lo, hi)
JOIN readings r ON r.point_id = w.pid AND r.time >= w.lo AND r.time <= w.hi
ORDER BY r.point_id, r.time, r.flags  -- at one time, the reading the live engine evaluated
"""

_STORED = """
SELECT a.id, a.point_id, a.rule, (EXTRACT(EPOCH FROM a.started_at) * 1000000)::bigint,
       (EXTRACT(EPOCH FROM a.ended_at) * 1000000)::bigint, a.computed_late, a.classification,
       a.value_count, a.value_sum, a.max_value,
       (EXTRACT(EPOCH FROM a.max_at) * 1000000)::bigint, a.min_value,
       (EXTRACT(EPOCH FROM a.min_at) * 1000000)::bigint
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

#: A correction: the fields it names (the others NULL, left as they are), and its time.
_CORRECT = """
UPDATE alarms SET
    started_at = coalesce(%(started_at)s, started_at),
    ended_at = coalesce(%(ended_at)s, ended_at),
    value_count = coalesce(%(value_count)s::bigint, value_count),
    value_sum = coalesce(%(value_sum)s::float8, value_sum),
    max_value = coalesce(%(max_value)s::float8, max_value),
    max_at = coalesce(%(max_at)s, max_at),
    min_value = coalesce(%(min_value)s::float8, min_value),
    min_at = coalesce(%(min_at)s, min_at),
    classification = coalesce(%(classification)s::text, classification),
    corrected_at = now(), updated_at = now()
WHERE id = %(id)s
"""

_RECORD = """
INSERT INTO alarm_corrections (alarm_id, reason, previous, corrected)
VALUES (%(id)s, %(reason)s, %(previous)s::jsonb, %(corrected)s::jsonb)
"""

# The incident whose root an episode is follows its start (its key, alarms/incidents.py).
_MOVE_INCIDENT = """
UPDATE incidents SET started_at = %(new)s, updated_at = now()
WHERE root_point_id = %(point)s AND root_rule = %(rule)s AND started_at = %(old)s
"""

_FIELDS = ("started_at", "ended_at", "value_count", "value_sum", "max_value", "max_at",
           "min_value", "min_at", "classification")  # fmt: skip


@dataclass(slots=True)
class LateOutcome:
    """What one write batch's late readings changed: the inserted episodes (as changes that
    open and end them, raised in event time: for the incidents), the corrections, and the
    starts moved by a correction ((point, rule, old start, new start))."""

    inserted: list[EpisodeChange] = field(default_factory=list)
    corrections: list[Correction] = field(default_factory=list)
    moved: list[tuple[int, str, int, int]] = field(default_factory=list)


class LateEvaluation:
    """Evaluates the late readings of each write batch (one per writer; see :mod:`.late`)."""

    def __init__(self, defaults: RuleDefaults | None = None) -> None:
        self._defaults = defaults or RuleDefaults()
        self._engine: AlarmEngine | None = None
        self.added = 0  # episodes inserted so far (tests, logs)
        self.extended = 0
        self.corrected = 0

    def _fresh(self, registry: PointRegistry) -> AlarmEngine:
        if self._engine is None or self._engine.registry is not registry:
            self._engine = AlarmEngine(registry, self._defaults)
        return self._engine

    async def store(
        self, cur: psycopg.AsyncCursor, registry: PointRegistry, batch: ReadingBatch
    ) -> LateOutcome:
        """Evaluate the rows of ``batch`` flagged late (nothing to do when none is), store
        what they reveal and correct, in the cursor's transaction."""
        outcome = LateOutcome()
        spans = late_spans(batch)
        if spans is None:
            return outcome
        engine = self._fresh(registry)
        margin = context_us(engine)
        own, pair = spans.as_dict(), pair_spans(spans, engine.pairs).as_dict()
        bounds = {p: _union(own.get(p), pair.get(p)) for p in own.keys() | pair.keys()}
        bounds = {p: (lo - margin, hi + margin) for p, (lo, hi) in bounds.items()}
        await cur.execute(_STORED, {**_params(bounds), "rules": sorted(LATE_RULES)})
        stored = [_stored(row) for row in await cur.fetchall()]
        await cur.execute(_WINDOW, _params(_widened(bounds, stored, margin, engine)))
        found = window_episodes(engine, _batch(await cur.fetchall()))
        todo = plan(found, stored, own, pair)
        await _first_starts(cur, todo.corrections, stored)
        if todo.extensions:
            await cur.executemany(_EXTEND, [_extension(i, e) for i, e in todo.extensions])
        if todo.inserts:
            await cur.executemany(_INSERT, [_insert_params(e) for e in todo.inserts])
            log.info("late readings: %d alarm episode(s) computed late", len(todo.inserts))
        for c in todo.corrections:
            await cur.execute(_CORRECT, _correct_params(c))
            await cur.execute(_RECORD, {
                "id": c.alarm_id, "reason": c.reason,
                "previous": orjson.dumps(_json(c.previous)).decode(),
                "corrected": orjson.dumps(_json(c.corrected)).decode(),
            })  # fmt: skip
            old, new = c.previous.get("started_at"), c.corrected.get("started_at")
            if isinstance(old, int) and isinstance(new, int):
                await cur.execute(_MOVE_INCIDENT, {
                    "point": c.point, "rule": c.rule, "old": us_to_datetime(old),
                    "new": us_to_datetime(new),
                })  # fmt: skip
                outcome.moved.append((c.point, c.rule, old, new))
        if todo.corrections:
            log.info("late readings: %d alarm episode(s) corrected", len(todo.corrections))
        outcome.inserted = [
            replace(changes_of(e), abnormal_type=RULES[e.rule][0]) for e in todo.inserts
        ]
        outcome.corrections = todo.corrections
        await _notify(cur, registry, outcome)
        self.added += len(todo.inserts)
        self.extended += len(todo.extensions)
        self.corrected += len(todo.corrections)
        return outcome


async def _notify(cur: psycopg.AsyncCursor, registry: PointRegistry, outcome: LateOutcome) -> None:
    """The live notification of what late readings changed, each event ``computed_late``: the
    inserted episodes raised and cleared, and a ``corrected`` event per correction."""
    notes: list[dict[str, object]] = []
    for change in outcome.inserted:
        notes += [{**e, "computed_late": True} for e in alarm_events(change, registry)]
    for c in outcome.corrections:
        notes.append({
            "mine": registry.mine_code[c.point], "point_id": c.point,
            "point": registry.code[c.point], "rule": c.rule,
            "abnormal_type": RULES[c.rule][0], "event": "corrected",
            "reason": c.reason, "previous": _json(c.previous), "corrected": _json(c.corrected),
            "computed_late": True,
        })  # fmt: skip
    await notify(cur, notes)  # one statement, however many


_FIRST_STARTS = """
SELECT c.alarm_id,
       (EXTRACT(EPOCH FROM min((c.previous->>'started_at')::timestamptz)) * 1000000)::bigint
FROM alarm_corrections c WHERE c.alarm_id = ANY(%(ids)s) AND c.previous ? 'started_at'
GROUP BY c.alarm_id
"""


async def _first_starts(
    cur: psycopg.AsyncCursor, corrections: list[Correction], stored: list[Stored]
) -> None:
    """An interruption found filled after all is a delivery delay from where its silence
    first began: the start that earlier parts of the backlog moved goes back there (one more
    field of its correction)."""
    filled = [c for c in corrections if c.reason == REASON_FILLED]
    if not filled:
        return
    await cur.execute(_FIRST_STARTS, {"ids": [c.alarm_id for c in filled]})
    first = {int(i): int(t) for i, t in await cur.fetchall()}
    start_of = {s.id: s.start_us for s in stored}
    for c in filled:
        if c.alarm_id in first and first[c.alarm_id] < start_of[c.alarm_id]:
            c.previous["started_at"] = start_of[c.alarm_id]
            c.corrected["started_at"] = first[c.alarm_id]


def _union(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int]:
    spans = [s for s in (a, b) if s is not None]
    return min(s[0] for s in spans), max(s[1] for s in spans)


def _widened(
    bounds: dict[int, tuple[int, int]], stored: list[Stored], margin: int, engine: AlarmEngine
) -> dict[int, tuple[int, int]]:
    """``bounds`` widened to hold every ended stored episode found in them that a correction
    may set as a whole, with its context (so that the window's evaluation can be compared with
    it), the same for every point of a 馈电 pair."""
    out = dict(bounds)
    for s in stored:
        if s.end_us is None or s.rule not in CORRECTED_RULES:
            continue  # never corrected as a whole (an open one: its peak only)
        lo, hi = out[s.point]
        out[s.point] = (min(lo, s.start_us - margin), max(hi, s.end_us + margin))
    pairs = engine.pairs
    for source in np.unique(pairs.source).tolist():
        members = [p for p in [source, *pairs.feed[pairs.source == source].tolist()] if p in out]
        if len(members) > 1:
            lo, hi = min(out[p][0] for p in members), max(out[p][1] for p in members)
            for p in members:
                out[p] = (lo, hi)
    return out


def _params(bounds: dict[int, tuple[int, int]]) -> dict[str, object]:
    points = sorted(bounds)
    return {
        "points": points,
        "lo": [us_to_datetime(bounds[p][0]) for p in points],
        "hi": [us_to_datetime(bounds[p][1]) for p in points],
    }


def _stored(row: Sequence[Any]) -> Stored:
    i, point, rule, start, end, late, label, n, total, vmax, vmax_at, vmin, vmin_at = row
    return Stored(
        int(i), int(point), str(rule), int(start), None if end is None else int(end),
        bool(late), None if label is None else str(label), int(n or 0), float(total or 0.0),
        -math.inf if vmax is None else float(vmax), int(vmax_at or 0),
        math.inf if vmin is None else float(vmin), int(vmin_at or 0),
    )  # fmt: skip


def _batch(rows: list[tuple[int, int, float, int]]) -> ReadingBatch:
    if not rows:
        return ReadingBatch.empty()
    time_us, point_id, value, status = zip(*rows, strict=True)
    n = len(rows)
    return ReadingBatch(
        np.asarray(time_us, np.int64), np.asarray(point_id, np.int32),
        np.asarray(value, np.float64), np.asarray(status, np.int16), np.zeros(n, np.int16),
    )  # fmt: skip


def _extension(alarm_id: int, episode: Episode) -> dict[str, object]:
    assert episode.end_us is not None
    return {
        "id": alarm_id, "point_id": episode.point,
        "started_at": us_to_datetime(episode.start_us), "ended_at": us_to_datetime(episode.end_us),
    }  # fmt: skip


def _correct_params(c: Correction) -> dict[str, object]:
    params: dict[str, object] = {name: None for name in _FIELDS}
    params.update(_db(c.corrected))
    params["id"] = c.alarm_id
    return params


def _db(values: dict[str, object]) -> dict[str, object]:
    """Times (``*_at``, in microseconds) as datetimes."""
    return {
        k: us_to_datetime(v) if k.endswith("_at") and isinstance(v, int) else v
        for k, v in values.items()
    }


def _json(values: dict[str, object]) -> dict[str, object]:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in _db(values).items()}


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
